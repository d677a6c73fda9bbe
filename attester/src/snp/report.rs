//! The SEV-SNP `ATTESTATION_REPORT` (SEV-SNP Firmware ABI spec, Table "ATTESTATION_REPORT
//! Structure"): 1184 bytes, all integers little-endian.
//!
//! ```text
//! 0x000 u32 VERSION            0x0C0 [32] HOST_DATA          0x1E8 u8  CURRENT_BUILD
//! 0x004 u32 GUEST_SVN          0x0E0 [48] ID_KEY_DIGEST      0x1E9 u8  CURRENT_MINOR
//! 0x008 u64 POLICY             0x110 [48] AUTHOR_KEY_DIGEST  0x1EA u8  CURRENT_MAJOR
//! 0x010 [16] FAMILY_ID         0x140 [32] REPORT_ID          0x1EB     reserved
//! 0x020 [16] IMAGE_ID          0x160 [32] REPORT_ID_MA       0x1EC u8  COMMITTED_BUILD
//! 0x030 u32 VMPL               0x180 u64 REPORTED_TCB        0x1ED u8  COMMITTED_MINOR
//! 0x034 u32 SIGNATURE_ALGO     0x188 u8  CPUID_FAM_ID (v3+)  0x1EE u8  COMMITTED_MAJOR
//! 0x038 u64 CURRENT_TCB        0x189 u8  CPUID_MOD_ID (v3+)  0x1EF     reserved
//! 0x040 u64 PLATFORM_INFO      0x18A u8  CPUID_STEP   (v3+)  0x1F0 u64 LAUNCH_TCB
//! 0x048 u32 KEY_INFO (flags)   0x18B..0x1A0 reserved         0x1F8 u64 LAUNCH_MIT_VECTOR  (v5)
//! 0x04C     reserved           0x1A0 [64] CHIP_ID            0x200 u64 CURRENT_MIT_VECTOR (v5)
//! 0x050 [64] REPORT_DATA       0x1E0 u64 COMMITTED_TCB       0x208..0x2A0 reserved
//! 0x090 [48] MEASUREMENT
//! 0x2A0 SIGNATURE (512): R (72, little-endian) at 0x2A0, S (72, little-endian) at 0x2E8,
//!       reserved 0x330..0x4A0. The signature covers bytes 0x000..0x2A0.
//! ```
//!
//! **Reserved bytes.** [`AttestationReport`] does not store reserved bytes: [`parse`] ignores
//! them and [`to_bytes`] writes zeros. The firmware defines them as must-be-zero, and all three
//! real reports used in the tests have them zero, so `to_bytes(parse(b)) == b` holds for them
//! byte for byte. Verify the signature over the *received* bytes ([`signed_region`]), never
//! over a re-encoding. The version-dependent fields (CPUID_* for v3+, *_MIT_VECTOR for v5) are
//! always read and written at their offsets; in older versions those bytes are reserved and zero.
//! Version 4 has the version 3 layout (see [`SUPPORTED_VERSIONS`]).
//!
//! [`parse`]: AttestationReport::parse
//! [`to_bytes`]: AttestationReport::to_bytes

use crate::bytes::{Buf, BufMut};
use core::fmt;

/// Total size of the report.
pub const REPORT_SIZE: usize = 1184;
/// Bytes `0..SIGNED_LEN` are signed.
pub const SIGNED_LEN: usize = 0x2A0;
/// Report versions this parser accepts.
///
/// Version 4 is not in a public revision of the ABI spec, but real firmware emits it: AMD
/// SEV firmware 1.55.31 (Milan, e.g. on Google Cloud) and some Turin firmware produce
/// version 4 reports, which virtee/sev (PR #307), go-sev-guest (PR #158) and Trustee (PR #734)
/// accept with the version 3 layout, as AMD's maintainers confirmed there that the change
/// is internal. So does this parser: the CPUID fields are read, the mitigation vectors of
/// version 5 are reserved (zero) in it as in version 3.
pub const SUPPORTED_VERSIONS: [u32; 4] = [2, 3, 4, 5];

