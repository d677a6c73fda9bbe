//! The decisions the runtime's machine paths take, factored out of `platform` so that the host
//! can test them: the TSC rate's source and the PIT wait's bound (`tsc`), and the RAM check from
//! QEMU's fw_cfg e820 table (`memory_map`).

use twi_runtime::tsc::{self, TscSource};

#[test]
fn cpuid_15_gives_the_tsc_rate_when_it_enumerates_one() {
    // A TD: the TDX module answers EAX 1, EBX = TSC_FREQUENCY in 25 MHz units, ECX 25 MHz.
    assert_eq!(tsc::from_cpuid_15(1, 84, 25_000_000), Some(2_100_000_000));
    // A client CPU: crystal 24 MHz, ratio 188/2.
    assert_eq!(tsc::from_cpuid_15(2, 188, 24_000_000), Some(2_256_000_000));
    // Not enumerated: a zero anywhere (ECX 0 means "see the model table", which we do not keep).
    assert_eq!(tsc::from_cpuid_15(0, 84, 25_000_000), None);
    assert_eq!(tsc::from_cpuid_15(1, 0, 25_000_000), None);
    assert_eq!(tsc::from_cpuid_15(2, 188, 0), None);
    // Implausible answers are not used.
    assert_eq!(tsc::from_cpuid_15(1, 1, 25_000_000), None);
    assert_eq!(tsc::from_cpuid_15(1, u32::MAX, u32::MAX), None);
}

#[test]
fn the_pit_is_asked_only_when_cpuid_15_says_nothing() {
    let mut asked = false;
    let chosen = tsc::choose(Some((1, 84, 25_000_000)), || {
        asked = true;
        Some(1)
    });
    assert_eq!(chosen, (2_100_000_000, TscSource::Cpuid15));
    assert!(!asked, "no PIT measurement when CPUID 0x15 answers");
    assert_eq!(tsc::choose(Some((0, 0, 0)), || Some(3_000_000_000)), (3_000_000_000, TscSource::Pit));
    assert_eq!(tsc::choose(None, || Some(2_000_000_000)), (2_000_000_000, TscSource::Pit));
    assert_eq!(tsc::choose(None, || None), (0, TscSource::Unknown));
    assert_eq!(tsc::choose(None, || Some(0)), (0, TscSource::Unknown));
    assert_eq!(TscSource::Cpuid15.name(), "CPUID leaf 0x15");
}

#[test]
fn the_pit_measurement_and_its_wait_are_bounded_by_the_tsc() {
    // 5966 PIT ticks (5 ms) took 15 M TSC ticks: 3 GHz.
    assert_eq!(tsc::from_pit(15_000_000, tsc::PIT_CALIBRATION_TICKS) / 1_000_000, 2_999);
    assert_eq!(tsc::from_pit(15_000_000, 0), 0);
    // The wait gives up after a bounded number of TSC ticks, however few port reads that is:
    // at most 50 ms on a 1 GHz TSC, 5 ms at 10 GHz.
    assert!(!tsc::pit_wait_expired(tsc::PIT_WAIT_LIMIT_TICKS));
    assert!(tsc::pit_wait_expired(tsc::PIT_WAIT_LIMIT_TICKS + 1));
    // And a PIT that fires within the bound on a fast TSC is still measured.
    let ticks_at_10_ghz = 10_000_000_000u64 * 5 / 1000;
    assert!(!tsc::pit_wait_expired(ticks_at_10_ghz));
}
