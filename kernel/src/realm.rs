//! Realm descriptors: what the core remembers about each realm.

use alloc::vec::Vec;

use ipc_schema::service::{HashAlgo, RealmHandle};

use crate::rtt::RttRoot;

/// Realm lifecycle (A2.1.5).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RealmState {
    /// Being built: DATA_CREATE, REC_CREATE and RTT_INIT_RIPAS allowed.
    New,
    /// Running: the RIM is frozen.
    Active,
    /// A REC called PSCI SYSTEM_OFF or SYSTEM_RESET.
    SystemOff,
}

/// The contents of an RD granule.
#[derive(Clone, Debug)]
pub struct Realm {
    /// Lifecycle state.
    pub state: RealmState,
    /// IPA width (s2sz).
    pub ipa_width: u8,
    /// LPA2 enabled.
    pub lpa2: bool,
    /// Measurement hash algorithm.
    pub hash_algo: HashAlgo,
    /// Starting RTTs.
    pub rtt: RttRoot,
    /// VMID.
    pub vmid: u16,
    /// Personalization value.
    pub rpv: [u8; 64],
    /// Index the next REC must have.
    pub rec_index: u64,
    /// REC PAs by REC index (`None` once destroyed).
    pub recs: Vec<Option<u64>>,
    /// Number of live RECs.
    pub num_recs: u64,
    /// The metadata granule, once `RMI_ISLET_REALM_SET_METADATA` accepted
    /// a block for this realm.
    pub metadata: Option<u64>,
}

impl Realm {
    /// The name services know this realm by.
    pub fn handle(rd: u64) -> RealmHandle {
        RealmHandle(rd)
    }

    /// Whether `ipa` is in the protected half of the IPA space.
    pub const fn is_protected(&self, ipa: u64) -> bool {
        ipa < 1 << (self.ipa_width - 1)
    }

    /// Whether `ipa` is inside the IPA space.
    pub const fn ipa_in_range(&self, ipa: u64) -> bool {
        ipa < 1 << self.ipa_width
    }

    /// `AddrRangeIsProtected(base, top)`.
    pub const fn range_is_protected(&self, base: u64, top: u64) -> bool {
        top > base && self.is_protected(base) && self.is_protected(top - 1)
    }

    /// The REC with `index`, if it exists (`MpidrIsUsed`).
    pub fn rec_by_index(&self, index: u64) -> Option<u64> {
        self.recs
            .get(usize::try_from(index).ok()?)
            .copied()
            .flatten()
    }
}
