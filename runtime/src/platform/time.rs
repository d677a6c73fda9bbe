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

/// TSC ticks per second and where they came from (`crate::tsc`: CPUID leaf 0x15 where it is
/// enumerated — in a TD the TDX module's virtual TSC frequency — else PIT channel 2, with a wait
/// bounded by the TSC).
pub fn calibrate_tsc_hz() -> (u64, TscSource) {
    let leaf_15 = (cpuid(0, 0).eax >= 0x15).then(|| {
        let r = cpuid(0x15, 0);
        (r.eax, r.ebx, r.ecx)
    });
    let (hz, source) = tsc::choose(leaf_15, measure_with_pit);
    TSC_HZ.store(hz, Ordering::Relaxed);
    (hz, source)
}

/// The TSC rate against a 5 ms PIT one-shot; `None` when the PIT did not fire within
/// `tsc::PIT_WAIT_LIMIT_TICKS` (no PIT, or a host that does not emulate it).
fn measure_with_pit() -> Option<u64> {
    // Gate channel 2 on, speaker off.
    PORT_B.write_u8((PORT_B.read_u8() & !0x02) | 0x01);
    PIT_COMMAND.write_u8(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
    PIT_CH2_DATA.write_u8(tsc::PIT_CALIBRATION_TICKS as u8);
    PIT_CH2_DATA.write_u8((tsc::PIT_CALIBRATION_TICKS >> 8) as u8);
    let start = rdtsc();
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
