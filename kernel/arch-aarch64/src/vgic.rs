//! The REC's virtual GIC CPU interface and timers around a run: the pure
//! rules (host-tested) and, on aarch64, the ICH_* register exchange.
//!
//! RMI 1.0 (guide §5.2): on entry the RMM writes the REC's APRs, the host's
//! LRs (as many as the hardware has), the REC's VMCR and ICH_HCR_EL2 =
//! host bits | En; on exit it reads them back with MISR, clears En and
//! reports LRs, MISR, VMCR and HCR masked to EOIcount | host bits. Timers
//! (§5.4): an asserted realm timer is masked with CNTHCTL_EL2.CNTVMASK /
//! CNTPMASK while the realm runs; its CTL/CVAL are reported on exit.

use ipc_schema::rmi::REC_RUN_NUM_LRS;

/// ICH_HCR_EL2.En.
pub const HCR_EN: u64 = 1;
/// ICH_HCR_EL2 bits the host controls: UIE, LRENPIE, NPIE, VGrp0EIE,
/// VGrp0DIE, VGrp1EIE, VGrp1DIE, TDIR (the core's check allows no other).
pub const HCR_HOST_BITS: u64 = 0b1111_1110 | 1 << 14;
/// ICH_HCR_EL2.EOIcount [31:27].
pub const HCR_EOICOUNT: u64 = 0x1F << 27;

/// CNTHCTL_EL2 while a realm runs (E2H = 0): EL1PCTEN | EL1PCEN.
pub const CNTHCTL_REALM: u64 = 0x3;
/// CNTHCTL_EL2.CNTVMASK (FEAT_RME).
pub const CNTHCTL_CNTVMASK: u64 = 1 << 18;
/// CNTHCTL_EL2.CNTPMASK (FEAT_RME).
pub const CNTHCTL_CNTPMASK: u64 = 1 << 19;

/// Most APRs per group (PREbits = 7).
pub const MAX_APRS: usize = 4;

/// ICH_HCR_EL2 for an entry: the host's bits plus En.
pub fn hcr_entry(host: u64) -> u64 {
    (host & HCR_HOST_BITS) | HCR_EN
}

/// What `RmiRecExit.gicv3_hcr` reports of ICH_HCR_EL2 read on exit.
pub fn hcr_exit(hw: u64) -> u64 {
    hw & (HCR_EOICOUNT | HCR_HOST_BITS)
}

/// LRs the hardware has (ICH_VTR_EL2.ListRegs + 1), capped to RecRun's.
pub fn num_lrs(vtr: u64) -> usize {
    ((vtr & 0x1F) as usize + 1).min(REC_RUN_NUM_LRS)
}

/// APRs per group: 2^(PREbits - 5), PREbits = ICH_VTR_EL2[28:26] + 1.
pub fn num_aprs(vtr: u64) -> usize {
    let pre = ((vtr >> 26) & 7) as u32 + 1;
    (1usize << pre.saturating_sub(5)).min(MAX_APRS)
}

/// A generic timer's output is asserted: ENABLE, ISTATUS and not IMASK.
pub fn timer_asserted(ctl: u64) -> bool {
    ctl & 0b111 == 0b101
}

/// CNTHCTL_EL2 for an entry: mask the physical PPI of an asserted realm
/// timer (the host injects its virtual interrupt through an LR instead).
pub fn cnthctl_entry(cntv_ctl: u64, cntp_ctl: u64) -> u64 {
    let mut v = CNTHCTL_REALM;
    if timer_asserted(cntv_ctl) {
        v |= CNTHCTL_CNTVMASK;
    }
    if timer_asserted(cntp_ctl) {
        v |= CNTHCTL_CNTPMASK;
    }
    v
}

