//! AES-256-GCM record protection for TLS 1.3 (RFC 8446 §5.2, §5.3).
//!
//! Each record is `AEAD-Encrypt(key, nonce, additional_data, TLSInnerPlaintext)` where the
//! nonce is the per-direction IV XOR the 64-bit record sequence number (§5.3), the additional
//! data is the record header (`opaque_type ‖ legacy_record_version ‖ length`, §5.2) and the
//! inner plaintext is the content followed by its real content type. A record whose tag does not
//! verify is a `DecryptError`: rustls answers with a `bad_record_mac` alert and the stream
//! fails; altered bytes never reach the caller.
//!
//! The additional data of a received record is built from the header *as received*, as §5.2
//! defines it. rustls's own providers use the constant header (type 23, version 0x0303)
//! instead, which lets a relay rewrite a protected record's outer type or version unnoticed
//! (the content stays authentic, but the alteration goes unreported); here it fails the record.

use alloc::boxed::Box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Tag};
use rustls::crypto::cipher::{
    AeadKey, InboundOpaqueMessage, InboundPlainMessage, Iv, MessageDecrypter, MessageEncrypter, Nonce,
    OutboundOpaqueMessage, OutboundPlainMessage, PrefixedPayload, Tls13AeadAlgorithm, UnsupportedOperationError,
    make_tls13_aad,
};
use rustls::{ConnectionTrafficSecrets, ContentType, Error, ProtocolVersion};

const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// AES-256-GCM as a TLS 1.3 AEAD.
pub(super) struct Aes256GcmAead;

impl Tls13AeadAlgorithm for Aes256GcmAead {
    fn encrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageEncrypter> {
        Box::new(RecordCipher { cipher: cipher(&key), iv })
    }

    fn decrypter(&self, key: AeadKey, iv: Iv) -> Box<dyn MessageDecrypter> {
        Box::new(RecordCipher { cipher: cipher(&key), iv })
    }

    fn key_len(&self) -> usize {
        KEY_LEN
    }

    /// Traffic secrets stay inside rustls: no kernel TLS offload in a firmware.
    fn extract_keys(&self, _key: AeadKey, _iv: Iv) -> Result<ConnectionTrafficSecrets, UnsupportedOperationError> {
        Err(UnsupportedOperationError)
    }
}

/// rustls derives exactly `key_len()` bytes; a key of any other length (which rustls never
/// produces) leaves the cipher absent and every record then fails instead of panicking.
fn cipher(key: &AeadKey) -> Option<Aes256Gcm> {
    Aes256Gcm::new_from_slice(key.as_ref()).ok()
}

/// One direction's record protection: the key and the static IV of RFC 8446 §5.3.
struct RecordCipher {
    cipher: Option<Aes256Gcm>,
    iv: Iv,
}

impl MessageEncrypter for RecordCipher {
    fn encrypt(&mut self, msg: OutboundPlainMessage<'_>, seq: u64) -> Result<OutboundOpaqueMessage, Error> {
        let cipher = self.cipher.as_ref().ok_or(Error::EncryptError)?;
        let total_len = self.encrypted_payload_len(msg.payload.len());
        let mut payload = PrefixedPayload::with_capacity(total_len);
        payload.extend_from_chunks(&msg.payload);
        payload.extend_from_slice(&msg.typ.to_array());
        let nonce = Nonce::new(&self.iv, seq).0;
        let tag = cipher
            .encrypt_inout_detached(&nonce.into(), &make_tls13_aad(total_len), payload.as_mut().into())
            .map_err(|_| Error::EncryptError)?;
        payload.extend_from_slice(&tag);
        // RFC 8446 §5.1: protected records are `application_data` with legacy version 0x0303.
        Ok(OutboundOpaqueMessage::new(ContentType::ApplicationData, ProtocolVersion::TLSv1_2, payload))
    }

    fn encrypted_payload_len(&self, payload_len: usize) -> usize {
        payload_len + 1 + TAG_LEN
    }
}

