//! Mechanism B (draft-novak-twi-attestation), the Credential Authority's half: the workload
//! brings the Verifier's attestation result (an EAR JWT, draft-ietf-rats-ear) and a proof of
//! possession of the key it binds. The CA issues only if the result verifies under the
//! Verifier's *public* key (the CA holds no Verifier secret), has not expired and is at most
//! [`MAX_ATTESTATION_RESULT_AGE`] old, affirms the launch, binds exactly the requested key,
//! and the proof — the key's signature over `"TWI-CREDREQ-v1\0" ‖ eat_nonce ‖ key ‖
//! SHA-256(ear)` ([`twi_proto::msg::credential_request_signed_bytes`]) — verifies. Each result
//! is redeemed once, against the launch the Verifier admitted when it signed it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use p384::ecdsa::VerifyingKey;
use p384::ecdsa::signature::Verifier as _;
use sha2::{Digest, Sha256};

use twi_proto::msg::Platform;

use crate::ear::{self, Ear};
use crate::policy::Admission;
use crate::verifier::Appraisal;

/// How old (by its `iat`) an attestation result may be when the Credential Authority redeems
/// it; its `exp` must also not have passed.
pub const MAX_ATTESTATION_RESULT_AGE: Duration = Duration::from_secs(300);
/// How far in the future an attestation result's `iat` may lie (clock skew).
const MAX_SKEW_SECS: u64 = 60;

/// Mechanism B, what the workload sends the Credential Authority.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRequestIn<'a> {
    /// The EAR JWT as the Verifier returned it.
    pub ear: &'a str,
    /// SEC1 P-384 point the request is for.
    pub public_key: &'a [u8],
    /// DER ECDSA P-384/SHA-384 signature by that key over
    /// [`twi_proto::msg::credential_request_signed_bytes`].
    pub proof: &'a [u8],
}

/// Why the Credential Authority refused a credential request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestRefused(pub String);

fn refuse(why: impl Into<String>) -> RequestRefused {
    RequestRefused(why.into())
}

/// What the Verifier concluded for an attestation result it signed, handed to the CA in
/// process (keyed by the result's SHA-256, redeemed once).
#[derive(Debug, Clone)]
pub(crate) struct VerifiedLaunch {
    pub admission: Admission,
    pub appraisal: Appraisal,
    pub nonce: Vec<u8>,
}

/// At most this many attestation results wait to be redeemed (about 7 KB each): past it the
/// oldest is forgotten, so a flood of mechanism-B appraisals cannot grow memory without bound.
pub(crate) const MAX_PENDING: usize = 4096;

/// The attestation results the CA expects to redeem, each until it is too old to be accepted
/// ([`MAX_ATTESTATION_RESULT_AGE`]), at most [`MAX_PENDING`].
#[derive(Debug)]
pub(crate) struct Pending(Expiring<VerifiedLaunch>);

impl Default for Pending {
    fn default() -> Self {
        Self(Expiring::new(MAX_PENDING, MAX_ATTESTATION_RESULT_AGE))
    }
}

impl Pending {
    /// The Verifier signed `ear_jwt` for `launch`: the CA will redeem it once.
    pub(crate) fn expect(&mut self, ear_jwt: &str, launch: VerifiedLaunch) {
        self.0.insert(Sha256::digest(ear_jwt.as_bytes()).into(), launch, Instant::now());
    }

    /// The launch the `checked` request's attestation result stands for, once.
    pub(crate) fn take(&mut self, checked: &Checked) -> Result<VerifiedLaunch, RequestRefused> {
        let launch = self.0.take(&checked.ear_sha256, Instant::now()).ok_or_else(not_pending)?;
        checked.confirm(launch)
    }
}

/// The refusal of a result no Verifier of this issuer waits to see redeemed.
pub(crate) fn not_pending() -> RequestRefused {
    refuse("the attestation result was already redeemed (replay), expired, or this Verifier did not issue it")
}

