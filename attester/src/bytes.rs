//! Fixed-offset reads and writes on fixed-size buffers.
//!
//! Offsets and widths are const generics and each access carries a compile-time assertion that
//! `OFF + N <= L`, so an out-of-range offset is a build error and no access can panic at run
//! time, whatever the buffer holds.

/// A read-only view of an `L`-byte buffer.
pub(crate) struct Buf<'a, const L: usize>(pub(crate) &'a [u8; L]);

impl<const L: usize> Buf<'_, L> {
    pub(crate) fn get<const OFF: usize, const N: usize>(&self) -> [u8; N] {
        const { assert!(OFF + N <= L) };
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[OFF..OFF + N]);
        out
    }

    pub(crate) fn u8<const OFF: usize>(&self) -> u8 {
        let [b] = self.get::<OFF, 1>();
        b
    }

    pub(crate) fn u32<const OFF: usize>(&self) -> u32 {
        u32::from_le_bytes(self.get::<OFF, 4>())
    }

    pub(crate) fn u64<const OFF: usize>(&self) -> u64 {
        u64::from_le_bytes(self.get::<OFF, 8>())
    }

    /// True when every byte in `OFF..OFF + N` is zero.
    pub(crate) fn zero<const OFF: usize, const N: usize>(&self) -> bool {
        self.get::<OFF, N>() == [0u8; N]
    }
}

/// A writable view of an `L`-byte buffer.
pub(crate) struct BufMut<'a, const L: usize>(pub(crate) &'a mut [u8; L]);

impl<const L: usize> BufMut<'_, L> {
    pub(crate) fn put<const OFF: usize, const N: usize>(&mut self, v: [u8; N]) {
        const { assert!(OFF + N <= L) };
        self.0[OFF..OFF + N].copy_from_slice(&v);
    }

    pub(crate) fn u8<const OFF: usize>(&mut self, v: u8) {
        self.put::<OFF, 1>([v]);
    }

    pub(crate) fn u32<const OFF: usize>(&mut self, v: u32) {
        self.put::<OFF, 4>(v.to_le_bytes());
    }

    pub(crate) fn u64<const OFF: usize>(&mut self, v: u64) {
        self.put::<OFF, 8>(v.to_le_bytes());
    }
}