impl MessageDecrypter for RecordCipher {
    fn decrypt<'a>(&mut self, mut msg: InboundOpaqueMessage<'a>, seq: u64) -> Result<InboundPlainMessage<'a>, Error> {
        let cipher = self.cipher.as_ref().ok_or(Error::DecryptError)?;
        let payload = &mut msg.payload;
        let total_len = payload.len();
        let Some(body_len) = total_len.checked_sub(TAG_LEN) else {
            return Err(Error::DecryptError);
        };
        let (body, tag) = payload.split_at_mut(body_len);
        let tag = Tag::try_from(&*tag).map_err(|_| Error::DecryptError)?;
        let nonce = Nonce::new(&self.iv, seq).0;
        let aad = received_aad(msg.typ, msg.version, total_len);
        cipher.decrypt_inout_detached(&nonce.into(), &aad, body.into(), &tag).map_err(|_| Error::DecryptError)?;
        payload.truncate(body_len);
        msg.into_tls13_unpadded_message()
    }
}

/// RFC 8446 §5.2 `additional_data` from the received record header.
fn received_aad(typ: ContentType, version: ProtocolVersion, len: usize) -> [u8; 5] {
    let [v0, v1] = u16::from(version).to_be_bytes();
    // A protected record's length is at most 2^14 + 256, so it fits the header's two bytes;
    // a larger one cannot reach here (rustls refuses it as oversized first).
    let [l0, l1] = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
    [u8::from(typ), v0, v1, l0, l1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::cipher::OutboundChunks;

    fn pair() -> (Box<dyn MessageEncrypter>, Box<dyn MessageDecrypter>) {
        let key = || AeadKey::from([7u8; 32]);
        let iv = || Iv::from([9u8; 12]);
        (Aes256GcmAead.encrypter(key(), iv()), Aes256GcmAead.decrypter(key(), iv()))
    }

    fn seal(enc: &mut dyn MessageEncrypter, data: &[u8], seq: u64) -> alloc::vec::Vec<u8> {
        let plain = OutboundPlainMessage {
            typ: ContentType::ApplicationData,
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(data),
        };
        enc.encrypt(plain, seq).unwrap().payload.as_ref().to_vec()
    }

    fn open(dec: &mut dyn MessageDecrypter, sealed: &mut [u8], seq: u64) -> Result<alloc::vec::Vec<u8>, Error> {
        open_as(dec, ContentType::ApplicationData, ProtocolVersion::TLSv1_2, sealed, seq)
    }

    fn open_as(
        dec: &mut dyn MessageDecrypter,
        typ: ContentType,
        version: ProtocolVersion,
        sealed: &mut [u8],
        seq: u64,
    ) -> Result<alloc::vec::Vec<u8>, Error> {
        let msg = InboundOpaqueMessage::new(typ, version, sealed);
        dec.decrypt(msg, seq).map(|plain| plain.payload.to_vec())
    }

    #[test]
    fn round_trip_and_every_flipped_byte_fails() {
        let (mut enc, mut dec) = pair();
        let sealed = seal(enc.as_mut(), b"hello", 3);
        assert_eq!(sealed.len(), 5 + 1 + TAG_LEN);
        assert_eq!(open(dec.as_mut(), &mut sealed.clone(), 3).unwrap(), b"hello");
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(dec.as_mut(), &mut bad, 3), Err(Error::DecryptError), "byte {i}");
        }
    }

    #[test]
    fn wrong_sequence_number_and_short_records_fail() {
        let (mut enc, mut dec) = pair();
        let sealed = seal(enc.as_mut(), b"hello", 3);
        assert_eq!(open(dec.as_mut(), &mut sealed.clone(), 4), Err(Error::DecryptError));
        assert_eq!(open(dec.as_mut(), &mut sealed[..TAG_LEN - 1].to_vec(), 3), Err(Error::DecryptError));
    }

    /// The outer header is authenticated: another type or version fails the record.
    #[test]
    fn a_rewritten_record_header_fails() {
        let (mut enc, mut dec) = pair();
        let sealed = seal(enc.as_mut(), b"hello", 0);
        let v = ProtocolVersion::TLSv1_2;
        assert_eq!(open_as(dec.as_mut(), ContentType::Handshake, v, &mut sealed.clone(), 0), Err(Error::DecryptError));
        let v0 = ProtocolVersion::TLSv1_0;
        assert_eq!(
            open_as(dec.as_mut(), ContentType::ApplicationData, v0, &mut sealed.clone(), 0),
            Err(Error::DecryptError)
        );
        let ok = open_as(dec.as_mut(), ContentType::ApplicationData, v, &mut sealed.clone(), 0);
        assert_eq!(ok.unwrap(), b"hello");
    }
}
