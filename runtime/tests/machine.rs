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

#[test]
fn the_pit_counting_while_the_runtime_boots_gives_the_elapsed_ticks_until_it_runs_out() {
    // Channel 2 started at 65,535 and was latched at 20,000: 45,535 ticks (38.2 ms) elapsed.
    assert_eq!(tsc::pit_elapsed(20_000, false), Some(45_535));
    assert_eq!(tsc::pit_elapsed(tsc::PIT_BACKGROUND_COUNT, false), Some(0));
    // 45,535 PIT ticks over 93.3 M TSC ticks: 2.445 GHz.
    assert_eq!(tsc::from_pit(93_325_000, 45_535) / 1_000_000, 2_445);
    // OUT high: the count reached zero and wrapped; what it reads no longer tells the time.
    assert_eq!(tsc::pit_elapsed(20_000, true), None);
    assert_eq!(tsc::pit_elapsed(0, true), None);
    // A reading the vCPU stalled beside (the TSC ran on, the access did not happen yet) is
    // taken again: 1 M TSC ticks is the most a port access may take.
    assert!(tsc::settled(5_000, 5_000 + tsc::PIT_ACCESS_LIMIT_TICKS));
    assert!(!tsc::settled(5_000, 5_001 + tsc::PIT_ACCESS_LIMIT_TICKS));
}

use twi_runtime::memory_map::{self, E820Entry, FwCfgFile, MemoryMapError};

/// A fw_cfg file directory as QEMU serves it (big-endian count and entries).
fn directory(files: &[(&str, u32, u16)]) -> Vec<u8> {
    let mut out = (files.len() as u32).to_be_bytes().to_vec();
    for (name, size, select) in files {
        let mut entry = [0u8; memory_map::DIR_ENTRY_LEN];
        entry[..4].copy_from_slice(&size.to_be_bytes());
        entry[4..6].copy_from_slice(&select.to_be_bytes());
        entry[8..8 + name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&entry);
    }
    out
}

fn e820(entries: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (address, length, kind) in entries {
        out.extend_from_slice(&address.to_le_bytes());
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
    }
    out
}

fn ram_from_zero(table: &[u8]) -> u64 {
    memory_map::ram_from_zero(memory_map::e820_entries(table))
}

#[test]
fn the_e820_file_is_found_in_the_fw_cfg_directory() {
    let dir = directory(&[("bootorder", 0, 0x20), ("etc/e820", 40, 0x23), ("etc/e820x", 1, 0x24)]);
    let mut bytes = dir.iter().copied();
    let found = memory_map::find_file(|| bytes.next().unwrap_or(0), memory_map::E820_FILE);
    assert_eq!(found, Ok(FwCfgFile { size: 40, select: 0x23 }));
    // It reads no further than the entry it needs.
    assert_eq!(bytes.len(), memory_map::DIR_ENTRY_LEN);
    let dir = directory(&[("bootorder", 0, 0x20), ("etc/e820x", 1, 0x24)]);
    let mut bytes = dir.iter().copied();
    assert_eq!(memory_map::find_file(|| bytes.next().unwrap(), "etc/e820"), Err(MemoryMapError::NoE820));
    // A hostile count is refused before anything is read for it.
    let mut reads = 0;
    let hostile = memory_map::find_file(
        || {
            reads += 1;
            0xFF
        },
        "etc/e820",
    );
    assert_eq!((hostile, reads), (Err(MemoryMapError::Directory(u32::MAX)), 4));
}

#[test]
fn ram_from_zero_merges_ram_entries_and_stops_at_a_gap() {
    // QEMU q35, -m 128M: one RAM entry from 0, and a reserved one high up.
    let table = e820(&[(0, 128 << 20, 1), (0xFEFF_C000, 0x4000, 2)]);
    assert_eq!(ram_from_zero(&table), 128 << 20);
    // 16 MiB and below, where the CMOS says nothing: the table still does.
    assert_eq!(ram_from_zero(&e820(&[(0, 16 << 20, 1)])), 16 << 20);
    // Split, out of order and overlapping entries merge; a gap ends the run; reserved is not RAM.
    let table = e820(&[(8 << 20, 8 << 20, 1), (0, 9 << 20, 1), (20 << 20, 64 << 20, 1)]);
    assert_eq!(ram_from_zero(&table), 16 << 20);
    assert_eq!(ram_from_zero(&e820(&[(0, 64 << 20, 2)])), 0);
    assert_eq!(ram_from_zero(&e820(&[(0x1000, 64 << 20, 1)])), 0, "RAM must start at 0");
    // A hostile length saturates rather than wraps; a partial trailing entry is ignored.
    assert_eq!(ram_from_zero(&e820(&[(0, u64::MAX, 1), (5, u64::MAX, 1)])), u64::MAX);
    let mut table = e820(&[(0, 32 << 20, 1)]);
    table.extend_from_slice(&[1, 2, 3]);
    assert_eq!(memory_map::e820_entries(&table).count(), 1);
    assert_eq!(
        memory_map::e820_entries(&table).next(),
        Some(E820Entry { address: 0, length: 32 << 20, kind: memory_map::E820_RAM })
    );
}

#[test]
fn the_ram_check_refuses_what_cannot_hold_the_layout() {
    let needed = 0..twi_runtime::layout::MIN_RAM_BYTES;
    assert_eq!(memory_map::check(128 << 20, needed.clone()), Ok(()));
    assert_eq!(memory_map::check(needed.end, needed.clone()), Ok(()));
    assert_eq!(memory_map::check(needed.end - 1, needed.clone()), Err(needed.end - 1));
    // 8.5-16 MiB used to pass unchecked (the CMOS counts only RAM above 16 MiB).
    assert_eq!(memory_map::check(12 << 20, needed), Err(12 << 20));
}
