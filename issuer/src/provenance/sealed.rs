//! Records encrypted to an auditor (draft-ietf-scitt-architecture: a signed statement's payload
//! MAY be encrypted; the leaf, its receipts and the checkpoints stay verifiable by anyone).
//!
//! With `--auditor-key`, a record's statement carries, instead of the record's JSON, a tagged
//! COSE_Encrypt (RFC 9052 §5.1, tag 96; content type
//! `application/cose; cose-type="cose-encrypt"`) that only the auditor's P-384 key opens:
//!
//! - content layer: protected `alg` A256GCM (3), unprotected `IV` (5, 12 random bytes), the
//!   ciphertext of the record's JSON with the Enc_structure `["Encrypt", protected, h'']` as AAD;
//! - one recipient, RFC 9053 §6.3.1 direct key agreement ECDH-ES + HKDF-256 (-25, protected):
//!   a fresh ephemeral P-384 key per record in its unprotected header (-1, a COSE_Key), `kid`
//!   (4) the auditor key's id, an empty ciphertext;
//! - the content key: HKDF-SHA-256 (no salt) over the ECDH x-coordinate with the
//!   COSE_KDF_Context of RFC 9053 §5.2 as `info`: `[3, [nil, nil, nil], [nil, nil, nil],
//!   [256, recipient protected header]]`.
//!
//! The auditor key's id is the SHA-256 of its SubjectPublicKeyInfo (DER), shown in hex.
//! Everything here is a published standard that pycose reads on its own (the tests decrypt
//! with it); coset builds the structures, p384, hkdf and aes-gcm do the crypto. Nothing secret
//! is logged: the content key and the ECDH secret are zeroized when dropped.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use coset::cbor::value::Value;
use coset::{
    AsCborValue, CborSerializable, CoseEncrypt, CoseEncryptBuilder, CoseKdfContextBuilder, CoseKey, CoseKeyBuilder,
    CoseRecipientBuilder, HeaderBuilder, Label, ProtectedHeader, RegisteredLabelWithPrivate, SuppPubInfo,
    TaggedCborSerializable, iana,
};
use hkdf::Hkdf;
use p384::elliptic_curve::Generate;
use p384::elliptic_curve::sec1::ToSec1Point;
use p384::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use p384::{PublicKey, SecretKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::LogError;

/// The content type of a statement whose payload is a record sealed to the auditor.
pub const SEALED_CONTENT_TYPE: &str = "application/cose; cose-type=\"cose-encrypt\"";

/// The label of the ephemeral key header parameter (RFC 9053 §6.3.1).
const EPHEMERAL_KEY: i64 = iana::HeaderAlgorithmParameter::EphemeralKey as i64;
/// The content key's length in bits (A256GCM).
const KEY_BITS: u64 = 256;

fn bad(what: impl std::fmt::Display) -> LogError {
    LogError::Sealed(format!("not a record sealed to an auditor (COSE_Encrypt, ECDH-ES + HKDF-256, A256GCM): {what}"))
}

/// The auditor's public key: records are sealed to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditorKey {
    key: PublicKey,
    kid: [u8; 32],
}

impl AuditorKey {
    /// The key of a SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`, P-384).
    pub fn from_pem(pem: &str) -> Result<Self, LogError> {
        let key = PublicKey::from_public_key_pem(pem.trim())
            .map_err(|e| LogError::Sealed(format!("the auditor key is not a P-384 public key (SPKI PEM): {e}")))?;
        Self::of(key)
    }

    /// Reads the key from `path` (SPKI PEM, e.g. `openssl pkey -pubout`).
    pub fn load(path: &Path) -> Result<Self, LogError> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| LogError::Sealed(format!("reading the auditor key {}: {e}", path.display())))?;
        Self::from_pem(&pem).map_err(|e| LogError::Sealed(format!("{}: {e}", path.display())))
    }

    fn of(key: PublicKey) -> Result<Self, LogError> {
        let der = key.to_public_key_der().map_err(|e| LogError::Sealed(format!("the auditor key: {e}")))?;
        Ok(Self { key, kid: Sha256::digest(der.as_bytes()).into() })
    }

    /// The key's id: SHA-256 of its SubjectPublicKeyInfo.
    pub fn kid(&self) -> &[u8; 32] {
        &self.kid
    }
}

