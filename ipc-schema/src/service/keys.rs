//! The keys service: realm metadata and sealing keys.
//!
//! The service holds the two virtual hardware unique keys the HES hands the
//! RMM at boot (VHUK_A, signer-bound; VHUK_M, measurement-bound) and each
//! realm's verified metadata block (`RMI_ISLET_REALM_SET_METADATA`), and
//! derives realm sealing keys (`RSI_ISLET_REALM_SEALING_KEY`) from them. The
//! core never sees how a key is derived and never holds a VHUK after boot.
//!
//! Bulk data (the 432-byte block) travels as a [`Lease`]: the core copies
//! the host's block once into the RMM-owned metadata granule and lends that
//! (the first 432 bytes), so the block the service verifies is the block it
//! stores and the block the realm later reads. Keys and digests are small
//! and travel inline.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use super::{HashAlgo, Lease, RealmHandle};
use crate::wire::Bytes;

/// Size of a VHUK and of a sealing key.
pub const KEY_LEN: usize = 32;
/// Size of a metadata block lease ([`crate::islet::RealmMetadata`]).
pub const METADATA_LEN: usize = core::mem::size_of::<crate::islet::RealmMetadata>();

/// A request to the keys service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum KeysRequest {
    /// At boot, once: the VHUKs the RMM got from the HES
    /// (`RMM_ISLET_GET_VHUK` ids 1 and 2). Refused a second time, so nothing
    /// after boot can swap the keys realms' data is sealed with, and refused
    /// if either key is all zero (a HES that failed to answer).
    Provision {
        /// VHUK_A: bound to the platform's signing authorities.
        vhuk_a: Bytes<KEY_LEN>,
        /// VHUK_M: bound to the platform's boot measurements.
        vhuk_m: Bytes<KEY_LEN>,
    },
    /// `RMI_ISLET_REALM_SET_METADATA`: verify the block (format, fields,
    /// signature against the key inside it) and keep it for the realm.
    /// Once per realm; the core enforces "only while NEW". Nothing is stored
    /// unless the block verifies.
    SetMetadata {
        /// The realm.
        realm: RealmHandle,
        /// Read lease of exactly [`METADATA_LEN`] bytes holding the block.
        block: Lease,
    },
    /// `RMI_REALM_ACTIVATE`: may this realm be activated? If it has
    /// metadata, its RIM and hash algorithm must equal the metadata's. A
    /// realm without metadata may always be activated.
    CheckActivation {
        /// The realm.
        realm: RealmHandle,
        /// The realm's hash algorithm.
        algo: HashAlgo,
        /// The realm's RIM from the measurement service, zero-padded.
        rim: Bytes<64>,
    },
    /// `RSI_ISLET_REALM_METADATA`: copy the realm's block into `out`.
    GetMetadata {
        /// The realm.
        realm: RealmHandle,
        /// Writable lease of exactly [`METADATA_LEN`] bytes.
        out: Lease,
    },
    /// `RSI_ISLET_REALM_SEALING_KEY`: derive the realm's sealing key.
    SealingKey {
        /// The realm.
        realm: RealmHandle,
        /// `x1`: [`crate::islet::sealing_flags`]; undefined bits are refused.
        flags: u64,
        /// `x2`: the SVN to bind to (with the SVN flag); must not exceed
        /// the metadata's SVN.
        svn: u64,
        /// The realm's hash algorithm.
        algo: HashAlgo,
        /// The realm's current RIM from the measurement service, zero-padded.
        rim: Bytes<64>,
    },
    /// `RMI_REALM_DESTROY`: forget the realm's metadata. Answered `Ok` for
    /// realms that never had any, so the core can send it unconditionally.
    Destroy {
        /// The realm.
        realm: RealmHandle,
    },
}

/// Which rule a metadata block broke (the metadata crate's error, reduced to
/// what the core needs to log and map to an RMI status).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum MetadataFault {
    /// Wrong length.
    Length,
    /// `fmt_version` is not 1.
    FmtVersion,
    /// Realm id empty, too long, not printable ASCII or badly padded.
    RealmId,
    /// Unknown hash algorithm.
    HashAlgo,
    /// RIM does not fit the hash algorithm (non-zero padding).
    Rim,
    /// The embedded public key is not a P-384 point.
    PublicKey,
    /// The signature is malformed or does not verify.
    Signature,
}

/// Why the keys service refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum KeysError {
    /// The request could not be decoded, a lease is missing, of the wrong
    /// size or not writable, or a RIM has non-zero bytes past its digest.
    Malformed,
    /// No VHUKs yet: sealing keys cannot be derived before `Provision`.
    NotProvisioned,
    /// `Provision` was already done.
    AlreadyProvisioned,
    /// A VHUK is all zero.
    ZeroKey,
    /// The block did not verify; nothing was stored.
    InvalidMetadata(MetadataFault),
    /// The realm already has metadata.
    MetadataExists,
    /// The realm has no metadata (for `GetMetadata`, or a sealing flag that
    /// needs it: realm id or SVN).
    NoMetadata,
    /// The service cannot hold metadata for more realms.
    NoSpace,
    /// Activation refused: the realm's RIM differs from the metadata's.
    RimMismatch,
    /// Activation refused, or a sealing request refused: the realm's hash
    /// algorithm differs from the metadata's.
    AlgoMismatch,
    /// Sealing flags with bits outside [`crate::islet::sealing_flags::MASK`].
    UndefinedFlags,
    /// Sealing SVN above the metadata's SVN.
    SvnTooHigh,
}

/// The keys service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum KeysResponse {
    /// Done (for `CheckActivation`: the realm may be activated).
    Ok,
    /// A derived sealing key.
    SealingKey(Bytes<KEY_LEN>),
    /// Refused.
    Error(KeysError),
}

/// Upper bound of an encoded [`KeysRequest`].
pub const REQUEST_MAX: usize = KeysRequest::POSTCARD_MAX_SIZE;
/// Upper bound of an encoded [`KeysResponse`].
pub const RESPONSE_MAX: usize = KeysResponse::POSTCARD_MAX_SIZE;
