//! The boot path as hosts run it: the ROM's reset vector and boot stub under Unicorn (QEMU's
//! TCG as a library), with guest memory mapped *only* where the ROM's own metadata says the
//! launch prepares it — the ROM itself, and the SEV metadata sections (SEV-SNP) or the TDVF
//! sections (TDX), read from the ROM bytes with the same reader `twi measure` uses. Each run
//! starts from a platform's architectural start state and ends at `rust_entry`, or at the first
//! VMGEXIT / TDCALL / PVALIDATE. It fails on any access outside the mapped ranges (or a write to
//! the ROM or the CPUID page), on any exception the state does not expect, and on any
//! instruction the boot path must not execute there: CPUID, IN/OUT, RDMSR/WRMSR other than the
//! expected ones (none at all in a TD, where they raise #VE with no handler yet), HLT, UD2.
//!
//! Start states:
//! * SEV-ES/SNP reset (AMD APM Vol. 2 "Processor Initialization State", as QEMU builds the
//!   VMSA: real mode, CS.base 0xFFFF_0000, IP 0xFFF0), with SEV_STATUS as the CPU reports it
//!   and a CPUID page; the plain VM's reset is the same with an RDMSR that faults.
//! * TD initial state (Intel TDX Module ABI, "TD vCPU Initial State": 32-bit protected mode,
//!   flat segments, paging off, CR0 PE|NE, EFER LME|NXE|SCE, EBX GPAW, ESI the vCPU index).
//! * An SEV-ES AP at the reset block's address (QEMU `sev_es_set_reset_vector`: CS.base =
//!   addr & 0xFFFF_0000, IP = addr & 0xFFFF).
//!
//! Unicorn cannot load a segment cache through its API: each start state is reached by a short
//! trampoline in a scratch page (see [`trampoline`]); checking starts at the platform's entry.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::OnceLock;

use object::{Object, ObjectSymbol};
use twi_attester::snp::cpuid_page::{self, CpuidResult};
use twi_attester::snp::ghcb::msr_protocol;
use twi_host_loader::measure::firmware::Firmware;
use twi_linker::{BOOT_SCRATCH, PAGE_TABLES, ROM_BASE, ROM_SIZE, SHARED_POOL, SNP_CPUID_PAGE};
use unicorn_engine::unicorn_const::{Arch, HookType, MemType, Mode, Permission};
use unicorn_engine::{RegisterX86, Unicorn};

const GHCB_MSR: u32 = 0xC001_0130;
const SEV_STATUS_MSR: u32 = 0xC001_0131;
const EFER: u32 = 0xC000_0080;

/// The ROM and the symbols the harness stops at or checks.
struct Rom {
    bytes: Vec<u8>,
    symbols: HashMap<String, u64>,
}

fn rom() -> &'static Rom {
    static ROM: OnceLock<Rom> = OnceLock::new();
    ROM.get_or_init(|| {
        let elf_path = twi_host_loader::image::build_runtime_elf().expect("the runtime builds");
        let elf = std::fs::read(&elf_path).expect("the runtime ELF");
        let manifest = twi_proto::manifest::LaunchManifest {
            format: twi_proto::manifest::MANIFEST_FORMAT,
            issuer_anchor: vec![4; 97],
            issuer_name: "CN=boot harness".into(),
            diagnostic: Default::default(),
            settings: Vec::new(),
        };
        let bytes = twi_host_loader::image::assemble_rom(&elf, &manifest).expect("a ROM");
        let file = object::File::parse(&*elf).expect("an ELF");
        let symbols = file.symbols().filter_map(|s| Some((s.name().ok()?.to_string(), s.address()))).collect();
        Rom { bytes, symbols }
    })
}

impl Rom {
    fn symbol(&self, name: &str) -> u64 {
        *self.symbols.get(name).unwrap_or_else(|| panic!("the runtime has no symbol {name}"))
    }
}

/// What the platform's launch prepared: ranges and how the guest may use them.
#[derive(Clone, Debug)]
struct Region {
    range: Range<u64>,
    perms: Permission,
    what: String,
}

/// SEV-SNP: the ROM (launched, read-only to the guest as ROM), and the SEV metadata sections.
fn sev_regions(rom: &Rom) -> Vec<Region> {
    let firmware = Firmware::parse(&rom.bytes).expect("the ROM's GUID table");
    let mut regions =
        vec![Region { range: rom_range(), perms: Permission::READ | Permission::EXEC, what: "ROM".into() }];
    for s in firmware.sev_sections().expect("SEV metadata") {
        let range = u64::from(s.gpa)..u64::from(s.gpa) + u64::from(s.size);
        let perms = match s.kind {
            twi_linker::sev::SectionType::Cpuid => Permission::READ,
            _ => Permission::ALL,
        };
        regions.push(Region { range, perms, what: format!("SEV {:?}", s.kind) });
    }
    assert!(regions.len() > 3, "the SEV metadata declares the early RAM, secrets and CPUID pages");
    regions
}

