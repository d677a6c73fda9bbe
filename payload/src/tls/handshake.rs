//! The client's side of the TLS 1.3 handshake (RFC 8446 §2, §4): one suite
//! (TLS_AES_256_GCM_SHA384), one group (secp384r1), ECDSA signatures, the server authenticated
//! by its certificate, the client by its certificate when asked. No PSK, resumption, early
//! data or HelloRetryRequest.

use alloc::vec::Vec;

use sha2::{Digest as _, Sha384};
use subtle::ConstantTimeEq;

use super::codec::{Reader, put_u16, put_vec};
use super::config::TlsConfig;
use super::crypto::{self, Digest, Ephemeral, HASH_LEN, RecordCipher, Secret};
use super::error::MALFORMED;
use super::error::{CertificateProblem, TlsError};
use super::name::ServerName;
use super::record::{ALERT, APPLICATION_DATA, CHANGE_CIPHER_SPEC, HANDSHAKE, Records, received_alert};
use super::signature::{Curve, Hash};
use super::x509;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const ENCRYPTED_EXTENSIONS: u8 = 8;
const CERTIFICATE: u8 = 11;
const CERTIFICATE_REQUEST: u8 = 13;
const CERTIFICATE_VERIFY: u8 = 15;
const FINISHED: u8 = 20;

const TLS_AES_256_GCM_SHA384: u16 = 0x1302;
const SECP384R1: u16 = 0x0018;
const ECDSA_SECP384R1_SHA384: u16 = 0x0503;
#[cfg(feature = "p256")]
const ECDSA_SECP256R1_SHA256: u16 = 0x0403;

const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;

/// §4.1.3: the ServerHello.random of a HelloRetryRequest.
const HELLO_RETRY_REQUEST: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];
/// The most certificates a server's chain may carry.
const MAX_CHAIN: usize = 8;

/// The running transcript (§4.4.1).
struct Transcript(Sha384);

impl Transcript {
    #[inline(never)]
    fn add(&mut self, message: &[u8]) {
        self.0.update(message);
    }

    #[inline(never)]
    fn hash(&self) -> Digest {
        self.0.clone().finalize().into()
    }
}

/// Runs the handshake over `records`; on success both directions use application keys.
pub(crate) fn run<T: super::Transport>(
    records: &mut Records<T>,
    config: &TlsConfig,
    server: &ServerName,
) -> Result<(), TlsError> {
    let ephemeral = Ephemeral::new(config.random)?;
    let mut random = [0u8; 32];
    config.random.fill(&mut random).map_err(|_| TlsError::Random)?;
    let hello = client_hello(&random, server, &ephemeral.public)?;
    let mut transcript = Transcript(Sha384::new());
    transcript.add(&hello);
    records.send(HANDSHAKE, &hello)?;

    let message = expect(records, SERVER_HELLO)?;
    let shared = ephemeral.agree(server_hello(&message[4..])?)?;
    transcript.add(&message);
    records.key_change()?;
    let empty: Digest = twi_proto::hash::sha384(&[]);
    let early = crypto::extract(&[0; HASH_LEN], &[0; HASH_LEN]);
    let secret = crypto::extract(&crypto::derive(&early[..], b"derived", &empty)?[..], &shared[..]);
    let hello_hash = transcript.hash();
    let client_hs = crypto::derive(&secret[..], b"c hs traffic", &hello_hash)?;
    let server_hs = crypto::derive(&secret[..], b"s hs traffic", &hello_hash)?;
    records.read = Some(RecordCipher::new(server_hs.clone())?);

    let request = server_flight(records, config, server, &mut transcript, &server_hs)?;
    let master = crypto::extract(&crypto::derive(&secret[..], b"derived", &empty)?[..], &[0; HASH_LEN]);
    let finished_hash = transcript.hash();
    let client_ap = crypto::derive(&master[..], b"c ap traffic", &finished_hash)?;
    let server_ap = crypto::derive(&master[..], b"s ap traffic", &finished_hash)?;

    records.write = Some(RecordCipher::new(client_hs.clone())?);
    let flight = client_flight(config, request, &mut transcript, &client_hs)?;
    records.send(HANDSHAKE, &flight)?;
    records.read = Some(RecordCipher::new(server_ap)?);
    records.write = Some(RecordCipher::new(client_ap)?);
    records.established = true;
    Ok(())
}