/// Field offsets, as in the spec table.
pub mod offset {
    pub const VERSION: usize = 0x000;
    pub const GUEST_SVN: usize = 0x004;
    pub const POLICY: usize = 0x008;
    pub const FAMILY_ID: usize = 0x010;
    pub const IMAGE_ID: usize = 0x020;
    pub const VMPL: usize = 0x030;
    pub const SIGNATURE_ALGO: usize = 0x034;
    pub const CURRENT_TCB: usize = 0x038;
    pub const PLATFORM_INFO: usize = 0x040;
    pub const KEY_INFO: usize = 0x048;
    pub const REPORT_DATA: usize = 0x050;
    pub const MEASUREMENT: usize = 0x090;
    pub const HOST_DATA: usize = 0x0C0;
    pub const ID_KEY_DIGEST: usize = 0x0E0;
    pub const AUTHOR_KEY_DIGEST: usize = 0x110;
    pub const REPORT_ID: usize = 0x140;
    pub const REPORT_ID_MA: usize = 0x160;
    pub const REPORTED_TCB: usize = 0x180;
    pub const CPUID_FAM_ID: usize = 0x188;
    pub const CPUID_MOD_ID: usize = 0x189;
    pub const CPUID_STEP: usize = 0x18A;
    pub const CHIP_ID: usize = 0x1A0;
    pub const COMMITTED_TCB: usize = 0x1E0;
    pub const CURRENT_BUILD: usize = 0x1E8;
    pub const CURRENT_MINOR: usize = 0x1E9;
    pub const CURRENT_MAJOR: usize = 0x1EA;
    pub const COMMITTED_BUILD: usize = 0x1EC;
    pub const COMMITTED_MINOR: usize = 0x1ED;
    pub const COMMITTED_MAJOR: usize = 0x1EE;
    pub const LAUNCH_TCB: usize = 0x1F0;
    pub const LAUNCH_MIT_VECTOR: usize = 0x1F8;
    pub const CURRENT_MIT_VECTOR: usize = 0x200;
    pub const SIGNATURE: usize = 0x2A0;
    pub const SIGNATURE_R: usize = 0x2A0;
    pub const SIGNATURE_S: usize = 0x2E8;
    /// First reserved byte after R and S, up to the end of the report.
    pub const SIGNATURE_RESERVED: usize = 0x330;
}

use offset::*;

/// Every field and reserved gap as `(offset, size)`, in order.
const LAYOUT: [(usize, usize); 41] = [
    (VERSION, 4),
    (GUEST_SVN, 4),
    (POLICY, 8),
    (FAMILY_ID, 16),
    (IMAGE_ID, 16),
    (VMPL, 4),
    (SIGNATURE_ALGO, 4),
    (CURRENT_TCB, 8),
    (PLATFORM_INFO, 8),
    (KEY_INFO, 4),
    (KEY_INFO + 4, 4), // reserved
    (REPORT_DATA, 64),
    (MEASUREMENT, 48),
    (HOST_DATA, 32),
    (ID_KEY_DIGEST, 48),
    (AUTHOR_KEY_DIGEST, 48),
    (REPORT_ID, 32),
    (REPORT_ID_MA, 32),
    (REPORTED_TCB, 8),
    (CPUID_FAM_ID, 1),
    (CPUID_MOD_ID, 1),
    (CPUID_STEP, 1),
    (CPUID_STEP + 1, CHIP_ID - (CPUID_STEP + 1)), // reserved
    (CHIP_ID, 64),
    (COMMITTED_TCB, 8),
    (CURRENT_BUILD, 1),
    (CURRENT_MINOR, 1),
    (CURRENT_MAJOR, 1),
    (CURRENT_MAJOR + 1, 1), // reserved
    (COMMITTED_BUILD, 1),
    (COMMITTED_MINOR, 1),
    (COMMITTED_MAJOR, 1),
    (COMMITTED_MAJOR + 1, 1), // reserved
    (LAUNCH_TCB, 8),
    (LAUNCH_MIT_VECTOR, 8),
    (CURRENT_MIT_VECTOR, 8),
    (CURRENT_MIT_VECTOR + 8, SIGNATURE - (CURRENT_MIT_VECTOR + 8)), // reserved
    (SIGNATURE_R, 72),
    (SIGNATURE_S, 72),
    (SIGNATURE_RESERVED, REPORT_SIZE - SIGNATURE_RESERVED), // reserved
    (REPORT_SIZE, 0),
];

/// True when the entries of `layout` follow each other with neither gap nor overlap.
const fn tiles(layout: &[(usize, usize)]) -> bool {
    let mut i = 1;
    while i < layout.len() {
        let (prev_off, prev_len) = layout[i - 1];
        if prev_len == 0 || prev_off + prev_len != layout[i].0 {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(REPORT_SIZE == 0x4A0);
const _: () = assert!(tiles(&LAYOUT));
const _: () = assert!(LAYOUT[0].0 == 0 && LAYOUT[LAYOUT.len() - 1].0 == REPORT_SIZE);
const _: () = assert!(SIGNATURE == SIGNED_LEN && SIGNATURE + 512 == REPORT_SIZE);
const _: () = assert!(SIGNATURE_S == SIGNATURE_R + 72 && SIGNATURE_RESERVED == SIGNATURE_S + 72);
// The last signed field ends inside the signed region; the last reserved gap closes it.
const _: () = assert!(CURRENT_MIT_VECTOR + 8 == 0x208 && 0x208 < SIGNED_LEN);

/// Why a report (or its signature) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportError {
    /// The input is not exactly [`REPORT_SIZE`] bytes.
    Length { expected: usize, actual: usize },
    /// `VERSION` is not one of [`SUPPORTED_VERSIONS`].
    UnsupportedVersion(u32),
    /// R or S has a nonzero byte above the 48 that a P-384 scalar can occupy.
    SignatureComponentTooLarge,
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { expected, actual } => {
                write!(f, "attestation report is {actual} bytes, expected {expected}")
            }
            Self::UnsupportedVersion(v) => {
                write!(f, "attestation report version {v} not supported (supported: 2, 3, 4, 5)")
            }
            Self::SignatureComponentTooLarge => f.write_str("signature R or S has nonzero bytes beyond 48"),
        }
    }
}

