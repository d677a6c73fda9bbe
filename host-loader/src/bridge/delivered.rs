//! What this launch's simulated doorbell delivered to the guest and the guest's Evidence may
//! name instead of sending it back, so that it crosses the channel once:
//!
//! - the SEV-SNP certificate tables of the extended guest request's answers, named by the
//!   SHA-384 of their used bytes (`Evidence::certificates_sha384`, [`CertTable::sha384`]);
//! - the TDX quotes of the GetQuote answers, named by the SHA-384 of the quote's `OUT_LEN`
//!   bytes (`Evidence::evidence_sha384`, over what [`getquote::parse_response`] takes out).
//!
//! The bridge presents what it delivered under that name, and refuses a name it never gave.
//!
//! A name is not a binding, and needs not be one. The certificate table arrives with the
//! report, too late to be bound into its REPORT_DATA, and a hostile host could rewrite the name
//! as easily as the table: the Verifier's checks are what make any table safe to take (the VCEK
//! or VLEK chains to AMD's root, carries the report's chip id and TCB, and verifies the report's
//! signature). A quote carries REPORTDATA (the key, the freshness, the target) inside, and the
//! Verifier checks the quote's signature chain and REPORTDATA against the key whether it came
//! up the channel or from here. The name keeps the honest host honest: it never presents a table
//! or a quote other than the one the guest saw, and says so when the two differ (altered on its
//! way to the guest, or a guest naming one this host never delivered).

use sha2::{Digest, Sha384};
use twi_attester::snp::certs::CertTable;
use twi_attester::tdx::getquote;

/// Distinct items kept per launch and kind: a host hands every extended guest request the same
/// table, and a launch asks for a quote per acquisition, so more than a few means the launch
/// is misbehaving (or acquires again and again); the oldest is forgotten first.
const MAX_KEPT: usize = 4;

/// What a doorbell answer delivered, newest last, each with its SHA-384.
#[derive(Debug)]
pub struct Delivered {
    /// What the items are, for the user: "certificate table", "quote".
    what: &'static str,
    items: Vec<([u8; 48], Vec<u8>)>,
}

impl Delivered {
    /// The SEV-SNP certificate tables delivered (keep them with [`Delivered::remember_table`]).
    pub fn tables() -> Self {
        Self { what: "certificate table", items: Vec::new() }
    }

    /// The TDX quotes delivered (keep them with [`Delivered::remember_quote`]).
    pub fn quotes() -> Self {
        Self { what: "quote", items: Vec::new() }
    }

    /// Keeps the table a doorbell answer is about to carry to the guest. A table the guest
    /// cannot use (malformed, or empty) is one it never names, so it is not kept.
    pub fn remember_table(&mut self, buffer: &[u8]) {
        let Ok(table) = CertTable::parse(buffer) else { return };
        if !table.is_empty() {
            self.remember(table.sha384(), table.used());
        }
    }

    /// Keeps the quote a GetQuote answer (the buffer's header and quote) is about to carry to
    /// the guest. An answer without a quote (still in flight, failed, malformed) is not kept.
    pub fn remember_quote(&mut self, answer: &[u8]) {
        if let Ok(quote) = getquote::parse_response(answer) {
            self.remember(Sha384::digest(quote).into(), quote);
        }
    }

    fn remember(&mut self, digest: [u8; 48], bytes: &[u8]) {
        self.items.retain(|(kept, _)| *kept != digest);
        if self.items.len() == MAX_KEPT {
            self.items.remove(0);
        }
        self.items.push((digest, bytes.to_vec()));
    }

    /// The delivered item whose SHA-384 is `digest`; `Err`: why there is none, for the user.
    pub fn named(&self, digest: &[u8]) -> Result<&[u8], String> {
        if let Some((_, bytes)) = self.items.iter().find(|(kept, _)| kept[..] == *digest) {
            return Ok(bytes);
        }
        let delivered = match self.items.as_slice() {
            [] => "it delivered none in this launch".to_string(),
            items => format!(
                "it delivered {}",
                items.iter().map(|(kept, _)| format!("sha384:{}", hex::encode(kept))).collect::<Vec<_>>().join(", ")
            ),
        };
        let what = self.what;
        Err(format!(
            "the guest's evidence names {what} sha384:{}, which this host did not deliver ({delivered}): \
             the {what} was altered on its way to the guest, or the guest names another; refusing to present a {what} the guest did not see",
            hex::encode(digest)
        ))
    }
}

