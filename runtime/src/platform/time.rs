//! Wall-clock measurement for the boot figures: the TSC, calibrated once against the PIT.

use super::cpu::rdtsc;
use super::port::Port;

const PIT_HZ: u64 = 1_193_182;
const PIT_CH2_DATA: Port = Port::new(0x42);
const PIT_COMMAND: Port = Port::new(0x43);
const PORT_B: Port = Port::new(0x61);
/// 5 ms of PIT ticks: long enough for a 1% estimate, short enough not to matter at boot.
const CALIBRATION_TICKS: u16 = 5966;

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

/// TSC ticks per second, measured with PIT channel 2 in one-shot mode.
pub fn calibrate_tsc_hz() -> u64 {
    let hz = measure_tsc_hz();
    TSC_HZ.store(hz, Ordering::Relaxed);
    hz
}

fn measure_tsc_hz() -> u64 {
    // Gate channel 2 on, speaker off.
    PORT_B.write_u8((PORT_B.read_u8() & !0x02) | 0x01);
    PIT_COMMAND.write_u8(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
    PIT_CH2_DATA.write_u8(CALIBRATION_TICKS as u8);
    PIT_CH2_DATA.write_u8((CALIBRATION_TICKS >> 8) as u8);
    let start = rdtsc();
    let mut spins: u64 = 0;
    while PORT_B.read_u8() & 0x20 == 0 {
        spins += 1;
        if spins > 100_000_000 {
            return 0; // no PIT: report figures as unknown rather than hang
        }
    }
    let ticks = rdtsc().wrapping_sub(start);
    ticks * PIT_HZ / u64::from(CALIBRATION_TICKS)
}

/// Microseconds between two TSC readings, or 0 when the TSC rate is unknown.
pub fn micros(tsc_hz: u64, from: u64, to: u64) -> u64 {
    if tsc_hz == 0 {
        return 0;
    }
    (u128::from(to.wrapping_sub(from)) * 1_000_000 / u128::from(tsc_hz)) as u64
}