/// At most this many attestation results are remembered as certified for a Key Store's release
/// (32 bytes each, for [`CERTIFIED_FOR`]): past it the CA asks the Key Store to
/// come back later rather than forget one (which would let it be presented again).
pub(crate) const MAX_CERTIFIED: usize = 65_536;

/// How long a result is remembered as certified: as long as a CA could accept it (its `iat` at
/// most [`MAX_SKEW_SECS`] ahead of the CA's clock, then [`MAX_ATTESTATION_RESULT_AGE`]).
pub(crate) const CERTIFIED_FOR: Duration =
    MAX_ATTESTATION_RESULT_AGE.saturating_add(Duration::from_secs(MAX_SKEW_SECS));

/// The attestation results this CA certified a Key Store's release on (mechanism D with the
/// Key Store in another process), each until it is too old to be presented again: one
/// certificate per result. (With replicas, their database keeps them: `waiting.rs`.)
#[derive(Debug)]
pub(crate) struct CertifiedResults(Expiring<()>);

impl Default for CertifiedResults {
    fn default() -> Self {
        Self(Expiring::new(MAX_CERTIFIED, CERTIFIED_FOR))
    }
}

/// Whether a result could be marked certified.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Marked {
    /// Now, for the first time.
    First,
    /// It already was: a second release on it.
    Again,
    /// [`MAX_CERTIFIED`] current results are remembered: none can be added now.
    Full,
}

impl CertifiedResults {
    /// Marks the `checked` result as certified (see [`Marked`]).
    pub(crate) fn mark(&mut self, checked: &Checked) -> Marked {
        self.0.insert_new(checked.ear_sha256, (), Instant::now())
    }

    /// Forgets the `checked` result (no certificate was issued on it).
    pub(crate) fn unmark(&mut self, checked: &Checked) {
        self.0.entries.remove(&checked.ear_sha256);
    }
}

/// The refusal of a second release certificate on one attestation result.
pub(crate) fn certified_already() -> RequestRefused {
    refuse("the Credential Authority already certified a release on this attestation result (replay)")
}

/// A map of at most `max` entries, each kept for `ttl`; when full, the oldest makes room.
#[derive(Debug)]
struct Expiring<V> {
    entries: HashMap<[u8; 32], (V, Instant)>,
    max: usize,
    ttl: Duration,
}

impl<V> Expiring<V> {
    fn new(max: usize, ttl: Duration) -> Self {
        Self { entries: HashMap::new(), max, ttl }
    }

    fn insert(&mut self, key: [u8; 32], value: V, now: Instant) {
        let ttl = self.ttl;
        self.entries.retain(|_, (_, since)| now.saturating_duration_since(*since) <= ttl);
        if self.entries.len() >= self.max {
            let oldest = self.entries.iter().min_by_key(|(_, (_, since))| *since).map(|(key, _)| *key);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (value, now));
    }

    /// Inserts `value` under `key` unless an entry that has not expired holds it already;
    /// when full of such entries, nothing is evicted.
    fn insert_new(&mut self, key: [u8; 32], value: V, now: Instant) -> Marked {
        let ttl = self.ttl;
        self.entries.retain(|_, (_, since)| now.saturating_duration_since(*since) <= ttl);
        if self.entries.contains_key(&key) {
            return Marked::Again;
        }
        if self.entries.len() >= self.max {
            return Marked::Full;
        }
        self.entries.insert(key, (value, now));
        Marked::First
    }

    fn take(&mut self, key: &[u8; 32], now: Instant) -> Option<V> {
        let (value, since) = self.entries.remove(key)?;
        (now.saturating_duration_since(since) <= self.ttl).then_some(value)
    }
}

#[cfg(test)]
mod expiring_tests {
    use super::*;

