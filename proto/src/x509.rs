//! X.509 certificates (RFC 5280 §4.1) read field by field with [`crate::asn1`], without
//! decoding them whole: the one reader under the runtime's check of its own credential and the
//! workload TLS client's check of a server's chain. It checks the structure; what a field must
//! say is its caller's policy.

use crate::asn1::{self, DerError, Element, Reader, tag};

/// `[0] EXPLICIT Version` holding v3 (`INTEGER 2`).
const VERSION_3: [u8; 3] = [tag::INTEGER, 1, 2];

/// A certificate's fields, borrowed from its DER.
#[derive(Clone, Copy, Debug)]
pub struct Certificate<'a> {
    /// The whole `tbsCertificate` element: what the signature covers.
    pub tbs: &'a [u8],
    /// The `signatureAlgorithm` element (equal to the TBS's `signature`, as §4.1.1.2 requires).
    pub signature_algorithm: Element<'a>,
    /// The signature: the BIT STRING's bits (no unused bits allowed).
    pub signature: &'a [u8],
    /// The whole `issuer` Name.
    pub issuer: &'a [u8],
    /// `notBefore` and `notAfter`, seconds since the Unix epoch.
    pub validity: (u64, u64),
    /// The whole `subject` Name.
    pub subject: &'a [u8],
    /// The `subjectPublicKeyInfo` element.
    pub spki: Element<'a>,
    /// The `extensions`.
    pub extensions: Extensions<'a>,
}

impl<'a> Certificate<'a> {
    /// Reads `der`: the DER of an X.509 v3 certificate whose inner and outer signature
    /// algorithms are equal, and nothing after it.
    ///
    /// # Errors
    /// [`DerError`] for anything else.
    pub fn parse(der: &'a [u8]) -> Result<Self, DerError> {
        let mut outer = Reader::new(asn1::only(der, tag::SEQUENCE)?.contents);
        let tbs = outer.expect(tag::SEQUENCE)?;
        let signature_algorithm = outer.expect(tag::SEQUENCE)?;
        let signature = match outer.expect(tag::BIT_STRING)?.contents {
            [0, bits @ ..] => bits,
            _ => return Err(DerError),
        };
        outer.finish()?;
        let mut fields = Reader::new(tbs.contents);
        if fields.expect(0xa0)?.contents != VERSION_3 {
            return Err(DerError);
        }
        fields.expect(tag::INTEGER)?; // serialNumber
        if fields.expect(tag::SEQUENCE)?.encoded != signature_algorithm.encoded {
            return Err(DerError);
        }
        let issuer = fields.expect(tag::SEQUENCE)?.encoded;
        let validity = validity(fields.expect(tag::SEQUENCE)?.contents)?;
        let subject = fields.expect(tag::SEQUENCE)?.encoded;
        let spki = fields.expect(tag::SEQUENCE)?;
        fields.optional(0x81)?; // [1] issuerUniqueID
        fields.optional(0x82)?; // [2] subjectUniqueID
        let extensions = match fields.optional(0xa3)? {
            Some(list) => Extensions { list: asn1::only(list.contents, tag::SEQUENCE)?.contents },
            None => Extensions { list: &[] },
        };
        fields.finish()?;
        let tbs = tbs.encoded;
        Ok(Self { tbs, signature_algorithm, signature, issuer, validity, subject, spki, extensions })
    }
}

/// `Validity ::= SEQUENCE { notBefore Time, notAfter Time }`.
fn validity(contents: &[u8]) -> Result<(u64, u64), DerError> {
    let mut times = Reader::new(contents);
    let not_before = asn1::unix_seconds(times.element()?)?;
    let not_after = asn1::unix_seconds(times.element()?)?;
    times.finish()?;
    Ok((not_before, not_after))
}

/// One extension (§4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    /// The `extnID` OID's contents.
    pub id: &'a [u8],
    pub critical: bool,
    /// The `extnValue` OCTET STRING's contents: the extension's own DER.
    pub value: &'a [u8],
}

/// A certificate's extensions, read in order.
#[derive(Clone, Copy, Debug)]
pub struct Extensions<'a> {
    /// The contents of the `Extensions` SEQUENCE.
    list: &'a [u8],
}

impl<'a> Extensions<'a> {
    /// Calls `each` with every extension in order, stopping at its first error.
    ///
    /// # Errors
    /// [`DerError`] for a malformed extension, or `each`'s error.
    pub fn each(&self, mut each: impl FnMut(Extension<'a>) -> Result<(), DerError>) -> Result<(), DerError> {
        let mut list = Reader::new(self.list);
        while !list.is_empty() {
            let mut fields = Reader::new(list.expect(tag::SEQUENCE)?.contents);
            let id = fields.expect(tag::OID)?.contents;
            let critical = fields.optional_boolean()?;
            let value = fields.expect(tag::OCTET_STRING)?.contents;
            fields.finish()?;
            each(Extension { id, critical, value })?;
        }
        Ok(())
    }
}