/// TDX: the TDVF sections (the BFV is the ROM itself, measured).
fn tdvf_regions(rom: &Rom) -> Vec<Region> {
    let firmware = Firmware::parse(&rom.bytes).expect("the ROM's GUID table");
    let regions: Vec<Region> = firmware
        .tdvf_sections()
        .expect("TDVF metadata")
        .iter()
        .map(|s| {
            let bfv = s.kind == twi_linker::tdvf::SectionType::Bfv as u32;
            let perms = if bfv { Permission::READ | Permission::EXEC } else { Permission::ALL };
            Region {
                range: s.memory_address..s.memory_address + s.memory_data_size,
                perms,
                what: format!("TDVF type {}", s.kind),
            }
        })
        .collect();
    assert!(regions.iter().any(|r| r.range == rom_range()), "the BFV covers the ROM");
    regions
}

fn rom_range() -> Range<u64> {
    ROM_BASE..ROM_BASE + ROM_SIZE as u64
}

/// What happened during a run.
#[derive(Default)]
struct Trace {
    /// Why the run stopped: "rust_entry", "VMGEXIT", "TDCALL", "PVALIDATE", "HLT".
    stop: Option<&'static str>,
    /// Failures: out-of-range accesses, forbidden instructions, unexpected exceptions.
    violations: Vec<String>,
    /// Exception vectors raised (and delivered through the guest's own IDT).
    exceptions: Vec<u32>,
    /// Values written to the GHCB MSR, in order.
    ghcb_writes: Vec<u64>,
    /// MSRs read (by index), in order.
    rdmsr: Vec<u32>,
    /// Guest memory writes (address, size).
    writes: Vec<(u64, usize)>,
    /// The linear address of the instruction the run stopped at.
    stop_address: u64,
    /// An RDMSR the emulated CPU answers: at this address (the next instruction), load EDX:EAX.
    pending_rdmsr: Option<(u64, u64)>,
    /// Set once the run reaches `entry`: from then on every access and instruction is checked.
    armed: bool,
    entry: u64,
    /// The page-directory entries as the stub built them, before the harness removed the C-bit
    /// the emulated CPU does not implement (SEV-SNP runs).
    page_directory: Vec<u64>,
    /// A reset start: the first instruction's read of CR0 returns the reset value.
    reset: bool,
    /// The declared ranges.
    declared: Vec<Range<u64>>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("stop", &self.stop)
            .field("violations", &self.violations)
            .field("exceptions", &self.exceptions)
            .field("ghcb_writes", &self.ghcb_writes)
            .field("rdmsr", &self.rdmsr)
            .field("writes", &self.writes.len())
            .finish()
    }
}

/// How the emulated host answers the instructions TCG does not model.
#[derive(Clone, Copy, Debug)]
struct Host {
    /// SEV_STATUS as the CPU reports it; `None`: the MSR does not exist (#GP).
    sev_status: Option<u64>,
    /// A TD: RDMSR/WRMSR are forbidden outright.
    tdx: bool,
    stop_at: u64,
}

type Emu<'a> = Unicorn<'a, Trace>;

fn machine<'a>(rom: &Rom, regions: &[Region], host: Host) -> Emu<'a> {
    let declared = regions.iter().map(|r| r.range.clone()).collect();
    let mut emu =
        Unicorn::new_with_data(Arch::X86, Mode::MODE_64, Trace { declared, ..Trace::default() }).expect("unicorn");
    emu.mem_map(TRAMPOLINE, 0x4000, Permission::ALL).unwrap();
    for r in regions {
        emu.mem_map(r.range.start, (r.range.end - r.range.start) as usize, Permission::ALL)
            .unwrap_or_else(|e| panic!("map {} {:#x?}: {e:?}", r.what, r.range));
    }
    emu.mem_write(ROM_BASE, &rom.bytes).unwrap();
    for r in regions {
        emu.mem_protect(r.range.start, (r.range.end - r.range.start) as usize, r.perms).unwrap();
    }
    let prot = HookType::MEM_READ_UNMAPPED
        | HookType::MEM_WRITE_UNMAPPED
        | HookType::MEM_FETCH_UNMAPPED
        | HookType::MEM_WRITE_PROT
        | HookType::MEM_FETCH_PROT
        | HookType::MEM_READ_PROT;
    emu.add_mem_hook(prot, 1, 0, |uc, kind: MemType, address, size, _| {
        let rip = uc.reg_read(RegisterX86::EIP).unwrap_or(0);
        uc.get_data_mut().violations.push(format!("{kind:?} of {size} bytes at {address:#x} (eip {rip:#x})"));
        false
    })
    .unwrap();
    emu.add_mem_hook(HookType::MEM_WRITE | HookType::MEM_READ | HookType::MEM_FETCH, 1, 0, on_access).unwrap();
    emu.add_intr_hook(|uc, vector| {
        let eip = uc.reg_read(RegisterX86::RIP).unwrap_or(0);
        let cr2 = uc.reg_read(RegisterX86::CR2).unwrap_or(0);
        let trace = uc.get_data_mut();
        trace.exceptions.push(vector);
        trace.violations.push(format!("exception {vector} at rip {eip:#x} (cr2 {cr2:#x})"));
        uc.emu_stop().unwrap();
    })
    .unwrap();
    emu.add_code_hook(1, 0, move |uc, address, size| on_instruction(uc, host, address, size)).unwrap();
    emu.add_insn_invalid_hook(on_invalid).unwrap();
    emu
}

