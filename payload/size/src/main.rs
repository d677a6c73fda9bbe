//! A bare-metal binary that links the workload's TLS 1.3 and HTTP clients and nothing else, so
//! that `payload/size/measure` can report what they add to a ROM (issue 17's 256 KiB goal).
//!
//! Every input comes through `core::hint::black_box`, so the optimiser must keep every path a
//! real peer could drive. It is never run: it is linked to be measured.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("twi-payload-size is measured, not run: see payload/size/measure");
    std::process::exit(2);
}

#[cfg(target_os = "none")]
mod probe {
    extern crate alloc;

    use core::hint::black_box;
    use core::panic::PanicInfo;
    use core::ptr::addr_of_mut;

    use linked_list_allocator::LockedHeap;

    #[global_allocator]
    static HEAP: LockedHeap = LockedHeap::empty();

    const ARENA_BYTES: usize = 1 << 20;
    static mut ARENA: [u8; ARENA_BYTES] = [0; ARENA_BYTES];

    #[panic_handler]
    fn panic(_: &PanicInfo<'_>) -> ! {
        loop {
            core::hint::spin_loop();
        }
    }

    /// The entry point the linker looks for.
    #[unsafe(no_mangle)]
    extern "C" fn _start() -> ! {
        // SAFETY: runs once, before anything allocates; the arena is used by nothing else.
        unsafe { HEAP.lock().init(addr_of_mut!(ARENA).cast(), ARENA_BYTES) };
        #[cfg(feature = "crypto")]
        super::crypto::run();
        #[cfg(feature = "tls")]
        let _ = super::tls::run();
        black_box(());
        loop {
            core::hint::spin_loop();
        }
    }
}

/// What the runtime already links, used as the runtime uses it.
#[cfg(all(target_os = "none", feature = "crypto"))]
mod crypto {
    use core::hint::black_box;

    use aes_gcm::aead::{AeadInOut, KeyInit};
    use der::Decode;
    use p384::ecdsa::signature::{Signer, Verifier};
    use sha2::Digest;

    pub fn run() {
        let key = p384::ecdsa::SigningKey::from_slice(black_box(&[1; 48])).ok();
        if let Some(key) = key {
            let signature: p384::ecdsa::Signature = key.sign(black_box(b"csr"));
            black_box(key.verifying_key().verify(black_box(b"csr"), &signature).is_ok());
            black_box(signature.to_der());
        }
        let secret = p384::SecretKey::from_slice(black_box(&[2; 48])).ok();
        let peer = p384::PublicKey::from_sec1_bytes(black_box(&[4; 97])).ok();
        if let (Some(secret), Some(peer)) = (secret, peer) {
            let shared = secret.diffie_hellman(&peer);
            let hk = hkdf::Hkdf::<sha2::Sha384>::new(None, shared.raw_secret_bytes());
            let mut okm = [0u8; 32];
            black_box(hk.expand(b"hpke", &mut okm).is_ok());
        }
        black_box(sha2::Sha512::digest(black_box(b"reportdata")));
        black_box(sha2::Sha384::digest(black_box(b"measurement")));
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(black_box(&[3; 32]));
        if let Ok(cipher) = cipher {
            let mut buf = [0u8; 64];
            let nonce = black_box([0u8; 12]).into();
            black_box(cipher.encrypt_inout_detached(&nonce, b"", (&mut buf[..]).into()).is_ok());
        }
        black_box(x509_cert::Certificate::from_der(black_box(&[0x30, 0])).is_ok());
    }
}

/// The TLS client and HTTP over it, on a transport, key, random source and clock the optimiser
/// cannot see through.
#[cfg(all(target_os = "none", feature = "tls"))]
mod tls {
    extern crate alloc;

    use alloc::sync::Arc;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::hint::black_box;

    use twi_payload::http::{self, Limits, Request};
    use twi_payload::tls::{
        ClientKey, FixedClock, KeyError, Random, RandomError, TlsConfig, TlsStream, Transport, TransportError,
    };

    #[derive(Debug)]
    struct Wire;

    impl Transport for Wire {
        fn write_all(&mut self, buf: &[u8]) -> Result<(), TransportError> {
            black_box(buf);
            Ok(())
        }

        fn read(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
            let buf = black_box(buf);
            Ok(black_box(buf.len()))
        }
    }

    #[derive(Debug)]
    struct Source;

    impl Random for Source {
        fn fill(&self, buf: &mut [u8]) -> Result<(), RandomError> {
            black_box(buf);
            Ok(())
        }
    }

    static SOURCE: Source = Source;

    #[derive(Debug)]
    struct Vault;

    impl ClientKey for Vault {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
            Ok(black_box(message.to_vec()))
        }
    }

    pub fn run() -> Option<()> {
        let config = TlsConfig::builder(&SOURCE, Arc::new(FixedClock(black_box(0))))
            .trust_ca(black_box(&[]))
            .ok()?
            .client_certificate(vec![black_box(Vec::new())], Arc::new(Vault))
            .ok()?
            .build()
            .ok()?;
        let mut tls = TlsStream::connect(&config, black_box("db.example"), Wire).ok()?;
        let request = Request::get("db.example", black_box("/rows")).ok()?.header("Accept", "text/plain").ok()?;
        let response = http::send(&mut tls, &request, &Limits::default()).ok()?;
        black_box(response);
        tls.close().ok()
    }
}
