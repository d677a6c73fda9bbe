//! Writing little-endian tables at compile time.

/// Copies `bytes` into `buf` at `at`. A table that does not fit fails the build (in `const`
/// evaluation) or panics (at run time): both are bugs in this crate's constants.
pub(crate) const fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    assert!(at + bytes.len() <= buf.len(), "table write out of bounds");
    let mut i = 0;
    while i < bytes.len() {
        buf[at + i] = bytes[i];
        i += 1;
    }
}
