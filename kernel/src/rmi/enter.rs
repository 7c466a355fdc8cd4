//! `RMI_REC_ENTER`: runs a REC until it needs the host.

use ipc_schema::rmi::{rec_enter_flags, RmiRecEnter, RmiRecExit, RmiReturn, REC_RUN_EXIT_OFFSET};
use ipc_schema::rsi::{self, ripas_response};
use ipc_schema::smccc::psci;
use zerocopy::{FromZeros, IntoBytes};

use crate::arch::{Pas, Platform, RealmVcpu, Resume, Trap};
use crate::granule::GranuleState;
use crate::realm::RealmState;
use crate::rec::{Pending, Rec};
use crate::rsi::{esr, Exit, Step, Translation};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

/// ICH_HCR_EL2 bits the host controls: UIE, LRENPIE, NPIE, VGrp0EIE,
/// VGrp0DIE, VGrp1EIE, VGrp1DIE, TDIR.
const GIC_HCR_HOST_BITS: u64 = 0b1111_1110 | 1 << 14;
/// ICH_LR<n>_EL2 fields.
const LR_STATE_SHIFT: u32 = 62;
const LR_HW: u64 = 1 << 61;
const LR_VINTID_MASK: u64 = 0xFFFF_FFFF;
const LR_PINTID_SHIFT: u32 = 32;
const LR_PINTID_MASK: u64 = 0x1FFF;
const LR_PINTID_EOI: u64 = 1 << 9;
/// RES0 bits: [59:56] and [47:45], plus Priority[2:0] because the
/// simulated GIC implements five priority bits (ICH_VTR_EL2.PRIbits = 4),
/// as GIC-600 and the FVP do.
const LR_RES0: u64 = 0xF << 56 | 0x7 << 45 | 0x7 << 48;

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `Gicv3ConfigIsValid`.
    fn gic_config_valid(&self, enter: &RmiRecEnter) -> bool {
        if enter.gicv3_hcr & !GIC_HCR_HOST_BITS != 0 {
            return false;
        }
        let n = usize::from(self.config.gic_num_lrs);
        let mut seen: [u64; 16] = [u64::MAX; 16];
        for (i, &lr) in enter.gicv3_lrs.iter().enumerate() {
            if lr >> LR_STATE_SHIFT == 0 {
                continue;
            }
            if i >= n || lr & LR_HW != 0 || lr & LR_RES0 != 0 {
                return false;
            }
            let pintid = (lr >> LR_PINTID_SHIFT) & LR_PINTID_MASK;
            if pintid & !LR_PINTID_EOI != 0 {
                return false;
            }
            let vintid = lr & LR_VINTID_MASK;
            if (1020..8192).contains(&vintid) || vintid >= 1 << 16 || seen.contains(&vintid) {
                return false;
            }
            seen[i] = vintid;
        }
        true
    }

    /// `RMI_REC_ENTER`.
    pub fn rec_enter(&mut self, rec: u64, run_ptr: u64) -> Result<(), RmiReturn> {
        if !is_granule_aligned(run_ptr) || !self.granules.is_delegable(run_ptr) {
            return Err(RmiReturn::INPUT);
        }
        if self.platform.pas(run_ptr) != Some(Pas::NonSecure) {
            return Err(RmiReturn::INPUT);
        }
        self.check_granule(rec, GranuleState::Rec)?;
        let mut enter = RmiRecEnter::new_zeroed();
        self.platform
            .read_ns(run_ptr, enter.as_mut_bytes())
            .map_err(|_| RmiReturn::INPUT)?;
        let r = self.recs.get(&rec).ok_or(RmiReturn::INPUT)?;
        let realm = self.realms.get(&r.owner).ok_or(RmiReturn::INPUT)?;
        match realm.state {
            RealmState::New => return Err(RmiReturn::realm(0)),
            RealmState::SystemOff => return Err(RmiReturn::realm(1)),
            RealmState::Active => {}
        }
        if r.running || !r.runnable {
            return Err(RmiReturn::REC);
        }
        if enter.flags & rec_enter_flags::EMUL_MMIO != 0
            && !matches!(r.pending, Pending::EmulatableAbort(_))
        {
            return Err(RmiReturn::REC);
        }
        if !self.gic_config_valid(&enter) {
            return Err(RmiReturn::REC);
        }
        if r.pending == Pending::PsciRequest {
            return Err(RmiReturn::REC);
        }

        let mut r = self.recs.remove(&rec).ok_or(RmiReturn::INPUT)?;
        r.running = true;
        let exit = self.run_rec(rec, &mut r, &enter);
        r.running = false;
        let mut run_exit = RmiRecExit::new_zeroed();
        exit.fill(&mut run_exit);
        run_exit.gicv3_hcr = r.gic_hcr;
        run_exit.gicv3_lrs = r.gic_lrs;
        if let Some(irqs) = self.platform.vcpu_irqs(rec) {
            run_exit.gicv3_hcr = irqs.gic_hcr;
            run_exit.gicv3_lrs = irqs.gic_lrs;
            run_exit.gicv3_misr = irqs.gic_misr;
            run_exit.gicv3_vmcr = irqs.gic_vmcr;
            run_exit.cntp_ctl = irqs.cntp_ctl;
            run_exit.cntp_cval = irqs.cntp_cval;
            run_exit.cntv_ctl = irqs.cntv_ctl;
            run_exit.cntv_cval = irqs.cntv_cval;
        }
        if !matches!(exit, Exit::RipasChange { .. }) {
            r.ripas.addr = 0;
            r.ripas.top = 0;
        }
        self.recs.insert(rec, r);
        self.platform
            .write_ns(run_ptr + REC_RUN_EXIT_OFFSET as u64, run_exit.as_bytes())
            .map_err(|_| RmiReturn::INPUT)
    }

    /// Entry processing (§6.2) and the run loop; returns why the REC exits.
    fn run_rec(&mut self, rec: u64, r: &mut Rec, enter: &RmiRecEnter) -> Exit {
        r.gic_lrs = enter.gicv3_lrs;
        r.gic_hcr = enter.gicv3_hcr & GIC_HCR_HOST_BITS;
        self.platform.set_vcpu_irqs(rec, r.gic_hcr, &r.gic_lrs);
        let flags = enter.flags;
        let mut resume = match r.pending {
            Pending::Resume(resume) => resume,
            Pending::EmulatableAbort(_) if flags & rec_enter_flags::INJECT_SEA != 0 => Resume::Sea,
            Pending::EmulatableAbort(access) if flags & rec_enter_flags::EMUL_MMIO != 0 => {
                if !access.write {
                    let bits = u32::from(access.size) * 8;
                    let mask = if bits >= 64 {
                        u64::MAX
                    } else {
                        (1 << bits) - 1
                    };
                    r.regs.gprs[usize::from(access.reg)] = enter.gprs[0] & mask;
                }
                Resume::Next
            }
            Pending::EmulatableAbort(_) => Resume::Retry,
            Pending::UnprotectedAbort if flags & rec_enter_flags::INJECT_SEA != 0 => Resume::Sea,
            Pending::UnprotectedAbort => Resume::Retry,
            Pending::PsciResult(v) => {
                r.regs.gprs[0] = v;
                Resume::Next
            }
            Pending::HostCall(ipa) => {
                let realm_rd = r.owner;
                match self.translate(realm_rd, ipa) {
                    Translation::Mapped { pa, .. } => {
                        let mut bytes = [0u8; 31 * 8];
                        for (chunk, v) in bytes.chunks_mut(8).zip(enter.gprs.iter()) {
                            chunk.copy_from_slice(&v.to_le_bytes());
                        }
                        let _ = self.platform.write(pa + 8, &bytes);
                        r.regs.gprs[0] = rsi::status::SUCCESS;
                        Resume::Next
                    }
                    t => {
                        // The host unmapped the structure: exit again
                        // without running the realm.
                        return Exit::from_translation(t, ipa).unwrap_or(Exit::Irq);
                    }
                }
            }
            Pending::RipasChange => {
                let reject = flags & rec_enter_flags::RIPAS_RESPONSE != 0
                    && r.ripas.value == ipc_schema::rmi::Ripas::Ram as u8
                    && r.ripas.addr != r.ripas.top;
                r.regs.gprs[0] = rsi::status::SUCCESS;
                r.regs.gprs[1] = r.ripas.addr;
                r.regs.gprs[2] = if reject {
                    ripas_response::REJECT
                } else {
                    ripas_response::ACCEPT
                };
                r.ripas.pending = false;
                Resume::Next
            }
            // Refused by the rec_psci check before we got here.
            Pending::PsciRequest => return Exit::Irq,
        };
        r.pending = Pending::Resume(Resume::Next);

        if let Some(realm) = self.realms.get(&r.owner) {
            let vcpu = RealmVcpu {
                vmid: realm.vmid,
                rtt: realm.rtt,
                mpidr: r.mpidr,
            };
            self.platform.prepare_vcpu(rec, &vcpu);
        }
        loop {
            let trap = self.platform.run_vcpu(rec, &mut r.regs, resume);
            let step = match trap {
                Trap::Smc => self.realm_smc(rec, r),
                Trap::MemAccess(access) => self.realm_access(r, access),
                Trap::Hvc => Step::Continue(Resume::Undefined),
                Trap::Wfi | Trap::Wfe => {
                    let (flag, ti) = if trap == Trap::Wfi {
                        (rec_enter_flags::TRAP_WFI, 0)
                    } else {
                        (rec_enter_flags::TRAP_WFE, 1)
                    };
                    if flags & flag != 0 {
                        Step::Exit(Exit::Sync {
                            esr: esr::wfx(ti),
                            far: 0,
                            hpfar: 0,
                            gpr0: 0,
                        })
                    } else {
                        // Nothing to wake the vCPU but the host's next
                        // interrupt: give the host the CPU.
                        Step::Exit(Exit::Irq)
                    }
                }
                Trap::Irq => Step::Exit(Exit::Irq),
                Trap::Halted => {
                    r.runnable = false;
                    Step::Exit(Exit::Psci {
                        gprs: [psci::CPU_OFF, 0, 0, 0],
                    })
                }
            };
            match step {
                Step::Continue(next) => resume = next,
                Step::Exit(exit) => return exit,
            }
        }
    }
}
