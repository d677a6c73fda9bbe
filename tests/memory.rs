//! Secrets stay in the vault (issue 13, "Bad input and hostile hosts"): after a run, a dump of
//! the guest's RAM holds each private key the runtime holds in the vault section only, and no
//! ECDSA per-signature nonce anywhere — for every acquisition mechanism and both TACRA modes.
//! `dump/mod.rs` says how keys and nonces are found; each test first checks that the search
//! finds the key where it must be (in the vault), so a search that finds nothing proves
//! something.
//!
//! Needs `qemu-system-x86_64`, `openssl` and `python3` (`./qemu/install-deps`).

#[path = "dump/mod.rs"]
mod dump;

use std::path::Path;
use std::sync::OnceLock;

use der::{Decode, DecodePem, Encode};
use dump::{Dump, VaultKey, assert_nowhere, assert_only_in_vault, ecdsa_nonce};
use sha2::{Digest, Sha384};
use twi_testkit::scenario::{Built, Scenario, Twi};

const TWI: Twi = Twi(env!("CARGO_BIN_EXE_twi-e2e"));

/// One image and one issuer state shared by the tests (building the runtime takes a while).
fn fixture() -> &'static Built {
    static FIXTURE: OnceLock<Built> = OnceLock::new();
    FIXTURE.get_or_init(|| TWI.build_default())
}

/// Two dumps of one run: `during`, when the console first shows `at` (the VM stopped there),
/// and `after` the runtime finished.
struct Dumps {
    during: Dump,
    after: Dump,
}

impl Dumps {
    fn both(&self) -> [(&'static str, &Dump); 2] {
        [("during the run", &self.during), ("after the run", &self.after)]
    }
}

/// `twi run --mechanism MECHANISM` of the fixture's image with the dumping QEMU wrapper.
fn run_and_dump(mechanism: &str, out: &Path, at: &str) -> Dumps {
    let f = fixture();
    let scenario = Scenario::sim(TWI).image(&f.image.join("twi.rom")).state(&f.state).out(out).accel("tcg");
    let mut command = scenario.mechanism(mechanism).command();
    let (during, after) = (out.with_extension("during.ram"), out.with_extension("after.ram"));
    dump::dumping(&mut command, at, &during, &after);
    let output = command.output().expect("cannot run twi");
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "twi run --mechanism {mechanism} under the dumping wrapper failed:\n{log}");
    let elf = f.image.join("twi-runtime.elf");
    let dumps = Dumps { during: Dump::read(&during, &elf), after: Dump::read(&after, &elf) };
    std::fs::remove_file(&during).unwrap();
    std::fs::remove_file(&after).unwrap();
    dumps
}

fn json(out: &Path, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join(name)).unwrap()).unwrap()
}

/// The key the run's credential certifies, found in the vault of the dump after the run (else
/// the test fails: the key must live there); every key in the vault is checked to be nowhere
/// else, in both dumps.
fn certified_key_only_in_vault(dumps: &Dumps, out: &Path) -> VaultKey {
    let key = certified_key_in(&dumps.after, out);
    for (when, dump) in dumps.both() {
        dump::assert_vault_keys_stay_there(dump, when);
        assert_only_in_vault(dump, &format!("{when}, the credential key"), &key.secret);
    }
    key
}

fn certified_key_in(dump: &Dump, out: &Path) -> VaultKey {
    let pem = std::fs::read(out.join("credential.pem")).unwrap();
    let cert = x509_cert::Certificate::from_pem(&pem).unwrap();
    let spki = &cert.tbs_certificate().subject_public_key_info();
    let public = spki.subject_public_key.raw_bytes().to_vec();
    // One targeted search (the caller checks every vault key, this one included, everywhere).
    let stored = dump.vault_public_keys().contains(&public);
    let secret = dump.vault_secret(&public).filter(|_| stored);
    let secret = secret.unwrap_or_else(|| panic!("the certified key's scalar is not in the vault {:x?}", dump.vault));
    VaultKey { public, secret }
}

