//! A hostile host, for tests (`twi run --tamper`). The loader relays everything between the
//! guest, its firmware and the issuer, so it can alter any of it; these decorators do, around
//! the issuer's roles ([`TamperedRoles`]) and around the firmware ([`TamperedFirmware`]),
//! while the bridge between them stays the honest one. Each alteration is announced on stderr
//! (`twi: tamper: …`), and each must be caught: by the issuer (evidence, nonce) or by the
//! guest (firmware answer, certificate table, key release).

use twi_issuer::keystore::Provisioned;
use twi_issuer::policy::Mechanism;
use twi_issuer::{CredentialRequestIn, EvidenceBundle};
use twi_proto::msg::{DoorbellKind, DoorbellRequest, DoorbellResponse, Initiate, Platform};
use twi_verifier::tdx::Collateral;

use super::firmware::{Endorsements, Firmware, FirmwareError};
use super::roles::{Challenge, Declined, Presented, Refusal, Released, Roles};
use crate::answers::Obtained;

/// A hostile-host behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip one byte of the evidence on its way to the issuer.
    EvidenceByte(usize),
    /// Give the guest a nonce the issuer never issued, and tell the issuer it was its own.
    Nonce,
    /// Flip one byte of the firmware's first answer (the PSP's sealed answer, or the TDREPORT)
    /// on its way to the guest.
    FirmwareAnswerByte(usize),
    /// Flip one byte of the certificate table the host hands the guest (extended guest
    /// request).
    CertificateTableByte(usize),
    /// Mechanism D: flip one byte of the Key Store's HPKE ciphertext on its way to the guest.
    ReleaseByte(usize),
    /// Launch an image built for another issuer without the loader's check, as a careless or
    /// hostile host would: the guest must refuse the credential itself.
    SkipAnchorCheck,
    /// Flip one byte of what a relayed connection's target sends the workload (counted over
    /// the connection): its TLS must fail ([`super::TamperedConduit`]).
    RelayByte(usize),
}

/// What `--tamper` takes, for the parse error.
const FORMS: &str = "expected `nonce`, `evidence-byte:OFFSET`, `firmware-answer-byte:OFFSET`, \
`certificate-table-byte:OFFSET`, `release-byte:OFFSET`, `relay-byte:OFFSET` or `skip-anchor-check`";

impl std::str::FromStr for Tamper {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nonce" => return Ok(Self::Nonce),
            "skip-anchor-check" => return Ok(Self::SkipAnchorCheck),
            _ => {}
        }
        let (name, at) = s.split_once(':').ok_or_else(|| FORMS.to_string())?;
        let offset = match at.strip_prefix("0x") {
            Some(hex) => usize::from_str_radix(hex, 16).map_err(|e| format!("{at:?}: {e}"))?,
            None => at.parse().map_err(|e| format!("{at:?}: {e}"))?,
        };
        match name {
            "evidence-byte" => Ok(Self::EvidenceByte(offset)),
            "firmware-answer-byte" => Ok(Self::FirmwareAnswerByte(offset)),
            "certificate-table-byte" => Ok(Self::CertificateTableByte(offset)),
            "release-byte" => Ok(Self::ReleaseByte(offset)),
            "relay-byte" => Ok(Self::RelayByte(offset)),
            _ => Err(FORMS.into()),
        }
    }
}

pub(super) fn announce(what: std::fmt::Arguments<'_>) {
    eprintln!("twi: tamper: {what}");
}

/// Flips the low bit of `bytes[offset]`, if there is such a byte.
fn flip(bytes: &mut [u8], offset: usize) -> bool {
    bytes.get_mut(offset).map(|b| *b ^= 0x01).is_some()
}

/// The issuer's roles behind a hostile host.
#[derive(Debug)]
pub struct TamperedRoles<R> {
    inner: R,
    tamper: Tamper,
    /// [`Tamper::Nonce`]: the nonce the issuer really issued (the guest got another).
    issued_nonce: Option<Vec<u8>>,
}

impl<R: Roles> TamperedRoles<R> {
    pub fn new(inner: R, tamper: Tamper) -> Self {
        Self { inner, tamper, issued_nonce: None }
    }

    /// Calls `call` with the evidence as this host forwards it.
    fn forward<T>(&mut self, e: Presented<'_>, call: impl FnOnce(&mut R, Presented<'_>) -> T) -> T {
        let mut evidence = e.bundle.evidence.to_vec();
        if let Tamper::EvidenceByte(offset) = self.tamper
            && flip(&mut evidence, offset)
        {
            announce(format_args!("flipped evidence byte {offset:#x} on its way to the issuer"));
        }
        let nonce = self.issued_nonce.as_deref().unwrap_or(e.bundle.nonce);
        let bundle = EvidenceBundle { evidence: &evidence, nonce, ..e.bundle };
        call(&mut self.inner, Presented { bundle, events: e.events })
    }
}

