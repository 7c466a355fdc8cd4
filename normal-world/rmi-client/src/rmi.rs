//! Typed wrappers for every RMI v1.0 command.

use ipc_schema::rmi::{fid, RmiReturn};
use ipc_schema::smccc::{smc_regs, SmcConduit, SmcRegs};

/// Why an RMI command failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RmiError {
    /// The RMM answered with a defined error status.
    #[error("RMM returned {0:?}")]
    Status(RmiReturn),
    /// x0 held no valid RMI return code (an undefined status or reserved
    /// bits set): the other side is not a conforming RMM.
    #[error("RMM returned an invalid status word {x0:#x}")]
    InvalidStatus {
        /// The raw x0.
        x0: u64,
    },
}

impl RmiError {
    /// The RMI status, if the RMM returned a valid one.
    pub fn status(&self) -> Option<RmiReturn> {
        match self {
            Self::Status(r) => Some(*r),
            Self::InvalidStatus { .. } => None,
        }
    }
}

/// Lets tests and callers write `assert_eq!(err, RmiReturn::INPUT)`.
impl PartialEq<RmiReturn> for RmiError {
    fn eq(&self, other: &RmiReturn) -> bool {
        self.status() == Some(*other)
    }
}

/// The result of an RMI command.
pub type RmiResult<T> = Result<T, RmiError>;

/// A failure of a command whose `top` output is defined even on error
/// (`DATA_DESTROY`, `RTT_DESTROY`, `RTT_UNMAP_UNPROTECTED`), so a host
/// walking a range can skip what is not there.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error} (top {top:#x})")]
pub struct TopError {
    /// The failure.
    pub error: RmiError,
    /// The `top` output.
    pub top: u64,
}

/// `RMI_VERSION` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RmiVersion {
    /// Lower supported revision (equals the request on success).
    pub lower: u64,
    /// Highest supported revision.
    pub higher: u64,
}

/// `RMI_VERSION` refused the requested revision; the outputs still say
/// what the RMM supports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}: RMM supports {:#x}..={:#x}", .supported.lower, .supported.higher)]
pub struct VersionMismatch {
    /// The status.
    pub error: RmiError,
    /// The revisions reported.
    pub supported: RmiVersion,
}

/// `RMI_DATA_DESTROY` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DataDestroyed {
    /// PA of the freed data granule (now DELEGATED).
    pub data: u64,
    /// IPA of the next live entry, to continue a walk.
    pub top: u64,
}

/// `RMI_RTT_DESTROY` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RttDestroyed {
    /// PA of the freed RTT granule (now DELEGATED).
    pub rtt: u64,
    /// IPA of the next live entry, to continue a walk.
    pub top: u64,
}

/// `RMI_RTT_READ_ENTRY` outputs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RttEntry {
    /// Level at which the walk stopped.
    pub walk_level: i64,
    /// Entry state ([`ipc_schema::rmi::rtt_state`]).
    pub state: u64,
    /// Descriptor (address, plus attributes for NS mappings).
    pub desc: u64,
    /// RIPAS ([`ipc_schema::rmi::Ripas`] encoding).
    pub ripas: u64,
}

/// An RMI client over any [`SmcConduit`]: the simulated RMM in tests, the
/// EL3 monitor on hardware. Each method issues exactly one SMC with the
/// command's argument registers and decodes x0 and its outputs.
pub struct RmiClient<C> {
    conduit: C,
}

impl<C: SmcConduit> RmiClient<C> {
    /// A client issuing SMCs through `conduit`.
    pub fn new(conduit: C) -> Self {
        Self { conduit }
    }

    /// The conduit.
    pub fn conduit_mut(&mut self) -> &mut C {
        &mut self.conduit
    }

    /// Gives the conduit back.
    pub fn into_inner(self) -> C {
        self.conduit
    }

    /// Issues `fid` with `args` in x1.. and returns all result registers,
    /// or the error status.
    pub fn call(&mut self, fid: u64, args: &[u64]) -> (Result<(), RmiError>, SmcRegs) {
        let out = self.conduit.smc(smc_regs(fid, args));
        let status = match RmiReturn::from_x0(out[0]) {
            Some(r) if r.is_success() => Ok(()),
            Some(r) => Err(RmiError::Status(r)),
            None => Err(RmiError::InvalidStatus { x0: out[0] }),
        };
        (status, out)
    }

