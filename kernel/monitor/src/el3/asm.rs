//! Reset entry, the EL3 exception vectors and the world exit path.
//!
//! While a lower world runs, SP_EL3 points at that world's [`super::ctx::Ctx`].
//! An SMC (lower EL, AArch64, synchronous) stores x0..x30, SP_EL0, ELR_EL3,
//! SPSR_EL3 and SCR_EL3 into it, switches to the monitor stack and calls
//! `el3_lower_sync`, which returns the context to resume; `el3_exit` loads
//! that context and ERETs.

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    // CPU 0 only (Aff0 = Aff1 = 0); the others wait forever.
    mrs     x0, mpidr_el1
    and     x0, x0, #0xffff
    cbz     x0, 2f
1:  wfe
    b       1b
2:
    // SCTLR_EL3: I-cache on, MMU and D-cache off until Rust enables them.
    ldr     x0, =0x30C51838
    msr     sctlr_el3, x0
    isb
    // No traps of FP/SIMD/SVE/trace for lower ELs (CPTR_EL3 = 0).
    msr     cptr_el3, xzr
    isb
    // .data from flash to secure RAM, .bss zeroed.
    ldr     x0, =__data_start
    ldr     x1, =__data_end
    ldr     x2, =__data_load
3:  cmp     x0, x1
    b.hs    4f
    ldr     x3, [x2], #8
    str     x3, [x0], #8
    b       3b
4:  ldr     x0, =__bss_start
    ldr     x1, =__bss_end
5:  cmp     x0, x1
    b.hs    6f
    str     xzr, [x0], #8
    b       5b
6:  ldr     x0, =__stack_top
    mov     sp, x0
    adr     x0, el3_vectors
    msr     vbar_el3, x0
    isb
    bl      monitor_main
7:  wfe
    b       7b

.macro SAVE_GPRS
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
.endm

.macro FAULT_ENTRY kind
    ldr     x1, =__stack_top
    mov     sp, x1
    mov     x0, #\kind
    bl      el3_unexpected
    b       .
.endm

.section .text.vectors, "ax"
.balign 2048
.global el3_vectors
el3_vectors:
    // Current EL with SP_EL0.
    .balign 128
    FAULT_ENTRY 0
    .balign 128
    FAULT_ENTRY 1
    .balign 128
    FAULT_ENTRY 2
    .balign 128
    FAULT_ENTRY 3
    // Current EL with SP_ELx.
    .balign 128
    FAULT_ENTRY 4
    .balign 128
    FAULT_ENTRY 5
    .balign 128
    FAULT_ENTRY 6
    .balign 128
    FAULT_ENTRY 7
    // Lower EL, AArch64: synchronous (SMC) ...
    .balign 128
    SAVE_GPRS
    b       el3_lower_sync_save
    // ... IRQ, FIQ, SError are routed to EL2 by SCR_EL3; never expected.
    .balign 128
    SAVE_GPRS
    mov     x0, #9
    b       el3_lower_fault
    .balign 128
    SAVE_GPRS
    mov     x0, #10
    b       el3_lower_fault
    .balign 128
    SAVE_GPRS
    mov     x0, #11
    b       el3_lower_fault
    // Lower EL, AArch32: not used.
    .balign 128
    FAULT_ENTRY 12
    .balign 128
    FAULT_ENTRY 13
    .balign 128
    FAULT_ENTRY 14
    .balign 128
    FAULT_ENTRY 15

.section .text.el3, "ax"
el3_lower_fault:
    ldr     x1, =__stack_top
    mov     sp, x1
    bl      el3_unexpected
    b       .

el3_lower_sync_save:
    mrs     x0, sp_el0
    str     x0, [sp, #248]
    mrs     x0, elr_el3
    mrs     x1, spsr_el3
    stp     x0, x1, [sp, #256]
    mrs     x0, scr_el3
    str     x0, [sp, #272]
    mov     x0, sp
    ldr     x1, =__stack_top
    mov     sp, x1
    bl      el3_lower_sync
    // fall through with x0 = context to resume

.global el3_exit
el3_exit:
    mov     sp, x0
    ldr     x1, [sp, #248]
    msr     sp_el0, x1
    ldp     x1, x2, [sp, #256]
    msr     elr_el3, x1
    msr     spsr_el3, x2
    ldr     x1, [sp, #272]
    msr     scr_el3, x1
    isb
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    eret
"#
);

extern "C" {
    /// Loads the context at `ctx` into the CPU and ERETs into its world.
    pub fn el3_exit(ctx: *mut super::ctx::Ctx) -> !;
}