impl core::error::Error for ReportError {}

/// A `TCB_VERSION` (SEV-SNP ABI spec, "TCB_VERSION Structure"): a little-endian u64 whose
/// bytes are per-component security version numbers. The byte layout depends on the CPU
/// generation; see [`TcbLayout`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcbVersion(pub u64);

/// Which `TCB_VERSION` byte layout applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcbLayout {
    /// Milan and Genoa (family 19h): BOOT_LOADER byte 0, TEE byte 1, SNP byte 6,
    /// MICROCODE byte 7.
    MilanGenoa,
    /// Turin (family 1Ah): FMC byte 0, BOOT_LOADER byte 1, TEE byte 2, SNP byte 3,
    /// MICROCODE byte 7.
    Turin,
}

impl TcbLayout {
    /// The layout for a `CPUID_FAM_ID` (report v3+), if known.
    pub const fn from_cpuid_family(family: u8) -> Option<Self> {
        match family {
            0x19 => Some(Self::MilanGenoa),
            0x1A => Some(Self::Turin),
            _ => None,
        }
    }
}

/// The components of a [`TcbVersion`] under some [`TcbLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbParts {
    /// SVN of the FMC (Turin only).
    pub fmc: Option<u8>,
    pub bootloader: u8,
    pub tee: u8,
    pub snp: u8,
    pub microcode: u8,
}

impl TcbVersion {
    const fn byte(self, i: u32) -> u8 {
        (self.0 >> (8 * i)) as u8
    }
    /// The report's byte order (little-endian).
    pub const fn to_le_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }
    /// Milan/Genoa BOOT_LOADER SVN (byte 0).
    pub const fn bootloader(self) -> u8 {
        self.byte(0)
    }
    /// Milan/Genoa TEE SVN (byte 1).
    pub const fn tee(self) -> u8 {
        self.byte(1)
    }
    /// Milan/Genoa SNP firmware SVN (byte 6).
    pub const fn snp(self) -> u8 {
        self.byte(6)
    }
    /// Microcode patch level (byte 7, all layouts).
    pub const fn microcode(self) -> u8 {
        self.byte(7)
    }
    /// The components under `layout`.
    pub const fn parts(self, layout: TcbLayout) -> TcbParts {
        match layout {
            TcbLayout::MilanGenoa => TcbParts {
                fmc: None,
                bootloader: self.byte(0),
                tee: self.byte(1),
                snp: self.byte(6),
                microcode: self.byte(7),
            },
            TcbLayout::Turin => TcbParts {
                fmc: Some(self.byte(0)),
                bootloader: self.byte(1),
                tee: self.byte(2),
                snp: self.byte(3),
                microcode: self.byte(7),
            },
        }
    }
}

/// The guest policy (SEV-SNP ABI spec, "Guest Policy Structure").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GuestPolicy(pub u64);

impl GuestPolicy {
    /// What QEMU sets when no policy is given: SMT allowed and the must-be-one bit 17.
    pub const QEMU_DEFAULT: u64 = 0x30000;

    const fn bit(self, n: u32) -> bool {
        (self.0 >> n) & 1 == 1
    }
    /// Bits 7:0 — minimum ABI minor version.
    pub const fn abi_minor(self) -> u8 {
        self.0 as u8
    }
    /// Bits 15:8 — minimum ABI major version.
    pub const fn abi_major(self) -> u8 {
        (self.0 >> 8) as u8
    }
    /// Bit 16 — host SMT allowed.
    pub const fn smt(self) -> bool {
        self.bit(16)
    }
    /// Bit 17 — reserved, must be one.
    pub const fn reserved_must_be_one(self) -> bool {
        self.bit(17)
    }
    /// Bit 18 — association with a migration agent allowed.
    pub const fn migrate_ma(self) -> bool {
        self.bit(18)
    }
    /// Bit 19 — debugging allowed.
    pub const fn debug(self) -> bool {
        self.bit(19)
    }
    /// Bit 20 — guest may only run on a single socket.
    pub const fn single_socket(self) -> bool {
        self.bit(20)
    }
}

/// The key that signed the report (`KEY_INFO.SIGNING_KEY`, bits 4:2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// 0: Versioned Chip Endorsement Key.
    Vcek,
    /// 1: Versioned Loaded Endorsement Key.
    Vlek,
    /// 7: the report is not signed.
    None,
    /// Any other (reserved) encoding.
    Reserved(u8),
}

/// The `KEY_INFO` word at 0x48 (called FLAGS in older spec revisions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyInfo(pub u32);

