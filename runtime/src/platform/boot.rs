//! The boot stub: reset vector → 32-bit protected mode → long mode → Rust.
//!
//! QEMU maps the ROM so that it ends at 4 GiB. A legacy VM and an SEV-SNP guest start at
//! 0xFFFF_FFF0 in 16-bit real mode; a TDX guest starts there in 32-bit protected mode (TDX
//! Module ABI, "TD vCPU initial state"). The reset vector tells them apart by CR0.PE with
//! instructions that decode identically in both modes, then:
//! 1. records the TSC at reset (for the boot-time figure),
//! 2. loads a flat GDT (real mode: switches to 32-bit protected mode),
//! 3. (not TDX) probes SEV_STATUS with RDMSR under an early #GP handler that makes the MSR
//!    read as 0 on CPUs without it; under SEV-SNP takes the C-bit position from the CPUID page
//!    the PSP validated (never from a CPUID exit the hypervisor answers); SEV or SEV-ES
//!    without SNP is refused (terminate through the GHCB MSR protocol where one exists).
//!    A host could inject a #GP at the RDMSR to make an SNP guest believe it is not one: the
//!    runtime then takes the simulated path, whose reports no issuer accepts as hardware, and a
//!    #VC raised later proves the lie and ends the VM. RDTSC is assumed not intercepted (KVM does
//!    not); a host that intercepts it stops the boot, which is a denial of service only.
//! 4. copies the Rust image from its ROM load address to RAM and zeroes .bss up to the boot
//!    stack (`twi_linker::script` explains why Rust runs from RAM),
//! 5. builds identity page tables for the low 4 GiB with 2 MiB pages, the C-bit set on every
//!    page but the shared pool's under SEV-SNP,
//! 6. enables PAE, long mode and paging, and calls `rust_entry` through a register.
//!
//! Everything the stub writes before Rust runs (the boot scratch page, the page tables, the
//! image) is RAM the launch pre-validates (SEV metadata) or pre-accepts (TDVF TEMP_MEM): see
//! `twi_linker::EARLY_RAM`. What it leaves for Rust is in [`BootInfo`].

use core::arch::global_asm;

use twi_attester::snp::ghcb::msr_protocol;
use twi_attester::tdx::abi::{expose, vmcall};

use crate::layout::{BOOT_SCRATCH, PAGE_TABLES, SHARED_POOL, SNP_CPUID_PAGE};

/// Offsets in the boot scratch page.
mod scratch {
    pub const RESET_TSC: u32 = 0x000;
    pub const SEV_STATUS: u32 = 0x008;
    pub const C_BIT: u32 = 0x010;
    pub const FLAGS: u32 = 0x014;
    /// Set to 1 by vCPU 0 once the page tables are built: TDX APs wait for it.
    pub const AP_READY: u32 = 0x018;
    pub const IDT_POINTER: u32 = 0x100;
    pub const EARLY_IDT: u32 = 0x800;
    /// The early stack grows down from the end of the page.
    pub const STACK_TOP: u32 = 0x1000;
}
const FLAG_TDX: u32 = 1;
/// The GHCB MSR termination request the stub sends when the CPUID page names no C-bit: TWI's
/// reason set, code NO_C_BIT (`twi_attester::snp::ghcb::msr_protocol::twi_reason`).
const TERMINATE_NO_CBIT: u64 =
    msr_protocol::terminate(msr_protocol::REASON_SET_TWI, msr_protocol::twi_reason::NO_C_BIT);
/// SEV-ES without SNP: reason set 0, "SEV-SNP not supported".
const TERMINATE_SNP_UNSUPPORTED: u64 =
    msr_protocol::terminate(msr_protocol::REASON_SET_GENERAL, msr_protocol::REASON_SNP_UNSUPPORTED);
const _: () = assert!(TERMINATE_NO_CBIT >> 32 == 0 && TERMINATE_SNP_UNSUPPORTED >> 32 == 0);

/// The early IDT covers vectors 0..=29 (#GP is 13).
const EARLY_IDT_ENTRIES: u32 = 30;

/// The page directory entry (of 2048, 2 MiB each) that maps the shared pool without the C-bit.
const SHARED_POOL_PDE: u32 = (SHARED_POOL.start >> 21) as u32;