/// The auditor's private key: opens sealed records.
#[derive(Clone)]
pub struct AuditorSecret {
    key: SecretKey,
    public: AuditorKey,
}

impl std::fmt::Debug for AuditorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditorSecret(kid {})", hex::encode(self.public.kid))
    }
}

impl AuditorSecret {
    /// The key of a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<Self, LogError> {
        let key =
            SecretKey::from_pkcs8_pem(pem.trim()).or_else(|_| SecretKey::from_sec1_pem(pem.trim())).map_err(|_| {
                LogError::Sealed("the auditor's private key is not a P-384 key (PKCS#8 or SEC1 PEM)".into())
            })?;
        Ok(Self { public: AuditorKey::of(key.public_key())?, key })
    }

    /// Reads the key from `path`, refusing a file group or others may read (like every key
    /// file the issuer reads): `chmod 600` it.
    pub fn load(path: &Path) -> Result<Self, LogError> {
        let bytes = twi_tls_files::read_private("the auditor's private key", path)
            .map_err(|e| LogError::Sealed(e.to_string()))?;
        let pem = std::str::from_utf8(&bytes)
            .map_err(|_| LogError::Sealed(format!("{}: the auditor's private key is not PEM text", path.display())))?;
        Self::from_pem(pem).map_err(|e| LogError::Sealed(format!("{}: {e}", path.display())))
    }

    /// Generates a key (tests and tools).
    pub fn generate() -> Result<Self, LogError> {
        let key =
            SecretKey::try_generate().map_err(|_| LogError::Sealed("the random number generator failed".into()))?;
        Ok(Self { public: AuditorKey::of(key.public_key())?, key })
    }

    /// Its public half.
    pub fn public(&self) -> &AuditorKey {
        &self.public
    }

    /// The SEC1 scalar (for the tests' independent checker).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.to_bytes().to_vec())
    }
}

/// The content key: HKDF-SHA-256 over the shared secret `z` with the COSE_KDF_Context of RFC
/// 9053 §5.2 for A256GCM under the recipient's protected header.
fn content_key(z: &[u8], recipient_protected: &ProtectedHeader) -> Result<Zeroizing<[u8; 32]>, LogError> {
    let supp_pub = SuppPubInfo { key_data_length: KEY_BITS, protected: recipient_protected.clone(), other: None };
    let context = CoseKdfContextBuilder::new()
        .algorithm(iana::Algorithm::A256GCM)
        .supp_pub_info(supp_pub)
        .build()
        .to_vec()
        .map_err(|e| bad(format!("the KDF context: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, z).expand(&context, &mut key[..]).map_err(|_| bad("HKDF refused the length"))?;
    Ok(key)
}

fn random_iv() -> Result<[u8; 12], LogError> {
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).map_err(|_| LogError::Sealed("the random number generator failed".into()))?;
    Ok(iv)
}

/// Encrypts `plaintext` to the auditor: a tagged COSE_Encrypt, with a fresh ephemeral key.
pub fn seal(plaintext: &[u8], to: &AuditorKey) -> Result<Vec<u8>, LogError> {
    let ephemeral =
        SecretKey::try_generate().map_err(|_| LogError::Sealed("the random number generator failed".into()))?;
    let shared = ephemeral.diffie_hellman(&to.key);
    let point = ephemeral.public_key().to_sec1_point(false);
    let cose_key = CoseKey::to_cbor_value(
        CoseKeyBuilder::new_ec2_pub_key_sec1_octet_string(iana::EllipticCurve::P_384, point.as_bytes())
            .map_err(|_| bad("the ephemeral key"))?
            .build(),
    )
    .map_err(|e| bad(format!("the ephemeral key: {e}")))?;
    let recipient = CoseRecipientBuilder::new()
        .protected(HeaderBuilder::new().algorithm(iana::Algorithm::ECDH_ES_HKDF_256).build())
        .unprotected(HeaderBuilder::new().key_id(to.kid.to_vec()).value(EPHEMERAL_KEY, cose_key).build())
        .ciphertext(Vec::new())
        .build();
    let key = content_key(shared.raw_secret_bytes(), &recipient.protected)?;
    let iv = random_iv()?;
    let cipher = Aes256Gcm::new(&(*key).into());
    let encrypt = CoseEncryptBuilder::new()
        .protected(HeaderBuilder::new().algorithm(iana::Algorithm::A256GCM).build())
        .unprotected(HeaderBuilder::new().iv(iv.to_vec()).build())
        .add_recipient(recipient)
        .try_create_ciphertext(plaintext, b"", |pt, aad| {
            cipher.encrypt(&Nonce::from(iv), Payload { msg: pt, aad }).map_err(|_| bad("AES-256-GCM refused it"))
        })?
        .build();
    encrypt.to_tagged_vec().map_err(|e| bad(format!("encoding: {e}")))
}

/// The kid the sealed record `bytes` names (no key needed): which auditor it is for.
pub fn sealed_to(bytes: &[u8]) -> Result<Vec<u8>, LogError> {
    let (encrypt, _) = parse(bytes)?;
    let recipient = &encrypt.recipients[0];
    Ok(recipient.unprotected.key_id.clone())
}

/// Checks the form and returns the structure and its IV.
fn parse(bytes: &[u8]) -> Result<(CoseEncrypt, [u8; 12]), LogError> {
    let encrypt = CoseEncrypt::from_tagged_slice(bytes).map_err(bad)?;
    if encrypt.protected.header.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::A256GCM)) {
        return Err(bad("the content alg is not A256GCM"));
    }
    let iv: [u8; 12] = encrypt.unprotected.iv.as_slice().try_into().map_err(|_| bad("the IV is not 12 bytes"))?;
    let [recipient] = encrypt.recipients.as_slice() else { return Err(bad("not exactly one recipient")) };
    if recipient.protected.header.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ECDH_ES_HKDF_256)) {
        return Err(bad("the recipient's alg is not ECDH-ES + HKDF-256"));
    }
    if recipient.unprotected.key_id.is_empty() {
        return Err(bad("the recipient names no kid"));
    }
    Ok((encrypt, iv))
}

