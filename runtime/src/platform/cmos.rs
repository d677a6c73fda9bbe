//! Guest RAM size from the CMOS, as QEMU's q35 fills it (bytes 0x34/0x35: RAM above 16 MiB in
//! 64 KiB units, below 4 GiB).

use super::port::Port;

const CMOS_INDEX: Port = Port::new(0x70);
const CMOS_DATA: Port = Port::new(0x71);

fn read(register: u8) -> u8 {
    CMOS_INDEX.write_u8(register | 0x80); // bit 7 keeps NMIs disabled
    CMOS_DATA.read_u8()
}

/// RAM below 4 GiB in bytes, or `None` when the CMOS says nothing (not QEMU).
pub fn low_ram_bytes() -> Option<u64> {
    let blocks = u64::from(read(0x34)) | (u64::from(read(0x35)) << 8);
    (blocks != 0).then(|| 16 * 1024 * 1024 + blocks * 64 * 1024)
}
