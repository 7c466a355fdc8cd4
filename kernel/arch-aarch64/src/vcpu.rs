//! Running a REC: EL1 state switch, EL2 controls, entry and exit decoding.

use atoll_kernel::arch::{MemAccess, Resume, Trap, VcpuRegs};

#[cfg(target_arch = "aarch64")]
use crate::{mrs, msr};

/// Registers the world switch moves (layout fixed by `asm.rs`).
#[repr(C)]
pub struct GuestCtx {
    /// x0..x30.
    pub gprs: [u64; 31],
    /// ELR_EL2: where the realm (re)starts / stopped.
    pub elr: u64,
    /// SPSR_EL2: the realm's PSTATE.
    pub spsr: u64,
    /// The RMM's stack pointer across the realm run.
    pub host_sp: u64,
}

/// FP/SIMD registers (layout fixed by `asm.rs`).
#[repr(C, align(16))]
pub struct FpRegs {
    q: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl Default for FpRegs {
    fn default() -> Self {
        Self {
            q: [0; 32],
            fpcr: 0,
            fpsr: 0,
        }
    }
}

macro_rules! el1_regs {
    ($($f:ident => $r:literal),* $(,)?) => {
        /// EL1/EL0 system registers the EL3 monitor does not switch, so the
        /// RMM swaps them between the host and each REC.
        #[derive(Clone, Default)]
        pub struct El1Regs {
            $(
                #[doc = $r]
                pub $f: u64,
            )*
        }

        #[cfg(target_arch = "aarch64")]
        impl El1Regs {
            /// Reads the live registers.
            pub fn save() -> Self {
                Self { $($f: mrs!($r),)* }
            }

            /// Writes the live registers.
            pub fn restore(&self) {
                $(msr!($r, self.$f);)*
            }
        }
    };
}

el1_regs! {
    sctlr => "sctlr_el1",
    cpacr => "cpacr_el1",
    ttbr0 => "ttbr0_el1",
    ttbr1 => "ttbr1_el1",
    tcr => "tcr_el1",
    mair => "mair_el1",
    amair => "amair_el1",
    vbar => "vbar_el1",
    contextidr => "contextidr_el1",
    tpidr_el1 => "tpidr_el1",
    tpidr_el0 => "tpidr_el0",
    tpidrro_el0 => "tpidrro_el0",
    sp_el0 => "sp_el0",
    sp_el1 => "sp_el1",
    elr => "elr_el1",
    spsr => "spsr_el1",
    esr => "esr_el1",
    far => "far_el1",
    afsr0 => "afsr0_el1",
    afsr1 => "afsr1_el1",
    par => "par_el1",
    csselr => "csselr_el1",
    cntkctl => "cntkctl_el1",
    mdscr => "mdscr_el1",
    cntv_cval => "cntv_cval_el0",
    cntv_ctl => "cntv_ctl_el0",
    cntp_cval => "cntp_cval_el0",
    cntp_ctl => "cntp_ctl_el0",
}

/// A REC's EL1 state at reset: MMU off, the RES1-style SCTLR_EL1 bits.
pub fn el1_reset() -> El1Regs {
    El1Regs {
        sctlr: 0x00C5_0878,
        ..El1Regs::default()
    }
}

/// PSTATE at REC reset: EL1h, DAIF masked.
pub const PSTATE_RESET: u64 = 0x3C5;

/// HCR_EL2 while a realm runs: VM, SWIO, PTW, FMO, IMO, AMO, BSU = IS,
/// TWI, TSC (realm SMCs trap), RW, TEA, APK, API, FWB.
pub const HCR_REALM: u64 = 1
    | 1 << 1
    | 1 << 2
    | 1 << 3
    | 1 << 4
    | 1 << 5
    | 1 << 10
    | 1 << 13
    | 1 << 19
    | 1 << 31
    | 1 << 37
    | 1 << 40
    | 1 << 41
    | 1 << 46;

/// HCR_EL2 while the RMM runs: RW only (E2H = 0, TGE = 0).
pub const HCR_RMM: u64 = 1 << 31;

/// How the last exit of a REC ended, for the next entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// At an instruction that `Resume::Next` skips (SMC, trapped WFx,
    /// a data abort the RMM emulated).
    Insn,
    /// At an instruction fetch abort: `Next` cannot skip it.
    Fetch,
    /// Interrupted before the instruction at the PC: resume there.
    Interrupted,
}

/// Per-REC state the kernel does not hold.
pub struct RecCpu {
    /// EL1/EL0 registers.
    pub el1: El1Regs,
    /// FP/SIMD registers.
    pub fp: FpRegs,
    /// PSTATE.
    pub pstate: u64,
    /// PC and kind of the last exit; `None` before the first run.
    pub last: Option<(u64, Stopped, u64)>,
    /// Virtual GIC CPU-interface state.
    pub gic: crate::vgic::GicState,
}