/// The ephemeral P-384 key of a recipient header.
fn ephemeral_key(header: &coset::Header) -> Result<PublicKey, LogError> {
    let value = header.rest.iter().find(|(l, _)| *l == Label::Int(EPHEMERAL_KEY)).map(|(_, v)| v.clone());
    let key = CoseKey::from_cbor_value(value.ok_or_else(|| bad("no ephemeral key (-1)"))?)
        .map_err(|e| bad(format!("the ephemeral key: {e}")))?;
    if key.kty != coset::KeyType::Assigned(iana::KeyType::EC2) {
        return Err(bad("the ephemeral key is not EC2"));
    }
    let param =
        |p: iana::Ec2KeyParameter| key.params.iter().find(|(l, _)| *l == Label::Int(p as i64)).map(|(_, v)| v.clone());
    if param(iana::Ec2KeyParameter::Crv) != Some(Value::from(iana::EllipticCurve::P_384 as i64)) {
        return Err(bad("the ephemeral key is not on P-384"));
    }
    let (Some(Value::Bytes(x)), Some(Value::Bytes(y))) =
        (param(iana::Ec2KeyParameter::X), param(iana::Ec2KeyParameter::Y))
    else {
        return Err(bad("the ephemeral key has no x and y"));
    };
    if x.len() != 48 || y.len() != 48 {
        return Err(bad("the ephemeral key's coordinates are not 48 bytes"));
    }
    let sec1 = [&[0x04][..], &x, &y].concat();
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| bad("the ephemeral key is not a point on P-384"))
}

/// Decrypts a sealed record with the auditor's private key; a record sealed to another key, or
/// one whose bytes were changed, is refused.
pub fn open(bytes: &[u8], with: &AuditorSecret) -> Result<Zeroizing<Vec<u8>>, LogError> {
    let (encrypt, iv) = parse(bytes)?;
    let recipient = &encrypt.recipients[0];
    if recipient.unprotected.key_id != with.public.kid {
        return Err(LogError::Sealed(format!(
            "the record is encrypted to auditor key {}, not to the given key {}: give that key's private half",
            hex::encode(&recipient.unprotected.key_id),
            hex::encode(with.public.kid)
        )));
    }
    let shared = with.key.diffie_hellman(&ephemeral_key(&recipient.unprotected)?);
    let key = content_key(shared.raw_secret_bytes(), &recipient.protected)?;
    let cipher = Aes256Gcm::new(&(*key).into());
    let plaintext = encrypt.decrypt_ciphertext(
        b"",
        || bad("no ciphertext"),
        |ct, aad| {
            cipher.decrypt(&Nonce::from(iv), Payload { msg: ct, aad }).map_err(|_| {
                LogError::Sealed(
                    "the sealed record does not decrypt under the auditor key: its bytes were changed (or it was not sealed with this key)"
                        .into(),
                )
            })
        },
    )?;
    Ok(Zeroizing::new(plaintext))
}

