//! Executing a [`BuildPlan`] against an RMM.

use alloc::vec::Vec;

use atoll_realm_description::{BuildPlan, RealmCreate, RecCreate, Step};
use ipc_schema::rmi::{RmiRealmParams, RmiRecParams, MAX_REC_AUX_GRANULES};
use ipc_schema::smccc::SmcConduit;
use zerocopy::{FromZeros, IntoBytes};

use crate::memory::{HostMemory, MemoryError};
use crate::rmi::{RmiClient, RmiError};

/// What went wrong in a build step.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildErrorKind {
    /// An RMI command failed.
    #[error("{command} failed: {error}")]
    Rmi {
        /// The command.
        command: &'static str,
        /// Its status.
        error: RmiError,
    },
    /// Host memory could not be allocated or accessed.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Neither the plan nor the builder supplied a VMID.
    #[error("no VMID: the description does not pin one and none was given to the builder")]
    NoVmid,
    /// `RTT_INIT_RIPAS` returned an `out_top` that does not advance within
    /// the requested range.
    #[error("RMI_RTT_INIT_RIPAS over {base:#x}..{top:#x} returned out_top {out_top:#x}")]
    NoProgress {
        /// Where the call started.
        base: u64,
        /// The requested top.
        top: u64,
        /// What the RMM returned.
        out_top: u64,
    },
    /// The RMM wants more auxiliary granules per REC than `RmiRecParams`
    /// can list.
    #[error("RMI_REC_AUX_COUNT returned {0}, more than {MAX_REC_AUX_GRANULES}")]
    TooManyAux(u64),
    /// A step that needs the realm came before `REALM_CREATE`, or the plan
    /// has none (a corrupt plan).
    #[error("the plan does not start with REALM_CREATE")]
    NoRealm,
    /// A data step whose content is not one page (a corrupt plan).
    #[error("data page of {0} bytes")]
    PageSize(usize),
}

/// A failed build: which step of the plan, what it was, and why.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("building the realm failed at plan step {step} ({what}): {kind}")]
pub struct BuildError {
    /// Index of the plan step.
    pub step: usize,
    /// A short description of the step (the RMI command it issues).
    pub what: &'static str,
    /// The failure.
    pub kind: BuildErrorKind,
}

/// A REC the builder created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltRec {
    /// REC index.
    pub index: u32,
    /// MPIDR it was created with.
    pub mpidr: u64,
    /// PA of the REC granule.
    pub rec: u64,
    /// PAs of its auxiliary granules.
    pub aux: Vec<u64>,
    /// A zeroed NS granule for its `RmiRecRun`, ready for `REC_ENTER`.
    pub run: u64,
    /// Whether it was created runnable.
    pub runnable: bool,
}

/// Everything the host needs to run and later tear down a built realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltRealm {
    /// PA of the RD.
    pub rd: u64,
    /// VMID used.
    pub vmid: u16,
    /// PA of the first starting-level RTT.
    pub rtt_base: u64,
    /// Starting RTT level.
    pub rtt_level_start: i8,
    /// Number of starting RTTs.
    pub rtt_num_start: u32,
    /// Non-starting RTTs: (IPA, level, PA), in creation order.
    pub rtts: Vec<(u64, i8, u64)>,
    /// Data granules: (IPA, PA).
    pub data: Vec<(u64, u64)>,
    /// RECs, in index order.
    pub recs: Vec<BuiltRec>,
    /// Whether `REALM_ACTIVATE` ran (the plan's last step).
    pub active: bool,
    /// The metadata granule, when the realm was given a metadata block.
    pub metadata: Option<u64>,
}

/// Builds realms by executing a [`BuildPlan`] step by step over an RMI
/// client and host memory.
///
/// Every granule handed to the RMM is allocated from the [`HostMemory`]
/// and delegated first; parameter and source pages are written into one
/// NS scratch granule each, reused across steps. On failure the realm is
/// left as far as it got; the [`BuildError`] says which step failed and
/// [`RealmBuilder::partial`] what had been created, for teardown.
pub struct RealmBuilder<'a, C, M> {
    rmi: &'a mut RmiClient<C>,
    mem: &'a mut M,
    vmid: Option<u16>,
    metadata: Option<[u8; METADATA_LEN]>,
    partial: Option<BuiltRealm>,
}

/// Size of an Islet realm metadata block.
pub const METADATA_LEN: usize = core::mem::size_of::<ipc_schema::islet::RealmMetadata>();