/// The nonce of the CSR's signature (Enrollment), which must be nowhere in memory.
fn csr_nonce_nowhere(dumps: &Dumps, out: &Path, key: &VaultKey) {
    let csr_hex = json(out, "evidence.json")["csr"].as_str().map(str::to_string).expect("an Enrollment has a CSR");
    let csr = x509_cert::request::CertReq::from_der(&hex::decode(csr_hex).unwrap()).unwrap();
    let digest: [u8; 48] = Sha384::digest(csr.info.to_der().unwrap()).into();
    let nonce = ecdsa_nonce(csr.signature.raw_bytes(), &digest, &key.secret);
    for (when, dump) in dumps.both() {
        assert_nowhere(dump, &format!("{when}, the CSR signature's ECDSA nonce"), &nonce);
    }
}

#[test]
fn mechanism_c_keeps_the_credential_key_and_the_csr_nonce_out_of_guest_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c");
    let dumps = run_and_dump("c", &out, "evidence sent");
    let key = certified_key_only_in_vault(&dumps, &out);
    csr_nonce_nowhere(&dumps, &out, &key);
}

#[test]
fn mechanism_a_keeps_the_credential_key_and_the_csr_nonce_out_of_guest_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a");
    let dumps = run_and_dump("a", &out, "evidence sent");
    let key = certified_key_only_in_vault(&dumps, &out);
    csr_nonce_nowhere(&dumps, &out, &key);
}

#[test]
fn mechanism_b_leaves_no_proof_of_possession_nonce_in_guest_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    // The first dump while the CredentialRequest awaits its answer.
    let dumps = run_and_dump("b", &out, "mechanism B: credential requested");
    let key = certified_key_only_in_vault(&dumps, &out);
    csr_nonce_nowhere(&dumps, &out, &key);
    // The CredentialRequest's proof: ECDSA over the documented input, nonce recovered.
    let request = json(&out, "credential-request.json");
    let field = |name: &str| hex::decode(request[name].as_str().unwrap()).unwrap();
    let ear = request["ear"].as_str().unwrap();
    let nonce = hex::decode(json(&out, "evidence.json")["nonce"].as_str().unwrap()).unwrap();
    let ear_digest: [u8; 32] = sha2::Sha256::digest(ear.as_bytes()).into();
    let signed = twi_proto::msg::credential_request_signed_bytes(&nonce, &key.public, &ear_digest);
    let digest: [u8; 48] = Sha384::digest(&signed).into();
    let k = ecdsa_nonce(&field("proof"), &digest, &key.secret);
    for (when, dump) in dumps.both() {
        assert_nowhere(dump, &format!("{when}, the proof of possession's ECDSA nonce"), &k);
    }
}

#[test]
fn mechanism_d_keeps_the_released_key_in_the_vault_only() {
    use p384::pkcs8::DecodePrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d");
    // The first dump while the evidence binding the CEK awaits the Key Store's release.
    let dumps = run_and_dump("d", &out, "evidence sent");
    let key = certified_key_only_in_vault(&dumps, &out);
    // The Key Store's copy of the key (provisioned for the demo workload): the same scalar.
    let id = sha2::Sha256::digest(b"spiffe://example.org/demo");
    let slot = fixture().state.join("issuer/keystore").join(&hex::encode(id)[..32]);
    let pem = std::fs::read_to_string(slot.join("key.pem")).unwrap();
    let provisioned = p384::SecretKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(*provisioned.to_nonzero_scalar(), key.secret, "the vault holds another key than the released one");
    // The ephemeral encryption key (CEK) was consumed: no vault slot holds a key for it.
    let cek = hex::decode(json(&out, "evidence.json")["public_key"].as_str().unwrap()).unwrap();
    assert!(dumps.after.vault_secret(&cek).is_none(), "the CEK's private key is still in the vault");
    // ... and while the release was outstanding, it was there, in the vault only.
    let cek_secret = dumps.during.vault_secret(&cek).expect("the CEK's private key in the vault during the run");
    assert_only_in_vault(&dumps.during, "during the run, the CEK's private key", &cek_secret);
    assert_nowhere(&dumps.after, "after the run, the CEK's private key", &cek_secret);
}
