//! HTTPS to a target with the workload's identity, in one call: [`get`], [`post`], [`send`].
//!
//! What a call does, in order:
//!
//! 1. trusts the server CAs of the measured setting `server-ca` (`twi build --set
//!    server-ca=FILE.pem`; DER certificates, concatenated): nothing the host supplies;
//! 2. checks certificates at a time the host cannot move before the workload's own credential
//!    was issued: the host's wall time, clamped to the credential's validity (the issuer signed
//!    `notBefore`, so the present is no earlier; a host moving the clock past `notAfter` can
//!    only make the connection fail, which it can do anyway);
//! 3. proves the identity: an X.509 credential as the TLS client certificate (the signature is
//!    made in the vault), a WIT in `Workload-Identity-Token` with a fresh WPT in
//!    `Authorization: WPT …` (draft-ietf-wimse-s2s-protocol), over server-authenticated TLS;
//! 4. asks the host to connect to the target (which the measured manifest must name), runs TLS
//!    1.3 over the relayed bytes, sends the request and reads the response, bounded by
//!    [`Limits::default`].
//!
//! ```no_run
//! # use twi_payload::prelude::*;
//! # fn demo(rt: &mut dyn Runtime) -> Result<(), Box<dyn core::error::Error>> {
//! let target = "https://payroll-db.example:8443/rows";
//! let credential = rt.acquire(target, CredentialType::X509, None)?;
//! let response = twi_payload::https::get(rt, &credential, target)?;
//! rt.log(&format!("{} {}", response.status, String::from_utf8_lossy(&response.body)));
//! # Ok(()) }
//! ```

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::credential::{Credential, CredentialType};
use crate::http::{self, HttpError, Limits, Request, RequestError, Response};
use crate::runtime::{ConnectError, Runtime};
use crate::target;
use crate::tls::{ConfigError, FixedClock, KeyError, TlsConfig, TlsError, TlsStream};
#[cfg(feature = "wpt")]
use crate::wpt::{self, WptError, WptRequest};

/// The setting that holds the server CAs (DER, concatenated).
pub const SERVER_CA: &str = "server-ca";
/// The header that carries a WIT (draft-ietf-wimse-s2s-protocol).
pub const WIT_HEADER: &str = "Workload-Identity-Token";

/// Why an HTTPS call failed. Each says whose fault and what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpsError {
    /// The target is not an `https://HOST[:PORT]/PATH` URL.
    BadTarget(String),
    /// The measured manifest has no usable `server-ca` setting.
    NoServerCa(String),
    /// The TLS configuration was refused (a CA certificate that does not parse).
    Config(ConfigError),
    /// The vault has no key for the credential.
    Key(KeyError),
    /// The WPT could not be made.
    #[cfg(feature = "wpt")]
    Proof(WptError),
    /// The credential is a WIT, which needs a WPT per request, and this workload was built
    /// without `twi-payload`'s `wpt` feature.
    #[cfg(not(feature = "wpt"))]
    NoWpt,
    /// The request could not be written (a header value with a line break).
    Request(RequestError),
    /// The runtime refused or the host could not connect.
    Connect(ConnectError),
    /// The TLS handshake or the exchange failed (a forged server, altered bytes, a cut).
    Tls(TlsError),
    /// The response is not valid HTTP/1.1, or exceeds the limits.
    Http(HttpError<TlsError>),
}

impl fmt::Display for HttpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadTarget(t) => write!(f, "`{t}` is not an https://HOST[:PORT]/PATH target"),
            Self::NoServerCa(why) => write!(
                f,
                "no server CA to trust ({why}): build the image with `--set {SERVER_CA}=CA.pem` naming the relying party's CA"
            ),
            Self::Config(e) => write!(f, "TLS configuration: {e}"),
            Self::Key(e) => write!(f, "the credential's key: {e}"),
            #[cfg(feature = "wpt")]
            Self::Proof(e) => write!(f, "the workload proof token: {e}"),
            #[cfg(not(feature = "wpt"))]
            Self::NoWpt => f.write_str(
                "a WIT credential needs a workload proof token: build the workload with twi-payload's `wpt` feature",
            ),
            Self::Request(e) => write!(f, "the request: {e}"),
            Self::Connect(e) => write!(f, "connecting: {e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Http(e) => write!(f, "HTTP: {e}"),
        }
    }
}