impl<'a, C: SmcConduit, M: HostMemory> RealmBuilder<'a, C, M> {
    /// A builder issuing RMI commands through `rmi` with granules from `mem`.
    pub fn new(rmi: &'a mut RmiClient<C>, mem: &'a mut M) -> Self {
        Self {
            rmi,
            mem,
            vmid: None,
            metadata: None,
            partial: None,
        }
    }

    /// The VMID to use when the plan does not pin one (the host owns VMID
    /// allocation; a description usually leaves it open).
    pub fn vmid(mut self, vmid: u16) -> Self {
        self.vmid = Some(vmid);
        self
    }

    /// A vendor-signed metadata block (`atoll metadata create`) to give the
    /// realm before it is activated; the RMM then activates it only if its
    /// RIM is the one the vendor signed.
    pub fn metadata(mut self, block: [u8; METADATA_LEN]) -> Self {
        self.metadata = Some(block);
        self
    }

    /// What the last failed [`RealmBuilder::build`] had created.
    pub fn partial(&self) -> Option<&BuiltRealm> {
        self.partial.as_ref()
    }

    /// Executes every step of `plan`, in order.
    pub fn build(&mut self, plan: &BuildPlan) -> Result<BuiltRealm, BuildError> {
        self.partial = None;
        let mut st = State {
            realm: None,
            scratch: 0,
            aux_count: None,
        };
        for (i, step) in plan.steps().enumerate() {
            let what = step_name(&step);
            if let Err(kind) = self.step(&mut st, step) {
                self.partial = st.realm;
                return Err(BuildError {
                    step: i,
                    what,
                    kind,
                });
            }
        }
        st.realm.ok_or(BuildError {
            step: 0,
            what: "REALM_CREATE",
            kind: BuildErrorKind::NoRealm,
        })
    }

    fn step(&mut self, st: &mut State, step: Step<'_>) -> Result<(), BuildErrorKind> {
        match step {
            Step::RealmCreate(rc) => {
                st.scratch = self.mem.alloc_granule()?;
                let realm = self.realm_create(rc, st.scratch)?;
                st.realm = Some(realm);
            }
            Step::RttCreate { ipa, level } => {
                let realm = st.realm_mut()?;
                let rd = realm.rd;
                let rtt = self.delegated(1)?;
                self.rmi
                    .rtt_create(rd, rtt, ipa, level.into())
                    .map_err(rmi("RMI_RTT_CREATE"))?;
                st.realm_mut()?.rtts.push((ipa, level, rtt));
            }
            Step::InitRipas { base, top, .. } => {
                let rd = st.realm_mut()?.rd;
                let mut at = base;
                while at < top {
                    let out_top = self
                        .rmi
                        .rtt_init_ripas(rd, at, top)
                        .map_err(rmi("RMI_RTT_INIT_RIPAS"))?;
                    if out_top <= at || out_top > top {
                        return Err(BuildErrorKind::NoProgress {
                            base: at,
                            top,
                            out_top,
                        });
                    }
                    at = out_top;
                }
            }
            Step::Data {
                ipa,
                measured,
                content,
            } => {
                if content.len() != ipc_schema::GRANULE_SIZE {
                    return Err(BuildErrorKind::PageSize(content.len()));
                }
                let rd = st.realm_mut()?.rd;
                self.mem.write(st.scratch, content)?;
                let data = self.delegated(1)?;
                self.rmi
                    .data_create(rd, data, ipa, st.scratch, Step::data_flags(measured))
                    .map_err(rmi("RMI_DATA_CREATE"))?;
                st.realm_mut()?.data.push((ipa, data));
            }
            Step::RecCreate(rc) => {
                let rd = st.realm_mut()?.rd;
                let aux_count = match st.aux_count {
                    Some(n) => n,
                    None => {
                        let n = self
                            .rmi
                            .rec_aux_count(rd)
                            .map_err(rmi("RMI_REC_AUX_COUNT"))?;
                        if n > MAX_REC_AUX_GRANULES as u64 {
                            return Err(BuildErrorKind::TooManyAux(n));
                        }
                        st.aux_count = Some(n);
                        n
                    }
                };
                let rec = self.rec_create(rd, rc, aux_count, st.scratch)?;
                st.realm_mut()?.recs.push(rec);
            }
            Step::Activate => {
                let rd = st.realm_mut()?.rd;
                if let Some(block) = self.metadata {
                    self.mem.write(st.scratch, &block)?;
                    let granule = self.delegated(1)?;
                    self.rmi
                        .realm_set_metadata(rd, granule, st.scratch)
                        .map_err(rmi("RMI_ISLET_REALM_SET_METADATA"))?;
                    st.realm_mut()?.metadata = Some(granule);
                }
                self.rmi
                    .realm_activate(rd)
                    .map_err(rmi("RMI_REALM_ACTIVATE"))?;
                st.realm_mut()?.active = true;
            }
        }
        Ok(())
    }

