//! Per-world CPU context: what EL3 saves on an SMC (GPRs and EL3 state, in
//! `asm.rs`) and the EL2 system registers it switches between NS-EL2 and
//! R-EL2 (rme-bringup.md §1.4).

use core::arch::asm;

/// The GPR and EL3 part of a world's context. Offsets are used by `asm.rs`.
#[repr(C)]
pub struct Ctx {
    /// x0..x30 at 0..248.
    pub x: [u64; 31],
    /// SP_EL0 at 248.
    pub sp_el0: u64,
    /// ELR_EL3 at 256.
    pub elr: u64,
    /// SPSR_EL3 at 264.
    pub spsr: u64,
    /// SCR_EL3 at 272.
    pub scr: u64,
}

const _: () = {
    assert!(core::mem::offset_of!(Ctx, sp_el0) == 248);
    assert!(core::mem::offset_of!(Ctx, elr) == 256);
    assert!(core::mem::offset_of!(Ctx, scr) == 272);
};

impl Ctx {
    /// An all-zero context.
    pub const fn new() -> Self {
        Self {
            x: [0; 31],
            sp_el0: 0,
            elr: 0,
            spsr: 0,
            scr: 0,
        }
    }
}

macro_rules! el2_sysregs {
    ($($idx:ident = $name:literal),* $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, dead_code)]
        #[repr(usize)]
        enum Reg { $($idx),* , Count }

        /// Number of switched registers.
        pub const EL2_REGS: usize = Reg::Count as usize;

        /// A world's EL2 (and per-world EL1 PAuth key, PMCR) registers.
        pub struct El2Regs(pub [u64; EL2_REGS]);

        impl El2Regs {
            /// Reads every switched register from the CPU.
            pub fn save(&mut self) {
                $(
                    // SAFETY: reading a system register at EL3 has no side
                    // effects; every register listed exists on QEMU 10
                    // `-cpu max,x-rme=on` and is enabled by SCR_EL3.
                    unsafe { asm!(concat!("mrs {}, ", $name), out(reg) self.0[Reg::$idx as usize], options(nomem, nostack, preserves_flags)) };
                )*
            }

            /// Writes every switched register; takes effect at the next ERET.
            pub fn restore(&self) {
                $(
                    // SAFETY: EL3 owns these registers while no lower world
                    // runs; they only affect the lower ELs after ERET.
                    unsafe { asm!(concat!("msr ", $name, ", {}"), in(reg) self.0[Reg::$idx as usize], options(nomem, nostack, preserves_flags)) };
                )*
                // SAFETY: a barrier.
                unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
            }

            /// Sets one register by name index.
            fn set(&mut self, r: Reg, v: u64) {
                self.0[r as usize] = v;
            }
        }
    };
}

el2_sysregs! {
    ACTLR = "actlr_el2",
    AFSR0 = "afsr0_el2",
    AFSR1 = "afsr1_el2",
    AMAIR = "amair_el2",
    CNTHCTL = "cnthctl_el2",
    CNTVOFF = "cntvoff_el2",
    CPTR = "cptr_el2",
    ELR = "elr_el2",
    ESR = "esr_el2",
    FAR = "far_el2",
    HACR = "hacr_el2",
    HCR = "hcr_el2",
    HPFAR = "hpfar_el2",
    HSTR = "hstr_el2",
    MAIR = "mair_el2",
    MDCR = "mdcr_el2",
    SCTLR = "sctlr_el2",
    SPSR = "spsr_el2",
    SP = "sp_el2",
    TCR = "tcr_el2",
    TPIDR = "tpidr_el2",
    TTBR0 = "ttbr0_el2",
    VBAR = "vbar_el2",
    VMPIDR = "vmpidr_el2",
    VPIDR = "vpidr_el2",
    VTCR = "vtcr_el2",
    VTTBR = "vttbr_el2",
    // VHE
    CONTEXTIDR = "S3_4_C13_C0_1",
    TTBR1 = "S3_4_C2_C0_1",
    // FGT
    HFGRTR = "S3_4_C1_C1_4",
    HFGWTR = "S3_4_C1_C1_5",
    HFGITR = "S3_4_C1_C1_6",
    HDFGRTR = "S3_4_C3_C1_4",
    HDFGWTR = "S3_4_C3_C1_5",
    // ECV
    CNTPOFF = "S3_4_C14_C0_6",
    // RAS
    VDISR = "S3_4_C12_C1_1",
    VSESR = "S3_4_C5_C2_3",
    // NV2
    VNCR = "S3_4_C2_C2_0",
    // CSV2_2
    SCXTNUM = "S3_4_C13_C0_7",
    // HCX
    HCRX = "S3_4_C1_C2_2",
    // GIC (interface 0.x)
    ICC_SRE = "S3_4_C12_C9_5",
    ICH_HCR = "S3_4_C12_C11_0",
    ICH_VMCR = "S3_4_C12_C11_7",
    // PAuth keys (SCR_EL3.API/APK = 1 for both worlds)
    APIAKEYLO = "S3_0_C2_C1_0",
    APIAKEYHI = "S3_0_C2_C1_1",
    APIBKEYLO = "S3_0_C2_C1_2",
    APIBKEYHI = "S3_0_C2_C1_3",
    APDAKEYLO = "S3_0_C2_C2_0",
    APDAKEYHI = "S3_0_C2_C2_1",
    APDBKEYLO = "S3_0_C2_C2_2",
    APDBKEYHI = "S3_0_C2_C2_3",
    APGAKEYLO = "S3_0_C2_C3_0",
    APGAKEYHI = "S3_0_C2_C3_1",
    // Runtime
    PMCR = "pmcr_el0",
}

/// Reads a system register by name.
macro_rules! mrs {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an ID or control register at EL3 has no side effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

impl El2Regs {
    /// All zero.
    pub const fn new() -> Self {
        Self([0; EL2_REGS])
    }

    /// Known values for a world's first entry (TF-A's choices): SCTLR_EL2
    /// RES1, ICC_SRE_EL2 = SRE|DFB|DIB|Enable, FGT registers at their
    /// reset-safe values, CPTR_EL2 RES1 without TFP, MDCR_EL2.HPMN =
    /// PMCR_EL0.N, VPIDR/VMPIDR from the CPU, PMCR_EL0 as found.
    pub fn initial(realm: bool) -> Self {
        let mut r = Self::new();
        let pmcr = mrs!("pmcr_el0");
        r.set(Reg::SCTLR, 0x30C5_0830);
        r.set(Reg::ICC_SRE, 0xF);
        r.set(Reg::HFGITR, 0x0180_0000_0000_0000);
        r.set(Reg::HFGRTR, 0x00C4_0000_0000_0000);
        r.set(Reg::HFGWTR, 0x00C4_0000_0000_0000);
        r.set(Reg::CPTR, 0x33FF);
        r.set(Reg::MDCR, (pmcr >> 11) & 0x1F);
        r.set(Reg::VPIDR, mrs!("midr_el1"));
        r.set(Reg::VMPIDR, mrs!("mpidr_el1"));
        r.set(Reg::PMCR, pmcr);
        if realm {
            r.set(Reg::SPSR, 0x4003C9);
        }
        r
    }
}

pub(crate) use mrs;