/// `kid` as the CLI shows it.
pub fn shown_kid(kid: &[u8]) -> String {
    hex::encode(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_opens_with_the_auditor_key_only() {
        let auditor = AuditorSecret::generate().unwrap();
        let record = br#"{"credential_id":"0a1b"}"#;
        let sealed = seal(record, auditor.public()).unwrap();
        assert_eq!(&sealed[..2], &[0xd8, 0x60], "a tagged COSE_Encrypt (tag 96)");
        assert_eq!(&open(&sealed, &auditor).unwrap()[..], record);
        assert_eq!(sealed_to(&sealed).unwrap(), auditor.public().kid());
        let again = seal(record, auditor.public()).unwrap();
        assert_ne!(sealed, again, "a fresh ephemeral key and IV per record");

        let other = AuditorSecret::generate().unwrap();
        let refused = open(&sealed, &other).unwrap_err().to_string();
        assert!(refused.contains(&hex::encode(auditor.public().kid())), "{refused}");
        assert!(refused.contains("not to the given key"), "{refused}");
    }

    #[test]
    fn a_record_sealed_to_another_key_under_this_kid_does_not_open() {
        // The kid is only a hint: a record sealed to another key but naming this one fails the
        // AEAD check, not the kid check.
        let auditor = AuditorSecret::generate().unwrap();
        let other = AuditorSecret::generate().unwrap();
        let mut disguised = other.public().clone();
        disguised.kid = *auditor.public().kid();
        let sealed = seal(b"{}", &disguised).unwrap();
        let refused = open(&sealed, &auditor).unwrap_err().to_string();
        assert!(refused.contains("does not decrypt"), "{refused}");
    }

    #[test]
    fn a_tampered_ciphertext_and_every_changed_byte_are_refused() {
        let auditor = AuditorSecret::generate().unwrap();
        let record = br#"{"credential_id":"0a1b","workload_id":"spiffe://example.org/app"}"#;
        let sealed = seal(record, auditor.public()).unwrap();
        let mut encrypt = CoseEncrypt::from_tagged_slice(&sealed).unwrap();
        encrypt.ciphertext.as_mut().unwrap()[3] ^= 0x01;
        let refused = open(&encrypt.to_tagged_vec().unwrap(), &auditor).unwrap_err().to_string();
        assert!(refused.contains("does not decrypt"), "{refused}");
        for i in 0..sealed.len() {
            for bit in [0x01, 0x80] {
                let mut damaged = sealed.clone();
                damaged[i] ^= bit;
                assert!(
                    open(&damaged, &auditor).is_err(),
                    "byte {i} (bit {bit:#x}) changed and the record still opened"
                );
            }
        }
    }

    #[test]
    fn keys_read_from_pem() {
        use p384::pkcs8::{EncodePrivateKey, LineEnding};
        let secret = SecretKey::try_generate().unwrap();
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let auditor = AuditorSecret::from_pem(&pem).unwrap();
        let public = secret.public_key().to_public_key_pem(LineEnding::LF).unwrap();
        assert_eq!(AuditorKey::from_pem(&public).unwrap(), *auditor.public());
        assert!(AuditorKey::from_pem(&pem).is_err(), "a private key is not the public key option");
        let p256 = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEWoY1cY4vu0WrGlgxP/zQQHPuYQQBZI0gSTAcH+MmUfVsK3F6cQRlrE3uGOuv1oPfp8xUrTZmJzP4UAX4D7ns7w==\n-----END PUBLIC KEY-----\n";
        assert!(AuditorKey::from_pem(p256).is_err(), "a P-256 key");
    }
}