    /// Allocates `count` contiguous granules and delegates each.
    fn delegated(&mut self, count: usize) -> Result<u64, BuildErrorKind> {
        let pa = self.mem.alloc_granules(count)?;
        for i in 0..count as u64 {
            self.rmi
                .granule_delegate(pa + i * ipc_schema::GRANULE_SIZE as u64)
                .map_err(rmi("RMI_GRANULE_DELEGATE"))?;
        }
        Ok(pa)
    }

    fn realm_create(
        &mut self,
        rc: &RealmCreate,
        scratch: u64,
    ) -> Result<BuiltRealm, BuildErrorKind> {
        let vmid = rc.vmid.or(self.vmid).ok_or(BuildErrorKind::NoVmid)?;
        let rd = self.delegated(1)?;
        let rtt_base = self.delegated(rc.rtt.num_start as usize)?;
        let mut p = RmiRealmParams::new_zeroed();
        p.flags = rc.params.flags;
        p.s2sz = rc.params.s2sz;
        p.sve_vl = rc.params.sve_vl;
        p.num_bps = rc.params.num_bps;
        p.num_wps = rc.params.num_wps;
        p.pmu_num_ctrs = rc.params.pmu_num_ctrs;
        p.hash_algo = rc.params.hash_algo;
        p.rpv = rc.rpv;
        p.vmid = vmid;
        p.rtt_base = rtt_base;
        p.rtt_level_start = rc.rtt.level_start.into();
        p.rtt_num_start = rc.rtt.num_start;
        self.mem.write(scratch, p.as_bytes())?;
        self.rmi
            .realm_create(rd, scratch)
            .map_err(rmi("RMI_REALM_CREATE"))?;
        Ok(BuiltRealm {
            rd,
            vmid,
            rtt_base,
            rtt_level_start: rc.rtt.level_start,
            rtt_num_start: rc.rtt.num_start,
            rtts: Vec::new(),
            data: Vec::new(),
            recs: Vec::new(),
            active: false,
            metadata: None,
        })
    }

    fn rec_create(
        &mut self,
        rd: u64,
        rc: &RecCreate,
        aux_count: u64,
        scratch: u64,
    ) -> Result<BuiltRec, BuildErrorKind> {
        let rec = self.delegated(1)?;
        let mut aux = Vec::with_capacity(aux_count as usize);
        for _ in 0..aux_count {
            aux.push(self.delegated(1)?);
        }
        let mut p = RmiRecParams::new_zeroed();
        p.flags = rc.params.flags;
        p.mpidr = rc.mpidr;
        p.pc = rc.params.pc;
        p.gprs = rc.params.gprs;
        p.num_aux = aux_count;
        p.aux[..aux.len()].copy_from_slice(&aux);
        self.mem.write(scratch, p.as_bytes())?;
        self.rmi
            .rec_create(rd, rec, scratch)
            .map_err(rmi("RMI_REC_CREATE"))?;
        let run = self.mem.alloc_granule()?;
        Ok(BuiltRec {
            index: rc.index,
            mpidr: rc.mpidr,
            rec,
            aux,
            run,
            runnable: rc.runnable(),
        })
    }
}

struct State {
    realm: Option<BuiltRealm>,
    /// NS page for parameters and data sources.
    scratch: u64,
    aux_count: Option<u64>,
}

impl State {
    fn realm_mut(&mut self) -> Result<&mut BuiltRealm, BuildErrorKind> {
        self.realm.as_mut().ok_or(BuildErrorKind::NoRealm)
    }
}

fn rmi(command: &'static str) -> impl Fn(RmiError) -> BuildErrorKind {
    move |error| BuildErrorKind::Rmi { command, error }
}

pub(crate) fn step_name(step: &Step<'_>) -> &'static str {
    match step {
        Step::RealmCreate(_) => "REALM_CREATE",
        Step::RttCreate { .. } => "RTT_CREATE",
        Step::InitRipas { .. } => "RTT_INIT_RIPAS",
        Step::Data { .. } => "DATA_CREATE",
        Step::RecCreate(_) => "REC_CREATE",
        Step::Activate => "REALM_ACTIVATE",
    }
}