impl<R: Roles> Roles for TamperedRoles<R> {
    fn initiate(&mut self, platform: Platform, measurement: &[u8], initiate: &Initiate) -> Result<Challenge, Declined> {
        let mut challenge = self.inner.initiate(platform, measurement, initiate)?;
        if self.tamper == Tamper::Nonce {
            let mut other = vec![0u8; challenge.nonce.len()];
            getrandom::fill(&mut other).map_err(|e| Refusal(format!("the operating system's RNG failed: {e}")))?;
            announce(format_args!("sending the guest a nonce the issuer never issued"));
            self.issued_nonce = Some(std::mem::replace(&mut challenge.nonce, other));
        }
        Ok(challenge)
    }
    fn issue(&mut self, e: Presented<'_>, mechanism: Option<Mechanism>) -> Result<Obtained, Refusal> {
        self.forward(e, |inner, e| inner.issue(e, mechanism))
    }
    fn renew(&mut self, e: Presented<'_>, previous: &str) -> Result<Obtained, Refusal> {
        self.forward(e, |inner, e| inner.renew(e, previous))
    }
    fn attestation_result(&mut self, e: Presented<'_>) -> Result<(String, String), Refusal> {
        self.forward(e, |inner, e| inner.attestation_result(e))
    }
    fn redeem(&mut self, request: &CredentialRequestIn<'_>) -> Result<Obtained, Refusal> {
        self.inner.redeem(request)
    }
    fn provision(&mut self, platform: Platform, measurement: &[u8]) -> Result<(Provisioned, bool), Refusal> {
        self.inner.provision(platform, measurement)
    }
    fn release(&mut self, e: Presented<'_>) -> Result<Released, Refusal> {
        let mut released = self.forward(e, |inner, e| inner.release(e))?;
        if let Tamper::ReleaseByte(offset) = self.tamper
            && flip(&mut released.release.ciphertext, offset)
        {
            announce(format_args!("flipped byte {offset:#x} of the released ciphertext"));
        }
        Ok(released)
    }
    fn accept_tdx_collateral(&mut self, collateral: Collateral) -> Result<(), Refusal> {
        self.inner.accept_tdx_collateral(collateral)
    }
    fn prepare(&mut self, platform: Platform, endorsements: &[Vec<u8>]) {
        self.inner.prepare(platform, endorsements)
    }
}

/// The guest's firmware behind a hostile host.
#[derive(Debug)]
pub struct TamperedFirmware<F> {
    inner: F,
    tamper: Tamper,
    /// [`Tamper::FirmwareAnswerByte`] alters the first answer only.
    answer_altered: bool,
}

impl<F: Firmware> TamperedFirmware<F> {
    pub fn new(inner: F, tamper: Tamper) -> Self {
        Self { inner, tamper, answer_altered: false }
    }
}

impl<F: Firmware> Firmware for TamperedFirmware<F> {
    fn platform(&self) -> Platform {
        self.inner.platform()
    }
    fn option(&self) -> &'static str {
        self.inner.option()
    }
    fn doorbell(&mut self, request: &DoorbellRequest) -> Result<DoorbellResponse, FirmwareError> {
        let mut answer = self.inner.doorbell(request)?;
        let what = match answer.kind {
            DoorbellKind::SnpGuestRequest | DoorbellKind::SnpExtGuestRequest => Some("the PSP's sealed answer"),
            DoorbellKind::TdxReport => Some("the TDREPORT"),
            DoorbellKind::TdxGetQuote | DoorbellKind::TdxRtmrExtend | DoorbellKind::SvsmCall => None,
        };
        if let (Tamper::FirmwareAnswerByte(offset), Some(what)) = (self.tamper, what)
            && !self.answer_altered
            && flip(&mut answer.response, offset)
        {
            self.answer_altered = true;
            announce(format_args!("flipped byte {offset:#x} of {what}"));
        }
        if let (Tamper::CertificateTableByte(offset), Some(table)) = (self.tamper, answer.certificates.as_mut())
            && flip(table, offset)
        {
            announce(format_args!("flipped byte {offset:#x} of the certificate table"));
        }
        Ok(answer)
    }
    fn endorsements(&mut self, report: &[u8]) -> Result<Endorsements, FirmwareError> {
        self.inner.endorsements(report)
    }
    fn collateral(&mut self, quote: &[u8]) -> Result<Option<Collateral>, FirmwareError> {
        self.inner.collateral(quote)
    }
    /// The table as the firmware holds it: a tampered delivery is another table, which the
    /// Verifier checks anew (and refuses).
    fn endorsements_ahead(&mut self) -> Option<Vec<Vec<u8>>> {
        self.inner.endorsements_ahead()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_names_them_when_wrong() {
        assert_eq!("nonce".parse(), Ok(Tamper::Nonce));
        assert_eq!("skip-anchor-check".parse(), Ok(Tamper::SkipAnchorCheck));
        assert_eq!("evidence-byte:0x90".parse(), Ok(Tamper::EvidenceByte(0x90)));
        assert_eq!("firmware-answer-byte:112".parse(), Ok(Tamper::FirmwareAnswerByte(112)));
        assert_eq!("certificate-table-byte:0xA0".parse(), Ok(Tamper::CertificateTableByte(0xA0)));
        assert_eq!("release-byte:5".parse(), Ok(Tamper::ReleaseByte(5)));
        for bad in ["", "evidence-byte", "evidence-byte:x", "other:1", "noncе"] {
            assert!(bad.parse::<Tamper>().is_err(), "{bad:?}");
        }
        assert!("other:1".parse::<Tamper>().unwrap_err().contains("skip-anchor-check"));
    }

    #[test]
    fn a_flip_outside_the_bytes_changes_nothing() {
        let mut bytes = [0u8; 4];
        assert!(flip(&mut bytes, 3));
        assert_eq!(bytes, [0, 0, 0, 1]);
        assert!(!flip(&mut bytes, 4));
        assert_eq!(bytes, [0, 0, 0, 1]);
    }
}