impl KeyInfo {
    /// Bit 0 — the digest of the author key is present in `AUTHOR_KEY_DIGEST`.
    pub const fn author_key_en(self) -> bool {
        self.0 & 1 == 1
    }
    /// Bit 1 — `MASK_CHIP_KEY`: the value of `CHIP_ID` is masked (zero).
    pub const fn mask_chip_key(self) -> bool {
        (self.0 >> 1) & 1 == 1
    }
    /// Bits 4:2 — which key signed the report.
    pub const fn signing_key(self) -> SigningKey {
        match ((self.0 >> 2) & 0b111) as u8 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            other => SigningKey::Reserved(other),
        }
    }
}

/// The ECDSA P-384 signature as the report stores it (SEV-SNP ABI spec, "ECDSA Signature
/// Format"): R and S each 72 bytes, **little-endian**, zero above byte 48.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EcdsaP384Signature {
    pub r: [u8; 72],
    pub s: [u8; 72],
}

impl EcdsaP384Signature {
    /// `r ‖ s`, each as a 48-byte big-endian integer (the fixed-size form ECDSA libraries take).
    /// Fails if bytes 48..72 of R or S are not zero.
    pub fn to_big_endian_rs(&self) -> Result<[u8; 96], ReportError> {
        let high_zero = |x: &[u8; 72]| x.iter().skip(48).all(|&b| b == 0);
        if !high_zero(&self.r) || !high_zero(&self.s) {
            return Err(ReportError::SignatureComponentTooLarge);
        }
        let mut out = [0u8; 96];
        let be_r = self.r.iter().take(48).rev();
        let be_s = self.s.iter().take(48).rev();
        for (o, &b) in out.iter_mut().zip(be_r.chain(be_s)) {
            *o = b;
        }
        Ok(out)
    }

    /// The inverse of [`to_big_endian_rs`](Self::to_big_endian_rs).
    pub fn from_big_endian_rs(rs: &[u8; 96]) -> Self {
        let mut r = [0u8; 72];
        let mut s = [0u8; 72];
        for (o, &b) in r.iter_mut().zip(rs.iter().take(48).rev()) {
            *o = b;
        }
        for (o, &b) in s.iter_mut().zip(rs.iter().skip(48).rev()) {
            *o = b;
        }
        Self { r, s }
    }
}

/// A parsed SEV-SNP `ATTESTATION_REPORT` (see the [module documentation](self) for the layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestationReport {
    /// 0x000 — report format version (2, 3 or 5).
    pub version: u32,
    /// 0x004 — guest SVN from the ID block.
    pub guest_svn: u32,
    /// 0x008 — guest policy.
    pub policy: GuestPolicy,
    /// 0x010 — family ID from the ID block.
    pub family_id: [u8; 16],
    /// 0x020 — image ID from the ID block.
    pub image_id: [u8; 16],
    /// 0x030 — VMPL the report was requested at.
    pub vmpl: u32,
    /// 0x034 — signature algorithm (1 = ECDSA P-384 with SHA-384); reported as is.
    pub signature_algo: u32,
    /// 0x038 — current TCB.
    pub current_tcb: TcbVersion,
    /// 0x040 — PLATFORM_INFO bits (SMT enabled, TSME enabled, ...).
    pub platform_info: u64,
    /// 0x048 — KEY_INFO / flags.
    pub key_info: KeyInfo,
    /// 0x050 — guest-provided data; see [`crate::binding`].
    pub report_data: [u8; 64],
    /// 0x090 — launch measurement.
    pub measurement: [u8; 48],
    /// 0x0C0 — host-provided data.
    pub host_data: [u8; 32],
    /// 0x0E0 — SHA-384 of the ID public key.
    pub id_key_digest: [u8; 48],
    /// 0x110 — SHA-384 of the author public key.
    pub author_key_digest: [u8; 48],
    /// 0x140 — report ID of this guest.
    pub report_id: [u8; 32],
    /// 0x160 — report ID of the migration agent (all 0xFF when none).
    pub report_id_ma: [u8; 32],
    /// 0x180 — TCB used to derive the VCEK that signed the report.
    pub reported_tcb: TcbVersion,
    /// 0x188 — CPUID family (v3+; zero/reserved in v2).
    pub cpuid_fam_id: u8,
    /// 0x189 — CPUID model (v3+).
    pub cpuid_mod_id: u8,
    /// 0x18A — CPUID stepping (v3+).
    pub cpuid_step: u8,
    /// 0x1A0 — chip identifier (zero when masked or signed by a VLEK).
    pub chip_id: [u8; 64],
    /// 0x1E0 — committed TCB.
    pub committed_tcb: TcbVersion,
    /// 0x1E8 — current firmware build.
    pub current_build: u8,
    /// 0x1E9 — current firmware minor version.
    pub current_minor: u8,
    /// 0x1EA — current firmware major version.
    pub current_major: u8,
    /// 0x1EC — committed firmware build.
    pub committed_build: u8,
    /// 0x1ED — committed firmware minor version.
    pub committed_minor: u8,
    /// 0x1EE — committed firmware major version.
    pub committed_major: u8,
    /// 0x1F0 — current TCB at launch.
    pub launch_tcb: TcbVersion,
    /// 0x1F8 — LAUNCH_MIT_VECTOR (v5; zero/reserved before).
    pub launched_mit_vector: u64,
    /// 0x200 — CURRENT_MIT_VECTOR (v5; zero/reserved before).
    pub current_mit_vector: u64,
    /// 0x2A0 — signature over bytes 0x000..0x2A0.
    pub signature: EcdsaP384Signature,
}