    fn simple(&mut self, fid: u64, args: &[u64]) -> RmiResult<SmcRegs> {
        let (status, out) = self.call(fid, args);
        status.map(|()| out)
    }

    /// For commands with outputs in x1 and `top` in x2, `top` valid on error.
    fn with_top(&mut self, fid: u64, args: &[u64]) -> Result<(u64, u64), TopError> {
        let (status, out) = self.call(fid, args);
        match status {
            Ok(()) => Ok((out[1], out[2])),
            Err(error) => Err(TopError { error, top: out[2] }),
        }
    }

    /// `RMI_VERSION`: negotiates the interface revision.
    pub fn version(&mut self, requested: u64) -> Result<RmiVersion, VersionMismatch> {
        let (status, out) = self.call(fid::VERSION, &[requested]);
        let supported = RmiVersion {
            lower: out[1],
            higher: out[2],
        };
        status
            .map(|()| supported)
            .map_err(|error| VersionMismatch { error, supported })
    }

    /// `RMI_FEATURES`: reads feature register `index`.
    pub fn features(&mut self, index: u64) -> RmiResult<u64> {
        self.simple(fid::FEATURES, &[index]).map(|o| o[1])
    }

    /// `RMI_GRANULE_DELEGATE`: moves a granule to the Realm PAS.
    pub fn granule_delegate(&mut self, addr: u64) -> RmiResult<()> {
        self.simple(fid::GRANULE_DELEGATE, &[addr]).map(drop)
    }

    /// `RMI_GRANULE_UNDELEGATE`: returns a granule to the NS PAS.
    pub fn granule_undelegate(&mut self, addr: u64) -> RmiResult<()> {
        self.simple(fid::GRANULE_UNDELEGATE, &[addr]).map(drop)
    }

    /// `RMI_DATA_CREATE`: copies `src` into `data` and maps it at `ipa`.
    pub fn data_create(
        &mut self,
        rd: u64,
        data: u64,
        ipa: u64,
        src: u64,
        flags: u64,
    ) -> RmiResult<()> {
        self.simple(fid::DATA_CREATE, &[rd, data, ipa, src, flags])
            .map(drop)
    }

    /// `RMI_DATA_CREATE_UNKNOWN`: maps `data` at `ipa` without contents.
    pub fn data_create_unknown(&mut self, rd: u64, data: u64, ipa: u64) -> RmiResult<()> {
        self.simple(fid::DATA_CREATE_UNKNOWN, &[rd, data, ipa])
            .map(drop)
    }

    /// `RMI_DATA_DESTROY`: unmaps the data granule at `ipa`.
    pub fn data_destroy(&mut self, rd: u64, ipa: u64) -> Result<DataDestroyed, TopError> {
        self.with_top(fid::DATA_DESTROY, &[rd, ipa])
            .map(|(data, top)| DataDestroyed { data, top })
    }

    /// `RMI_REALM_ACTIVATE`: freezes the RIM and lets RECs run.
    pub fn realm_activate(&mut self, rd: u64) -> RmiResult<()> {
        self.simple(fid::REALM_ACTIVATE, &[rd]).map(drop)
    }

    /// `RMI_ISLET_REALM_SET_METADATA` (Samsung Islet vendor call): the
    /// vendor-signed 432-byte block at NS PA `block` is kept in the delegated
    /// `granule` for realm `rd`; only while the realm is NEW.
    pub fn realm_set_metadata(&mut self, rd: u64, granule: u64, block: u64) -> RmiResult<()> {
        self.simple(
            ipc_schema::islet::fid::RMI_REALM_SET_METADATA,
            &[rd, granule, block],
        )
        .map(drop)
    }

    /// `RMI_REALM_CREATE` with the `RmiRealmParams` page at `params`.
    pub fn realm_create(&mut self, rd: u64, params: u64) -> RmiResult<()> {
        self.simple(fid::REALM_CREATE, &[rd, params]).map(drop)
    }

    /// `RMI_REALM_DESTROY`.
    pub fn realm_destroy(&mut self, rd: u64) -> RmiResult<()> {
        self.simple(fid::REALM_DESTROY, &[rd]).map(drop)
    }

    /// `RMI_REC_CREATE` with the `RmiRecParams` page at `params`.
    pub fn rec_create(&mut self, rd: u64, rec: u64, params: u64) -> RmiResult<()> {
        self.simple(fid::REC_CREATE, &[rd, rec, params]).map(drop)
    }

