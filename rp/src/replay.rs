//! Single use of WPTs: a bounded cache of the `jti`s seen, each kept until its WPT expires.
//!
//! draft-ietf-wimse-wpt §2 recommends checking "that the value of the `jti` claim has not been
//! used before in the time window in which the respective WPT would be considered valid". A
//! WPT's window ends at `exp` (plus the clock leeway), and the relying party refuses a WPT whose
//! `exp` is more than the configured maximum ahead, so every entry leaves the cache within that
//! maximum. The cache is bounded: when it is full of live entries the relying party refuses new
//! proofs (a server-side limit, 503) rather than forget one and accept a replay.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Why a `jti` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("this WPT (its `jti`) was already used: make a new WPT with a fresh random `jti` for each request")]
    Replayed,
    #[error("the relying party's replay cache is full ({0} live proofs); retry in a few seconds")]
    Full(usize),
}

/// `jti` → the time (seconds since the epoch) after which it may be forgotten.
#[derive(Debug)]
pub struct ReplayCache {
    until: HashMap<String, u64>,
    expiry: BinaryHeap<Reverse<(u64, String)>>,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self { until: HashMap::new(), expiry: BinaryHeap::new(), capacity }
    }

    /// Records `jti` as used until `until`, at time `now`. Refused if it is still remembered.
    pub fn use_once(&mut self, jti: &str, until: u64, now: u64) -> Result<(), ReplayError> {
        self.forget_expired(now);
        if self.until.contains_key(jti) {
            return Err(ReplayError::Replayed);
        }
        if self.until.len() >= self.capacity {
            return Err(ReplayError::Full(self.until.len()));
        }
        self.until.insert(jti.to_string(), until);
        self.expiry.push(Reverse((until, jti.to_string())));
        Ok(())
    }

    /// Entries remembered now.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    fn forget_expired(&mut self, now: u64) {
        while let Some(Reverse((until, _))) = self.expiry.peek() {
            if *until >= now {
                break;
            }
            if let Some(Reverse((_, jti))) = self.expiry.pop() {
                self.until.remove(&jti);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let mut cache = ReplayCache::new(10);
        assert_eq!(cache.use_once("a", 100, 50), Ok(()));
        assert_eq!(cache.use_once("a", 100, 60), Err(ReplayError::Replayed));
        assert_eq!(cache.use_once("a", 200, 100), Err(ReplayError::Replayed), "still live at its last second");
        assert_eq!(cache.use_once("b", 150, 60), Ok(()));
        assert_eq!(cache.len(), 2);
        // After `until` the entry is forgotten (the WPT itself is refused as expired by then).
        assert_eq!(cache.use_once("a", 300, 101), Ok(()));
        assert_eq!(cache.len(), 2, "b (until 150) is still remembered, the old a was replaced");
        assert_eq!(cache.use_once("c", 300, 151), Ok(()));
        assert_eq!(cache.len(), 2, "b was forgotten at 151");
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let mut cache = ReplayCache::new(2);
        cache.use_once("a", 100, 0).unwrap();
        cache.use_once("b", 100, 0).unwrap();
        assert_eq!(cache.use_once("c", 100, 1), Err(ReplayError::Full(2)));
        assert_eq!(cache.use_once("a", 100, 1), Err(ReplayError::Replayed));
        // Once the live entries expire there is room again.
        assert_eq!(cache.use_once("c", 200, 101), Ok(()));
        assert_eq!(cache.len(), 1);
    }
}
