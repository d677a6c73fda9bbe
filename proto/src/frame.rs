//! Framing of the serial channel: `COBS(payload ‖ CRC-32(payload)) ‖ 0x00`.
//!
//! COBS removes every `0x00` from the frame body, so `0x00` is an unambiguous
//! delimiter: a receiver that starts listening mid-stream, or that sees line
//! noise, simply resynchronises at the next `0x00`. The CRC catches corruption
//! that COBS alone would turn into a plausible but wrong payload.
//!
//! The peer is untrusted: [`FrameDecoder`] never buffers more than
//! [`MAX_ENCODED_FRAME`] bytes, never panics, and allocates only up front and
//! for the returned payload.

use alloc::vec::Vec;
use core::fmt;

/// Largest payload (one CBOR message) carried by a frame: room for the largest Evidence (a
/// 12 KiB quote, its RTMR event log, the TACRA target and CSR).
pub const MAX_PAYLOAD: usize = 20 * 1024;

/// Bytes of CRC appended to every payload before COBS encoding.
const CRC_LEN: usize = 4;

/// Largest COBS-encoded frame body (without the delimiter): COBS adds at most
/// one byte per 254 input bytes plus one leading code byte.
pub const MAX_ENCODED_FRAME: usize = {
    let n = MAX_PAYLOAD + CRC_LEN;
    n + n / 254 + 1
};

/// Why a frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The frame (or the payload handed to [`encode_frame`]) exceeds the size limits.
    Oversized,
    /// Invalid COBS, or too short to hold a CRC.
    Malformed,
    /// The CRC does not match the payload.
    Checksum,
}

impl FrameError {
    /// Short human-readable description, usable without `alloc` formatting.
    pub fn as_str(&self) -> &'static str {
        match self {
            FrameError::Oversized => "frame too large",
            FrameError::Malformed => "malformed frame",
            FrameError::Checksum => "frame checksum mismatch",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for FrameError {}

/// CRC-32/ISO-HDLC lookup table (reflected polynomial 0xEDB88320), built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/ISO-HDLC (the zlib / Ethernet CRC): `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        // The index is masked to 0..=255, so it can never be out of bounds.
        crc = CRC_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

/// COBS-encodes `data` and appends the result to `out` (no delimiter).
///
/// A block that ends exactly at 254 non-zero bytes is not followed by an
/// empty block when the input ends there, matching the reference encoder.
pub fn cobs_encode(data: impl IntoIterator<Item = u8>, out: &mut Vec<u8>) {
    let mut iter = data.into_iter().peekable();
    let mut code_at = out.len();
    out.push(0); // placeholder for the first code byte
    let mut code: u8 = 1;
    while let Some(b) = iter.next() {
        if b != 0 {
            out.push(b);
            code += 1;
        }
        if b == 0 || code == 0xFF {
            if let Some(slot) = out.get_mut(code_at) {
                *slot = code;
            }
            code = 1;
            // A full block at the very end needs no further (empty) block.
            if b == 0 || iter.peek().is_some() {
                code_at = out.len();
                out.push(0);
            } else {
                return;
            }
        }
    }
    if let Some(slot) = out.get_mut(code_at) {
        *slot = code;
    }
}

/// Decodes one COBS frame body (without delimiter). Rejects `0x00` inside the
/// body and code bytes that point past its end.
pub fn cobs_decode(data: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some((&code, tail)) = rest.split_first() {
        if code == 0 {
            return Err(FrameError::Malformed);
        }
        let run = usize::from(code - 1);
        let (block, tail) = tail.split_at_checked(run).ok_or(FrameError::Malformed)?;
        if block.contains(&0) {
            return Err(FrameError::Malformed);
        }
        out.extend_from_slice(block);
        rest = tail;
        // Every block but a full one (and the last one) stands for a trailing zero.
        if code != 0xFF && !rest.is_empty() {
            out.push(0);
        }
    }
    Ok(out)
}

/// Appends one complete frame carrying `payload` (COBS body and `0x00` delimiter) to `out`.
pub fn encode_frame(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::Oversized);
    }
    let crc = crc32(payload).to_le_bytes();
    out.reserve(MAX_ENCODED_FRAME.min(payload.len() + payload.len() / 254 + CRC_LEN + 3));
    cobs_encode(payload.iter().copied().chain(crc), out);
    out.push(0);
    Ok(())
}

