//! System-register access and barriers.

/// Reads a system register.
#[macro_export]
macro_rules! mrs {
    ($reg:literal) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects; the
        // registers read by this crate exist at R-EL2 on the target CPU.
        unsafe {
            core::arch::asm!(concat!("mrs {}, ", $reg), out(reg) v, options(nomem, nostack, preserves_flags));
        }
        v
    }};
}

/// Writes a system register.
#[macro_export]
macro_rules! msr {
    ($reg:literal, $val:expr) => {{
        let v: u64 = $val;
        // SAFETY: every register written through this macro controls a
        // lower EL's state or a translation regime the caller is about to
        // use, and the caller keeps the RMM's own regime intact.
        unsafe {
            core::arch::asm!(concat!("msr ", $reg, ", {}"), in(reg) v, options(nostack, preserves_flags));
        }
    }};
}

/// Instruction synchronisation barrier.
pub fn isb() {
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) }
}

/// Full-system data synchronisation barrier.
pub fn dsb_sy() {
    // SAFETY: a barrier has no other effect.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) }
}

/// Parks the CPU forever.
pub fn park() -> ! {
    loop {
        // SAFETY: WFI only waits.
        unsafe { core::arch::asm!("wfi", options(nomem, nostack, preserves_flags)) }
    }
}

/// What the CPU offers realms.
#[derive(Copy, Clone, Debug)]
pub struct Features {
    /// Breakpoints (ID_AA64DFR0_EL1.BRPs + 1).
    pub bps: u8,
    /// Watchpoints (ID_AA64DFR0_EL1.WRPs + 1).
    pub wps: u8,
    /// GIC list registers (ICH_VTR_EL2.ListRegs + 1).
    pub lrs: u8,
    /// 16-bit VMIDs (ID_AA64MMFR1_EL1.VMIDBits = 2).
    pub vmid16: bool,
}

/// Reads the ID registers.
pub fn features() -> Features {
    let dfr0 = crate::mrs!("id_aa64dfr0_el1");
    let mmfr1 = crate::mrs!("id_aa64mmfr1_el1");
    let vtr = crate::mrs!("S3_4_C12_C11_1");
    Features {
        bps: ((dfr0 >> 12) & 0xF) as u8 + 1,
        wps: ((dfr0 >> 20) & 0xF) as u8 + 1,
        lrs: (vtr & 0x1F) as u8 + 1,
        vmid16: (mmfr1 >> 4) & 0xF == 2,
    }
}
