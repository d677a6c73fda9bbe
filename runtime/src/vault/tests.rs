use super::*;
use p384::ecdsa::signature::Verifier;
use twi_testkit::TestRng;

struct FailingRng;
#[derive(Debug)]
struct Dry;
impl core::fmt::Display for Dry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("dry")
    }
}
impl core::error::Error for Dry {}
impl rand_core::TryRng for FailingRng {
    type Error = Dry;
    fn try_next_u32(&mut self) -> Result<u32, Dry> {
        Err(Dry)
    }
    fn try_next_u64(&mut self) -> Result<u64, Dry> {
        Err(Dry)
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Dry> {
        Err(Dry)
    }
}
impl rand_core::TryCryptoRng for FailingRng {}

fn verify(public: &PublicKeySec1, message: &[u8], der: &DerSignature) -> bool {
    let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(public).unwrap();
    verifying.verify(message, &p384::ecdsa::Signature::from_der(der.as_bytes()).unwrap()).is_ok()
}

#[test]
fn signs_with_the_generated_key() {
    let vault = Vault::new();
    let (id, public) = vault.generate(&mut TestRng(0x9E37_79B9_7F4A_7C15)).unwrap();
    assert_eq!(public[0], 0x04);
    let signature = vault.sign(id, b"hello").unwrap();
    assert!(verify(&public, b"hello", &signature));
    assert!(!verify(&public, b"hellO", &signature));
    // The prehash form signs the same statement.
    use sha2::Digest;
    let digest = sha2::Sha384::digest(b"hello");
    assert!(verify(&public, b"hello", &vault.sign_digest(id, &digest).unwrap()));
    assert_eq!(vault.sign_digest(id, &digest[..47]).unwrap_err(), VaultError::BadDigest);
}

#[test]
fn keys_are_apart_and_a_removed_key_is_gone_for_good() {
    let vault = Vault::new();
    let (a, public_a) = vault.generate(&mut TestRng(1)).unwrap();
    let (b, public_b) = vault.generate(&mut TestRng(2)).unwrap();
    assert_ne!(public_a, public_b);
    assert!(verify(&public_b, b"x", &vault.sign(b, b"x").unwrap()));
    vault.remove(a);
    assert_eq!(vault.sign(a, b"x").unwrap_err(), VaultError::NoSuchKey);
    // The slot is reused, under a new generation: the old handle does not reach the new key.
    let (c, _) = vault.generate(&mut TestRng(3)).unwrap();
    assert_eq!(KeyId::from_u32(c.to_u32()), c);
    assert_eq!(vault.public_key(a).unwrap_err(), VaultError::NoSuchKey);
    assert!(vault.public_key(c).is_ok());
    assert_eq!(vault.sign(KeyId::from_u32(0), b"x").unwrap_err(), VaultError::NoSuchKey);
}

#[test]
fn a_full_vault_refuses_and_clear_empties_it() {
    let vault = Vault::new();
    for i in 0..SLOTS as u64 {
        vault.generate(&mut TestRng(10 + i)).unwrap();
    }
    assert_eq!(vault.generate(&mut TestRng(99)).unwrap_err(), VaultError::Full);
    assert_eq!(vault.generate_decryption_key(&mut TestRng(99)).unwrap_err(), VaultError::Full);
    vault.clear();
    assert!(vault.generate(&mut TestRng(99)).is_ok());
}

#[test]
fn a_release_opens_once_into_a_new_signing_key() {
    let vault = Vault::new();
    let (boot, boot_public) = vault.generate(&mut TestRng(3)).unwrap();
    let (cek, ephemeral) = vault.generate_decryption_key(&mut TestRng(4)).unwrap();
    assert_eq!(vault.sign(cek, b"m").unwrap_err(), VaultError::WrongKind);
    let provisioned = SigningKey::try_generate_from_rng(&mut TestRng(6)).unwrap();
    let expected = provisioned.verifying_key().to_sec1_point(false);
    let scalar = provisioned.to_bytes();
    let mut ct = [0u8; 48 + hpke::TAG_LEN];
    let enc = hpke::seal(&ephemeral, b"info", b"aad", &scalar, &mut ct, &mut TestRng(7)).unwrap();

    assert_eq!(vault.install_released_key(boot, &enc, b"info", b"aad", &ct).unwrap_err(), VaultError::WrongKind);
    let (installed, public) = vault.install_released_key(cek, &enc, b"info", b"aad", &ct).unwrap();
    assert_eq!(&public[..], expected.as_bytes());
    assert_ne!(public, boot_public);
    // The decryption key is gone: the same release cannot be opened twice.
    assert_eq!(vault.public_key(cek).unwrap_err(), VaultError::NoSuchKey);
    assert_eq!(vault.install_released_key(cek, &enc, b"info", b"aad", &ct).unwrap_err(), VaultError::NoSuchKey);
    assert!(verify(&public, b"m", &vault.sign(installed, b"m").unwrap()));
    assert!(verify(&boot_public, b"m", &vault.sign(boot, b"m").unwrap()), "the other key stays");
}

#[test]
fn an_altered_release_is_refused_and_consumes_the_decryption_key() {
    let vault = Vault::new();
    let (cek, ephemeral) = vault.generate_decryption_key(&mut TestRng(4)).unwrap();
    let mut ct = [0u8; 48 + hpke::TAG_LEN];
    let enc = hpke::seal(&ephemeral, b"info", b"aad", &[7u8; 48], &mut ct, &mut TestRng(7)).unwrap();
    ct[5] ^= 1;
    assert_eq!(vault.install_released_key(cek, &enc, b"info", b"aad", &ct).unwrap_err(), VaultError::ReleaseDidNotOpen);
    assert_eq!(vault.public_key(cek).unwrap_err(), VaultError::NoSuchKey);
    // A scalar that is not a key (zero) is refused after it opens.
    let (cek, ephemeral) = vault.generate_decryption_key(&mut TestRng(8)).unwrap();
    let enc = hpke::seal(&ephemeral, b"", b"", &[0u8; 48], &mut ct, &mut TestRng(9)).unwrap();
    assert_eq!(vault.install_released_key(cek, &enc, b"", b"", &ct).unwrap_err(), VaultError::ReleasedKeyInvalid);
}

#[test]
fn rng_failure_generates_nothing() {
    let vault = Vault::new();
    assert_eq!(vault.generate(&mut FailingRng).unwrap_err(), VaultError::Rng);
    assert_eq!(vault.generate_decryption_key(&mut FailingRng).unwrap_err(), VaultError::Rng);
}