/// The next handshake message (header included), which must be of type `kind`.
fn expect<T: super::Transport>(records: &mut Records<T>, kind: u8) -> Result<Vec<u8>, TlsError> {
    let message = next_message(records)?;
    if message[0] == kind { Ok(message) } else { Err(TlsError::Protocol("an unexpected handshake message")) }
}

/// The next whole handshake message, reading records as needed. A `change_cipher_spec` of one
/// byte 0x01 is skipped (§5: middlebox compatibility); application data is refused.
pub(crate) fn next_message<T: super::Transport>(records: &mut Records<T>) -> Result<Vec<u8>, TlsError> {
    loop {
        if let Some(message) = records.buffered_message()? {
            return Ok(message);
        }
        let record = records.next()?;
        match record.kind {
            HANDSHAKE => records.push_handshake(&record.data)?,
            ALERT => return Err(received_alert(&record.data)?.unwrap_or(TlsError::Truncated)),
            CHANGE_CIPHER_SPEC if record.data == [1] && !records.established => {}
            APPLICATION_DATA | CHANGE_CIPHER_SPEC => return Err(TlsError::Protocol("an unexpected message")),
            _ => return Err(TlsError::Protocol("an unexpected record type")),
        }
    }
}

/// The ClientHello extensions that never change (§4.2): supported_versions (TLS 1.3),
/// supported_groups (secp384r1), signature_algorithms (the offered schemes), and the head of
/// key_share (one secp384r1 share of 97 bytes follows).
#[cfg(not(feature = "p256"))]
const FIXED_EXTENSIONS: &[u8] = &[
    0, 43, 0, 3, 2, 3, 4, // supported_versions
    0, 10, 0, 4, 0, 2, 0, 0x18, // supported_groups
    0, 13, 0, 4, 0, 2, 5, 3, // signature_algorithms
    0, 51, 0, 103, 0, 101, 0, 0x18, 0, 97, // key_share
];
#[cfg(feature = "p256")]
const FIXED_EXTENSIONS: &[u8] = &[
    0, 43, 0, 3, 2, 3, 4, // supported_versions
    0, 10, 0, 4, 0, 2, 0, 0x18, // supported_groups
    0, 13, 0, 6, 0, 4, 5, 3, 4, 3, // signature_algorithms
    0, 51, 0, 103, 0, 101, 0, 0x18, 0, 97, // key_share
];

/// §4.1.2, with the extensions §9.2 makes mandatory for this configuration: the fixed ones,
/// our key share, and server_name for a DNS name (RFC 6066 §3; at most 253 bytes).
fn client_hello(random: &[u8; 32], server: &ServerName, share: &[u8; 97]) -> Result<Vec<u8>, TlsError> {
    let host = match server {
        ServerName::Dns(host) => host.as_bytes(),
        ServerName::Ip(_) => &[],
    };
    let sni = if host.is_empty() { 0 } else { host.len() + 9 };
    let extensions = sni + FIXED_EXTENSIONS.len() + share.len();
    let mut body = Vec::with_capacity(extensions + 50);
    body.extend_from_slice(&[3, 3]);
    body.extend_from_slice(random);
    // An empty legacy_session_id; the one suite; the null compression method.
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x02, 1, 0]);
    put_u16(&mut body, extensions as u16);
    if !host.is_empty() {
        let len = host.len() as u16;
        for field in [EXT_SERVER_NAME, len + 5, len + 3] {
            put_u16(&mut body, field);
        }
        body.push(0); // host_name
        put_u16(&mut body, len);
        body.extend_from_slice(host);
    }
    body.extend_from_slice(FIXED_EXTENSIONS);
    body.extend_from_slice(share);
    message(CLIENT_HELLO, &body)
}

/// A handshake message: type, three-byte length, body.
fn message(kind: u8, body: &[u8]) -> Result<Vec<u8>, TlsError> {
    let mut out = alloc::vec![kind];
    put_vec(&mut out, 3, |o| o.extend_from_slice(body))?;
    Ok(out)
}

