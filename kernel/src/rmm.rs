//! The RMM instance: the state every command works on.

use alloc::collections::{BTreeMap, BTreeSet};

use ipc_schema::rmi::feature0;
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};

use crate::arch::Platform;
use crate::granule::{GranuleState, GranuleTable};
use crate::realm::Realm;
use crate::rec::Rec;
use crate::services::{ServiceBuffers, ServiceFailure, ServiceTransport};
use crate::GRANULE;

/// What this RMM instance supports, reported through `RMI_FEATURES` and
/// enforced at `RMI_REALM_CREATE`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RmmConfig {
    /// Largest IPA width a realm may ask for.
    pub max_ipa_width: u8,
    /// Breakpoints available (a realm may ask for 1..=this).
    pub num_bps: u8,
    /// Watchpoints available.
    pub num_wps: u8,
    /// GIC list registers (1..=16).
    pub gic_num_lrs: u8,
    /// Realms may have at most `2^max_recs_order - 1` RECs.
    pub max_recs_order: u8,
    /// Auxiliary granules per REC (`RMI_REC_AUX_COUNT`).
    pub rec_aux_count: u8,
    /// VMIDs are 16 bits wide (FEAT_VMID16).
    pub vmid16: bool,
}

impl Default for RmmConfig {
    fn default() -> Self {
        Self {
            max_ipa_width: 48,
            num_bps: 6,
            num_wps: 4,
            gic_num_lrs: 16,
            max_recs_order: 8,
            rec_aux_count: 2,
            vmid16: true,
        }
    }
}

impl RmmConfig {
    /// RMI feature register 0.
    pub fn feature0(&self) -> u64 {
        u64::from(self.max_ipa_width) << feature0::S2SZ_SHIFT
            | u64::from(self.num_bps - 1) << feature0::NUM_BPS_SHIFT
            | u64::from(self.num_wps - 1) << feature0::NUM_WPS_SHIFT
            | feature0::HASH_SHA_256
            | feature0::HASH_SHA_512
            | u64::from(self.gic_num_lrs - 1) << feature0::GICV3_NUM_LRS_SHIFT
            | u64::from(self.max_recs_order) << feature0::MAX_RECS_ORDER_SHIFT
    }
}

/// The Realm Management Monitor: granules, realms and RECs on a platform,
/// with services behind a transport.
pub struct Rmm<P: Platform, T: ServiceTransport> {
    pub(crate) platform: P,
    pub(crate) services: T,
    pub(crate) buffers: ServiceBuffers,
    pub(crate) config: RmmConfig,
    pub(crate) granules: GranuleTable,
    pub(crate) realms: BTreeMap<u64, Realm>,
    pub(crate) recs: BTreeMap<u64, Rec>,
    pub(crate) vmids: BTreeSet<u16>,
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// An RMM owning no granules yet.
    pub fn new(platform: P, services: T, config: RmmConfig) -> Self {
        let granules = GranuleTable::new(platform.dram());
        Self {
            platform,
            services,
            buffers: ServiceBuffers::default(),
            config,
            granules,
            realms: BTreeMap::new(),
            recs: BTreeMap::new(),
            vmids: BTreeSet::new(),
        }
    }

    /// The machine (tests use it as the normal world would).
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The machine, mutably.
    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.platform
    }

    /// The service transport.
    pub fn services_mut(&mut self) -> &mut T {
        &mut self.services
    }

    /// The configuration.
    pub fn config(&self) -> &RmmConfig {
        &self.config
    }

    /// The granule state table (read-only: for invariant checks).
    pub fn granules(&self) -> &GranuleTable {
        &self.granules
    }

    /// The realm whose RD is at `rd`.
    pub fn realm(&self, rd: u64) -> Option<&Realm> {
        self.realms.get(&rd)
    }

    /// The REC at `rec`.
    pub fn rec(&self, rec: u64) -> Option<&Rec> {
        self.recs.get(&rec)
    }

    /// Every realm by RD.
    pub fn realms(&self) -> impl Iterator<Item = (u64, &Realm)> {
        self.realms.iter().map(|(k, v)| (*k, v))
    }

    pub(crate) fn measure(
        &mut self,
        req: &MeasurementRequest,
    ) -> Result<MeasurementResponse, ServiceFailure> {
        self.buffers.measurement(&mut self.services, req, &mut [])
    }

    /// Zeroes a granule the RMM owns (or is about to give back).
    pub(crate) fn scrub(&mut self, pa: u64) {
        const ZERO: [u8; GRANULE] = [0; GRANULE];
        let _ = self.platform.write(pa, &ZERO);
    }

    /// `Granule(pa).state == state`, with `PaIsDelegable` folded in.
    pub(crate) fn granule_is(&self, pa: u64, state: GranuleState) -> bool {
        self.granules.is(pa, state)
    }
}