impl RecCpu {
    /// A REC that has not run yet.
    pub fn new() -> Self {
        Self {
            el1: el1_reset(),
            fp: FpRegs::default(),
            pstate: PSTATE_RESET,
            last: None,
            gic: crate::vgic::GicState::default(),
        }
    }

    /// Applies `resume` to the PC the kernel passes; returns where the REC
    /// runs next.
    pub fn resume_pc(&mut self, pc: u64, resume: Resume) -> u64 {
        match self.last.take() {
            // The kernel moved the PC (first run, PSCI_CPU_ON): a fresh
            // start from reset state.
            None => pc,
            Some((at, _, _)) if at != pc => {
                self.el1 = el1_reset();
                self.pstate = PSTATE_RESET;
                pc
            }
            Some((_, kind, far)) => match (resume, kind) {
                (Resume::Next, Stopped::Insn) => pc + 4,
                (Resume::Next, Stopped::Interrupted) | (Resume::Retry, _) => pc,
                (Resume::Next, Stopped::Fetch) | (Resume::Sea, _) => {
                    self.inject(pc, far, kind == Stopped::Fetch, true)
                }
                (Resume::Undefined, _) => self.inject(pc, 0, false, false),
            },
        }
    }

    /// Takes a synchronous exception to the realm's EL1: an external abort
    /// (`sea`; an instruction abort if `fetch`) or an undefined
    /// instruction. Returns the vector to run.
    fn inject(&mut self, pc: u64, far: u64, fetch: bool, sea: bool) -> u64 {
        let mode = self.pstate & 0xF;
        let from_el0 = mode == 0;
        let esr = if sea {
            let ec: u64 = match (fetch, from_el0) {
                (true, true) => 0x20,
                (true, false) => 0x21,
                (false, true) => 0x24,
                (false, false) => 0x25,
            };
            ec << 26 | 1 << 25 | 0x10
        } else {
            1 << 25
        };
        let offset = match mode {
            0 => 0x400,
            0b0100 => 0x000,
            _ => 0x200,
        };
        self.el1.esr = esr;
        if sea {
            self.el1.far = far;
        }
        self.el1.elr = pc;
        self.el1.spsr = self.pstate;
        self.pstate = PSTATE_RESET;
        self.el1.vbar + offset
    }
}

impl Default for RecCpu {
    fn default() -> Self {
        Self::new()
    }
}

/// ESR_EL2 exception classes.
mod ec {
    pub const WFX: u64 = 0x01;
    pub const HVC64: u64 = 0x16;
    pub const SMC64: u64 = 0x17;
    pub const IABT_LOWER: u64 = 0x20;
    pub const DABT_LOWER: u64 = 0x24;
}

/// An IPA no realm has: the kernel answers it with an SEA.
const NO_IPA: u64 = u64::MAX;

/// Turns an exit into a `Trap`: `(trap, pc of the stopping instruction,
/// how it stopped, FAR)`.
pub fn decode_exit(kind: u64, esr: u64, elr: u64, far: u64, hpfar: u64) -> (Trap, u64, Stopped) {
    if kind != 0 {
        // IRQ, FIQ, SError: the host takes the interrupt after the exit.
        return (Trap::Irq, elr, Stopped::Interrupted);
    }
    let iss = esr & 0x1FF_FFFF;
    let fipa = ((hpfar & 0x0000_0FFF_FFFF_FFF0) << 8) | (far & 0xFFF);
    match esr >> 26 {
        ec::SMC64 => (Trap::Smc, elr, Stopped::Insn),
        // ELR is already past the HVC: report the HVC itself.
        ec::HVC64 => (Trap::Hvc, elr.wrapping_sub(4), Stopped::Insn),
        ec::WFX => {
            let t = if iss & 1 == 0 { Trap::Wfi } else { Trap::Wfe };
            (t, elr, Stopped::Insn)
        }
        ec::DABT_LOWER => {
            let dfsc = iss & 0x3F;
            // Translation, access flag and permission faults at stage 2
            // carry the IPA in HPFAR; GPFs (0x28) and external aborts do
            // not concern the RTTs: the realm takes an SEA.
            let s2 = matches!(dfsc, 0x04..=0x0F);
            let ipa = if s2 { fipa } else { NO_IPA };
            let access = if iss & 1 << 24 != 0 {
                MemAccess {
                    ipa,
                    size: 1 << ((iss >> 22) & 3),
                    write: iss & 1 << 6 != 0,
                    reg: ((iss >> 16) & 0x1F) as u8,
                }
            } else {
                // No syndrome (e.g. LDP): not emulatable; the kernel still
                // exits to the host for a protected IPA.
                MemAccess {
                    ipa: ipa & !7,
                    size: 8,
                    write: iss & 1 << 6 != 0,
                    reg: 0,
                }
            };
            (Trap::MemAccess(access), elr, Stopped::Insn)
        }
        ec::IABT_LOWER => {
            let s2 = matches!(iss & 0x3F, 0x04..=0x0F);
            let access = MemAccess {
                ipa: if s2 { fipa & !3 } else { NO_IPA },
                size: 4,
                write: false,
                reg: 0,
            };
            (Trap::MemAccess(access), elr, Stopped::Fetch)
        }
        // Anything else trapped (system registers, ...): an undefined
        // instruction for the realm, as for HVC.
        _ => (Trap::Hvc, elr, Stopped::Insn),
    }
}

