//! The TSC's rate: where it comes from and how it is measured, as decisions the platform's clock
//! (`platform::time`) takes and the host can test. Only boot figures and waits depend on it
//! (busy retries, GetQuote's time bound); nothing security-relevant does, so an answer the host
//! influences (the PIT, a hypervisor leaf) costs accuracy, never safety.
//!
//! Sources, best first:
//! 1. CPUID leaf 0x15 (Intel SDM Vol. 2A, CPUID "Time Stamp Counter and Nominal Core Crystal
//!    Clock Information Leaf"): TSC Hz = ECX × EBX / EAX, when all three are non-zero. In a TD
//!    the TDX module virtualises this leaf (TDX Module spec, "Virtual TSC": EAX 1, EBX the TD's
//!    TSC_FREQUENCY in 25 MHz units, ECX 25 MHz), so there it is the TD's own, trusted rate.
//! 2. The PIT: channel 2 counts down from [`PIT_BACKGROUND_COUNT`] while the runtime boots and
//!    makes its first key (tens of milliseconds under TCG), then its count and the TSC give the
//!    rate with no wait of the runtime's own; should that have taken under 5 ms, it waits for
//!    the rest, and should the count have run out, it measures a 5 ms one-shot. The wait is bounded by
//!    the TSC itself ([`PIT_WAIT_LIMIT_TICKS`]), not by a loop count: on a VMM without a PIT,
//!    or where every port read is an exit to the host, a count bound took minutes.
//! 3. Unknown: figures print as 0 and waits assume 3 GHz.

/// The PIT's input clock (Hz).
pub const PIT_HZ: u64 = 1_193_182;
/// The one-shot the PIT counts: 5966 ticks, 5 ms.
pub const PIT_CALIBRATION_TICKS: u16 = 5966;
/// The count PIT channel 2 starts from at boot, counting down (mode 0) while the runtime goes on
/// booting and makes its first key: 65,535 ticks, 54.9 ms. Read afterwards, it says how long
/// that took on the PIT's clock, so the TSC is measured without a wait of its own.
pub const PIT_BACKGROUND_COUNT: u16 = u16::MAX;

/// PIT ticks elapsed since channel 2 started from [`PIT_BACKGROUND_COUNT`], from a latched
/// `count` and its OUT pin: `None` once OUT is high (the count reached zero and wrapped, so it
/// no longer tells the time).
pub fn pit_elapsed(count: u16, out_high: bool) -> Option<u16> {
    (!out_high).then(|| PIT_BACKGROUND_COUNT - count)
}

/// The most TSC ticks a PIT port access may take for the reading beside it to count: 100 µs
/// at 10 GHz. Under a hypervisor the vCPU can be descheduled for milliseconds between a port
/// access and the TSC reading; such a pair is taken again, not used.
pub const PIT_ACCESS_LIMIT_TICKS: u64 = 1_000_000;

/// How many times a PIT access is taken again when the vCPU stalled beside it; then the last
/// is used (a VMM where every port access is that slow has no better one to give).
pub const PIT_ACCESS_TRIES: u32 = 4;

/// Whether the TSC readings `before` and `after` a PIT access are close enough to stand for
/// the moment of the access.
pub fn settled(before: u64, after: u64) -> bool {
    after.wrapping_sub(before) <= PIT_ACCESS_LIMIT_TICKS
}

/// The longest the runtime waits for the PIT's one-shot, in TSC ticks: 5 ms at 10 GHz (twice
/// any TSC rate shipped), i.e. at most 50 ms on the slowest plausible TSC (1 GHz).
pub const PIT_WAIT_LIMIT_TICKS: u64 = 50_000_000;

/// Where the TSC rate came from, for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TscSource {
    /// CPUID leaf 0x15 (in a TD: the TDX module's virtual TSC frequency).
    Cpuid15,
    /// Measured against the PIT's channel 2.
    Pit,
    /// No source answered.
    Unknown,
}

impl TscSource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpuid15 => "CPUID leaf 0x15",
            Self::Pit => "the PIT",
            Self::Unknown => "unknown",
        }
    }
}

/// TSC Hz from CPUID leaf 0x15 (EAX denominator, EBX numerator, ECX crystal Hz), `None` when
/// the leaf does not enumerate it (any of the three is zero) or the answer is not plausible
/// (below 100 MHz or above 20 GHz).
pub fn from_cpuid_15(eax: u32, ebx: u32, ecx: u32) -> Option<u64> {
    if eax == 0 || ebx == 0 || ecx == 0 {
        return None;
    }
    let hz = u64::from(ecx) * u64::from(ebx) / u64::from(eax);
    (100_000_000..=20_000_000_000).contains(&hz).then_some(hz)
}

/// TSC Hz from a PIT one-shot of `pit_ticks` that took `tsc_ticks`.
pub fn from_pit(tsc_ticks: u64, pit_ticks: u16) -> u64 {
    if pit_ticks == 0 {
        return 0;
    }
    (u128::from(tsc_ticks) * u128::from(PIT_HZ) / u128::from(pit_ticks)) as u64
}

/// Whether the wait for the PIT has run out, `tsc_ticks` after it began.
pub fn pit_wait_expired(tsc_ticks: u64) -> bool {
    tsc_ticks > PIT_WAIT_LIMIT_TICKS
}

/// The rate and its source: CPUID 0x15 where the CPU (or the TDX module) enumerates it, else
/// the PIT measurement `pit` (run only when needed, `None` when the PIT never fired).
pub fn choose(cpuid_15: Option<(u32, u32, u32)>, pit: impl FnOnce() -> Option<u64>) -> (u64, TscSource) {
    if let Some(hz) = cpuid_15.and_then(|(a, b, c)| from_cpuid_15(a, b, c)) {
        return (hz, TscSource::Cpuid15);
    }
    match pit().filter(|&hz| hz > 0) {
        Some(hz) => (hz, TscSource::Pit),
        None => (0, TscSource::Unknown),
    }
}
