//! Exceptions: every CPU exception (vectors 0–31) is fatal for the runtime. The handler prints
//! the vector, error code, RIP (and CR2 for page faults) on the console and exits with the
//! failure code, so a fault is a clear test failure, never a hang.

use core::arch::global_asm;

use x86_64::VirtAddr;
use x86_64::structures::DescriptorTablePointer;

use super::hal::{ExitCode, exit};

/// What the entry stubs push, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct FaultFrame {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// One 64-bit interrupt gate (Intel SDM Vol. 3A, Figure 6-8).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}
const _: () = assert!(core::mem::size_of::<Gate>() == 16);

const CODE64_SELECTOR: u16 = 0x18; // the boot stub's GDT
const VE_VECTOR: usize = 20;
const VC_VECTOR: usize = 29;
const INTERRUPT_GATE_PRESENT: u8 = 0x8E;

impl Gate {
    const MISSING: Self =
        Self { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, reserved: 0 };

    fn interrupt(handler: u64) -> Self {
        Self {
            offset_low: handler as u16,
            selector: CODE64_SELECTOR,
            ist: 0,
            type_attr: INTERRUPT_GATE_PRESENT,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 32]);

static IDT: spin::Once<Idt> = spin::Once::new();

unsafe extern "C" {
    /// 32 entry points, 16 bytes apart, defined below.
    static fault_stubs: [u8; 32 * 16];
}

// Vectors 8, 10–14, 17, 21, 29, 30 push an error code; the others get a 0 so every frame has
// the same shape. Each stub is padded to 16 bytes so the IDT can be filled arithmetically.
global_asm!(
    r#"
    .section .text.fault_stubs, "ax"
    .balign 16
    .global fault_stubs
fault_stubs:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .balign 16
    .if (\v == 8) || (\v >= 10 && \v <= 14) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
    pushq $\v
    .else
    pushq $0
    pushq $\v
    .endif
    jmp fault_common
    .endr
fault_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    call {handler}
    ud2
    "#,
    handler = sym fault_handler,
    options(att_syntax)
);

extern "C" fn fault_handler(frame: &FaultFrame) -> ! {
    let cr2 = if frame.vector == 14 { x86_64::registers::control::Cr2::read_raw() } else { 0 };
    super::console::write_line_unlocked(format_args!(
        "FATAL: CPU exception {} ({}) error_code={:#x} rip={:#x} rsp={:#x} cr2={:#x}",
        frame.vector,
        exception_name(frame.vector),
        frame.error_code,
        frame.rip,
        frame.rsp,
        cr2
    ));
    exit(ExitCode::Failure)
}

fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization exception",
        21 => "#CP control protection",
        28 => "#HV hypervisor injection",
        29 => "#VC VMM communication",
        30 => "#SX security exception",
        _ => "reserved",
    }
}

/// Installs the IDT. Call once, before anything that can fault in an interesting way.
pub fn init() {
    let stubs = core::ptr::addr_of!(fault_stubs) as u64;
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::MISSING; 32];
        for (vector, gate) in gates.iter_mut().enumerate() {
            *gate = Gate::interrupt(stubs + 16 * vector as u64);
        }
        // #VC is not fatal: under SEV-SNP it is how emulated instructions reach the GHCB.
        gates[VC_VECTOR] = Gate::interrupt(core::ptr::addr_of!(super::snp::vc::vc_entry) as u64);
        // #VE is not fatal either: in a TD it is how CPUID, port I/O and MSRs reach the VMM.
        gates[VE_VECTOR] = Gate::interrupt(core::ptr::addr_of!(super::tdx::ve::ve_entry) as u64);
        Idt(gates)
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::new(idt as *const Idt as u64),
    };
    // SAFETY: `IDT` is a 'static that is never modified after `call_once`, each gate points
    // at a stub above that ends in a diverging handler, and the selector is the 64-bit code
    // segment of the boot GDT, which stays loaded for the life of the runtime.
    unsafe { x86_64::instructions::tables::lidt(&pointer) };
}