global_asm!(
    r#"
    /* Flat 32-bit data segments and the early stack (no CALL: there is no stack yet). */
    .macro flat_data_segments_and_stack
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $({scratch} + {o_stack}), %esp
    .endm

    .section .reset, "ax"
    .global reset_vector
reset_vector:
    /* These bytes decode the same in 16-bit and 32-bit mode. */
    .byte 0x0F, 0x20, 0xC0        /* mov eax, cr0 */
    .byte 0xA8, 0x01              /* test al, 1 (PE) */
    .byte 0x75, 0x03              /* jnz +3: protected mode already (TDX) */
    .byte 0xE9                    /* real mode: jmp rel16 boot16 */
    .word boot16 - . - 2
    .byte 0xE9                    /* protected mode: jmp rel32 boot32_tdx */
    .long boot32_tdx - . - 4
    .byte 0xF4

    /* SEV-ES/SNP application processors start here (the SEV-ES reset block points at
       twi_linker::AP_PARK; real mode, CS.base 0xFFFF0000): ask the hypervisor to hold this
       vCPU (GHCB MSR protocol, AP Reset Hold request 0x006) and ask again whenever it
       returns. The runtime never wakes an AP; a host that does gets a vCPU that touches no
       memory. */
    .section .boot.ap_park, "ax"
    .code16
    .global ap_park_sev
ap_park_sev:
    cli
14:
    movl $0xC0010130, %ecx        /* GHCB MSR */
    movl ${ap_reset_hold}, %eax
    xorl %edx, %edx
    wrmsr
    .byte 0xF3, 0x0F, 0x01, 0xD9  /* VMGEXIT */
    jmp 14b

    .section .boot, "ax"
    .code16
boot16:
    cli
    cld
    /* TSC at reset, kept in EDI:EBP until the GDT is loaded. */
    rdtsc
    movl %eax, %ebp
    movl %edx, %edi
    /* CS.base is 0xFFFF0000 at reset: address the GDT pointer relative to it. */
    lgdtl %cs:(gdt_ptr - 0xFFFF0000)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $boot32_legacy

    .code32
boot32_tdx:
    /* TDX: every vCPU starts here; ESI is the vCPU index. Only vCPU 0 boots; the others park
       (ap_tdx32). */
    testl %esi, %esi
    jnz ap_tdx32
    cli
    cld
    rdtsc
    movl %eax, %ebp
    movl %edx, %edi
    lgdt gdt_ptr
    ljmp $0x08, $3f
3:
    flat_data_segments_and_stack
    movl %ebp, ({scratch} + {o_tsc})
    movl %edi, ({scratch} + {o_tsc} + 4)
    movl $0, ({scratch} + {o_sev})
    movl $0, ({scratch} + {o_sev} + 4)
    movl $0, ({scratch} + {o_cbit})
    movl ${flag_tdx}, ({scratch} + {o_flags})
    jmp boot32_common

boot32_legacy:
    flat_data_segments_and_stack
    movl %ebp, ({scratch} + {o_tsc})
    movl %edi, ({scratch} + {o_tsc} + 4)
    movl $0, ({scratch} + {o_cbit})
    movl $0, ({scratch} + {o_flags})

    /* Early IDT: only #GP, so that RDMSR of an MSR this CPU lacks reads as 0. */
    movl $({scratch} + {o_idt}), %edi
    movl $({idt_entries} * 2), %ecx
    xorl %eax, %eax
    rep stosl
    movl $early_gp, %eax
    movl $({scratch} + {o_idt} + 13 * 8), %edi
    movw %ax, (%edi)
    movw $0x08, 2(%edi)
    movw $0x8E00, 4(%edi)
    shrl $16, %eax
    movw %ax, 6(%edi)
    movw $({idt_entries} * 8 - 1), ({scratch} + {o_idtp})
    movl $({scratch} + {o_idt}), ({scratch} + {o_idtp} + 2)
    lidt ({scratch} + {o_idtp})

    movl $0xC0010131, %ecx        /* SEV_STATUS */
    rdmsr
    movl %eax, ({scratch} + {o_sev})
    movl %edx, ({scratch} + {o_sev} + 4)
    testl $4, %eax                /* bit 2: SEV-SNP */
    jnz snp_cbit
    testl $3, %eax                /* SEV or SEV-ES without SNP: not supported */
    jz boot32_common
    testl $2, %eax
    jz halt_forever32             /* plain SEV has no GHCB to report through */
    movl $0xC0010130, %ecx        /* SEV-ES: GHCB terminate, reason set 0, code 2 (SNP unsupported) */
    movl ${snp_unsupported}, %eax
    xorl %edx, %edx
    wrmsr
    .byte 0xF3, 0x0F, 0x01, 0xD9  /* VMGEXIT */
    jmp halt_forever32

snp_cbit:

    /* SEV-SNP: the C-bit is EBX[5:0] of CPUID 0x8000_001F in the PSP-checked CPUID page. */
    movl ${cpuid_page}, %esi
    movl (%esi), %ecx             /* COUNT */
    cmpl $64, %ecx
    ja terminate_no_cbit
    addl $16, %esi
4:
    testl %ecx, %ecx
    jz terminate_no_cbit
    cmpl $0x8000001F, (%esi)
    je 5f
    addl $48, %esi
    decl %ecx
    jmp 4b
5:
    movl 28(%esi), %eax
    andl $0x3F, %eax
    cmpl $32, %eax
    jb terminate_no_cbit
    cmpl $51, %eax
    ja terminate_no_cbit
    movl %eax, ({scratch} + {o_cbit})
    jmp boot32_common

terminate_no_cbit:
    /* GHCB MSR protocol: terminate, TWI's reason set, code NO_C_BIT. */
    movl $0xC0010130, %ecx
    movl ${no_cbit}, %eax
    xorl %edx, %edx
    wrmsr
    .byte 0xF3, 0x0F, 0x01, 0xD9  /* VMGEXIT */
halt_forever32:
    hlt
    jmp halt_forever32

    /* The early #GP handler: skip a faulting RDMSR (0F 32) with EDX:EAX = 0; anything else
       is fatal (a triple fault resets, and the VM is started with -no-reboot). */
early_gp:
    popl %eax                     /* error code */
    popl %eax                     /* EIP */
    cmpw $0x320F, (%eax)
    jne 7f
    addl $2, %eax
    pushl %eax
    xorl %eax, %eax
    xorl %edx, %edx
    iret
7:
    ud2

boot32_common:
    /* Copy the Rust image from ROM to RAM. */
    movl $__image_lma_start, %esi
    movl $__image_vma_start, %edi
    movl $__image_vma_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    rep movsl

    /* Zero .bss up to the boot stack (256 KiB at its end that nothing reads before writing:
       zeroing it cost a third of the boot stub's time under TCG). */
    movl $__bss_start, %edi
    movl $__stack_bottom, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl

    /* Page tables: PML4, one PDPT, four page directories of 2 MiB pages = 4 GiB identity. */
    movl ${pt}, %edi
    movl $(6 * 1024), %ecx
    xorl %eax, %eax
    rep stosl
    movl $({pt} + 0x1000 + 0x3), ({pt})
    movl $({pt} + 0x2000 + 0x3), ({pt} + 0x1000)
    movl $({pt} + 0x3000 + 0x3), ({pt} + 0x1008)
    movl $({pt} + 0x4000 + 0x3), ({pt} + 0x1010)
    movl $({pt} + 0x5000 + 0x3), ({pt} + 0x1018)
    /* Leaf entries: present | writable | 2 MiB, and the C-bit (high dword) under SEV-SNP. */
    movl ({scratch} + {o_cbit}), %ecx
    xorl %edx, %edx
    testl %ecx, %ecx
    jz 8f
    subl $32, %ecx
    movl $1, %edx
    shll %cl, %edx
8:
    movl $({pt} + 0x2000), %edi
    movl $0x83, %eax
    movl $2048, %ecx
9:
    movl %eax, (%edi)
    movl %edx, 4(%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 9b
    /* The shared pool is host-visible: no C-bit. */
    movl $0, ({pt} + 0x2000 + {shared_pde} * 8 + 4)
    /* TDX application processors wait for this before they use the page tables (ap_tdx32). */
    movl $1, ({scratch} + {o_ap_ready})

    /* The early IDT holds 32-bit gates: retire it before long mode (an empty IDT until Rust
       installs its own). */
    movw $0, ({scratch} + {o_idtp})
    movl $0, ({scratch} + {o_idtp} + 2)
    lidt ({scratch} + {o_idtp})

    /* PAE + OSFXSR + OSXMMEXCPT, then CR3, EFER.LME|NXE, CR0.PG. */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl ${pt}, %eax
    movl %eax, %cr3
    /* A TD starts with EFER = 0x901 (SCE, LME, NXE: the TDX module's initial TD VMCS) and may
       change only SCE: leave EFER alone there. CR0 (0x21) and CR4 (0x2040: MCE, VMXE) keep
       their TD bits, as the ORs above and below only add. */
    testl ${flag_tdx}, ({scratch} + {o_flags})
    jnz 11f
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
11:
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmpl $0x18, $boot64

    .code64
boot64:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movabsq $__stack_top, %rsp
    xorl %ebp, %ebp
    movabsq $rust_entry, %rax
    call *%rax
10:
    hlt
    jmp 10b

    /* TDX application processors (ESI != 0): flat segments, wait (PAUSE) until vCPU 0 has
       built the page tables, enter long mode on them, and halt for good with
       TDG.VP.VMCALL<Instruction.HLT> (interrupts blocked): the VMM deschedules the vCPU
       instead of it spinning at 100 %. A wake-up (an injected event) only loops back to HLT.
       TDCALL needs 64-bit mode, hence the page tables (as OVMF's APs wait for its
       TDX_WORK_AREA_PGTBL_READY). Nothing here writes memory. */
    .code32
ap_tdx32:
    cli
    lgdt gdt_ptr
    ljmp $0x08, $12f
12:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %ss
13:
    pause
    cmpl $1, ({scratch} + {o_ap_ready})
    jne 13b
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl ${pt}, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0
    ljmpl $0x18, $ap_tdx64

    .code64
ap_tdx64:
    xorl %eax, %eax               /* TDCALL leaf 0: TDG.VP.VMCALL */
    movl ${hlt_expose}, %ecx      /* R10, R11, R12 */
    xorl %r10d, %r10d             /* standard TDVMCALL */
    movl ${hlt_subfunction}, %r11d
    movl $1, %r12d                /* interrupts blocked */
    .byte 0x66, 0x0F, 0x01, 0xCC  /* TDCALL */
    jmp ap_tdx64

    /* The descriptors carry the Accessed bit already: the CPU sets it when a segment is
       loaded, and this GDT lies in the ROM (measured firmware, read-only or private memory):
       no segment load may write it. */
    .balign 8
gdt:
    .quad 0x0000000000000000    /* null */
    .quad 0x00CF9B000000FFFF    /* 0x08: 32-bit code */
    .quad 0x00CF93000000FFFF    /* 0x10: data */
    .quad 0x00AF9B000000FFFF    /* 0x18: 64-bit code */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
    "#,
    scratch = const BOOT_SCRATCH,
    o_tsc = const scratch::RESET_TSC,
    o_sev = const scratch::SEV_STATUS,
    o_cbit = const scratch::C_BIT,
    o_flags = const scratch::FLAGS,
    o_ap_ready = const scratch::AP_READY,
    hlt_expose = const expose::R10 | expose::R11 | expose::R12,
    hlt_subfunction = const vmcall::INSTRUCTION_HLT,
    ap_reset_hold = const msr_protocol::AP_RESET_HOLD_REQUEST,
    o_idtp = const scratch::IDT_POINTER,
    o_idt = const scratch::EARLY_IDT,
    o_stack = const scratch::STACK_TOP,
    idt_entries = const EARLY_IDT_ENTRIES,
    flag_tdx = const FLAG_TDX,
    no_cbit = const TERMINATE_NO_CBIT,
    snp_unsupported = const TERMINATE_SNP_UNSUPPORTED,
    cpuid_page = const SNP_CPUID_PAGE,
    shared_pde = const SHARED_POOL_PDE,
    pt = const PAGE_TABLES,
    options(att_syntax)
);

/// TDX: sets `shared_bit` (1 << (GPAW − 1)) in the page-directory entry that maps the shared
/// pool, so that its identity mapping reaches the shared alias, and reloads CR3 to drop the
/// stale translation. Called once by `tdx::init`, after MapGPA converted the pool and before
/// any [`crate::platform::shared::Shared`] exists.
pub fn set_shared_pool_bit(shared_bit: u64) {
    let pde = (PAGE_TABLES as usize + 0x2000 + SHARED_POOL_PDE as usize * 8) as *mut u64;
    // SAFETY: the boot stub built the page directories at PAGE_TABLES (identity mapped, private
    // RAM reserved by the layout); this entry maps only the shared pool, which nothing has
    // touched yet, so changing its physical alias breaks no live reference. The CR3 reload
    // flushes the old translation.
    unsafe {
        let entry = core::ptr::read_volatile(pde);
        core::ptr::write_volatile(pde, entry | shared_bit);
        let (frame, flags) = x86_64::registers::control::Cr3::read();
        x86_64::registers::control::Cr3::write(frame, flags);
    }
}

/// What the boot stub found, read once from the boot scratch page.
#[derive(Clone, Copy, Debug)]
pub struct BootInfo {
    pub reset_tsc: u64,
    /// SEV_STATUS as the CPU reported it (0 without SEV).
    pub sev_status: u64,
    /// The C-bit position under SEV-SNP, 0 otherwise.
    pub c_bit: u32,
    /// The CPU started in protected mode: a TDX guest.
    pub tdx: bool,
}

impl BootInfo {
    pub fn read() -> Self {
        let at = |offset: u32| (BOOT_SCRATCH + offset) as usize;
        // SAFETY: the boot stub wrote these fields of the boot scratch page (identity-mapped
        // RAM reserved by the layout) before calling Rust; nothing writes the page since.
        unsafe {
            Self {
                reset_tsc: core::ptr::read_volatile(at(scratch::RESET_TSC) as *const u64),
                sev_status: core::ptr::read_volatile(at(scratch::SEV_STATUS) as *const u64),
                c_bit: core::ptr::read_volatile(at(scratch::C_BIT) as *const u32),
                tdx: core::ptr::read_volatile(at(scratch::FLAGS) as *const u32) & FLAG_TDX != 0,
            }
        }
    }
}
