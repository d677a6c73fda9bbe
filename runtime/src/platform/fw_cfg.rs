//! QEMU's fw_cfg device through the HAL's port I/O (selector 0x510, data 0x511): what the RAM
//! check needs, the `etc/e820` table (`crate::memory_map` parses it and explains why), and
//! whether the host loader offers the channel ring (`opt/twi/ring`; the runtime's transport module). The
//! bytes are the host's: they are copied once into a private buffer and parsed there.

use super::hal::hal;
use crate::memory_map::{self, DATA_PORT, E820_ENTRY_LEN, MemoryMapError, SELECTOR_PORT};

/// The e820 entries read at most (QEMU writes a handful).
const MAX_E820_ENTRIES: usize = 32;

fn select(key: u16) {
    hal().io_write(SELECTOR_PORT, 2, u32::from(key));
}

fn read_u8() -> u8 {
    hal().io_read(DATA_PORT, 1) as u8
}

/// `name`'s directory entry; `NoFwCfg` without the device, `NoE820` without the file.
fn find(name: &str) -> Result<memory_map::FwCfgFile, MemoryMapError> {
    select(memory_map::SELECT_SIGNATURE);
    let signature = [read_u8(), read_u8(), read_u8(), read_u8()];
    if signature != memory_map::SIGNATURE {
        return Err(MemoryMapError::NoFwCfg);
    }
    select(memory_map::SELECT_FILE_DIR);
    memory_map::find_file(read_u8, name)
}

/// Whether fw_cfg has a file `name` (a host's offer: untrusted, used only to choose a transport).
pub fn has_file(name: &str) -> bool {
    find(name).is_ok()
}

/// The end of the RAM that runs from address 0, from fw_cfg's `etc/e820`.
pub fn ram_from_zero() -> Result<u64, MemoryMapError> {
    let file = find(memory_map::E820_FILE)?;
    select(file.select);
    let mut table = [0u8; MAX_E820_ENTRIES * E820_ENTRY_LEN];
    let len = (file.size as usize).min(table.len());
    table[..len].iter_mut().for_each(|b| *b = read_u8());
    Ok(memory_map::ram_from_zero(memory_map::e820_entries(&table[..len])))
}
