//! RMI: the host's interface. One file per command family; this file holds
//! the dispatcher, which decodes the function ID, passes each handler only
//! the argument registers its command declares and clears every result
//! register the command does not define.

mod data;
mod enter;
mod granule;
mod islet;
mod psci;
mod realm;
mod rec;
mod ripas;
mod rtt;

use ipc_schema::islet::fid as islet_fid;
use ipc_schema::rmi::{fid, RmiReturn, VERSION_1_0};
use ipc_schema::smccc::{SmcRegs, SMC_UNKNOWN};

use crate::arch::Platform;
use crate::granule::GranuleState;
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

/// An RMI command's result: x0 and up to four output registers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RmiOutput {
    /// x0.
    pub ret: RmiReturn,
    /// x1..x4 (those the command defines; the rest zero).
    pub out: [u64; 4],
}

impl RmiOutput {
    /// Success with outputs.
    pub const fn ok(out: [u64; 4]) -> Self {
        Self {
            ret: RmiReturn::SUCCESS,
            out,
        }
    }

    /// A failure with outputs (only `top` outputs are defined on failure).
    pub const fn err_with(ret: RmiReturn, out: [u64; 4]) -> Self {
        Self { ret, out }
    }
}

impl From<RmiReturn> for RmiOutput {
    fn from(ret: RmiReturn) -> Self {
        Self { ret, out: [0; 4] }
    }
}

impl From<Result<(), RmiReturn>> for RmiOutput {
    fn from(r: Result<(), RmiReturn>) -> Self {
        match r {
            Ok(()) => RmiReturn::SUCCESS.into(),
            Err(e) => e.into(),
        }
    }
}

