//! Freshness of Evidence (TWI reference architecture §5.4.3): AF_L0 none, AF_L1 epochs,
//! AF_L2 verifier nonces.
//!
//! Whatever the level, the Evidence binds a nonce and the Credential Key into REPORTDATA
//! (`twi_attester::binding`), so a man in the middle cannot swap the key. The levels differ in
//! what that nonce must be:
//!
//! - **AF_L0**: anything the guest chose (16..64 bytes); no replay protection.
//! - **AF_L1**: the 32-byte [`SignedEpoch::id`] of an epoch the issuer published and that is
//!   current (or just ended, within a grace period). An epoch is `{number, not_before,
//!   not_after, seed}` signed by the issuer's *epoch key* (ECDSA P-384); the 32-byte random
//!   seed makes the id of a future epoch unguessable, so Evidence cannot be made in advance.
//!   Many workloads can share one epoch: no round trip per attestation, replay bounded by the
//!   epoch's length.
//! - **AF_L2**: a 32-byte nonce from [`NonceStore::issue`], accepted once, before it expires.
//!
//! Time comes from an injectable [`Clock`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod pg;
pub use pg::SharedFreshness;

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to (tests, replays of recorded sessions).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<SystemTime>>);

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += by;
        }
    }

    pub fn set(&self, to: SystemTime) {
        if let Ok(mut t) = self.0.lock() {
            *t = to;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|t| *t).unwrap_or(UNIX_EPOCH)
    }
}

/// The freshness level an appraisal policy asks of a workload's Evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FreshnessLevel {
    /// No replay protection.
    #[serde(rename = "AF_L0")]
    None,
    /// A current issuer-signed epoch.
    #[serde(rename = "AF_L1")]
    Epoch,
    /// A single-use verifier nonce.
    #[serde(rename = "AF_L2")]
    Nonce,
}

impl FreshnessLevel {
    pub fn name(self) -> &'static str {
        match self {
            FreshnessLevel::None => "AF_L0",
            FreshnessLevel::Epoch => "AF_L1",
            FreshnessLevel::Nonce => "AF_L2",
        }
    }
}

impl fmt::Display for FreshnessLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why Evidence was not fresh enough. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreshnessError {
    #[error("the nonce was already used (replay): ask the issuer for a new nonce")]
    Replayed,
    #[error("the nonce was issued for {issued}, not {used}: Initiate again for this workload and target")]
    OtherScope { issued: String, used: String },
    #[error("the nonce expired {0} s ago: ask the issuer for a new nonce and attest again promptly")]
    Expired(u64),
    #[error("the nonce was not issued by this issuer (or was issued before a restart): ask for a new one")]
    UnknownNonce,
    #[error("the nonce is not the id of a current epoch: fetch the current epoch and attest again")]
    UnknownEpoch,
    #[error("epoch {number} ended at {not_after} (now {now}): fetch the current epoch and attest again")]
    EpochEnded { number: u64, not_after: u64, now: u64 },
    #[error("epoch {number} starts at {not_before} (now {now})")]
    EpochNotStarted { number: u64, not_before: u64, now: u64 },
    #[error("the epoch's signature does not verify under the issuer's epoch key")]
    BadEpochSignature,
    #[error("a signed epoch is {EPOCH_LEN} bytes, not {0}")]
    EpochLength(usize),
    #[error("this issuer publishes no epochs (no epoch key configured), so AF_L1 evidence cannot be checked")]
    NoEpochs,
    #[error("{0} nonces are outstanding; refusing to issue more until some are used or expire")]
    TooManyOutstanding(usize),
    #[error(
        "the workload requires {required}, but the evidence binds {found}: attest with the freshness the policy asks for"
    )]
    WeakerThanRequired { required: FreshnessLevel, found: &'static str },
    #[error("the operating system's random number generator failed")]
    Rng,
    #[error("the epoch key failed to sign: {0}")]
    Signer(String),
    #[error("the replicas' nonce and epoch store is unavailable ({0}); try again shortly")]
    Store(String),
}

const EPOCH_LABEL: &[u8; 16] = b"TWI-EPOCH-v1\0\0\0\0";
/// Bytes of a signed epoch: label (16) ‖ number ‖ not_before ‖ not_after (u64 BE each) ‖
/// seed (32) ‖ signature r ‖ s (96).
pub const EPOCH_LEN: usize = 16 + 24 + 32 + 96;
const TBS_LEN: usize = 16 + 24 + 32;