    /// `RMI_REC_DESTROY`.
    pub fn rec_destroy(&mut self, rec: u64) -> RmiResult<()> {
        self.simple(fid::REC_DESTROY, &[rec]).map(drop)
    }

    /// `RMI_REC_ENTER` with the `RmiRecRun` page at `run`; the exit reason
    /// is in that page afterwards.
    pub fn rec_enter(&mut self, rec: u64, run: u64) -> RmiResult<()> {
        self.simple(fid::REC_ENTER, &[rec, run]).map(drop)
    }

    /// `RMI_RTT_CREATE` of the RTT at `level` covering `ipa`.
    pub fn rtt_create(&mut self, rd: u64, rtt: u64, ipa: u64, level: i64) -> RmiResult<()> {
        self.simple(fid::RTT_CREATE, &[rd, rtt, ipa, level as u64])
            .map(drop)
    }

    /// `RMI_RTT_DESTROY`.
    pub fn rtt_destroy(&mut self, rd: u64, ipa: u64, level: i64) -> Result<RttDestroyed, TopError> {
        self.with_top(fid::RTT_DESTROY, &[rd, ipa, level as u64])
            .map(|(rtt, top)| RttDestroyed { rtt, top })
    }

    /// `RMI_RTT_MAP_UNPROTECTED`: maps NS memory described by `desc`.
    pub fn rtt_map_unprotected(
        &mut self,
        rd: u64,
        ipa: u64,
        level: i64,
        desc: u64,
    ) -> RmiResult<()> {
        self.simple(fid::RTT_MAP_UNPROTECTED, &[rd, ipa, level as u64, desc])
            .map(drop)
    }

    /// `RMI_RTT_READ_ENTRY`.
    pub fn rtt_read_entry(&mut self, rd: u64, ipa: u64, level: i64) -> RmiResult<RttEntry> {
        self.simple(fid::RTT_READ_ENTRY, &[rd, ipa, level as u64])
            .map(|o| RttEntry {
                walk_level: o[1] as i64,
                state: o[2] & 0xff,
                desc: o[3],
                ripas: o[4] & 0xff,
            })
    }

    /// `RMI_RTT_UNMAP_UNPROTECTED`; returns `top`.
    pub fn rtt_unmap_unprotected(
        &mut self,
        rd: u64,
        ipa: u64,
        level: i64,
    ) -> Result<u64, TopError> {
        // This command reports `top` in x1 (its only output).
        let (status, out) = self.call(fid::RTT_UNMAP_UNPROTECTED, &[rd, ipa, level as u64]);
        status
            .map(|()| out[1])
            .map_err(|error| TopError { error, top: out[1] })
    }

    /// `RMI_PSCI_COMPLETE`.
    pub fn psci_complete(
        &mut self,
        calling_rec: u64,
        target_rec: u64,
        status: u64,
    ) -> RmiResult<()> {
        self.simple(fid::PSCI_COMPLETE, &[calling_rec, target_rec, status])
            .map(drop)
    }

    /// `RMI_RTT_FOLD`; returns the PA of the folded RTT.
    pub fn rtt_fold(&mut self, rd: u64, ipa: u64, level: i64) -> RmiResult<u64> {
        self.simple(fid::RTT_FOLD, &[rd, ipa, level as u64])
            .map(|o| o[1])
    }

    /// `RMI_REC_AUX_COUNT`: auxiliary granules each REC of `rd` needs.
    pub fn rec_aux_count(&mut self, rd: u64) -> RmiResult<u64> {
        self.simple(fid::REC_AUX_COUNT, &[rd]).map(|o| o[1])
    }

    /// `RMI_RTT_INIT_RIPAS` over `[base, top)`; returns `out_top`, where the
    /// next call must start.
    pub fn rtt_init_ripas(&mut self, rd: u64, base: u64, top: u64) -> RmiResult<u64> {
        self.simple(fid::RTT_INIT_RIPAS, &[rd, base, top])
            .map(|o| o[1])
    }

    /// `RMI_RTT_SET_RIPAS`; returns `out_top`.
    pub fn rtt_set_ripas(&mut self, rd: u64, rec: u64, base: u64, top: u64) -> RmiResult<u64> {
        self.simple(fid::RTT_SET_RIPAS, &[rd, rec, base, top])
            .map(|o| o[1])
    }
}