/// Checks and strips the CRC of a decoded frame body.
fn check_frame(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut decoded = cobs_decode(body)?;
    let payload_len = decoded.len().checked_sub(CRC_LEN).ok_or(FrameError::Malformed)?;
    if payload_len > MAX_PAYLOAD {
        return Err(FrameError::Oversized);
    }
    let (payload, crc) = decoded.split_at(payload_len);
    let crc: [u8; CRC_LEN] = crc.try_into().map_err(|_| FrameError::Malformed)?;
    if crc32(payload) != u32::from_le_bytes(crc) {
        return Err(FrameError::Checksum);
    }
    decoded.truncate(payload_len);
    Ok(decoded)
}

/// Incremental frame receiver, fed one byte at a time from the serial line.
pub struct FrameDecoder {
    /// Encoded bytes of the frame being received; capacity fixed at
    /// [`MAX_ENCODED_FRAME`] and never grown.
    buf: Vec<u8>,
    /// Set after an overflow: drop bytes until the next delimiter.
    discarding: bool,
}

impl FrameDecoder {
    /// Creates a decoder; its buffer is allocated here, once.
    pub fn new() -> Self {
        Self { buf: Vec::with_capacity(MAX_ENCODED_FRAME), discarding: false }
    }

    /// Feeds one byte. Returns `Some` when a delimiter completes a non-empty
    /// frame (the CRC-checked payload, or why it was rejected), and
    /// `Some(Err(Oversized))` once when a frame outgrows [`MAX_ENCODED_FRAME`];
    /// the rest of that frame is then skipped up to the next `0x00`.
    /// Empty frames (consecutive delimiters) are ignored: senders may use them
    /// to flush or resynchronise the line.
    pub fn push(&mut self, byte: u8) -> Option<Result<Vec<u8>, FrameError>> {
        if byte == 0 {
            let was_discarding = core::mem::replace(&mut self.discarding, false);
            if was_discarding || self.buf.is_empty() {
                self.buf.clear();
                return None;
            }
            let result = check_frame(&self.buf);
            self.buf.clear();
            return Some(result);
        }
        if self.discarding {
            return None;
        }
        // Check before growing: the buffer never reallocates.
        if self.buf.len() >= MAX_ENCODED_FRAME {
            self.buf.clear();
            self.discarding = true;
            return Some(Err(FrameError::Oversized));
        }
        self.buf.push(byte);
        None
    }