    /// Bounded: the oldest entry makes room; an expired entry is not taken, and is purged.
    #[test]
    fn pending_results_are_bounded_and_expire() {
        let (start, ttl) = (Instant::now(), Duration::from_secs(300));
        let mut map = Expiring::new(3, ttl);
        for i in 0..4u8 {
            map.insert([i; 32], i, start + Duration::from_secs(u64::from(i)));
        }
        assert_eq!(map.entries.len(), 3, "never more than the bound");
        assert_eq!(map.take(&[0; 32], start + Duration::from_secs(5)), None, "the oldest made room");
        assert_eq!(map.take(&[1; 32], start + Duration::from_secs(5)), Some(1));
        assert_eq!(map.take(&[2; 32], start + ttl + Duration::from_secs(3)), None, "expired");
        map.insert([9; 32], 9, start + ttl + Duration::from_secs(10));
        assert_eq!(map.entries.len(), 1, "expired entries are purged: {:?}", map.entries.keys().collect::<Vec<_>>());
        assert_eq!(MAX_PENDING, Pending::default().0.max);
    }

    /// A certified result is remembered until it expires; when full, none is forgotten early.
    #[test]
    fn certified_results_are_marked_once_and_never_evicted() {
        let (start, ttl) = (Instant::now(), Duration::from_secs(300));
        let mut map = Expiring::new(2, ttl);
        assert_eq!(map.insert_new([1; 32], (), start), Marked::First);
        assert_eq!(map.insert_new([1; 32], (), start + Duration::from_secs(1)), Marked::Again);
        assert_eq!(map.insert_new([2; 32], (), start), Marked::First);
        assert_eq!(map.insert_new([3; 32], (), start + Duration::from_secs(2)), Marked::Full, "nothing evicted");
        assert_eq!(map.insert_new([1; 32], (), start + Duration::from_secs(3)), Marked::Again);
        assert_eq!(map.insert_new([3; 32], (), start + ttl + Duration::from_secs(1)), Marked::First, "expired ones go");
        assert_eq!(MAX_CERTIFIED, CertifiedResults::default().0.max);
    }
}

/// A request whose attestation result and proof hold: the result's digest and nonce.
#[derive(Debug)]
pub(crate) struct Checked {
    ear_sha256: [u8; 32],
    nonce: Vec<u8>,
    /// The result's hardware claim is the simulated TEE's (unrecognised hardware).
    simulated_hardware: bool,
}

impl Checked {
    /// The SHA-256 of the request's attestation result (what it waits under).
    pub(crate) fn ear_sha256(&self) -> &[u8; 32] {
        &self.ear_sha256
    }

    /// `launch`, once it is the one the result stands for: appraised on evidence fresh for the
    /// result's nonce, and simulated if the result says the hardware is.
    pub(crate) fn confirm(&self, launch: VerifiedLaunch) -> Result<VerifiedLaunch, RequestRefused> {
        if launch.nonce != self.nonce {
            return Err(refuse("the attestation result's nonce is not the one its Evidence was fresh for"));
        }
        let simulated = matches!(launch.appraisal.platform, Platform::SimSnp | Platform::SimTdx);
        if self.simulated_hardware && !simulated {
            return Err(refuse("the attestation result contraindicates the hardware of a launch on real hardware"));
        }
        Ok(launch)
    }
}

/// Checks `request` (see the module docs) under the Verifier's key `verifier`, all but
/// whether the result is still to be redeemed ([`Pending::take`]).
pub(crate) fn check(
    request: &CredentialRequestIn<'_>,
    verifier: &VerifyingKey,
    now: SystemTime,
) -> Result<Checked, RequestRefused> {
    let checked = check_result(request.ear, request.public_key, verifier, now)?;
    check_proof(request, &checked.nonce, &checked.ear_sha256)?;
    Ok(checked)
}