/// Copies the kernel's registers into the world-switch context.
pub fn load_ctx(ctx: &mut GuestCtx, regs: &VcpuRegs, pc: u64, pstate: u64) {
    ctx.gprs = regs.gprs;
    ctx.elr = pc;
    ctx.spsr = pstate;
}

/// `RmiRecMpidr` (Aff3 at [31:24]) to an MPIDR_EL1 value (Aff3 at
/// [39:32], bit 31 RES1).
pub fn vmpidr(rec_mpidr: u64) -> u64 {
    (rec_mpidr & 0xFF_FFFF) | ((rec_mpidr >> 24) & 0xFF) << 32 | 1 << 31
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_decode() {
        // Unmapped IPA from the guide: ESR 0x93C2_8006, HPFAR = IPA >> 8.
        let (t, pc, k) = decode_exit(0, 0x93C2_8006, 0x1000, 0x8000_0123, 0x8000_0000 >> 8);
        assert_eq!(k, Stopped::Insn);
        assert_eq!(pc, 0x1000);
        let Trap::MemAccess(a) = t else { panic!() };
        assert_eq!(a.ipa, 0x8000_0123);
        assert_eq!((a.size, a.write, a.reg), (8, false, 2));
        // SMC: PC is the SMC; HVC: ELR past it.
        assert_eq!(decode_exit(0, 0x17 << 26, 0x2000, 0, 0).0, Trap::Smc);
        assert_eq!(decode_exit(0, 0x16 << 26, 0x2004, 0, 0).1, 0x2000);
        assert_eq!(decode_exit(0, 1 << 26 | 1, 0x3000, 0, 0).0, Trap::Wfe);
        assert_eq!(
            decode_exit(1, 0, 0x3000, 0, 0),
            (Trap::Irq, 0x3000, Stopped::Interrupted)
        );
        // GPF: no IPA, the kernel injects an SEA.
        let Trap::MemAccess(a) = decode_exit(0, 0x24 << 26 | 1 << 24 | 0x28, 0, 0, 0).0 else {
            panic!()
        };
        assert_eq!(a.ipa, u64::MAX);
    }

    #[test]
    fn resume_rules() {
        let mut c = RecCpu::new();
        assert_eq!(c.resume_pc(0x1000, Resume::Next), 0x1000, "first run");
        c.last = Some((0x1000, Stopped::Insn, 0));
        assert_eq!(c.resume_pc(0x1000, Resume::Next), 0x1004);
        c.last = Some((0x1000, Stopped::Insn, 0));
        assert_eq!(c.resume_pc(0x1000, Resume::Retry), 0x1000);
        c.last = Some((0x1000, Stopped::Interrupted, 0));
        assert_eq!(c.resume_pc(0x1000, Resume::Next), 0x1000);
        c.el1.vbar = 0x8_0000;
        c.last = Some((0x1000, Stopped::Insn, 0x55));
        assert_eq!(c.resume_pc(0x1000, Resume::Sea), 0x8_0200);
        assert_eq!(c.el1.esr, 0x25 << 26 | 1 << 25 | 0x10);
        assert_eq!(
            (c.el1.elr, c.el1.far, c.el1.spsr),
            (0x1000, 0x55, PSTATE_RESET)
        );
        c.last = Some((0x1000, Stopped::Insn, 0));
        c.pstate = 0;
        c.el1.sctlr = 5;
        assert_eq!(c.resume_pc(0x2000, Resume::Next), 0x2000, "CPU_ON");
        assert_eq!(c.el1.sctlr, 0x00C5_0878);
        assert_eq!(c.pstate, PSTATE_RESET);
        assert_eq!(vmpidr(0x0100_0203), 0x1_8000_0203);
    }
}