impl core::error::Error for HttpsError {}

/// `GET url` with `credential`'s identity.
///
/// # Errors
/// [`HttpsError`].
pub fn get(rt: &mut dyn Runtime, credential: &Credential, url: &str) -> Result<Response, HttpsError> {
    let request = Request::get(&server_name(url)?, target::path(url)).map_err(HttpsError::Request)?;
    send(rt, credential, url, request)
}

/// `POST url` with `body` of `content_type`, with `credential`'s identity.
///
/// # Errors
/// [`HttpsError`].
pub fn post(
    rt: &mut dyn Runtime,
    credential: &Credential,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Response, HttpsError> {
    let request = Request::post(&server_name(url)?, target::path(url), body)
        .and_then(|r| r.header("Content-Type", content_type))
        .map_err(HttpsError::Request)?;
    send(rt, credential, url, request)
}

/// Sends `request` (made for `url`'s host and path) to `url` with `credential`'s identity.
///
/// # Errors
/// [`HttpsError`].
pub fn send(
    rt: &mut dyn Runtime,
    credential: &Credential,
    url: &str,
    mut request: Request,
) -> Result<Response, HttpsError> {
    let name = server_name(url)?;
    let config = config(rt, credential)?;
    if credential.credential_type == CredentialType::Wit {
        request = with_proof(rt, credential, url, request)?;
    }
    let transport = rt.connect(url).map_err(HttpsError::Connect)?;
    let mut tls = TlsStream::connect(&config, &name, transport).map_err(HttpsError::Tls)?;
    let response = http::send(&mut tls, &request, &Limits::default()).map_err(HttpsError::Http)?;
    // The response is complete; a server that closes without close_notify loses nothing here.
    let _ = tls.close();
    Ok(response)
}

/// `request` with `credential`'s WIT and a fresh WPT for `url` (draft-ietf-wimse-s2s-protocol).
#[cfg(feature = "wpt")]
fn with_proof(
    rt: &mut dyn Runtime,
    credential: &Credential,
    url: &str,
    request: Request,
) -> Result<Request, HttpsError> {
    let proof = wpt::make(rt, credential, &WptRequest::new(target::audience(url))).map_err(HttpsError::Proof)?;
    request
        .header(WIT_HEADER, &credential.token)
        .and_then(|r| r.header("Authorization", &format!("WPT {proof}")))
        .map_err(HttpsError::Request)
}

#[cfg(not(feature = "wpt"))]
fn with_proof(_: &mut dyn Runtime, _: &Credential, _: &str, _: Request) -> Result<Request, HttpsError> {
    Err(HttpsError::NoWpt)
}

/// The host of `url`, the name the server's certificate must carry.
fn server_name(url: &str) -> Result<String, HttpsError> {
    if !url.starts_with("https://") {
        return Err(HttpsError::BadTarget(url.to_string()));
    }
    target::host(url).ok_or_else(|| HttpsError::BadTarget(url.to_string()))
}

/// The TLS configuration for `credential`: the measured server CAs, the clamped clock, and
/// the client certificate for X.509.
fn config(rt: &mut dyn Runtime, credential: &Credential) -> Result<TlsConfig, HttpsError> {
    let bundle = rt.setting(SERVER_CA).ok_or_else(|| HttpsError::NoServerCa("the setting is absent".into()))?;
    let cas: Vec<Vec<u8>> =
        split_der(bundle).map_err(HttpsError::NoServerCa)?.into_iter().map(<[u8]>::to_vec).collect();
    let now = trusted_time(rt.host_time().ok().map(|t| t.0), credential);
    let mut builder = TlsConfig::builder(rt.random(), Arc::new(FixedClock(now)));
    for ca in &cas {
        builder = builder.trust_ca(ca).map_err(HttpsError::Config)?;
    }
    if credential.credential_type == CredentialType::X509 {
        let key = rt.client_key(credential.key).map_err(HttpsError::Key)?;
        builder = builder.client_certificate(credential.certificates.clone(), key).map_err(HttpsError::Config)?;
    }
    builder.build().map_err(HttpsError::Config)
}

/// The time to check certificates at: the host's, clamped to `credential`'s validity (its
/// `notBefore` when the host gives none).
pub fn trusted_time(host: Option<u64>, credential: &Credential) -> u64 {
    let floor = credential.not_before;
    let ceiling = credential.not_after.max(floor);
    host.unwrap_or(floor).clamp(floor, ceiling)
}

/// The certificates of a concatenation of DER `SEQUENCE`s (the `-ca` settings' format).
///
/// # Errors
/// A description of the first malformed certificate, or of an empty bundle.
pub fn split_der(mut bundle: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut certificates = Vec::new();
    while !bundle.is_empty() {
        let length = der_sequence_length(bundle)
            .ok_or_else(|| format!("certificate {} is not a DER SEQUENCE", certificates.len() + 1))?;
        let (certificate, rest) = bundle.split_at(length);
        certificates.push(certificate);
        bundle = rest;
    }
    if certificates.is_empty() {
        return Err("the setting holds no certificate".into());
    }
    Ok(certificates)
}

/// The total length (header included) of the DER SEQUENCE at the start of `bytes`, if it is one
/// that fits in `bytes` (definite length, at most four length octets, minimal encoding).
fn der_sequence_length(bytes: &[u8]) -> Option<usize> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (header, content) = match first {
        0..=0x7f => (2, usize::from(first)),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            let octets = rest.get(..count)?;
            if octets[0] == 0 || (count == 1 && octets[0] < 0x80) {
                return None;
            }
            (2 + count, octets.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
        }
        _ => return None,
    };
    let total = header.checked_add(content)?;
    (total <= bytes.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{KeyHandle, Mode};

    fn credential(not_before: u64, not_after: u64) -> Credential {
        Credential {
            target: "https://rp.example/".into(),
            credential_type: CredentialType::X509,
            mode: Mode::Enrollment,
            workload_id: "spiffe://twi.example/w".into(),
            certificates: Vec::new(),
            token: String::new(),
            key: KeyHandle(1),
            not_before,
            not_after,
        }
    }

    #[test]
    fn the_host_cannot_move_time_before_the_credential() {
        let c = credential(1_000, 2_000);
        assert_eq!(trusted_time(Some(1_500), &c), 1_500);
        assert_eq!(trusted_time(Some(10), &c), 1_000, "a host setting the clock back is clamped");
        assert_eq!(trusted_time(Some(9_999), &c), 2_000);
        assert_eq!(trusted_time(None, &c), 1_000);
    }

    #[test]
    fn bundles_split_into_certificates_and_refuse_garbage() {
        let short = [0x30, 0x03, 1, 2, 3];
        let mut long = alloc::vec![0x30, 0x81, 0x80];
        long.extend([7u8; 0x80]);
        let bundle = [&short[..], &long[..]].concat();
        assert_eq!(split_der(&bundle).unwrap(), alloc::vec![&short[..], &long[..]]);
        assert!(split_der(&[]).is_err());
        assert!(split_der(&[0x30, 0x05, 1]).is_err(), "a truncated certificate");
        assert!(split_der(&[0x31, 0x00]).is_err(), "not a SEQUENCE");
        assert!(split_der(&[0x30, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err(), "non-minimal length");
        assert!(split_der(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err(), "five length octets");
        assert!(split_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err(), "a length past the end");
    }
}
