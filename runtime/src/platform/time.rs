//! Wall-clock measurement for the boot figures and the runtime's waits: the TSC, its rate
//! found once at boot (`crate::tsc` decides the source and bounds the PIT wait).

use super::cpu::{cpuid, rdtsc};
use super::port::Port;
use crate::tsc::{self, TscSource};

const PIT_CH2_DATA: Port = Port::new(0x42);
const PIT_COMMAND: Port = Port::new(0x43);
const PORT_B: Port = Port::new(0x61);

use core::sync::atomic::{AtomicU64, Ordering};

/// The calibrated TSC rate, for [`delay_ms`] (0 until calibrated).
static TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Busy-waits about `ms` milliseconds (TSC-timed once calibrated; before that, an assumed
/// 3 GHz, which errs towards waiting longer on slower CPUs); returns the milliseconds the TSC
/// says passed (at least `ms`).
pub fn delay_ms(ms: u64) -> u64 {
    let hz = match TSC_HZ.load(Ordering::Relaxed) {
        0 => 3_000_000_000,
        hz => hz,
    };
    let start = rdtsc();
    let ticks = hz / 1000 * ms;
    let mut elapsed = 0;
    while elapsed < ticks {
        core::hint::spin_loop();
        elapsed = rdtsc().wrapping_sub(start);
    }
    elapsed / (hz / 1000).max(1)
}

/// A measurement of the TSC's rate begun at boot ([`begin_calibration`]) and read once the
/// first key is made ([`finish_calibration`]): the PIT counts meanwhile, so no one waits for it.
#[derive(Debug)]
pub struct Calibration {
    leaf_15: Option<(u32, u32, u32)>,
    /// The TSC when PIT channel 2 began counting down (none where CPUID 0x15 answers).
    pit_started: Option<u64>,
}

/// CPUID leaf 0x15 where the CPU (or the TDX module) enumerates it; otherwise PIT channel 2
/// starts counting down from `tsc::PIT_BACKGROUND_COUNT`.
pub fn begin_calibration() -> Calibration {
    let leaf_15 = (cpuid(0, 0).eax >= 0x15).then(|| {
        let r = cpuid(0x15, 0);
        (r.eax, r.ebx, r.ecx)
    });
    let known = leaf_15.and_then(|(a, b, c)| tsc::from_cpuid_15(a, b, c)).is_some();
    let pit_started = (!known).then(|| start_pit(tsc::PIT_BACKGROUND_COUNT));
    Calibration { leaf_15, pit_started }
}

/// TSC ticks per second and where they came from (`crate::tsc`: CPUID leaf 0x15 where it is
/// enumerated — in a TD the TDX module's virtual TSC frequency — else the PIT count begun at
/// boot, else a 5 ms PIT one-shot, each wait bounded by the TSC).
pub fn finish_calibration(calibration: Calibration) -> (u64, TscSource) {
    let pit = || calibration.pit_started.and_then(read_background_pit).or_else(measure_with_pit);
    let (hz, source) = tsc::choose(calibration.leaf_15, pit);
    TSC_HZ.store(hz, Ordering::Relaxed);
    (hz, source)
}

/// Starts channel 2 counting down from `count` (mode 0, OUT low until zero); returns the TSC
/// when it started. Written again (up to `tsc::PIT_ACCESS_TRIES` times) should the vCPU have
/// stalled around the write: a stall there is time the TSC counts and the PIT does not.
fn start_pit(count: u16) -> u64 {
    // Gate channel 2 on, speaker off.
    PORT_B.write_u8((PORT_B.read_u8() & !0x02) | 0x01);
    let mut tries = 0;
    loop {
        let before = rdtsc();
        PIT_COMMAND.write_u8(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
        PIT_CH2_DATA.write_u8(count as u8);
        PIT_CH2_DATA.write_u8((count >> 8) as u8);
        let after = rdtsc();
        tries += 1;
        if tsc::settled(before, after) || tries == tsc::PIT_ACCESS_TRIES {
            return after;
        }
    }
}

/// The TSC rate from the count begun at `started`: at least `tsc::PIT_CALIBRATION_TICKS` of
/// it (waiting for the rest if need be), latched beside a TSC reading (taken again, up to
/// `tsc::PIT_ACCESS_TRIES` times, should the vCPU have stalled there); `None` when the count
/// ran out or the wait for it did.
fn read_background_pit(started: u64) -> Option<u64> {
    let mut tries = 0;
    loop {
        let before = rdtsc();
        PIT_COMMAND.write_u8(0b1000_0000); // latch channel 2's count
        let now = rdtsc();
        let count = u16::from_le_bytes([PIT_CH2_DATA.read_u8(), PIT_CH2_DATA.read_u8()]);
        let elapsed = tsc::pit_elapsed(count, PORT_B.read_u8() & 0x20 != 0)?;
        if elapsed >= tsc::PIT_CALIBRATION_TICKS {
            tries += 1;
            if tsc::settled(before, now) || tries == tsc::PIT_ACCESS_TRIES {
                return Some(tsc::from_pit(now.wrapping_sub(started), elapsed));
            }
        } else if tsc::pit_wait_expired(now.wrapping_sub(started)) {
            return None;
        }
    }
}

/// The TSC rate against a 5 ms PIT one-shot; `None` when the PIT did not fire within
/// `tsc::PIT_WAIT_LIMIT_TICKS` (no PIT, or a host that does not emulate it).
fn measure_with_pit() -> Option<u64> {
    let start = start_pit(tsc::PIT_CALIBRATION_TICKS);
    while PORT_B.read_u8() & 0x20 == 0 {
        if tsc::pit_wait_expired(rdtsc().wrapping_sub(start)) {
            return None;
        }
    }
    Some(tsc::from_pit(rdtsc().wrapping_sub(start), tsc::PIT_CALIBRATION_TICKS))
}

/// Microseconds between two TSC readings, or 0 when the TSC rate is unknown.
pub fn micros(tsc_hz: u64, from: u64, to: u64) -> u64 {
    if tsc_hz == 0 {
        return 0;
    }
    (u128::from(to.wrapping_sub(from)) * 1_000_000 / u128::from(tsc_hz)) as u64
}