/// The signed bytes `0x000..0x2A0` of a raw report, after checking it is exactly
/// [`REPORT_SIZE`] bytes. (The version is not checked here.)
pub fn signed_region(bytes: &[u8]) -> Result<&[u8], ReportError> {
    let b: &[u8; REPORT_SIZE] = exact(bytes)?;
    let (signed, _) = b.split_at(SIGNED_LEN);
    Ok(signed)
}

fn exact(bytes: &[u8]) -> Result<&[u8; REPORT_SIZE], ReportError> {
    bytes.try_into().map_err(|_| ReportError::Length { expected: REPORT_SIZE, actual: bytes.len() })
}

impl AttestationReport {
    /// Parses a raw report: exactly [`REPORT_SIZE`] bytes, version in [`SUPPORTED_VERSIONS`].
    /// Reserved bytes are ignored; `signature_algo` is not judged.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let b = Buf(exact(bytes)?);
        let version = b.u32::<VERSION>();
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(ReportError::UnsupportedVersion(version));
        }
        Ok(Self {
            version,
            guest_svn: b.u32::<GUEST_SVN>(),
            policy: GuestPolicy(b.u64::<POLICY>()),
            family_id: b.get::<FAMILY_ID, 16>(),
            image_id: b.get::<IMAGE_ID, 16>(),
            vmpl: b.u32::<VMPL>(),
            signature_algo: b.u32::<SIGNATURE_ALGO>(),
            current_tcb: TcbVersion(b.u64::<CURRENT_TCB>()),
            platform_info: b.u64::<PLATFORM_INFO>(),
            key_info: KeyInfo(b.u32::<KEY_INFO>()),
            report_data: b.get::<REPORT_DATA, 64>(),
            measurement: b.get::<MEASUREMENT, 48>(),
            host_data: b.get::<HOST_DATA, 32>(),
            id_key_digest: b.get::<ID_KEY_DIGEST, 48>(),
            author_key_digest: b.get::<AUTHOR_KEY_DIGEST, 48>(),
            report_id: b.get::<REPORT_ID, 32>(),
            report_id_ma: b.get::<REPORT_ID_MA, 32>(),
            reported_tcb: TcbVersion(b.u64::<REPORTED_TCB>()),
            cpuid_fam_id: b.u8::<CPUID_FAM_ID>(),
            cpuid_mod_id: b.u8::<CPUID_MOD_ID>(),
            cpuid_step: b.u8::<CPUID_STEP>(),
            chip_id: b.get::<CHIP_ID, 64>(),
            committed_tcb: TcbVersion(b.u64::<COMMITTED_TCB>()),
            current_build: b.u8::<CURRENT_BUILD>(),
            current_minor: b.u8::<CURRENT_MINOR>(),
            current_major: b.u8::<CURRENT_MAJOR>(),
            committed_build: b.u8::<COMMITTED_BUILD>(),
            committed_minor: b.u8::<COMMITTED_MINOR>(),
            committed_major: b.u8::<COMMITTED_MAJOR>(),
            launch_tcb: TcbVersion(b.u64::<LAUNCH_TCB>()),
            launched_mit_vector: b.u64::<LAUNCH_MIT_VECTOR>(),
            current_mit_vector: b.u64::<CURRENT_MIT_VECTOR>(),
            signature: EcdsaP384Signature { r: b.get::<SIGNATURE_R, 72>(), s: b.get::<SIGNATURE_S, 72>() },
        })
    }

    /// Encodes the report; reserved bytes are zero. Inverse of [`parse`](Self::parse).
    pub fn to_bytes(&self) -> [u8; REPORT_SIZE] {
        let mut out = [0u8; REPORT_SIZE];
        let mut w = BufMut(&mut out);
        w.u32::<VERSION>(self.version);
        w.u32::<GUEST_SVN>(self.guest_svn);
        w.u64::<POLICY>(self.policy.0);
        w.put::<FAMILY_ID, 16>(self.family_id);
        w.put::<IMAGE_ID, 16>(self.image_id);
        w.u32::<VMPL>(self.vmpl);
        w.u32::<SIGNATURE_ALGO>(self.signature_algo);
        w.u64::<CURRENT_TCB>(self.current_tcb.0);
        w.u64::<PLATFORM_INFO>(self.platform_info);
        w.u32::<KEY_INFO>(self.key_info.0);
        w.put::<REPORT_DATA, 64>(self.report_data);
        w.put::<MEASUREMENT, 48>(self.measurement);
        w.put::<HOST_DATA, 32>(self.host_data);
        w.put::<ID_KEY_DIGEST, 48>(self.id_key_digest);
        w.put::<AUTHOR_KEY_DIGEST, 48>(self.author_key_digest);
        w.put::<REPORT_ID, 32>(self.report_id);
        w.put::<REPORT_ID_MA, 32>(self.report_id_ma);
        w.u64::<REPORTED_TCB>(self.reported_tcb.0);
        w.u8::<CPUID_FAM_ID>(self.cpuid_fam_id);
        w.u8::<CPUID_MOD_ID>(self.cpuid_mod_id);
        w.u8::<CPUID_STEP>(self.cpuid_step);
        w.put::<CHIP_ID, 64>(self.chip_id);
        w.u64::<COMMITTED_TCB>(self.committed_tcb.0);
        w.u8::<CURRENT_BUILD>(self.current_build);
        w.u8::<CURRENT_MINOR>(self.current_minor);
        w.u8::<CURRENT_MAJOR>(self.current_major);
        w.u8::<COMMITTED_BUILD>(self.committed_build);
        w.u8::<COMMITTED_MINOR>(self.committed_minor);
        w.u8::<COMMITTED_MAJOR>(self.committed_major);
        w.u64::<LAUNCH_TCB>(self.launch_tcb.0);
        w.u64::<LAUNCH_MIT_VECTOR>(self.launched_mit_vector);
        w.u64::<CURRENT_MIT_VECTOR>(self.current_mit_vector);
        w.put::<SIGNATURE_R, 72>(self.signature.r);
        w.put::<SIGNATURE_S, 72>(self.signature.s);
        out
    }

    /// `KEY_INFO.SIGNING_KEY`.
    pub const fn signing_key(&self) -> SigningKey {
        self.key_info.signing_key()
    }
    /// `KEY_INFO.AUTHOR_KEY_EN`.
    pub const fn author_key_en(&self) -> bool {
        self.key_info.author_key_en()
    }
    /// `KEY_INFO.MASK_CHIP_KEY`.
    pub const fn mask_chip_key(&self) -> bool {
        self.key_info.mask_chip_key()
    }
    /// The TCB layout named by `CPUID_FAM_ID` (v3+ only; `None` for v2 or an unknown family,
    /// where the caller must know the product from elsewhere, e.g. the VCEK certificate).
    pub const fn tcb_layout(&self) -> Option<TcbLayout> {
        if self.version >= 3 { TcbLayout::from_cpuid_family(self.cpuid_fam_id) } else { None }
    }
}