/// A REC's GIC CPU-interface state between runs.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct GicState {
    /// The host's ICH_HCR_EL2 bits, or what the exit reports.
    pub hcr: u64,
    /// ICH_LR<n>_EL2: the host's on entry, the hardware's after a run.
    pub lrs: [u64; REC_RUN_NUM_LRS],
    /// ICH_MISR_EL2 at the last exit.
    pub misr: u64,
    /// ICH_VMCR_EL2 (the REC's copy).
    pub vmcr: u64,
    /// ICH_AP0R<n>_EL2.
    pub ap0r: [u64; MAX_APRS],
    /// ICH_AP1R<n>_EL2.
    pub ap1r: [u64; MAX_APRS],
}

impl GicState {
    /// `RMI_REC_ENTER` hands over the host's (validated) HCR and LRs.
    pub fn host_enter(&mut self, hcr: u64, lrs: &[u64; REC_RUN_NUM_LRS]) {
        self.hcr = hcr & HCR_HOST_BITS;
        self.lrs = *lrs;
        self.misr = 0;
    }

    /// Merges what the hardware held after a run: its first `n` LRs
    /// replace the host's (LRs beyond `n` are invalid, the core checked).
    pub fn hw_exit(&mut self, hw_hcr: u64, hw_lrs: &[u64], misr: u64, vmcr: u64) {
        self.hcr = hcr_exit(hw_hcr);
        let n = hw_lrs.len().min(REC_RUN_NUM_LRS);
        self.lrs[..n].copy_from_slice(&hw_lrs[..n]);
        self.misr = misr;
        self.vmcr = vmcr;
    }
}

#[cfg(target_arch = "aarch64")]
mod hw {
    use super::{GicState, HCR_EN, MAX_APRS, REC_RUN_NUM_LRS};
    use crate::{mrs, msr};

    macro_rules! lr_access {
        ($($i:literal => $r:literal),* $(,)?) => {
            fn read_lr(i: usize) -> u64 {
                match i { $($i => mrs!($r),)* _ => 0 }
            }
            fn write_lr(i: usize, v: u64) {
                match i { $($i => msr!($r, v),)* _ => {} }
            }
        };
    }
    lr_access! {
        0 => "S3_4_C12_C12_0", 1 => "S3_4_C12_C12_1", 2 => "S3_4_C12_C12_2",
        3 => "S3_4_C12_C12_3", 4 => "S3_4_C12_C12_4", 5 => "S3_4_C12_C12_5",
        6 => "S3_4_C12_C12_6", 7 => "S3_4_C12_C12_7", 8 => "S3_4_C12_C13_0",
        9 => "S3_4_C12_C13_1", 10 => "S3_4_C12_C13_2", 11 => "S3_4_C12_C13_3",
        12 => "S3_4_C12_C13_4", 13 => "S3_4_C12_C13_5", 14 => "S3_4_C12_C13_6",
        15 => "S3_4_C12_C13_7",
    }

    macro_rules! apr_access {
        ($($i:literal => $r0:literal, $r1:literal),* $(,)?) => {
            fn read_apr(i: usize) -> (u64, u64) {
                match i { $($i => (mrs!($r0), mrs!($r1)),)* _ => (0, 0) }
            }
            fn write_apr(i: usize, ap0: u64, ap1: u64) {
                match i { $($i => { msr!($r0, ap0); msr!($r1, ap1); })* _ => {} }
            }
        };
    }
    apr_access! {
        0 => "S3_4_C12_C8_0", "S3_4_C12_C9_0",
        1 => "S3_4_C12_C8_1", "S3_4_C12_C9_1",
        2 => "S3_4_C12_C8_2", "S3_4_C12_C9_2",
        3 => "S3_4_C12_C8_3", "S3_4_C12_C9_3",
    }

    /// ICH_VTR_EL2.
    pub fn vtr() -> u64 {
        mrs!("S3_4_C12_C11_1")
    }

    /// Loads the REC's state before the ERET: APRs, LRs, VMCR, HCR | En.
    pub fn load(g: &GicState, vtr: u64) {
        for i in 0..super::num_aprs(vtr) {
            write_apr(i, g.ap0r[i], g.ap1r[i]);
        }
        for (i, &lr) in g.lrs.iter().enumerate().take(super::num_lrs(vtr)) {
            write_lr(i, lr);
        }
        msr!("S3_4_C12_C11_7", g.vmcr);
        msr!("S3_4_C12_C11_0", super::hcr_entry(g.hcr));
    }