#[cfg(test)]
mod tests {
    use twi_attester::snp::certs::{CertKind, encode};

    use super::*;

    fn table(vcek: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; 4096];
        let len = encode(&[(CertKind::Vcek, vcek), (CertKind::Ask, b"ask")], &mut out).unwrap();
        out.truncate(len);
        out
    }

    /// A GetQuote buffer of `room` bytes after its header, answered with `quote`.
    fn answer(quote: &[u8], room: usize) -> Vec<u8> {
        let mut buffer = vec![0u8; getquote::HEADER_SIZE + room];
        getquote::encode_request(&[7; twi_attester::tdx::td_report::TD_REPORT_SIZE], &mut buffer).unwrap();
        getquote::encode_response(Ok(quote), &mut buffer).unwrap();
        buffer
    }

    #[test]
    fn finds_what_it_delivered_by_name_and_nothing_else() {
        let mut kept = Delivered::tables();
        let err = kept.named(&[0; 48]).unwrap_err();
        assert!(err.contains("it delivered none in this launch"), "{err}");
        // A padded buffer is kept as its used bytes, under the name the guest computes.
        let first = table(b"vcek one");
        let mut padded = first.clone();
        padded.resize(8192, 0);
        kept.remember_table(&padded);
        let name = CertTable::parse(&first).unwrap().sha384();
        assert_eq!(kept.named(&name), Ok(&first[..]));
        // Another table's name is refused, saying what was delivered.
        let other = CertTable::parse(&table(b"vcek two")).unwrap().sha384();
        let err = kept.named(&other).unwrap_err();
        assert!(err.contains(&format!("names certificate table sha384:{}", hex::encode(other))), "{err}");
        assert!(err.contains(&format!("it delivered sha384:{}", hex::encode(name))), "{err}");
        // Malformed and empty tables are never named, so never kept.
        kept.remember_table(&[0xA5; 100]);
        kept.remember_table(&[0; 4096]);
        assert_eq!(kept.items.len(), 1);
    }

    /// A quote is kept as the `OUT_LEN` bytes of the answer (not the header, not the buffer's
    /// unused tail), under the SHA-384 the guest computes over what it takes out; answers
    /// without a quote are not kept, and another quote's name is refused.
    #[test]
    fn quotes_are_named_by_the_bytes_the_guest_takes_out() {
        let mut kept = Delivered::quotes();
        let quote = vec![0x5A; 5000];
        let delivered = answer(&quote, 8192);
        kept.remember_quote(&delivered);
        let taken = getquote::parse_response(&delivered).unwrap();
        assert_eq!(taken, &quote[..]);
        let name: [u8; 48] = Sha384::digest(taken).into();
        assert_eq!(kept.named(&name), Ok(&quote[..]));
        // The whole buffer's digest is not the quote's name.
        let buffer_name: [u8; 48] = Sha384::digest(&delivered).into();
        let err = kept.named(&buffer_name).unwrap_err();
        assert!(
            err.starts_with(&format!("the guest's evidence names quote sha384:{}", hex::encode(buffer_name))),
            "{err}"
        );
        assert!(err.contains(&format!("(it delivered sha384:{})", hex::encode(name))), "{err}");
        assert!(err.ends_with("refusing to present a quote the guest did not see"), "{err}");
        // Still in flight (a header only), failed, or garbage: nothing to keep.
        let mut in_flight = answer(&quote, 8192);
        in_flight[8..16].copy_from_slice(&getquote::status::IN_FLIGHT.to_le_bytes());
        kept.remember_quote(&in_flight);
        kept.remember_quote(&[0xA5; 100]);
        kept.remember_quote(&[]);
        assert_eq!(kept.items.len(), 1);
    }

    #[test]
    fn keeps_a_few_distinct_items_forgetting_the_oldest() {
        let mut kept = Delivered::tables();
        let tables: Vec<Vec<u8>> = (0..=MAX_KEPT as u8).map(|i| table(&[b'v', i])).collect();
        for t in &tables {
            kept.remember_table(t);
            kept.remember_table(t);
        }
        assert_eq!(kept.items.len(), MAX_KEPT);
        let name = |t: &[u8]| CertTable::parse(t).unwrap().sha384();
        assert!(kept.named(&name(&tables[0])).is_err(), "the oldest is forgotten");
        for t in &tables[1..] {
            assert_eq!(kept.named(&name(t)), Ok(&t[..]));
        }
    }
}