/// §4.1.3: TLS 1.3, our suite and our group; returns the server's key share.
fn server_hello(body: &[u8]) -> Result<&[u8], TlsError> {
    let mut r = Reader::new(body);
    if r.u16()? != 0x0303 {
        return Err(TlsError::Incompatible("the server does not speak TLS 1.3"));
    }
    if r.take(32)? == HELLO_RETRY_REQUEST {
        return Err(TlsError::Incompatible("the server asked for another key share"));
    }
    if !r.vec8()?.is_empty() {
        return Err(TlsError::Protocol("a session id we did not send"));
    }
    if r.u16()? != TLS_AES_256_GCM_SHA384 || r.u8()? != 0 {
        return Err(TlsError::Protocol("a cipher suite or compression we did not offer"));
    }
    let mut extensions = Reader::new(r.vec16()?);
    r.finish()?;
    let (mut version, mut share) = (None, None);
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let mut data = Reader::new(extensions.vec16()?);
        let slot = match kind {
            EXT_SUPPORTED_VERSIONS if version.is_none() => &mut version,
            EXT_KEY_SHARE if share.is_none() => {
                if data.u16()? != SECP384R1 {
                    return Err(TlsError::Protocol("a key share for a group we did not offer"));
                }
                &mut share
            }
            _ => return Err(TlsError::Protocol("an extension ServerHello may not carry")),
        };
        *slot = Some(if kind == EXT_KEY_SHARE { data.vec16()? } else { data.take(2)? });
        data.finish()?;
    }
    match (version, share) {
        (Some([3, 4]), Some(share)) => Ok(share),
        (Some([3, 4]), None) => Err(TlsError::Protocol("a ServerHello without a key share")),
        _ => Err(TlsError::Incompatible("the server does not speak TLS 1.3")),
    }
}

/// What the server asked of the client's certificate (§4.3.2).
struct Request {
    /// Whether ecdsa_secp384r1_sha384 is among the schemes it accepts.
    accepts_p384: bool,
}

/// EncryptedExtensions, an optional CertificateRequest, the server's Certificate,
/// CertificateVerify and Finished (§4.3, §4.4).
fn server_flight<T: super::Transport>(
    records: &mut Records<T>,
    config: &TlsConfig,
    server: &ServerName,
    transcript: &mut Transcript,
    server_hs: &Secret,
) -> Result<Option<Request>, TlsError> {
    let message = expect(records, ENCRYPTED_EXTENSIONS)?;
    encrypted_extensions(&message[4..])?;
    transcript.add(&message);
    let mut message = next_message(records)?;
    let mut request = None;
    if message[0] == CERTIFICATE_REQUEST {
        request = Some(certificate_request(&message[4..])?);
        transcript.add(&message);
        message = next_message(records)?;
    }
    if message[0] != CERTIFICATE {
        return Err(TlsError::Protocol("an unexpected handshake message"));
    }
    let now = config.clock.unix_seconds().ok_or(TlsError::Clock)?;
    let chain = certificate_chain(&message[4..])?;
    let leaf = x509::verify_server(&chain, &config.anchors, now, server).map_err(TlsError::ServerCertificate)?;
    transcript.add(&message);

    let verify = expect(records, CERTIFICATE_VERIFY)?;
    check_certificate_verify(&verify[4..], leaf.key().map_err(TlsError::ServerCertificate)?, &transcript.hash())?;
    transcript.add(&verify);

    let finished = expect(records, FINISHED)?;
    let mac = crypto::finished_mac(&server_hs[..], &transcript.hash())?;
    if !bool::from(mac[..].ct_eq(&finished[4..])) {
        return Err(TlsError::Tampered);
    }
    transcript.add(&finished);
    records.key_change()?;
    Ok(request)
}

/// §4.3.1: only extensions the client offered and the server may answer here.
fn encrypted_extensions(body: &[u8]) -> Result<(), TlsError> {
    let mut r = Reader::new(body);
    let mut extensions = Reader::new(r.vec16()?);
    r.finish()?;
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let data = extensions.vec16()?;
        match kind {
            EXT_SERVER_NAME if data.is_empty() => {}
            EXT_SUPPORTED_GROUPS => {}
            _ => return Err(TlsError::Protocol("an extension the client did not offer")),
        }
    }
    Ok(())
}

fn certificate_request(body: &[u8]) -> Result<Request, TlsError> {
    let mut r = Reader::new(body);
    if !r.vec8()?.is_empty() {
        return Err(TlsError::Protocol("a certificate request context in the handshake"));
    }
    let mut extensions = Reader::new(r.vec16()?);
    r.finish()?;
    let mut schemes = None;
    while !extensions.is_empty() {
        let kind = extensions.u16()?;
        let mut data = Reader::new(extensions.vec16()?);
        if kind == EXT_SIGNATURE_ALGORITHMS {
            let mut list = Reader::new(data.vec16()?);
            data.finish()?;
            let mut accepts = false;
            while !list.is_empty() {
                accepts |= list.u16()? == ECDSA_SECP384R1_SHA384;
            }
            schemes = Some(accepts);
        }
    }
    let accepts_p384 = schemes.ok_or(TlsError::Protocol("a certificate request without signature algorithms"))?;
    Ok(Request { accepts_p384 })
}