/// What the guest itself reads from its own report before it sends it on: only fields whose
/// offsets every report version shares (VMPL, REPORT_DATA, COMMITTED_TCB), and the length. It
/// does not judge the version: a firmware update that brings a new report version must not stop
/// attestation, and the verifier, which parses with [`AttestationReport::parse`], decides what
/// it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestView {
    pub version: u32,
    pub vmpl: u32,
    pub report_data: [u8; 64],
    pub committed_tcb: TcbVersion,
}

impl GuestView {
    /// Reads a report of exactly [`REPORT_SIZE`] bytes, whatever its version.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        let b = Buf(exact(bytes)?);
        Ok(Self {
            version: b.u32::<VERSION>(),
            vmpl: b.u32::<VMPL>(),
            report_data: b.get::<REPORT_DATA, 64>(),
            committed_tcb: TcbVersion(b.u64::<COMMITTED_TCB>()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with a distinct marker byte in every field: field `i` of the table below is
    /// filled with the byte `i + 1`.
    fn marked() -> AttestationReport {
        let m = |i: u8| i + 1;
        AttestationReport {
            version: u32::from_ne_bytes([m(0); 4]),
            guest_svn: u32::from_ne_bytes([m(1); 4]),
            policy: GuestPolicy(u64::from_ne_bytes([m(2); 8])),
            family_id: [m(3); 16],
            image_id: [m(4); 16],
            vmpl: u32::from_ne_bytes([m(5); 4]),
            signature_algo: u32::from_ne_bytes([m(6); 4]),
            current_tcb: TcbVersion(u64::from_ne_bytes([m(7); 8])),
            platform_info: u64::from_ne_bytes([m(8); 8]),
            key_info: KeyInfo(u32::from_ne_bytes([m(9); 4])),
            report_data: [m(10); 64],
            measurement: [m(11); 48],
            host_data: [m(12); 32],
            id_key_digest: [m(13); 48],
            author_key_digest: [m(14); 48],
            report_id: [m(15); 32],
            report_id_ma: [m(16); 32],
            reported_tcb: TcbVersion(u64::from_ne_bytes([m(17); 8])),
            cpuid_fam_id: m(18),
            cpuid_mod_id: m(19),
            cpuid_step: m(20),
            chip_id: [m(21); 64],
            committed_tcb: TcbVersion(u64::from_ne_bytes([m(22); 8])),
            current_build: m(23),
            current_minor: m(24),
            current_major: m(25),
            committed_build: m(26),
            committed_minor: m(27),
            committed_major: m(28),
            launch_tcb: TcbVersion(u64::from_ne_bytes([m(29); 8])),
            launched_mit_vector: u64::from_ne_bytes([m(30); 8]),
            current_mit_vector: u64::from_ne_bytes([m(31); 8]),
            signature: EcdsaP384Signature { r: [m(32); 72], s: [m(33); 72] },
        }
    }

    /// Byte positions written as literals from the spec table, independent of the constants.
    const SPEC: [(usize, usize); 34] = [
        (0x000, 4),
        (0x004, 4),
        (0x008, 8),
        (0x010, 16),
        (0x020, 16),
        (0x030, 4),
        (0x034, 4),
        (0x038, 8),
        (0x040, 8),
        (0x048, 4),
        (0x050, 64),
        (0x090, 48),
        (0x0C0, 32),
        (0x0E0, 48),
        (0x110, 48),
        (0x140, 32),
        (0x160, 32),
        (0x180, 8),
        (0x188, 1),
        (0x189, 1),
        (0x18A, 1),
        (0x1A0, 64),
        (0x1E0, 8),
        (0x1E8, 1),
        (0x1E9, 1),
        (0x1EA, 1),
        (0x1EC, 1),
        (0x1ED, 1),
        (0x1EE, 1),
        (0x1F0, 8),
        (0x1F8, 8),
        (0x200, 8),
        (0x2A0, 72),
        (0x2E8, 72),
    ];

    #[test]
    fn every_field_at_its_spec_offset() {
        let bytes = marked().to_bytes();
        let mut covered = [false; REPORT_SIZE];
        for (i, &(off, len)) in SPEC.iter().enumerate() {
            let want = i as u8 + 1;
            assert!(
                bytes[off..off + len].iter().all(|&b| b == want),
                "field #{i} at {off:#x}+{len}: {:02x?}",
                &bytes[off..off + len]
            );
            covered[off..off + len].iter_mut().for_each(|c| *c = true);
        }
        // Everything else is reserved and written as zero.
        for (i, (&b, &c)) in bytes.iter().zip(covered.iter()).enumerate() {
            assert!(c || b == 0, "reserved byte {i:#x} is {b:#x}");
        }
        // The named constants agree with the literals.
        let consts = [
            VERSION,
            GUEST_SVN,
            POLICY,
            FAMILY_ID,
            IMAGE_ID,
            VMPL,
            SIGNATURE_ALGO,
            CURRENT_TCB,
            PLATFORM_INFO,
            KEY_INFO,
            REPORT_DATA,
            MEASUREMENT,
            HOST_DATA,
            ID_KEY_DIGEST,
            AUTHOR_KEY_DIGEST,
            REPORT_ID,
            REPORT_ID_MA,
            REPORTED_TCB,
            CPUID_FAM_ID,
            CPUID_MOD_ID,
            CPUID_STEP,
            CHIP_ID,
            COMMITTED_TCB,
            CURRENT_BUILD,
            CURRENT_MINOR,
            CURRENT_MAJOR,
            COMMITTED_BUILD,
            COMMITTED_MINOR,
            COMMITTED_MAJOR,
            LAUNCH_TCB,
            LAUNCH_MIT_VECTOR,
            CURRENT_MIT_VECTOR,
            SIGNATURE_R,
            SIGNATURE_S,
        ];
        for (c, (off, _)) in consts.iter().zip(SPEC) {
            assert_eq!(*c, off);
        }
    }

    #[test]
    fn marked_report_round_trips() {
        let mut r = marked();
        for v in SUPPORTED_VERSIONS {
            r.version = v;
            let bytes = r.to_bytes();
            assert_eq!(AttestationReport::parse(&bytes), Ok(r));
        }
    }

    #[test]
    fn lengths_and_versions() {
        let mut r = marked();
        r.version = 2;
        let bytes = r.to_bytes();
        let mut long = [0u8; REPORT_SIZE + 1];
        long[..REPORT_SIZE].copy_from_slice(&bytes);
        for input in [&bytes[..REPORT_SIZE - 1], &long[..], &[][..]] {
            let want = ReportError::Length { expected: REPORT_SIZE, actual: input.len() };
            assert_eq!(AttestationReport::parse(input), Err(want));
            assert_eq!(signed_region(input), Err(want));
        }
        for v in [0u32, 1, 6, 0x0200_0000, u32::MAX] {
            r.version = v;
            assert_eq!(AttestationReport::parse(&r.to_bytes()), Err(ReportError::UnsupportedVersion(v)));
        }
        assert_eq!(signed_region(&bytes), Ok(&bytes[..0x2A0]));
    }

    #[test]
    fn signature_big_endian() {
        let mut rs = [0u8; 96];
        for (i, b) in rs.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let sig = EcdsaP384Signature::from_big_endian_rs(&rs);
        assert_eq!(sig.r[0], 48); // least significant byte of R first
        assert_eq!(sig.r[47], 1);
        assert_eq!(sig.s[0], 96);
        assert_eq!(sig.s[47], 49);
        assert!(sig.r[48..].iter().chain(&sig.s[48..]).all(|&b| b == 0));
        assert_eq!(sig.to_big_endian_rs(), Ok(rs));
        for i in 48..72 {
            let mut bad = sig;
            bad.r[i] = 1;
            assert_eq!(bad.to_big_endian_rs(), Err(ReportError::SignatureComponentTooLarge));
            let mut bad = sig;
            bad.s[i] = 0x80;
            assert_eq!(bad.to_big_endian_rs(), Err(ReportError::SignatureComponentTooLarge));
        }
    }

    #[test]
    fn tcb_and_policy_and_key_info() {
        // Bytes 02 00 00 00 00 00 05 44 (the go-sev-guest sample's reported TCB).
        let t = TcbVersion(u64::from_le_bytes([2, 0, 0, 0, 0, 0, 5, 0x44]));
        assert_eq!((t.bootloader(), t.tee(), t.snp(), t.microcode()), (2, 0, 5, 0x44));
        assert_eq!(
            t.parts(TcbLayout::MilanGenoa),
            TcbParts { fmc: None, bootloader: 2, tee: 0, snp: 5, microcode: 0x44 }
        );
        let turin = TcbVersion(u64::from_le_bytes([1, 2, 3, 4, 0, 0, 0, 9]));
        assert_eq!(
            turin.parts(TcbLayout::Turin),
            TcbParts { fmc: Some(1), bootloader: 2, tee: 3, snp: 4, microcode: 9 }
        );
        assert_eq!(TcbLayout::from_cpuid_family(0x19), Some(TcbLayout::MilanGenoa));
        assert_eq!(TcbLayout::from_cpuid_family(0x1A), Some(TcbLayout::Turin));
        assert_eq!(TcbLayout::from_cpuid_family(0x17), None);

        let p = GuestPolicy(GuestPolicy::QEMU_DEFAULT);
        assert!(p.smt() && p.reserved_must_be_one());
        assert!(!p.migrate_ma() && !p.debug() && !p.single_socket());
        assert_eq!((p.abi_major(), p.abi_minor()), (0, 0));
        let p = GuestPolicy(0x1d_0201);
        assert!(p.smt() && !p.reserved_must_be_one() && p.migrate_ma() && p.debug());
        assert!(p.single_socket());
        assert_eq!((p.abi_major(), p.abi_minor()), (2, 1));

        assert_eq!(KeyInfo(0).signing_key(), SigningKey::Vcek);
        assert_eq!(KeyInfo(0b100).signing_key(), SigningKey::Vlek);
        assert_eq!(KeyInfo(0b11100).signing_key(), SigningKey::None);
        assert_eq!(KeyInfo(0b01000).signing_key(), SigningKey::Reserved(2));
        assert!(KeyInfo(1).author_key_en() && !KeyInfo(1).mask_chip_key());
        assert!(KeyInfo(2).mask_chip_key() && !KeyInfo(2).author_key_en());
    }

    /// No 1184-byte input makes `parse` panic; accepted inputs re-encode and re-parse to the
    /// same report, and agree with the input everywhere outside the reserved bytes.
    #[test]
    fn the_guest_view_reads_any_version_and_only_checks_the_length() {
        let mut bytes = [0u8; REPORT_SIZE];
        bytes[offset::REPORT_DATA..offset::REPORT_DATA + 64].copy_from_slice(&[0xAB; 64]);
        bytes[offset::VMPL] = 2;
        bytes[offset::COMMITTED_TCB] = 0x17;
        for version in [1u32, 2, 5, 6, 0xFFFF_FFFF] {
            bytes[..4].copy_from_slice(&version.to_le_bytes());
            let view = GuestView::parse(&bytes).unwrap();
            assert_eq!((view.version, view.vmpl, view.report_data), (version, 2, [0xAB; 64]));
            assert_eq!(view.committed_tcb, TcbVersion(0x17));
            // The verifier's parser stays strict.
            assert_eq!(AttestationReport::parse(&bytes).is_ok(), SUPPORTED_VERSIONS.contains(&version));
        }
        assert!(matches!(GuestView::parse(&bytes[..REPORT_SIZE - 1]), Err(ReportError::Length { .. })));
        assert!(matches!(GuestView::parse(&[0u8; REPORT_SIZE + 1]), Err(ReportError::Length { .. })));
    }

    #[test]
    fn parse_never_panics() {
        let mut rng = twi_testkit::TestRng(0x9E37_79B9_7F4A_7C15);
        let mut buf = [0u8; REPORT_SIZE];
        for round in 0..4000 {
            for chunk in buf.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            if round % 2 == 0 {
                let v = SUPPORTED_VERSIONS[(round / 2) % SUPPORTED_VERSIONS.len()];
                buf[..4].copy_from_slice(&v.to_le_bytes());
            }
            let _ = signed_region(&buf);
            match AttestationReport::parse(&buf) {
                Ok(r) => {
                    let again = r.to_bytes();
                    assert_eq!(AttestationReport::parse(&again), Ok(r));
                    for &(off, len) in SPEC.iter() {
                        assert_eq!(again[off..off + len], buf[off..off + len]);
                    }
                    let _ = r.signature.to_big_endian_rs();
                    let _ = r.tcb_layout();
                }
                Err(e) => assert!(matches!(e, ReportError::UnsupportedVersion(_))),
            }
        }
    }
}