/// TCG does not decode VMGEXIT, TDCALL or PVALIDATE (no code hook runs for them): the
/// instruction after the last one seen is read and classified here.
fn on_invalid(uc: &mut Emu<'_>) -> bool {
    // EIP is the faulting instruction's; below 64 KiB it is the 16-bit code's, at CS.base
    // 0xFFFF_0000 (the only 16-bit code segment the boot path uses).
    let eip = uc.reg_read(RegisterX86::RIP).unwrap();
    let address = if eip < 0x1_0000 { 0xFFFF_0000 + eip } else { eip };
    let mut raw = [0u8; 4];
    let _ = uc.mem_read(address, &mut raw);
    let why = match raw {
        [0x66, 0x0F, 0x01, 0xCC] => "TDCALL",
        [0xF3, 0x0F, 0x01, 0xD9] => "VMGEXIT",
        [0xF2, 0x0F, 0x01, 0xFF] => "PVALIDATE",
        other => {
            uc.get_data_mut().violations.push(format!("invalid instruction {other:02x?} at {address:#x}"));
            return false;
        }
    };
    stop(uc, address, why);
    false
}

/// Every access of the armed run must fall in a declared range; writes are recorded.
fn on_access(uc: &mut Emu<'_>, kind: MemType, address: u64, size: usize, _: i64) -> bool {
    let trace = uc.get_data_mut();
    if !trace.armed {
        return true;
    }
    let end = address + size as u64;
    if !trace.declared.iter().any(|r| r.start <= address && end <= r.end) {
        trace.violations.push(format!("{kind:?} of {size} bytes at {address:#x}: not declared by the metadata"));
        uc.emu_stop().unwrap();
        return false;
    }
    if kind == MemType::WRITE {
        trace.writes.push((address, size));
    }
    true
}

/// The instruction at `address`, classified by its opcode after prefixes.
fn on_instruction(uc: &mut Emu<'_>, host: Host, address: u64, size: u32) {
    let trace = uc.get_data_mut();
    if !trace.armed {
        trace.armed = address == trace.entry;
        if !trace.armed {
            return;
        }
    }
    if trace.reset && address == 0xFFFF_FFF3 {
        // The reset vector's first instruction (mov eax, cr0) read CR0: the reset value.
        uc.reg_write(RegisterX86::EAX, 0x6000_0010).unwrap();
        uc.get_data_mut().reset = false;
    }
    if address == host.stop_at {
        return stop(uc, address, "rust_entry");
    }
    if let Some((at, value)) = uc.get_data().pending_rdmsr.filter(|&(at, _)| at == address) {
        let _ = at;
        uc.reg_write(RegisterX86::EAX, value & 0xFFFF_FFFF).unwrap();
        uc.reg_write(RegisterX86::EDX, value >> 32).unwrap();
        uc.get_data_mut().pending_rdmsr = None;
    }
    let mut bytes = vec![0u8; size as usize];
    if uc.mem_read(address, &mut bytes).is_err() {
        return;
    }
    let raw = bytes.as_slice();
    if raw.ends_with(&[0x0F, 0x01, 0xCC]) && raw.contains(&0x66) {
        return stop(uc, address, "TDCALL");
    }
    if raw.ends_with(&[0x0F, 0x01, 0xD9]) {
        return if raw.contains(&0xF3) { stop(uc, address, "VMGEXIT") } else { forbid(uc, address, "VMMCALL") };
    }
    if raw.ends_with(&[0x0F, 0x01, 0xFF]) {
        return stop(uc, address, "PVALIDATE");
    }
    let op = opcode(raw);
    match op {
        [0x0F, 0xA2] => forbid(uc, address, "CPUID"),
        [0x0F, 0x32] => rdmsr(uc, host, address, size),
        [0x0F, 0x30] => wrmsr(uc, host, address),
        [0x0F, 0x22] if raw.last() == Some(&0xC0) => before_paging(uc),
        [0xF4, _] => stop(uc, address, "HLT"),
        [0x0F, 0x0B] => forbid(uc, address, "UD2"),
        [0xE4..=0xE7, _] | [0xEC..=0xEF, _] | [0x6C..=0x6F, _] => forbid(uc, address, "IN/OUT"),
        _ => {}
    }
}

