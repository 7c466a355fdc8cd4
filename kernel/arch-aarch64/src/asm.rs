//! Assembly: the EL2 vector table, realm entry/exit, FP/SIMD switch and the
//! GPF-tolerant Non-secure copy.

use core::arch::global_asm;

// GuestCtx layout (see `vcpu::GuestCtx`): gprs[31] @0, elr @248, spsr @256,
// host_sp @264.
global_asm!(
    r#"
.section .text.atoll_vectors, "ax"
.balign 2048
.global atoll_el2_vectors
atoll_el2_vectors:
    // Current EL with SP_EL0: never used by the RMM.
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    // Current EL with SP_ELx: the RMM's own faults.
    .balign 0x80
    b atoll_el2_sync
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    // Lower EL, AArch64: realm exits.
    .balign 0x80
    stp x0, x1, [sp, #-16]!
    mov x1, #0
    b atoll_guest_exit
    .balign 0x80
    stp x0, x1, [sp, #-16]!
    mov x1, #1
    b atoll_guest_exit
    .balign 0x80
    stp x0, x1, [sp, #-16]!
    mov x1, #2
    b atoll_guest_exit
    .balign 0x80
    stp x0, x1, [sp, #-16]!
    mov x1, #3
    b atoll_guest_exit
    // Lower EL, AArch32: realms are AArch64 only (HCR_EL2.RW = 1).
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected
    .balign 0x80
    b atoll_el2_unexpected

.text
atoll_el2_unexpected:
    mrs x0, esr_el2
    mrs x1, elr_el2
    mrs x2, far_el2
    mov x3, #1
    b atoll_el2_fault

// A synchronous exception in the RMM: inside the NS copy routine it is a GPF
// (or external abort) on a host address, which becomes an error return;
// anything else is fatal.
atoll_el2_sync:
    stp x0, x1, [sp, #-16]!
    mrs x0, elr_el2
    adr x1, atoll_ns_copy
    cmp x0, x1
    b.lo 1f
    adr x1, atoll_ns_copy_end
    cmp x0, x1
    b.hs 1f
    adr x1, atoll_ns_copy_fault
    msr elr_el2, x1
    ldp x0, x1, [sp], #16
    eret
1:  ldp x0, x1, [sp], #16
    mrs x0, esr_el2
    mrs x1, elr_el2
    mrs x2, far_el2
    mov x3, #0
    b atoll_el2_fault

// x0 = dst, x1 = src, x2 = len (bytes) -> x0 = 0, or 1 after a fault.
.global atoll_ns_copy
atoll_ns_copy:
    cbz x2, 2f
1:  ldrb w3, [x1], #1
    strb w3, [x0], #1
    subs x2, x2, #1
    b.ne 1b
2:  mov x0, #0
    ret
atoll_ns_copy_end:
atoll_ns_copy_fault:
    mov x0, #1
    ret

// x0 = &mut GuestCtx -> x0 = exit kind (0 sync, 1 IRQ, 2 FIQ, 3 SError).
.global atoll_guest_run
atoll_guest_run:
    stp x29, x30, [sp, #-96]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
    mov x1, sp
    str x1, [x0, #264]
    msr tpidr_el2, x0
    ldr x1, [x0, #248]
    msr elr_el2, x1
    ldr x1, [x0, #256]
    msr spsr_el2, x1
    ldp x2, x3, [x0, #16]
    ldp x4, x5, [x0, #32]
    ldp x6, x7, [x0, #48]
    ldp x8, x9, [x0, #64]
    ldp x10, x11, [x0, #80]
    ldp x12, x13, [x0, #96]
    ldp x14, x15, [x0, #112]
    ldp x16, x17, [x0, #128]
    ldp x18, x19, [x0, #144]
    ldp x20, x21, [x0, #160]
    ldp x22, x23, [x0, #176]
    ldp x24, x25, [x0, #192]
    ldp x26, x27, [x0, #208]
    ldp x28, x29, [x0, #224]
    ldr x30, [x0, #240]
    ldp x0, x1, [x0, #0]
    eret
    dsb nsh
    isb

// From a lower-EL vector: realm x0/x1 on the stack, kind in x1.
atoll_guest_exit:
    mrs x0, tpidr_el2
    stp x2, x3, [x0, #16]
    stp x4, x5, [x0, #32]
    stp x6, x7, [x0, #48]
    stp x8, x9, [x0, #64]
    stp x10, x11, [x0, #80]
    stp x12, x13, [x0, #96]
    stp x14, x15, [x0, #112]
    stp x16, x17, [x0, #128]
    stp x18, x19, [x0, #144]
    stp x20, x21, [x0, #160]
    stp x22, x23, [x0, #176]
    stp x24, x25, [x0, #192]
    stp x26, x27, [x0, #208]
    stp x28, x29, [x0, #224]
    str x30, [x0, #240]
    mov x4, x1
    ldp x2, x3, [sp], #16
    stp x2, x3, [x0, #0]
    mrs x2, elr_el2
    str x2, [x0, #248]
    mrs x2, spsr_el2
    str x2, [x0, #256]
    ldr x2, [x0, #264]
    mov sp, x2
    mov x0, x4
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp x29, x30, [sp], #96
    ret

.arch_extension fp
.arch_extension simd
// x0 = &mut FpRegs (q0..q31 @0, fpcr @512, fpsr @520).
.global atoll_fp_save
atoll_fp_save:
    stp q0, q1, [x0, #0]
    stp q2, q3, [x0, #32]
    stp q4, q5, [x0, #64]
    stp q6, q7, [x0, #96]
    stp q8, q9, [x0, #128]
    stp q10, q11, [x0, #160]
    stp q12, q13, [x0, #192]
    stp q14, q15, [x0, #224]
    stp q16, q17, [x0, #256]
    stp q18, q19, [x0, #288]
    stp q20, q21, [x0, #320]
    stp q22, q23, [x0, #352]
    stp q24, q25, [x0, #384]
    stp q26, q27, [x0, #416]
    stp q28, q29, [x0, #448]
    stp q30, q31, [x0, #480]
    mrs x1, fpcr
    str x1, [x0, #512]
    mrs x1, fpsr
    str x1, [x0, #520]
    ret

// x0 = &FpRegs.
.global atoll_fp_restore
atoll_fp_restore:
    ldp q0, q1, [x0, #0]
    ldp q2, q3, [x0, #32]
    ldp q4, q5, [x0, #64]
    ldp q6, q7, [x0, #96]
    ldp q8, q9, [x0, #128]
    ldp q10, q11, [x0, #160]
    ldp q12, q13, [x0, #192]
    ldp q14, q15, [x0, #224]
    ldp q16, q17, [x0, #256]
    ldp q18, q19, [x0, #288]
    ldp q20, q21, [x0, #320]
    ldp q22, q23, [x0, #352]
    ldp q24, q25, [x0, #384]
    ldp q26, q27, [x0, #416]
    ldp q28, q29, [x0, #448]
    ldp q30, q31, [x0, #480]
    ldr x1, [x0, #512]
    msr fpcr, x1
    ldr x1, [x0, #520]
    msr fpsr, x1
    ret
"#
);

/// Fatal exception in the RMM: print and park.
#[no_mangle]
extern "C" fn atoll_el2_fault(esr: u64, elr: u64, far: u64, unexpected: u64) -> ! {
    crate::println!(
        "FATAL: {} exception at EL2: ESR_EL2={:#x} ELR_EL2={:#x} FAR_EL2={:#x}",
        if unexpected != 0 {
            "unexpected"
        } else {
            "synchronous"
        },
        esr,
        elr,
        far
    );
    crate::cpu::park()
}

extern "C" {
    fn atoll_ns_copy(dst: *mut u8, src: *const u8, len: usize) -> u64;
    fn atoll_guest_run(ctx: *mut crate::vcpu::GuestCtx) -> u64;
    fn atoll_fp_save(regs: *mut crate::vcpu::FpRegs);
    fn atoll_fp_restore(regs: *const crate::vcpu::FpRegs);
    static atoll_el2_vectors: u8;
}

/// Points VBAR_EL2 at the vector table.
pub fn install_vectors() {
    let v = core::ptr::addr_of!(atoll_el2_vectors) as u64;
    crate::msr!("vbar_el2", v);
    crate::cpu::isb();
}

/// Copies `len` bytes between VAs of which one is in the NS alias; a fault
/// on the way (GPF on a granule the host lied about) returns `false`.
///
/// # Safety
/// `dst` and `src` must be mapped in the RMM's stage 1 for `len` bytes
/// and must not overlap RMM data in use by Rust references.
pub unsafe fn ns_copy(dst: *mut u8, src: *const u8, len: usize) -> bool {
    // SAFETY: the caller guarantees the ranges are mapped and unaliased;
    // the routine touches nothing else and faults are recovered by the
    // EL2 synchronous vector.
    unsafe { atoll_ns_copy(dst, src, len) == 0 }
}

/// Runs the realm from `ctx` until it exits; returns the exit kind.
///
/// # Safety
/// The caller has programmed the realm's EL1 state, HCR/VTCR/VTTBR and
/// VBAR_EL2 so the realm's exit comes back through `atoll_guest_exit`.
pub unsafe fn guest_run(ctx: &mut crate::vcpu::GuestCtx) -> u64 {
    // SAFETY: see the function's contract; `ctx` lives across the call.
    unsafe { atoll_guest_run(ctx) }
}

/// Saves the FP/SIMD registers.
pub fn fp_save(regs: &mut crate::vcpu::FpRegs) {
    // SAFETY: writes exactly one `FpRegs` (528 bytes, 16-aligned).
    unsafe { atoll_fp_save(regs) }
}

/// Restores the FP/SIMD registers.
pub fn fp_restore(regs: &crate::vcpu::FpRegs) {
    // SAFETY: reads exactly one `FpRegs`.
    unsafe { atoll_fp_restore(regs) }
}