    /// Drops any partially received frame.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FrameDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder").field("buffered", &self.buf.len()).field("discarding", &self.discarding).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn cobs(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        cobs_encode(data.iter().copied(), &mut out);
        out
    }

    fn feed(dec: &mut FrameDecoder, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
        bytes.iter().filter_map(|&b| dec.push(b)).collect()
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(payload, &mut out).unwrap();
        out
    }

    #[test]
    fn crc_known_answer() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn cobs_known_answers() {
        // Examples from the COBS article on Wikipedia.
        let cases: &[(&[u8], &[u8])] = &[
            (&[], &[0x01]),
            (&[0x00], &[0x01, 0x01]),
            (&[0x00, 0x00], &[0x01, 0x01, 0x01]),
            (&[0x00, 0x11, 0x00], &[0x01, 0x02, 0x11, 0x01]),
            (&[0x11, 0x22, 0x00, 0x33], &[0x03, 0x11, 0x22, 0x02, 0x33]),
            (&[0x11, 0x22, 0x33, 0x44], &[0x05, 0x11, 0x22, 0x33, 0x44]),
            (&[0x11, 0x00, 0x00, 0x00], &[0x02, 0x11, 0x01, 0x01, 0x01]),
        ];
        for (raw, enc) in cases {
            assert_eq!(&cobs(raw), enc, "encode {raw:02x?}");
            assert_eq!(&cobs_decode(enc).unwrap(), raw, "decode {enc:02x?}");
        }
    }

    #[test]
    fn cobs_long_runs() {
        // 01..=FE (254 non-zero bytes) → FF 01..=FE
        let raw: Vec<u8> = (0x01..=0xFE).collect();
        let mut enc = vec![0xFF];
        enc.extend(0x01..=0xFE);
        assert_eq!(cobs(&raw), enc);
        assert_eq!(cobs_decode(&enc).unwrap(), raw);

        // 00 01..=FE → 01 FF 01..=FE
        let raw: Vec<u8> = (0x00..=0xFE).collect();
        let mut enc = vec![0x01, 0xFF];
        enc.extend(0x01..=0xFE);
        assert_eq!(cobs(&raw), enc);
        assert_eq!(cobs_decode(&enc).unwrap(), raw);

        // 01..=FF → FF 01..=FE 02 FF
        let raw: Vec<u8> = (0x01..=0xFF).collect();
        let mut enc = vec![0xFF];
        enc.extend(0x01..=0xFE);
        enc.extend([0x02, 0xFF]);
        assert_eq!(cobs(&raw), enc);
        assert_eq!(cobs_decode(&enc).unwrap(), raw);

        // 02..=FF 00 → FF 02..=FF 01 01
        let mut raw: Vec<u8> = (0x02..=0xFF).collect();
        raw.push(0);
        let mut enc = vec![0xFF];
        enc.extend(0x02..=0xFF);
        enc.extend([0x01, 0x01]);
        assert_eq!(cobs(&raw), enc);
        assert_eq!(cobs_decode(&enc).unwrap(), raw);
    }

    #[test]
    fn cobs_rejects_bad_input() {
        assert_eq!(cobs_decode(&[0x00]), Err(FrameError::Malformed));
        assert_eq!(cobs_decode(&[0x05, 0x11]), Err(FrameError::Malformed));
        assert_eq!(cobs_decode(&[0x03, 0x11, 0x00]), Err(FrameError::Malformed));
    }

    #[test]
    fn max_encoded_frame_bounds_worst_case() {
        for fill in [0x00u8, 0x01, 0xFF] {
            let f = frame(&vec![fill; MAX_PAYLOAD]);
            assert!(f.len() - 1 <= MAX_ENCODED_FRAME, "fill {fill:#x}: {}", f.len());
            let mut dec = FrameDecoder::new();
            assert_eq!(feed(&mut dec, &f), vec![Ok(vec![fill; MAX_PAYLOAD])]);
        }
        let mut out = Vec::new();
        assert_eq!(encode_frame(&vec![1; MAX_PAYLOAD + 1], &mut out), Err(FrameError::Oversized));
        assert!(out.is_empty());
    }

    #[test]
    fn round_trip_and_empty_frames() {
        let mut dec = FrameDecoder::new();
        let mut wire = vec![0, 0];
        wire.extend(frame(b"hello"));
        wire.extend([0, 0, 0]);
        wire.extend(frame(b""));
        wire.extend(frame(&[0, 0, 0]));
        assert_eq!(feed(&mut dec, &wire), vec![Ok(b"hello".to_vec()), Ok(vec![]), Ok(vec![0, 0, 0])]);
    }

    #[test]
    fn short_and_corrupt_frames() {
        let mut dec = FrameDecoder::new();
        // Fewer than 4 bytes after COBS decoding: no room for a CRC.
        assert_eq!(feed(&mut dec, &[0x04, 1, 2, 3, 0]), vec![Err(FrameError::Malformed)]);
        // Truncated frame: the tail never arrives, the next frame's delimiter ends it.
        let full = frame(b"some payload");
        let mut wire = full[..full.len() / 2].to_vec();
        wire.push(0);
        let got = feed(&mut dec, &wire);
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
        // Wrong CRC.
        let mut body = b"abcd".to_vec();
        body.extend((crc32(b"abcd") ^ 1).to_le_bytes());
        let mut wire = Vec::new();
        cobs_encode(body.iter().copied(), &mut wire);
        wire.push(0);
        assert_eq!(feed(&mut dec, &wire), vec![Err(FrameError::Checksum)]);
    }

    #[test]
    fn oversized_reported_once_then_resync() {
        let mut dec = FrameDecoder::new();
        let capacity = dec.buf.capacity();
        let got = feed(&mut dec, &vec![0x55; MAX_ENCODED_FRAME + 1]);
        assert_eq!(got, vec![Err(FrameError::Oversized)]);
        // Still discarding: more bytes produce nothing, and the buffer never grew.
        assert!(feed(&mut dec, &[0x55; 1000]).is_empty());
        assert_eq!(dec.buf.capacity(), capacity);
        let mut wire = vec![0];
        wire.extend(frame(b"after"));
        assert_eq!(feed(&mut dec, &wire), vec![Ok(b"after".to_vec())]);
    }

    #[test]
    fn garbage_then_resync() {
        let mut dec = FrameDecoder::new();
        let mut wire = vec![0x13, 0x37, 0xFF, 0x02, 0xAA];
        wire.push(0);
        wire.extend(frame(b"payload"));
        let got = feed(&mut dec, &wire);
        assert_eq!(got.last(), Some(&Ok(b"payload".to_vec())));
        assert_eq!(got.len(), 2);
        assert!(got[0].is_err());
    }
}