/// `mov cr0, eax`: when it turns paging on, the page tables are complete. The harness keeps the
/// page directory as built, then clears the C-bit (bit 51) the emulated CPU, which has no
/// memory encryption, would read as a reserved address bit; SEV-SNP hardware consumes it.
fn before_paging(uc: &mut Emu<'_>) {
    let cr0 = uc.reg_read(RegisterX86::EAX).unwrap();
    if cr0 & (1 << 31) == 0 || !uc.get_data().page_directory.is_empty() {
        return;
    }
    let pds = u64::from(PAGE_TABLES) + 0x2000;
    let mut raw = vec![0u8; 2048 * 8];
    uc.mem_read(pds, &mut raw).unwrap();
    let entries: Vec<u64> = raw.chunks_exact(8).map(|e| u64::from_le_bytes(e.try_into().unwrap())).collect();
    let stripped: Vec<u8> = entries.iter().flat_map(|e| (e & !(1u64 << 51)).to_le_bytes()).collect();
    uc.mem_write(pds, &stripped).unwrap();
    uc.get_data_mut().page_directory = entries;
}

/// The first two opcode bytes after legacy prefixes and a REX prefix.
fn opcode(raw: &[u8]) -> [u8; 2] {
    let mut i = 0;
    while i + 1 < raw.len()
        && matches!(raw[i], 0x66 | 0x67 | 0xF0 | 0xF2 | 0xF3 | 0x2E | 0x36 | 0x3E | 0x26 | 0x64 | 0x65)
    {
        i += 1;
    }
    if i + 1 < raw.len() && (0x40..=0x4F).contains(&raw[i]) {
        i += 1;
    }
    [raw[i], raw.get(i + 1).copied().unwrap_or(0)]
}

fn stop(uc: &mut Emu<'_>, address: u64, why: &'static str) {
    let trace = uc.get_data_mut();
    if trace.stop.is_none() {
        (trace.stop, trace.stop_address) = (Some(why), address);
    }
    uc.emu_stop().unwrap();
}

fn forbid(uc: &mut Emu<'_>, address: u64, what: &str) {
    uc.get_data_mut().violations.push(format!("{what} at {address:#x}"));
    uc.emu_stop().unwrap();
}

/// RDMSR: TCG answers an MSR it does not model with 0 (no #GP); the emulated CPU's SEV_STATUS
/// is loaded once the instruction has run, at the next one.
fn rdmsr(uc: &mut Emu<'_>, host: Host, address: u64, size: u32) {
    let msr = uc.reg_read(RegisterX86::ECX).unwrap() as u32;
    uc.get_data_mut().rdmsr.push(msr);
    match (host.tdx, msr, host.sev_status) {
        (true, ..) => forbid(uc, address, "RDMSR in a TD"),
        (false, SEV_STATUS_MSR, status) => {
            uc.get_data_mut().pending_rdmsr = Some((address + u64::from(size), status.unwrap_or(0)));
        }
        (false, EFER, _) => {}
        (false, other, _) => forbid(uc, address, &format!("RDMSR {other:#x}")),
    }
}

fn wrmsr(uc: &mut Emu<'_>, host: Host, address: u64) {
    let msr = uc.reg_read(RegisterX86::ECX).unwrap() as u32;
    let value = (uc.reg_read(RegisterX86::EDX).unwrap() << 32) | (uc.reg_read(RegisterX86::EAX).unwrap() & 0xFFFF_FFFF);
    match (host.tdx, msr) {
        (true, _) => forbid(uc, address, "WRMSR in a TD"),
        // TCG ignores a write to an MSR it does not model.
        (false, GHCB_MSR) => uc.get_data_mut().ghcb_writes.push(value),
        (false, EFER) => {}
        (false, other) => forbid(uc, address, &format!("WRMSR {other:#x}")),
    }
}

/// Where the start-state trampoline lives (outside every declared range; accesses there before
/// the run reaches the platform's entry are not checked).
const TRAMPOLINE: u64 = 0x7000_0000;