/// An issuer-signed epoch (AF_L1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEpoch {
    pub number: u64,
    /// Seconds since the Unix epoch.
    pub not_before: u64,
    pub not_after: u64,
    pub seed: [u8; 32],
    pub signature: [u8; 96],
}

impl SignedEpoch {
    fn tbs(number: u64, not_before: u64, not_after: u64, seed: &[u8; 32]) -> [u8; TBS_LEN] {
        let mut out = [0u8; TBS_LEN];
        out[..16].copy_from_slice(EPOCH_LABEL);
        out[16..24].copy_from_slice(&number.to_be_bytes());
        out[24..32].copy_from_slice(&not_before.to_be_bytes());
        out[32..40].copy_from_slice(&not_after.to_be_bytes());
        out[40..72].copy_from_slice(seed);
        out
    }

    /// The signed epoch's id: SHA-256 over its signed bytes. This is the nonce Evidence binds
    /// into REPORTDATA for AF_L1.
    pub fn id(&self) -> [u8; 32] {
        Sha256::digest(Self::tbs(self.number, self.not_before, self.not_after, &self.seed)).into()
    }

    /// The published form ([`EPOCH_LEN`] bytes).
    pub fn to_bytes(&self) -> [u8; EPOCH_LEN] {
        let mut out = [0u8; EPOCH_LEN];
        out[..TBS_LEN].copy_from_slice(&Self::tbs(self.number, self.not_before, self.not_after, &self.seed));
        out[TBS_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Parses the published form (no signature check: see [`SignedEpoch::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FreshnessError> {
        if bytes.len() != EPOCH_LEN || &bytes[..16] != EPOCH_LABEL {
            return Err(FreshnessError::EpochLength(bytes.len()));
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[40..72]);
        let mut signature = [0u8; 96];
        signature.copy_from_slice(&bytes[TBS_LEN..]);
        Ok(Self { number: u64_at(16), not_before: u64_at(24), not_after: u64_at(32), seed, signature })
    }

    /// Checks the signature under the issuer's epoch key and that `now` is inside the window.
    pub fn verify(&self, key: &VerifyingKey, now: SystemTime) -> Result<(), FreshnessError> {
        let sig = Signature::from_slice(&self.signature).map_err(|_| FreshnessError::BadEpochSignature)?;
        key.verify(&Self::tbs(self.number, self.not_before, self.not_after, &self.seed), &sig)
            .map_err(|_| FreshnessError::BadEpochSignature)?;
        self.check_window(secs(now), 0)
    }

    fn check_window(&self, now: u64, grace: u64) -> Result<(), FreshnessError> {
        if now < self.not_before {
            return Err(FreshnessError::EpochNotStarted { number: self.number, not_before: self.not_before, now });
        }
        if now >= self.not_after.saturating_add(grace) {
            return Err(FreshnessError::EpochEnded { number: self.number, not_after: self.not_after, now });
        }
        Ok(())
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The issuer's epoch publisher (AF_L1). Epoch `n` covers `[n·period, (n+1)·period)`, so
/// numbers grow with time across restarts without any state; a restart draws a new seed, so
/// ids handed out before it stop being accepted (workloads fetch the epoch again).
pub struct EpochPublisher {
    key: SigningKey,
    period: Duration,
    grace: Duration,
    clock: Arc<dyn Clock>,
    current: Option<SignedEpoch>,
    previous: Option<SignedEpoch>,
    /// Replicas publish one epoch per period through their shared database.
    shared: Option<SharedFreshness>,
}

impl fmt::Debug for EpochPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EpochPublisher")
            .field("period", &self.period)
            .field("grace", &self.grace)
            .field("current", &self.current.as_ref().map(|e| e.number))
            .finish_non_exhaustive()
    }
}

impl EpochPublisher {
    /// Epochs of `period` (at least one second), accepted until `grace` after they end.
    pub fn new(key: SigningKey, period: Duration, grace: Duration, clock: Arc<dyn Clock>) -> Self {
        let period = period.max(Duration::from_secs(1));
        Self { key, period, grace, clock, current: None, previous: None, shared: None }
    }

    /// Publishes the epochs every replica sharing `shared` publishes.
    pub fn shared(mut self, shared: SharedFreshness) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The key relying parties and guests verify epochs with.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The current epoch, signing a new one when the period has turned.
    pub fn current(&mut self) -> Result<SignedEpoch, FreshnessError> {
        let now = secs(self.clock.now());
        let period = self.period.as_secs();
        let number = now / period;
        if let Some(epoch) = &self.current
            && epoch.number == number
        {
            return Ok(epoch.clone());
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| FreshnessError::Rng)?;
        let (not_before, not_after) = (number * period, number * period + period);
        let tbs = SignedEpoch::tbs(number, not_before, not_after, &seed);
        let sig: Signature = self.key.try_sign(&tbs).map_err(|e| FreshnessError::Signer(e.to_string()))?;
        crate::metrics::signed();
        let mut signature = [0u8; 96];
        signature.copy_from_slice(&sig.to_bytes());
        let mut epoch = SignedEpoch { number, not_before, not_after, seed, signature };
        // Only the epoch right before stays acceptable (within the grace period).
        self.previous = self.current.take().filter(|prev| prev.number + 1 == number);
        if let Some(shared) = &self.shared {
            epoch = shared.publish(&epoch, self.key.verifying_key())?;
            if self.previous.is_none() && number > 0 {
                self.previous = shared.epoch(number - 1, self.key.verifying_key())?;
            }
        }
        self.current = Some(epoch.clone());
        Ok(epoch)
    }

    /// Accepts `nonce` if it is the id of the current epoch, or of the previous one within the
    /// grace period. Returns the epoch it names.
    pub fn check(&mut self, nonce: &[u8]) -> Result<SignedEpoch, FreshnessError> {
        // Rotate first, so an epoch that has just ended is judged as the previous one.
        self.current()?;
        let now = secs(self.clock.now());
        let grace = self.grace.as_secs();
        for epoch in [&self.current, &self.previous].into_iter().flatten() {
            if epoch.id().as_slice() == nonce {
                epoch.check_window(now, grace)?;
                return Ok(epoch.clone());
            }
        }
        Err(FreshnessError::UnknownEpoch)
    }
}

/// Verifier nonces (AF_L2): random 32 bytes, each accepted once before it expires, and only
/// for the scope it was issued for (the workload and target of the Initiate, see
/// [`NonceScope`]). A redeemed nonce is remembered until its expiry, so a replay is named as
/// such.
#[derive(Debug)]
pub struct NonceStore {
    ttl: Duration,
    max_outstanding: usize,
    clock: Arc<dyn Clock>,
    outstanding: HashMap<[u8; 32], (SystemTime, NonceScope)>,
    redeemed: HashMap<[u8; 32], SystemTime>,
    /// Replicas keep their nonces in their shared database instead of the maps above.
    shared: Option<SharedFreshness>,
}

/// What a nonce was issued for: the target the workload Initiated for and, when the policy
/// knew the launch at Initiate, the workload (`None`: the evidence decides which).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceScope {
    pub workload: Option<String>,
    pub target: String,
}

impl NonceScope {
    /// A nonce of this scope may serve `workload`'s acquisition for `target`.
    pub fn admits(&self, workload: &str, target: &str) -> Result<(), FreshnessError> {
        if self.target == target && self.workload.as_deref().is_none_or(|w| w == workload) {
            return Ok(());
        }
        let issued = format!("workload `{}` and target `{}`", self.workload.as_deref().unwrap_or("(any)"), self.target);
        Err(FreshnessError::OtherScope { issued, used: format!("workload `{workload}` and target `{target}`") })
    }
}

/// The length of a verifier nonce.
pub const NONCE_LEN: usize = 32;

impl NonceStore {
    /// Nonces live `ttl`; at most `max_outstanding` unredeemed at once (a bound on memory
    /// that a flood of challenges cannot exceed).
    pub fn new(ttl: Duration, max_outstanding: usize, clock: Arc<dyn Clock>) -> Self {
        Self { ttl, max_outstanding, clock, outstanding: HashMap::new(), redeemed: HashMap::new(), shared: None }
    }

    /// Keeps the nonces in `shared`, where every replica issues and redeems them.
    pub fn shared(mut self, shared: SharedFreshness) -> Self {
        self.shared = Some(shared);
        self
    }

    /// A fresh nonce for `scope`.
    pub fn issue(&mut self, scope: NonceScope) -> Result<[u8; NONCE_LEN], FreshnessError> {
        if let Some(shared) = &self.shared {
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::fill(&mut nonce).map_err(|_| FreshnessError::Rng)?;
            let now = self.clock.now();
            shared.issue(&nonce, &scope, now + self.ttl, self.max_outstanding, now)?;
            return Ok(nonce);
        }
        self.purge();
        if self.outstanding.len() >= self.max_outstanding {
            return Err(FreshnessError::TooManyOutstanding(self.outstanding.len()));
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| FreshnessError::Rng)?;
        self.outstanding.insert(nonce, (self.clock.now() + self.ttl, scope));
        Ok(nonce)
    }

    /// Accepts `nonce` once; returns the scope it was issued for. Whatever the outcome, it
    /// cannot be used again.
    pub fn redeem(&mut self, nonce: &[u8]) -> Result<NonceScope, FreshnessError> {
        let now = self.clock.now();
        if let Some(shared) = &self.shared {
            if nonce.len() != NONCE_LEN {
                return Err(FreshnessError::UnknownNonce);
            }
            return shared.redeem(nonce, now);
        }
        let Ok(key) = <[u8; NONCE_LEN]>::try_from(nonce) else {
            return Err(FreshnessError::UnknownNonce);
        };
        if let Some((expires, scope)) = self.outstanding.remove(&key) {
            if now >= expires {
                let ago = now.duration_since(expires).map(|d| d.as_secs()).unwrap_or(0);
                return Err(FreshnessError::Expired(ago));
            }
            self.redeemed.insert(key, expires);
            return Ok(scope);
        }
        match self.redeemed.get(&key) {
            Some(_) => Err(FreshnessError::Replayed),
            None => Err(FreshnessError::UnknownNonce),
        }
    }

    /// Unredeemed nonces (of this process; replicas sharing a database count theirs there).
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn purge(&mut self) {
        let now = self.clock.now();
        self.outstanding.retain(|_, (expires, _)| *expires > now);
        // A redeemed nonce past its expiry would be refused as expired anyway.
        self.redeemed.retain(|_, expires| *expires > now);
    }
}

/// The freshness check for each level, in one place.
#[derive(Debug)]
pub struct Freshness {
    pub epochs: Option<EpochPublisher>,
    pub nonces: NonceStore,
}

/// What made Evidence fresh, for the attestation result and the provenance record (and, with
/// the evidence, for a mechanism-B result waiting in the replicas' database).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fresh {
    /// AF_L0: nothing was checked.
    Unchecked,
    /// AF_L1: the Evidence binds this epoch.
    Epoch(u64),
    /// AF_L2: the Evidence binds a single-use nonce, issued for this scope.
    Nonce(NonceScope),
}

impl Fresh {
    fn describe(&self) -> &'static str {
        match self {
            Fresh::Unchecked => "no issuer nonce or epoch",
            Fresh::Epoch(_) => "an epoch (AF_L1)",
            Fresh::Nonce(_) => "a verifier nonce (AF_L2)",
        }
    }

    /// Whether this freshness meets `level` (a nonce also meets AF_L1).
    pub fn satisfies(&self, level: FreshnessLevel) -> bool {
        matches!(
            (level, self),
            (FreshnessLevel::None, _)
                | (FreshnessLevel::Epoch, Fresh::Epoch(_) | Fresh::Nonce(_))
                | (FreshnessLevel::Nonce, Fresh::Nonce(_))
        )
    }
}

impl Freshness {
    /// What `nonce` proves before the workload (and so its level) is known: a verifier nonce
    /// is redeemed (whatever happens next, it cannot be used again), else a current epoch is
    /// recognised, else nothing. The error (a replay, an expired nonce, an ended epoch) is kept
    /// for [`Freshness::require`].
    pub fn establish(&mut self, nonce: &[u8]) -> Result<Fresh, FreshnessError> {
        match self.nonces.redeem(nonce) {
            Ok(scope) => return Ok(Fresh::Nonce(scope)),
            Err(FreshnessError::UnknownNonce) => {}
            Err(e) => return Err(e),
        }
        match self.epochs.as_mut().map(|e| e.check(nonce)) {
            Some(Ok(epoch)) => Ok(Fresh::Epoch(epoch.number)),
            Some(Err(FreshnessError::UnknownEpoch)) | None => Ok(Fresh::Unchecked),
            Some(Err(e)) => Err(e),
        }
    }

    /// After admission: does what [`Freshness::establish`] found meet the workload's `level`?
    pub fn require(level: FreshnessLevel, established: &Result<Fresh, FreshnessError>) -> Result<(), FreshnessError> {
        match established {
            Ok(fresh) if fresh.satisfies(level) => Ok(()),
            Ok(fresh) => Err(FreshnessError::WeakerThanRequired { required: level, found: fresh.describe() }),
            Err(_) if level == FreshnessLevel::None => Ok(()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Checks `nonce` (the one the Evidence's REPORTDATA binds) at `level`.
    pub fn check(&mut self, level: FreshnessLevel, nonce: &[u8]) -> Result<Fresh, FreshnessError> {
        match level {
            FreshnessLevel::None => Ok(Fresh::Unchecked),
            FreshnessLevel::Epoch => {
                let epochs = self.epochs.as_mut().ok_or(FreshnessError::NoEpochs)?;
                Ok(Fresh::Epoch(epochs.check(nonce)?.number))
            }
            FreshnessLevel::Nonce => self.nonces.redeem(nonce).map(Fresh::Nonce),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p384::elliptic_curve::Generate;

    fn clock() -> (ManualClock, Arc<dyn Clock>) {
        let c = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        (c.clone(), Arc::new(c))
    }

    #[test]
    fn nonces_are_single_use_and_expire() {
        let (manual, clock) = clock();
        let mut store = NonceStore::new(Duration::from_secs(60), 3, clock);
        let a = store.issue(NonceScope::default()).unwrap();
        assert_eq!(store.redeem(&a), Ok(NonceScope::default()));
        assert_eq!(store.redeem(&a), Err(FreshnessError::Replayed));
        let b = store.issue(NonceScope::default()).unwrap();
        manual.advance(Duration::from_secs(61));
        assert_eq!(store.redeem(&b), Err(FreshnessError::Expired(1)));
        assert_eq!(store.redeem(&b), Err(FreshnessError::UnknownNonce), "an expired nonce is gone");
        assert_eq!(store.redeem(&[0u8; 32]), Err(FreshnessError::UnknownNonce));
        assert_eq!(store.redeem(b"short"), Err(FreshnessError::UnknownNonce));
        // The bound holds, and expiry frees room.
        for _ in 0..3 {
            store.issue(NonceScope::default()).unwrap();
        }
        assert_eq!(store.issue(NonceScope::default()), Err(FreshnessError::TooManyOutstanding(3)));
        manual.advance(Duration::from_secs(61));
        assert!(store.issue(NonceScope::default()).is_ok());
    }

    #[test]
    fn epochs_rotate_verify_and_age_out() {
        let (manual, clock) = clock();
        let key = SigningKey::try_generate().unwrap();
        let vk = *key.verifying_key();
        let mut publisher = EpochPublisher::new(key, Duration::from_secs(300), Duration::from_secs(30), clock.clone());
        let e1 = publisher.current().unwrap();
        assert_eq!(publisher.current().unwrap(), e1, "same period, same epoch");
        e1.verify(&vk, clock.now()).unwrap();
        let parsed = SignedEpoch::from_bytes(&e1.to_bytes()).unwrap();
        assert_eq!(parsed, e1);
        assert_eq!(publisher.check(&e1.id()).unwrap().number, e1.number);

        // Next period: the old epoch is still accepted within the grace period, then not.
        manual.set(UNIX_EPOCH + Duration::from_secs(e1.not_after + 10));
        let e2 = publisher.current().unwrap();
        assert_eq!(e2.number, e1.number + 1);
        assert_ne!(e2.id(), e1.id());
        assert_eq!(publisher.check(&e1.id()).unwrap().number, e1.number);
        manual.set(UNIX_EPOCH + Duration::from_secs(e1.not_after + 31));
        assert!(matches!(publisher.check(&e1.id()), Err(FreshnessError::EpochEnded { .. })));
        assert_eq!(publisher.check(&e2.id()).unwrap().number, e2.number);
        // Two periods on, the first epoch is forgotten entirely.
        manual.set(UNIX_EPOCH + Duration::from_secs(e2.not_after + 300));
        assert_eq!(publisher.check(&e1.id()), Err(FreshnessError::UnknownEpoch));
        assert!(matches!(e1.verify(&vk, clock.now()), Err(FreshnessError::EpochEnded { .. })));
    }

    #[test]
    fn a_forged_or_damaged_epoch_is_refused() {
        let (_, clock) = clock();
        let key = SigningKey::try_generate().unwrap();
        let vk = *key.verifying_key();
        let mut publisher = EpochPublisher::new(key, Duration::from_secs(300), Duration::ZERO, clock.clone());
        let epoch = publisher.current().unwrap();
        let bytes = epoch.to_bytes();
        for i in 16..EPOCH_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x80;
            let parsed = SignedEpoch::from_bytes(&bad).unwrap();
            assert!(parsed.verify(&vk, clock.now()).is_err(), "flip at {i} accepted");
        }
        assert_eq!(SignedEpoch::from_bytes(&bytes[1..]), Err(FreshnessError::EpochLength(EPOCH_LEN - 1)));
        let other = SigningKey::try_generate().unwrap();
        assert_eq!(epoch.verify(other.verifying_key(), clock.now()), Err(FreshnessError::BadEpochSignature));
    }

    #[test]
    fn freshness_dispatches_on_the_level() {
        let (_, clock) = clock();
        let mut f = Freshness { epochs: None, nonces: NonceStore::new(Duration::from_secs(60), 10, clock) };
        assert_eq!(f.check(FreshnessLevel::None, b"anything the guest chose"), Ok(Fresh::Unchecked));
        assert_eq!(f.check(FreshnessLevel::Epoch, &[0; 32]), Err(FreshnessError::NoEpochs));
        let n = f.nonces.issue(NonceScope::default()).unwrap();
        assert_eq!(f.check(FreshnessLevel::Nonce, &n), Ok(Fresh::Nonce(NonceScope::default())));
        assert_eq!(f.check(FreshnessLevel::Nonce, &n), Err(FreshnessError::Replayed));
    }

    #[test]
    fn establish_then_require_once_the_level_is_known() {
        let (_, clock) = clock();
        let key = SigningKey::try_generate().unwrap();
        let mut f = Freshness {
            epochs: Some(EpochPublisher::new(key, Duration::from_secs(300), Duration::ZERO, clock.clone())),
            nonces: NonceStore::new(Duration::from_secs(60), 10, clock),
        };
        let n = f.nonces.issue(NonceScope::default()).unwrap();
        let fresh = f.establish(&n);
        assert_eq!(fresh, Ok(Fresh::Nonce(NonceScope::default())));
        for level in [FreshnessLevel::None, FreshnessLevel::Epoch, FreshnessLevel::Nonce] {
            assert_eq!(Freshness::require(level, &fresh), Ok(()));
        }
        let replay = f.establish(&n);
        assert_eq!(replay, Err(FreshnessError::Replayed));
        assert_eq!(Freshness::require(FreshnessLevel::None, &replay), Ok(()), "AF_L0 asks for nothing");
        assert_eq!(Freshness::require(FreshnessLevel::Nonce, &replay), Err(FreshnessError::Replayed));
        let epoch = f.epochs.as_mut().unwrap().current().unwrap();
        let by_epoch = f.establish(&epoch.id());
        assert_eq!(by_epoch, Ok(Fresh::Epoch(epoch.number)));
        assert_eq!(Freshness::require(FreshnessLevel::Epoch, &by_epoch), Ok(()));
        let e = Freshness::require(FreshnessLevel::Nonce, &by_epoch).unwrap_err();
        assert!(
            e.to_string().starts_with("the workload requires AF_L2, but the evidence binds an epoch (AF_L1)"),
            "{e}"
        );
        let chosen = f.establish(b"the guest's own 16+ bytes");
        assert_eq!(chosen, Ok(Fresh::Unchecked));
        assert!(Freshness::require(FreshnessLevel::Epoch, &chosen).is_err());
    }

    #[test]
    fn a_nonce_serves_only_the_workload_and_target_it_was_issued_for() {
        let scope = NonceScope { workload: Some("payroll-app".into()), target: "https://db/rows".into() };
        assert_eq!(scope.admits("payroll-app", "https://db/rows"), Ok(()));
        let other_workload = scope.admits("ledger", "https://db/rows").unwrap_err().to_string();
        assert!(
            other_workload
                .contains("issued for workload `payroll-app` and target `https://db/rows`, not workload `ledger`"),
            "{other_workload}"
        );
        assert!(scope.admits("payroll-app", "https://db/other").is_err());
        // Issued before the policy knew the launch: any workload, the same target only.
        let open = NonceScope { workload: None, target: "t".into() };
        assert_eq!(open.admits("ledger", "t"), Ok(()));
        assert!(open.admits("ledger", "u").is_err());
        // The store hands the scope back once.
        let mut store = NonceStore::new(Duration::from_secs(60), 8, Arc::new(SystemClock));
        let nonce = store.issue(scope.clone()).unwrap();
        assert_eq!(store.redeem(&nonce), Ok(scope));
        assert_eq!(store.redeem(&nonce), Err(FreshnessError::Replayed));
    }
}
