//! The boot stub: reset vector (16-bit real mode) → 32-bit protected mode → long mode → Rust.
//!
//! QEMU maps the ROM so that it ends at 4 GiB; the CPU starts at 0xFFFF_FFF0 in real mode
//! with CS.base = 0xFFFF_0000. The stub
//! 1. records the TSC at reset (for the boot-time figure) in the boot scratch page,
//! 2. loads a flat GDT and switches to 32-bit protected mode,
//! 3. copies the Rust image from its ROM load address to its RAM run address and zeroes .bss
//!    (the linker script explains why Rust runs from RAM),
//! 4. builds identity page tables for the low 4 GiB with 2 MiB pages,
//! 5. enables PAE, long mode and paging, and calls `rust_entry` through a register.
//!
//! Addresses come from the linker script (`linker/runtime.ld`) and [`crate::layout`].

use core::arch::global_asm;

use crate::layout::{BOOT_SCRATCH, PAGE_TABLES};

global_asm!(
    r#"
    .section .reset, "ax"
    .code16
    .global reset_vector
reset_vector:
    cli
    jmp boot16
    .balign 16, 0xf4

    .section .boot, "ax"
    .code16
boot16:
    cli
    cld
    /* TSC at reset, kept in EDI:EBP until RAM is usable. */
    rdtsc
    movl %eax, %ebp
    movl %edx, %edi
    /* CS.base is 0xFFFF0000 at reset: address the GDT pointer relative to it. */
    lgdtl %cs:(gdt_ptr - 0xFFFF0000)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $boot32

    .code32
boot32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl %ebp, ({scratch})
    movl %edi, ({scratch} + 4)

    /* Copy the Rust image from ROM to RAM. */
    movl $__image_lma_start, %esi
    movl $__image_vma_start, %edi
    movl $__image_vma_end, %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    rep movsl

    /* Zero .bss (it includes the boot stack). */
    movl $__bss_start, %edi
    movl $__bss_end, %ecx
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
    movl $({pt} + 0x2000), %edi
    movl $0x83, %eax            /* present | writable | 2 MiB page */
    movl $2048, %ecx
1:
    movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b

    /* PAE + OSFXSR + OSXMMEXCPT, then CR3, EFER.LME|NXE, CR0.PG. */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl ${pt}, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
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
2:
    hlt
    jmp 2b

    .balign 8
gdt:
    .quad 0x0000000000000000    /* null */
    .quad 0x00CF9A000000FFFF    /* 0x08: 32-bit code */
    .quad 0x00CF92000000FFFF    /* 0x10: data */
    .quad 0x00AF9A000000FFFF    /* 0x18: 64-bit code */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
    "#,
    scratch = const BOOT_SCRATCH,
    pt = const PAGE_TABLES,
    options(att_syntax)
);