/// How a vCPU starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// SEV-ES/SNP (or plain) reset: real mode, CS.base 0xFFFF_0000, IP 0xFFF0, EFER 0.
    Reset,
    /// An SEV-ES AP at the reset block's address.
    SevEsAp,
    /// The TD vCPU initial state.
    Td,
}

impl Start {
    /// The linear address of the first instruction.
    fn entry(self) -> u64 {
        match self {
            Self::Reset | Self::Td => 0xFFFF_FFF0,
            Self::SevEsAp => u64::from(twi_linker::SEV_ES_AP_RESET),
        }
    }
}

/// Unicorn starts x86-64 in its own long mode without paging and offers no way to load a
/// segment cache or leave long mode through its API (and its 32-bit mode's CPU lacks long mode,
/// so the stub could never enter it). So the harness reaches each start state the way a CPU
/// would, with a few instructions in a scratch page: a GDT, identity page tables for itself,
/// paging on, a far return to 32-bit code, paging off (long mode ends), EFER/CR4/CR0 and the
/// data segments of the start state, then a far jump to the entry: CS 0x08 flat 32-bit (TD),
/// or CS 0x18 16-bit with base 0xFFFF_0000 (reset, SEV-ES AP). For the reset, CR0.PE is still 1
/// at the first instruction, which reads CR0: the harness makes that read return the reset
/// value 0x6000_0010; the stub's instructions before it sets PE itself behave the same either
/// way.
fn trampoline(start: Start) -> Vec<u8> {
    let t = TRAMPOLINE as u32;
    let mut page = vec![0u8; 0x4000];
    let gdt: [u64; 5] = [0, 0x00CF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0xFF00_9BFF_0000_FFFF, 0x00AF_9B00_0000_FFFF];
    for (i, d) in gdt.iter().enumerate() {
        page[i * 8..i * 8 + 8].copy_from_slice(&d.to_le_bytes());
    }
    page[0x40..0x42].copy_from_slice(&0x27u16.to_le_bytes());
    page[0x42..0x4A].copy_from_slice(&TRAMPOLINE.to_le_bytes());
    page[0x1000..0x1008].copy_from_slice(&(TRAMPOLINE + 0x2003).to_le_bytes());
    page[0x2000 + 8..0x2000 + 16].copy_from_slice(&(TRAMPOLINE + 0x3003).to_le_bytes());
    let pde = ((TRAMPOLINE >> 21) & 511) as usize;
    page[0x3000 + pde * 8..0x3000 + pde * 8 + 8].copy_from_slice(&(TRAMPOLINE | 0x83).to_le_bytes());
    let imm = |v: u32| v.to_le_bytes();
    // 64-bit: lgdt [t+0x40]; cr4 = PAE; cr3 = t+0x1000; cr0 = PE|PG; far return to 0x08:t+0x200.
    let mut code64 = vec![0x0F, 0x01, 0x14, 0x25];
    code64.extend(imm(t + 0x40));
    code64.extend([0xB8, 0x20, 0, 0, 0, 0x0F, 0x22, 0xE0, 0xB8]);
    code64.extend(imm(t + 0x1000));
    code64.extend([0x0F, 0x22, 0xD8, 0xB8, 0x01, 0, 0, 0x80, 0x0F, 0x22, 0xC0, 0x6A, 0x08, 0x68]);
    code64.extend(imm(t + 0x200));
    code64.extend([0x48, 0xCB]);
    page[0x100..0x100 + code64.len()].copy_from_slice(&code64);
    let (efer, cr4, cr0, selector, offset) = match start {
        Start::Td => (0x901, 0x40, 0x21, 0x08u16, 0xFFFF_FFF0u32),
        Start::Reset => (0, 0, 0x11, 0x18, 0xFFF0),
        Start::SevEsAp => (0, 0, 0x11, 0x18, twi_linker::SEV_ES_AP_RESET & 0xFFFF),
    };
    // 32-bit: cr0 = PE (paging and long mode off); EFER; CR4; CR0; data segments; far jump.
    let mut code32 = vec![0xB8, 0x01, 0, 0, 0, 0x0F, 0x22, 0xC0, 0xB9, 0x80, 0, 0, 0xC0, 0xB8];
    code32.extend(imm(efer));
    code32.extend([0x31, 0xD2, 0x0F, 0x30, 0xB8]);
    code32.extend(imm(cr4));
    code32.extend([0x0F, 0x22, 0xE0, 0xB8]);
    code32.extend(imm(cr0));
    code32.extend([0x0F, 0x22, 0xC0, 0x66, 0xB8, 0x10, 0x00, 0x8E, 0xD8, 0x8E, 0xC0, 0x8E, 0xD0, 0xEA]);
    code32.extend(imm(offset));
    code32.extend(selector.to_le_bytes());
    page[0x200..0x200 + code32.len()].copy_from_slice(&code32);
    page
}