/// Checks the attestation result `ear_jwt` under the Verifier's key `verifier`: it is current,
/// affirms the launch and binds exactly `public_key` — all of [`check`] but the proof of
/// possession, which a Credential Authority that asked the Verifier itself (mechanisms C and D
/// with the roles in separate processes) does not need: the evidence binds the key.
pub(crate) fn check_result(
    ear_jwt: &str,
    public_key: &[u8],
    verifier: &VerifyingKey,
    now: SystemTime,
) -> Result<Checked, RequestRefused> {
    let ear = current_result(ear_jwt, verifier, now)?;
    let submod = ear.submods.get("twi").ok_or_else(|| refuse("the attestation result has no `twi` submod"))?;
    let simulated_hardware = affirms(submod)?;
    let requested = p384::PublicKey::from_sec1_bytes(public_key)
        .map_err(|_| refuse("the requested public key is not a valid P-384 point"))?;
    let bound = submod
        .bound_key()
        .map_err(|e| refuse(e.to_string()))?
        .ok_or_else(|| refuse("the attestation result binds no key"))?;
    if bound != requested {
        return Err(refuse("the attestation result binds another key than the one requested"));
    }
    let nonce = ear.nonce.ok_or_else(|| refuse("the attestation result carries no nonce"))?;
    let ear_sha256: [u8; 32] = Sha256::digest(ear_jwt.as_bytes()).into();
    Ok(Checked { ear_sha256, nonce, simulated_hardware })
}

/// Whether the appraisal affirms the launch: its status is affirming, or its one
/// contraindication is the simulated TEE's unrecognised hardware (then `true`: the launch it
/// stands for must be a simulated one, which [`Pending::take`] checks, and its credential says
/// so in a critical extension).
fn affirms(submod: &ear::Appraisal) -> Result<bool, RequestRefused> {
    let status = submod.status();
    if status == ear::Status::Affirming {
        return Ok(false);
    }
    let hardware = submod.trust_vector.hardware;
    let without_hardware =
        ear::Appraisal { trust_vector: ear::TrustVector { hardware: None, ..submod.trust_vector }, ..submod.clone() };
    if hardware == Some(ear::claim::UNRECOGNIZED_HARDWARE) && without_hardware.status() == ear::Status::Affirming {
        return Ok(true);
    }
    Err(refuse(format!("the attestation result's status is {}, not affirming", status.name())))
}

/// The attestation result, verified under the Verifier's key, with an expiry and issued
/// within [`MAX_ATTESTATION_RESULT_AGE`] of `now`.
fn current_result(token: &str, verifier: &VerifyingKey, now: SystemTime) -> Result<Ear, RequestRefused> {
    let ear = Ear::verify_jwt(token, verifier, now)
        .map_err(|e| refuse(format!("the attestation result is not the Verifier's: {e}")))?;
    let now_s = crate::jose::unix_seconds(now);
    if ear.exp.is_none() {
        return Err(refuse("the attestation result has no expiry"));
    }
    if ear.iat > now_s + MAX_SKEW_SECS || now_s.saturating_sub(ear.iat) > MAX_ATTESTATION_RESULT_AGE.as_secs() {
        return Err(refuse(format!(
            "the attestation result was issued at {} (now {now_s}): older than {} s or in the future",
            ear.iat,
            MAX_ATTESTATION_RESULT_AGE.as_secs()
        )));
    }
    Ok(ear)
}

/// The proof of possession: the requested key's signature over the request's signed bytes.
fn check_proof(request: &CredentialRequestIn<'_>, nonce: &[u8], ear_digest: &[u8; 32]) -> Result<(), RequestRefused> {
    let key = p384::PublicKey::from_sec1_bytes(request.public_key)
        .map_err(|_| refuse("the requested public key is not a valid P-384 point"))?;
    let signed = twi_proto::msg::credential_request_signed_bytes(nonce, request.public_key, ear_digest);
    let proof = p384::ecdsa::Signature::from_der(request.proof)
        .map_err(|_| refuse("the proof of possession is not a DER ECDSA signature"))?;
    VerifyingKey::from(&key)
        .verify(&signed, &proof)
        .map_err(|_| refuse("the proof of possession does not verify under the requested key"))
}
