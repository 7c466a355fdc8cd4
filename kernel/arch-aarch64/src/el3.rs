//! Calls to the EL3 monitor (RMM-EL3 interface 0.4 and the Islet VHUK call).

/// x0..x7 of an SMC.
pub type Regs = [u64; 8];

/// Executes `SMC #0` with x0..x7 = `regs`, returning x0..x7. The monitor may
/// clobber x8..x17 (SMCCC 1.2), which are declared clobbered.
pub fn smc(regs: Regs) -> Regs {
    let mut r = regs;
    // SAFETY: SMC transfers control to EL3, which returns to the next
    // instruction with results in x0..x7 (or, for RMI_REQ_COMPLETE and
    // BOOT_COMPLETE, with the next RMI request in x0..x7). The monitor
    // preserves the RMM's EL2 state, stack and memory; x8..x17 are marked
    // clobbered.
    unsafe {
        core::arch::asm!(
            "smc #0",
            inout("x0") r[0], inout("x1") r[1], inout("x2") r[2], inout("x3") r[3],
            inout("x4") r[4], inout("x5") r[5], inout("x6") r[6], inout("x7") r[7],
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _,
            out("x13") _, out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    r
}

/// An SMC with up to seven arguments after the function ID.
pub fn call(fid: u64, args: &[u64]) -> Regs {
    let mut r = [0u64; 8];
    r[0] = fid;
    for (d, s) in r[1..].iter_mut().zip(args) {
        *d = *s;
    }
    smc(r)
}