/// Runs vCPU state `start` (through the trampoline) for at most `count` instructions after
/// the trampoline (0: no bound).
fn run(emu: &mut Emu<'_>, start: Start, count: usize) {
    emu.mem_write(TRAMPOLINE, &trampoline(start)).unwrap();
    let trace = emu.get_data_mut();
    (trace.stop, trace.armed, trace.entry, trace.reset) = (None, false, start.entry(), start == Start::Reset);
    emu.reg_write(RegisterX86::RSP, TRAMPOLINE + 0x3FF0).unwrap(); // the far return's stack
    let bound = if count == 0 { 0 } else { count + TRAMPOLINE_INSTRUCTIONS };
    let result = emu.emu_start(TRAMPOLINE + 0x100, u64::MAX, 20_000_000, bound);
    record_end(emu, result);
}

/// An emulation error is a violation, unless the run stopped at an instruction TCG cannot
/// decode (VMGEXIT, TDCALL, PVALIDATE: Unicorn then reports it invalid).
fn record_end(emu: &mut Emu<'_>, result: Result<(), unicorn_engine::unicorn_const::uc_error>) {
    let trace = emu.get_data_mut();
    if let Err(e) = result {
        let decoded_stop = trace.stop.is_some() && e == unicorn_engine::unicorn_const::uc_error::INSN_INVALID;
        if trace.violations.is_empty() && !decoded_stop {
            trace.violations.push(format!("emulation stopped with {e:?}"));
        }
    }
}

/// Instructions the trampoline executes before the entry.
const TRAMPOLINE_INSTRUCTIONS: usize = 40;

/// Resumes after a stop at an instruction of `len` bytes in 16-bit code at CS.base 0xFFFF_0000
/// (the hypervisor returned from VMGEXIT).
fn resume_16(emu: &mut Emu<'_>, len: u64) {
    let ip = emu.get_data().stop_address + len - 0xFFFF_0000;
    emu.get_data_mut().stop = None;
    let result = emu.emu_start(ip, u64::MAX, 20_000_000, 0);
    record_end(emu, result);
}

fn read_u32(emu: &Emu<'_>, address: u64) -> u32 {
    let mut b = [0u8; 4];
    emu.mem_read(address, &mut b).unwrap();
    u32::from_le_bytes(b)
}

