//! The measurement service: a realm's RIM and REMs.
//!
//! The service owns the measurement slots; the core tells it what happened
//! (in the order it happened) and asks for values. Hashing lives here, not in
//! the core.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use super::{HashAlgo, Lease, RealmHandle};
use crate::wire::{BoundedBytes, Bytes};

/// The `RmiRealmParams` fields that `RMI_REALM_CREATE` measures. The RPV,
/// VMID and RTT fields are deliberately absent: they do not change what the
/// realm is, so they must not change its RIM.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct MeasuredRealmParams {
    /// flags.
    pub flags: u64,
    /// s2sz.
    pub s2sz: u64,
    /// sve_vl.
    pub sve_vl: u64,
    /// num_bps.
    pub num_bps: u64,
    /// num_wps.
    pub num_wps: u64,
    /// pmu_num_ctrs.
    pub pmu_num_ctrs: u64,
    /// hash_algo as encoded by RMI.
    pub hash_algo: u8,
}

/// The `RmiRecParams` fields that `RMI_REC_CREATE` measures (MPIDR and the
/// auxiliary granules are not measured).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct MeasuredRecParams {
    /// flags.
    pub flags: u64,
    /// Entry point.
    pub pc: u64,
    /// x0..x7.
    pub gprs: [u64; 8],
}

/// A request to the measurement service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MeasurementRequest {
    /// `RMI_REALM_CREATE`: start a realm's slots, RIM = H(params page).
    RealmCreate {
        /// The realm.
        realm: RealmHandle,
        /// Hash algorithm for every slot of this realm.
        algo: HashAlgo,
        /// The measured fields.
        params: MeasuredRealmParams,
    },
    /// `RMI_DATA_CREATE`: extend the RIM with a DATA descriptor.
    Data {
        /// The realm.
        realm: RealmHandle,
        /// IPA of the page.
        ipa: u64,
        /// `RMI_DATA_CREATE` flags.
        flags: u64,
        /// The lease holding the 4 KiB page, when its content is measured.
        content: Option<Lease>,
        /// A writable 4 KiB lease the service copies the content into as
        /// it hashes it: DATA_CREATE's copy from the host's page into the
        /// DATA granule, done in the same pass as the hash (like a
        /// copy-and-hash DMA engine), so the bytes measured are exactly the
        /// bytes written, read from host memory once.
        copy_to: Option<Lease>,
    },
    /// `RMI_REC_CREATE` of a runnable REC: extend the RIM with a REC descriptor.
    Rec {
        /// The realm.
        realm: RealmHandle,
        /// The measured fields.
        params: MeasuredRecParams,
    },
    /// `RMI_RTT_INIT_RIPAS`, once per RTT entry.
    Ripas {
        /// The realm.
        realm: RealmHandle,
        /// Entry base.
        base: u64,
        /// Entry top.
        top: u64,
    },
    /// `RSI_MEASUREMENT_EXTEND`.
    Extend {
        /// The realm.
        realm: RealmHandle,
        /// REM index, 1..=4.
        index: u8,
        /// Up to 64 bytes.
        data: BoundedBytes<64>,
    },
    /// `RSI_MEASUREMENT_READ` and anything else that needs a slot value.
    Read {
        /// The realm.
        realm: RealmHandle,
        /// Slot 0..=4.
        index: u8,
    },
    /// `RMI_REALM_DESTROY`: forget the realm.
    Destroy {
        /// The realm.
        realm: RealmHandle,
    },
}

/// Why the measurement service refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MeasurementError {
    /// No such realm.
    UnknownRealm,
    /// The realm already has measurements.
    RealmExists,
    /// Slot index out of range for the operation.
    BadIndex,
    /// The service cannot track more realms.
    NoSpace,
    /// The request could not be decoded, or its leases do not fit it.
    Malformed,
    /// `RealmCreate`'s algorithm and the one in its measured params differ.
    AlgoMismatch,
}

/// The measurement service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MeasurementResponse {
    /// Done.
    Ok,
    /// A slot's value, zero-padded to 64 bytes.
    Value(Bytes<64>),
    /// Refused.
    Error(MeasurementError),
}

/// Upper bound of an encoded [`MeasurementRequest`].
pub const REQUEST_MAX: usize = MeasurementRequest::POSTCARD_MAX_SIZE;
/// Upper bound of an encoded [`MeasurementResponse`].
pub const RESPONSE_MAX: usize = MeasurementResponse::POSTCARD_MAX_SIZE;
