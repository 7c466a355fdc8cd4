//! `RMI_PSCI_COMPLETE`: the host's answer to a realm's CPU_ON or
//! AFFINITY_INFO naming another REC.

use ipc_schema::rmi::RmiReturn;
use ipc_schema::smccc::{psci, SVE_HINT};

use crate::arch::Platform;
use crate::granule::GranuleState;
use crate::rec::{rec_index_psci, Pending};
use crate::services::ServiceTransport;
use crate::Rmm;

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_PSCI_COMPLETE`.
    pub fn psci_complete(
        &mut self,
        calling: u64,
        target: u64,
        status: u64,
    ) -> Result<(), RmiReturn> {
        if calling == target {
            return Err(RmiReturn::INPUT);
        }
        self.check_granule(calling, GranuleState::Rec)?;
        self.check_granule(target, GranuleState::Rec)?;
        let c = self.recs.get(&calling).ok_or(RmiReturn::INPUT)?;
        let t = self.recs.get(&target).ok_or(RmiReturn::INPUT)?;
        if c.pending != Pending::PsciRequest || c.running {
            return Err(RmiReturn::INPUT);
        }
        if t.owner != c.owner {
            return Err(RmiReturn::INPUT);
        }
        if rec_index_psci(c.regs.gprs[1]) != Some(t.index) {
            return Err(RmiReturn::INPUT);
        }
        // x0 still holds the FID as the realm issued it, SVE hint included.
        let call = c.regs.gprs[0] & !SVE_HINT;
        let is_cpu_on = call & !0x4000_0000 == psci::CPU_ON & !0x4000_0000;
        // PsciReturnCodePermitted: SUCCESS always; DENIED only for CPU_ON of
        // a REC that is not runnable.
        let permitted = status == psci::status::SUCCESS
            || (status == psci::status::DENIED && is_cpu_on && !t.runnable);
        if !permitted {
            return Err(RmiReturn::INPUT);
        }
        let (entry, context) = (c.regs.gprs[2], c.regs.gprs[3]);
        let target_runnable = t.runnable;
        let result = if status != psci::status::SUCCESS {
            status
        } else if is_cpu_on {
            if target_runnable {
                psci::status::ALREADY_ON
            } else {
                if let Some(t) = self.recs.get_mut(&target) {
                    t.regs.gprs = [0; 31];
                    t.regs.gprs[0] = context;
                    t.regs.pc = entry;
                    t.runnable = true;
                }
                psci::status::SUCCESS
            }
        } else if target_runnable {
            psci::status::SUCCESS
        } else {
            psci::status::AFFINITY_OFF
        };
        if let Some(c) = self.recs.get_mut(&calling) {
            c.regs.gprs[1..4].fill(0);
            c.pending = Pending::PsciResult(result);
        }
        Ok(())
    }
}