fn read_u64(emu: &Emu<'_>, address: u64) -> u64 {
    let mut b = [0u8; 8];
    emu.mem_read(address, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn assert_clean(emu: &Emu<'_>, stop: &str) {
    let trace = emu.get_data();
    assert!(trace.violations.is_empty(), "violations: {:#?}\ntrace: {trace:?}", trace.violations);
    assert_eq!(trace.stop, Some(stop), "{trace:?}");
}

/// The page-directory entries the stub built (2048 × 2 MiB) and the shared pool's index.
fn page_directory(emu: &Emu<'_>) -> (Vec<u64>, usize) {
    let built = emu.get_data().page_directory.clone();
    assert_eq!(built.len(), 2048, "the stub turned paging on");
    (built, SHARED_POOL.start >> 21)
}

/// The CPUID page the PSP validated, naming C-bit position `c_bit` (or no 0x8000_001F leaf).
fn cpuid_page(c_bit: Option<u32>) -> [u8; cpuid_page::PAGE_SIZE] {
    let leaf = |ebx| (0x8000_001F, 0, CpuidResult { eax: 0x1_0003, ebx, ecx: 0, edx: 0 });
    let basic = (0, 0, CpuidResult { eax: 0xD, ebx: 0, ecx: 0, edx: 0 });
    match c_bit {
        Some(bit) => cpuid_page::build(&[basic, leaf(bit)]),
        None => cpuid_page::build(&[basic]),
    }
}

fn sev_reset(sev_status: Option<u64>, c_bit: Option<u32>) -> Emu<'static> {
    let rom = rom();
    let host = Host { sev_status, tdx: false, stop_at: rom.symbol("rust_entry") };
    let mut emu = machine(rom, &sev_regions(rom), host);
    emu.mem_protect(SNP_CPUID_PAGE, 0x1000, Permission::ALL).unwrap();
    emu.mem_write(SNP_CPUID_PAGE, &cpuid_page(c_bit)).unwrap();
    emu.mem_protect(SNP_CPUID_PAGE, 0x1000, Permission::READ).unwrap();
    run(&mut emu, Start::Reset, 0);
    emu
}

#[test]
fn sev_snp_reset_reaches_rust_with_c_bit_page_tables_in_declared_memory_only() {
    let emu = sev_reset(Some(0b111), Some(51));
    assert_clean(&emu, "rust_entry");
    let trace = emu.get_data();
    assert_eq!(trace.rdmsr, [SEV_STATUS_MSR, EFER], "SEV_STATUS once, then EFER");
    assert!(trace.exceptions.is_empty(), "{:?}", trace.exceptions);
    assert!(trace.ghcb_writes.is_empty());
    assert_eq!(read_u32(&emu, u64::from(BOOT_SCRATCH) + 0x10), 51, "the C-bit from the CPUID page");
    let (pd, shared) = page_directory(&emu);
    for (i, &entry) in pd.iter().enumerate() {
        let c_bit = entry & (1 << 51) != 0;
        assert_eq!(entry & 0xFFF, 0x83, "entry {i}: present, writable, 2 MiB");
        assert_eq!(c_bit, i != shared, "entry {i}: the C-bit on all private memory, not the shared pool");
    }
    // The image was copied from the ROM to its run address.
    let rust_entry = rom().symbol("rust_entry");
    let lma = ROM_BASE + (rust_entry - rom().symbol("__image_vma_start"));
    let mut ram = [0u8; 64];
    emu.mem_read(rust_entry, &mut ram).unwrap();
    assert_eq!(&ram[..], &rom().bytes[(lma - ROM_BASE) as usize..][..64]);
}

#[test]
fn a_plain_vm_reset_reaches_rust_without_a_c_bit() {
    let emu = sev_reset(None, None);
    assert_clean(&emu, "rust_entry");
    // (TCG reads an MSR it does not model as 0 instead of raising #GP, so the stub's early #GP
    // handler is not exercised here.)
    assert_eq!(emu.get_data().rdmsr, [SEV_STATUS_MSR, EFER]);
    assert_eq!(read_u64(&emu, u64::from(BOOT_SCRATCH) + 8), 0, "SEV_STATUS reads as 0");
    let (pd, _) = page_directory(&emu);
    assert!(pd.iter().all(|e| e >> 32 == 0), "no C-bit without SEV-SNP");
}

#[test]
fn sev_snp_without_a_c_bit_in_the_cpuid_page_terminates_with_twis_reason() {
    let emu = sev_reset(Some(0b111), None);
    assert_clean(&emu, "VMGEXIT");
    let expected = msr_protocol::terminate(msr_protocol::REASON_SET_TWI, msr_protocol::twi_reason::NO_C_BIT);
    assert_eq!(emu.get_data().ghcb_writes, [expected]);
    // A C-bit position outside 32..=51 is refused the same way.
    let emu = sev_reset(Some(0b111), Some(20));
    assert_clean(&emu, "VMGEXIT");
    assert_eq!(emu.get_data().ghcb_writes, [expected]);
}

#[test]
fn sev_es_without_snp_terminates_with_the_specs_snp_unsupported() {
    let emu = sev_reset(Some(0b011), Some(51));
    assert_clean(&emu, "VMGEXIT");
    let expected = msr_protocol::terminate(msr_protocol::REASON_SET_GENERAL, msr_protocol::REASON_SNP_UNSUPPORTED);
    assert_eq!(emu.get_data().ghcb_writes, [expected]);
}

fn td(index: u64, count: usize, emu: Option<Emu<'static>>) -> Emu<'static> {
    let rom = rom();
    let mut emu = emu.unwrap_or_else(|| {
        let host = Host { sev_status: None, tdx: true, stop_at: rom.symbol("rust_entry") };
        machine(rom, &tdvf_regions(rom), host)
    });
    emu.get_data_mut().writes.clear();
    emu.reg_write(RegisterX86::RBX, 52).unwrap(); // GPAW
    emu.reg_write(RegisterX86::RSI, index).unwrap(); // the vCPU index
    run(&mut emu, Start::Td, count);
    emu
}

#[test]
fn td_vcpu0_reaches_rust_touching_only_tdvf_memory_and_no_msr() {
    let emu = td(0, 0, None);
    assert_clean(&emu, "rust_entry");
    let trace = emu.get_data();
    assert!(trace.rdmsr.is_empty() && trace.ghcb_writes.is_empty(), "no MSR access in a TD: {trace:?}");
    assert!(trace.exceptions.is_empty(), "{:?}", trace.exceptions);
    assert_eq!(read_u32(&emu, u64::from(BOOT_SCRATCH) + 0x14) & 1, 1, "the TDX flag");
    assert_eq!(read_u32(&emu, u64::from(BOOT_SCRATCH) + 0x18), 1, "APs may use the page tables");
    let (pd, _) = page_directory(&emu);
    assert!(pd.iter().all(|e| e >> 32 == 0 && e & 0xFFF == 0x83), "identity, no C-bit in a TD");
}

#[test]
fn td_application_processors_wait_for_the_page_tables_then_halt_through_tdvmcall() {
    // An AP that starts before vCPU 0 built the page tables waits, writing nothing.
    let early = td(1, 20_000, None);
    let trace = early.get_data();
    assert!(trace.violations.is_empty(), "{:#?}", trace.violations);
    assert_eq!(trace.stop, None, "still waiting after 20000 instructions");
    assert!(trace.writes.is_empty(), "an AP writes no memory: {:?}", trace.writes);
    // After vCPU 0 reached Rust, the AP enters long mode and halts with
    // TDG.VP.VMCALL<Instruction.HLT>, interrupts blocked, exposing R10-R12 only.
    let emu = td(0, 0, Some(early));
    assert_clean(&emu, "rust_entry");
    let emu = td(1, 0, Some(emu));
    assert_clean(&emu, "TDCALL");
    let reg = |r| emu.reg_read(r).unwrap();
    assert_eq!(reg(RegisterX86::RAX), 0, "TDG.VP.VMCALL");
    assert_eq!(reg(RegisterX86::RCX), 0x1C00, "R10, R11, R12 exposed");
    assert_eq!((reg(RegisterX86::R10), reg(RegisterX86::R11), reg(RegisterX86::R12)), (0, 12, 1));
    assert!(emu.get_data().writes.is_empty(), "the AP wrote memory: {:?}", emu.get_data().writes);
    assert!(emu.get_data().rdmsr.is_empty());
}

#[test]
fn an_sev_es_ap_parks_with_ap_reset_hold_and_touches_no_memory() {
    let rom = rom();
    assert_eq!(rom.symbol("ap_park_sev"), twi_linker::AP_PARK);
    let host = Host { sev_status: Some(0b111), tdx: false, stop_at: rom.symbol("rust_entry") };
    let mut emu = machine(rom, &sev_regions(rom), host);
    run(&mut emu, Start::SevEsAp, 0);
    for round in 1..=3 {
        assert_clean(&emu, "VMGEXIT");
        assert_eq!(emu.get_data().ghcb_writes.len(), round, "asks again whenever the hypervisor returns");
        resume_16(&mut emu, 4);
    }
    assert!(emu.get_data().ghcb_writes.iter().all(|&v| v == msr_protocol::AP_RESET_HOLD_REQUEST));
    assert!(emu.get_data().writes.is_empty(), "{:?}", emu.get_data().writes);
}

/// The 16 bytes at the reset vector decoded as a 16-bit CPU (legacy, SEV-ES/SNP reset) and as a
/// 32-bit one (a TD's first instruction) execute them, following the branch CR0.PE decides: the
/// same bytes must reach `boot16` in one mode and `boot32_tdx` in the other, every instruction
/// on the way decoding inside the block.
#[test]
fn the_reset_block_decodes_to_boot16_in_real_mode_and_boot32_tdx_in_a_td() {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let rom = rom();
    let at = (twi_linker::RESET_VECTOR - ROM_BASE) as usize;
    let block = &rom.bytes[at..at + 16];
    // (bitness, CR0.PE, where the block must lead, the linear address of IP 0 of CS)
    for (bitness, pe, taken, cs_base) in [(16u32, false, "boot16", 0xFFFF_0000u64), (32, true, "boot32_tdx", 0)] {
        let mut ip = twi_linker::RESET_VECTOR - cs_base;
        let mut path = Vec::new();
        let target = loop {
            let offset = (ip + cs_base - twi_linker::RESET_VECTOR) as usize;
            assert!(offset < 16, "{bitness}-bit: the path leaves the reset block: {path:?}");
            let mut decoder = Decoder::with_ip(bitness, &block[offset..], ip, DecoderOptions::NONE);
            let instruction = decoder.decode();
            assert!(!instruction.is_invalid(), "{bitness}-bit: undecodable bytes at offset {offset}: {path:?}");
            assert!(offset + instruction.len() <= 16, "{bitness}-bit: an instruction runs past the block");
            path.push(instruction.mnemonic());
            match instruction.mnemonic() {
                Mnemonic::Jne if pe => ip = instruction.near_branch_target(),
                Mnemonic::Jmp => break instruction.near_branch_target() + cs_base,
                _ => ip = instruction.next_ip(),
            }
        };
        assert_eq!(path[..3], [Mnemonic::Mov, Mnemonic::Test, Mnemonic::Jne], "{bitness}-bit path");
        assert_eq!(target, rom.symbol(taken), "{bitness}-bit reset path: {path:?}");
    }
}
