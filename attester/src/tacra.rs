//! The TACRA binding (draft-novak-rats-tacra, "Binding Credential Keys to Evidence"): what the
//! runtime writes into the 64-byte REPORTDATA of a credential-acquisition exchange, and what the
//! Credential Authority (Enrollment) or Key Store (Retrieval) recomputes before it issues or
//! releases anything.
//!
//! # Construction (normative)
//!
//! ```text
//! binding_input = len32(freshness) ‖ freshness
//!               ‖ len32(rp_id)     ‖ rp_id
//!               ‖ len32(target)    ‖ target
//!               ‖ len32(subject)   ‖ subject
//! REPORTDATA    = SHA-512(binding_input)
//! ```
//!
//! * `len32(x)` is the length of `x` in bytes as an unsigned 32-bit big-endian integer.
//! * `freshness` is the freshness element of the kind (`twi_proto::msg::Freshness`): the Freshness Handle the
//!   Initiate call returned (`present-nonce`, `present-epoch`), the epoch marker held locally
//!   (`absent-epoch`), the Attester's timestamp as 8 big-endian bytes of seconds since
//!   1970-01-01T00:00:00Z (`absent-timestamp`), or nothing (`absent-none`).
//! * `rp_id` is the UTF-8 identifier of the Relying Party that will rely on the evidence (the
//!   Credential Authority for Enrollment, the Key Store for Retrieval), from the runtime's own
//!   measured configuration, never from the host; `target` the UTF-8 name of the Target the
//!   workload asked a credential for.
//! * `subject` is the DER of the CSR (Enrollment: it carries the new key and proves possession
//!   of it) or the DER SubjectPublicKeyInfo of the encryption key CEK (Retrieval).
//!
//! The order is the one issue 13 fixes and one revision of the draft uses (rp_id before target);
//! other revisions of the (unadopted) draft order the two the other way round. Both ends of this
//! project use this function, so the order only matters to an outside verifier: it is pinned by
//! the known answers below, computed with Python's hashlib.
//!
//! Python equivalent:
//!
//! ```text
//! def l32(x): return len(x).to_bytes(4, "big") + x
//! hashlib.sha512(l32(freshness) + l32(rp_id) + l32(target) + l32(subject)).digest()
//! ```

use core::fmt;

/// The freshness element of `absent-timestamp`: 8 big-endian bytes of seconds since the epoch.
pub const fn timestamp_element(unix_seconds: u64) -> [u8; 8] {
    unix_seconds.to_be_bytes()
}

/// Why [`report_data`] refused its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingError {
    /// A field is longer than `len32` can say (it never is for real inputs).
    TooLong,
}

impl fmt::Display for BindingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a binding input is longer than 2^32-1 bytes")
    }
}

impl core::error::Error for BindingError {}

/// REPORTDATA for one acquisition, as specified in the [module documentation](self).
pub fn report_data(freshness: &[u8], rp_id: &str, target: &str, subject: &[u8]) -> Result<[u8; 64], BindingError> {
    let parts = [freshness, rp_id.as_bytes(), target.as_bytes(), subject];
    let mut lengths = [[0u8; 4]; 4];
    for (len, part) in lengths.iter_mut().zip(parts) {
        *len = u32::try_from(part.len()).map_err(|_| BindingError::TooLong)?.to_be_bytes();
    }
    let [l0, l1, l2, l3] = &lengths;
    let [p0, p1, p2, p3] = parts;
    Ok(twi_proto::hash::sha512(&[l0, p0, l1, p1, l2, p2, l3, p3]))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// Known answer, computed independently with Python's hashlib:
    ///
    /// ```text
    /// python3 -c "import hashlib; l=lambda x: len(x).to_bytes(4,'big')+x;
    ///   print(hashlib.sha512(l(bytes(range(32)))+l(b'spiffe://example.org/ca')
    ///   +l(b'https://payroll-db.example.org:8443/rows')+l(bytes([0x30,0x82,0x01,0x00])+b'csr')).hexdigest())"
    /// ```
    #[test]
    fn known_answer_enrollment_with_a_nonce() {
        let freshness: [u8; 32] = core::array::from_fn(|i| i as u8);
        let subject = [0x30, 0x82, 0x01, 0x00, b'c', b's', b'r'];
        let got =
            report_data(&freshness, "spiffe://example.org/ca", "https://payroll-db.example.org:8443/rows", &subject)
                .unwrap();
        assert_eq!(hex::encode(got), KAT_ENROLLMENT);
    }

    /// `absent-none`: an empty freshness element still has its length prefix (python:
    /// `l(b'')+l(b'ks')+l(b't')+l(b'\x04')`).
    #[test]
    fn known_answer_absent_none() {
        assert_eq!(hex::encode(report_data(&[], "ks", "t", &[4]).unwrap()), KAT_ABSENT_NONE);
    }

    const KAT_ENROLLMENT: &str = "da7ea2fe9116b9624764fa887db3bfe9944362076da47d7e2d63f23e838454c4\
                                  f0cda1a775dd401fd2e1f2f380a90406d2c53ebecc56ac0dd8a3645687b3b46a";
    const KAT_ABSENT_NONE: &str = "d5c13eda7febdd5718bc6f2e9637b485d0312c2e0e6d77790d1b59c4789c670d\
                                   668897dfc6e2c0b4ea284f6fce8525ba245876f0c2f5a9bdb2fe8ae5d4036f36";

    #[test]
    fn moving_bytes_between_fields_changes_the_digest() {
        let a = report_data(b"ab", "c", "d", b"e").unwrap();
        let b = report_data(b"a", "bc", "d", b"e").unwrap();
        let c = report_data(b"ab", "d", "c", b"e").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c, "rp_id and target are not interchangeable");
    }

    #[test]
    fn a_timestamp_element_is_eight_big_endian_bytes() {
        assert_eq!(timestamp_element(0x0102_0304_0506_0708), [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