    /// Reads the state back after the exit, clears En, and scrubs the LRs
    /// and APRs so nothing of the realm's interrupt state stays live.
    pub fn save(g: &mut GicState, vtr: u64) {
        let n = super::num_lrs(vtr);
        let mut lrs = [0u64; REC_RUN_NUM_LRS];
        for (i, lr) in lrs.iter_mut().enumerate().take(n) {
            *lr = read_lr(i);
            write_lr(i, 0);
        }
        for i in 0..super::num_aprs(vtr).min(MAX_APRS) {
            (g.ap0r[i], g.ap1r[i]) = read_apr(i);
            write_apr(i, 0, 0);
        }
        let hcr = mrs!("S3_4_C12_C11_0");
        let misr = mrs!("S3_4_C12_C11_2");
        let vmcr = mrs!("S3_4_C12_C11_7");
        msr!("S3_4_C12_C11_0", hcr & !HCR_EN);
        g.hw_exit(hcr, &lrs[..n], misr, vmcr);
    }
}

#[cfg(target_arch = "aarch64")]
pub use hw::{load, save, vtr};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcr_masks() {
        assert_eq!(hcr_entry(0), 1);
        // Host bits kept, anything else (TC, TALL0, DVIM, En) dropped.
        assert_eq!(
            hcr_entry(0xFE | 1 << 14 | 1 << 10 | 1 << 15),
            0xFF | 1 << 14
        );
        // Exit: EOIcount and host bits, not En nor the traps.
        let hw = 3 << 27 | 1 << 1 | 1 << 10 | HCR_EN;
        assert_eq!(hcr_exit(hw), 3 << 27 | 1 << 1);
    }

    #[test]
    fn vtr_fields() {
        // QEMU 10.0: 4 LRs, PREbits = 5 → one APR per group.
        assert_eq!(num_lrs(0x90B8_0003), 4);
        assert_eq!(num_aprs(0x90B8_0003), 1);
        // GIC-600 style PREbits = 7 → 4 APRs; 16+ LRs capped.
        assert_eq!(num_aprs(6 << 26), 4);
        assert_eq!(num_lrs(0x1F), 16);
    }

    #[test]
    fn timers() {
        assert!(timer_asserted(0b101));
        assert!(!timer_asserted(0b111), "IMASK");
        assert!(!timer_asserted(0b001), "not fired");
        assert!(!timer_asserted(0b100), "disabled");
        assert_eq!(cnthctl_entry(0, 0), 0x3);
        assert_eq!(cnthctl_entry(0b101, 0), 0x3 | 1 << 18);
        assert_eq!(cnthctl_entry(0b101, 0b101), 0x3 | 1 << 18 | 1 << 19);
        assert_eq!(cnthctl_entry(0b011, 0b101), 0x3 | 1 << 19);
    }

    #[test]
    fn lr_exchange() {
        let mut g = GicState::default();
        let mut host = [0u64; REC_RUN_NUM_LRS];
        host[0] = 1 << 62 | 1 << 60 | 0xA0 << 48 | 42;
        g.host_enter(0x2 | 1 << 10, &host);
        assert_eq!(g.hcr, 0x2);
        assert_eq!(g.lrs, host);
        // The hardware has 4 LRs; the realm acknowledged LR0 (active).
        let hw = [2 << 62 | 1 << 60 | 0xA0 << 48 | 42, 0, 0, 0];
        g.hw_exit(1 << 27 | 0x2 | HCR_EN, &hw, 0x2, 0x1);
        assert_eq!(g.lrs[0], hw[0]);
        assert_eq!(g.lrs[4..], host[4..]);
        assert_eq!((g.hcr, g.misr, g.vmcr), (1 << 27 | 0x2, 0x2, 0x1));
        // The next entry starts from the host's new values.
        g.host_enter(0, &[0; REC_RUN_NUM_LRS]);
        assert_eq!((g.lrs[0], g.misr, g.vmcr), (0, 0, 0x1));
    }
}