/// Argument and result register counts of every RMI command.
const fn arity(fid: u64) -> Option<(usize, usize)> {
    Some(match fid {
        fid::VERSION => (1, 2),
        fid::GRANULE_DELEGATE | fid::GRANULE_UNDELEGATE => (1, 0),
        fid::DATA_CREATE => (5, 0),
        fid::DATA_CREATE_UNKNOWN => (3, 0),
        fid::DATA_DESTROY => (2, 2),
        fid::REALM_ACTIVATE | fid::REALM_DESTROY => (1, 0),
        fid::REALM_CREATE => (2, 0),
        fid::REC_CREATE => (3, 0),
        fid::REC_DESTROY => (1, 0),
        fid::REC_ENTER => (2, 0),
        fid::RTT_CREATE => (4, 0),
        fid::RTT_DESTROY => (3, 2),
        fid::RTT_MAP_UNPROTECTED => (4, 0),
        fid::RTT_READ_ENTRY => (3, 4),
        fid::RTT_UNMAP_UNPROTECTED => (3, 1),
        fid::PSCI_COMPLETE => (3, 0),
        fid::FEATURES => (1, 1),
        fid::RTT_FOLD => (3, 1),
        fid::REC_AUX_COUNT => (1, 1),
        fid::RTT_INIT_RIPAS => (3, 1),
        fid::RTT_SET_RIPAS => (4, 1),
        islet_fid::RMI_REALM_SET_METADATA => (3, 0),
        _ => return None,
    })
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// Handles one SMC from the host. Unknown function IDs get
    /// `SMC_UNKNOWN`; nothing here panics on any register values.
    pub fn handle_rmi(&mut self, regs: SmcRegs) -> SmcRegs {
        let mut out = [0; 18];
        let Some((inputs, outputs)) = arity(regs[0]) else {
            out[0] = SMC_UNKNOWN;
            return out;
        };
        let mut a = [0u64; 5];
        a[..inputs].copy_from_slice(&regs[1..=inputs]);
        let r = match regs[0] {
            fid::VERSION => self.rmi_version(a[0]),
            fid::GRANULE_DELEGATE => self.granule_delegate(a[0]).into(),
            fid::GRANULE_UNDELEGATE => self.granule_undelegate(a[0]).into(),
            fid::DATA_CREATE => self.data_create(a[0], a[1], a[2], a[3], a[4]).into(),
            fid::DATA_CREATE_UNKNOWN => self.data_create_unknown(a[0], a[1], a[2]).into(),
            fid::DATA_DESTROY => self.data_destroy(a[0], a[1]),
            fid::REALM_ACTIVATE => self.realm_activate(a[0]).into(),
            fid::REALM_CREATE => self.realm_create(a[0], a[1]).into(),
            fid::REALM_DESTROY => self.realm_destroy(a[0]).into(),
            fid::REC_CREATE => self.rec_create(a[0], a[1], a[2]).into(),
            fid::REC_DESTROY => self.rec_destroy(a[0]).into(),
            fid::REC_ENTER => self.rec_enter(a[0], a[1]).into(),
            fid::RTT_CREATE => self.rtt_create(a[0], a[1], a[2], a[3]).into(),
            fid::RTT_DESTROY => self.rtt_destroy(a[0], a[1], a[2]),
            fid::RTT_MAP_UNPROTECTED => self.rtt_map_unprotected(a[0], a[1], a[2], a[3]).into(),
            fid::RTT_READ_ENTRY => self.rtt_read_entry(a[0], a[1], a[2]),
            fid::RTT_UNMAP_UNPROTECTED => self.rtt_unmap_unprotected(a[0], a[1], a[2]),
            fid::PSCI_COMPLETE => self.psci_complete(a[0], a[1], a[2]).into(),
            fid::FEATURES => self.rmi_features(a[0]),
            fid::RTT_FOLD => self.rtt_fold(a[0], a[1], a[2]),
            fid::REC_AUX_COUNT => self.rec_aux_count(a[0]),
            fid::RTT_INIT_RIPAS => self.rtt_init_ripas(a[0], a[1], a[2]),
            fid::RTT_SET_RIPAS => self.rtt_set_ripas(a[0], a[1], a[2], a[3]),
            islet_fid::RMI_REALM_SET_METADATA => self.islet_set_metadata(a[0], a[1], a[2]).into(),
            _ => unreachable!("arity() and this match list the same commands"),
        };
        out[0] = r.ret.to_x0();
        out[1..=outputs].copy_from_slice(&r.out[..outputs]);
        out
    }

    /// `RMI_VERSION`: this RMM speaks exactly 1.0.
    pub fn rmi_version(&self, requested: u64) -> RmiOutput {
        let ret = if requested == VERSION_1_0 {
            RmiReturn::SUCCESS
        } else {
            RmiReturn::INPUT
        };
        RmiOutput {
            ret,
            out: [VERSION_1_0, VERSION_1_0, 0, 0],
        }
    }

    /// `RMI_FEATURES`.
    pub fn rmi_features(&self, index: u64) -> RmiOutput {
        let value = if index == 0 {
            self.config.feature0()
        } else {
            0
        };
        RmiOutput::ok([value, 0, 0, 0])
    }

    /// The `*_align`, `*_bound`, `*_state` triple every granule argument is
    /// checked with, all failing with `RMI_ERROR_INPUT`.
    pub(crate) fn check_granule(&self, pa: u64, state: GranuleState) -> Result<(), RmiReturn> {
        if !is_granule_aligned(pa) || !self.granule_is(pa, state) {
            return Err(RmiReturn::INPUT);
        }
        Ok(())
    }

    /// Copies a host params granule into RMM memory: `*_align`, `*_bound`,
    /// `*_pas`, all `RMI_ERROR_INPUT`.
    pub(crate) fn read_host_page(&self, pa: u64, buf: &mut [u8]) -> Result<(), RmiReturn> {
        if !is_granule_aligned(pa) || !self.granules.is_delegable(pa) {
            return Err(RmiReturn::INPUT);
        }
        self.platform.read_ns(pa, buf).map_err(|_| RmiReturn::INPUT)
    }
}