/// §4.4.2: the certificates' DER, leaf first; their extensions are not read.
fn certificate_chain(body: &[u8]) -> Result<Vec<&[u8]>, TlsError> {
    let mut r = Reader::new(body);
    if !r.vec8()?.is_empty() {
        return Err(TlsError::Protocol("a certificate request context the client did not send"));
    }
    let mut list = Reader::new(r.vec24()?);
    r.finish()?;
    let mut chain = Vec::new();
    while !list.is_empty() {
        let der = list.vec24()?;
        list.vec16()?;
        if der.is_empty() || chain.len() == MAX_CHAIN {
            return Err(MALFORMED);
        }
        chain.push(der);
    }
    if chain.is_empty() {
        return Err(TlsError::ServerCertificate(CertificateProblem::Missing));
    }
    Ok(chain)
}

/// §4.4.3: the content a CertificateVerify signs.
fn signed_content(context: &[u8], transcript: &Digest) -> Vec<u8> {
    let mut content = alloc::vec![0x20; 64];
    content.extend_from_slice(context);
    content.push(0);
    content.extend_from_slice(transcript);
    content
}

fn check_certificate_verify(
    body: &[u8],
    key: super::signature::PublicKey<'_>,
    transcript: &Digest,
) -> Result<(), TlsError> {
    let mut r = Reader::new(body);
    let scheme = r.u16()?;
    let signature = r.vec16()?;
    r.finish()?;
    let hash = match (scheme, key.curve) {
        (ECDSA_SECP384R1_SHA384, Curve::P384) => Hash::Sha384,
        #[cfg(feature = "p256")]
        (ECDSA_SECP256R1_SHA256, Curve::P256) => Hash::Sha256,
        _ => return Err(TlsError::Protocol("a signature scheme the client did not offer for this key")),
    };
    let content = signed_content(b"TLS 1.3, server CertificateVerify", transcript);
    if key.verifies(hash, &content, signature) {
        Ok(())
    } else {
        Err(TlsError::ServerCertificate(CertificateProblem::BadSignature))
    }
}

/// The client's Certificate and CertificateVerify if asked, and its Finished (§4.4).
fn client_flight(
    config: &TlsConfig,
    request: Option<Request>,
    transcript: &mut Transcript,
    client_hs: &Secret,
) -> Result<Vec<u8>, TlsError> {
    let mut flight = Vec::new();
    if let Some(request) = request {
        let identity = config.identity.as_ref().filter(|_| request.accepts_p384);
        let mut body = alloc::vec![0]; // certificate_request_context: empty
        put_vec(&mut body, 3, |list| {
            for der in identity.map(|id| &id.chain[..]).unwrap_or_default() {
                // Cannot fail: the configuration refused chains a Certificate message cannot
                // carry (ConfigError::ClientChainTooLarge).
                let _ = put_vec(list, 3, |c| c.extend_from_slice(der));
                put_u16(list, 0); // no extensions
            }
        })?;
        let certificate = message(CERTIFICATE, &body)?;
        transcript.add(&certificate);
        flight.extend_from_slice(&certificate);
        if let Some(identity) = identity {
            let content = signed_content(b"TLS 1.3, client CertificateVerify", &transcript.hash());
            let signature = identity.key.sign(&content).map_err(TlsError::ClientKey)?;
            let mut body = Vec::with_capacity(signature.len() + 4);
            put_u16(&mut body, ECDSA_SECP384R1_SHA384);
            put_vec(&mut body, 2, |s| s.extend_from_slice(&signature))?;
            let verify = message(CERTIFICATE_VERIFY, &body)?;
            transcript.add(&verify);
            flight.extend_from_slice(&verify);
        }
    }
    let mac = crypto::finished_mac(&client_hs[..], &transcript.hash())?;
    flight.extend_from_slice(&message(FINISHED, &mac[..])?);
    Ok(flight)
}

#[cfg(test)]
mod tests;
