//! The attestation service: realm tokens.
//!
//! The service holds the realm attestation key (RAK) and the platform token
//! the HES signed for it; the core holds neither. At boot the core hands it
//! the RAK scalar it got from the root of trust ([`AttestationRequest::ProvisionRak`]),
//! learns the challenge the platform token must carry (the hash of the
//! service's encoded RAK claim), and hands it the platform token the HES
//! produced for that challenge. Per REC, `RSI_ATTESTATION_TOKEN_INIT`
//! becomes [`AttestationRequest::Init`] (the core supplies the realm's
//! measurements and personalization) and every
//! `RSI_ATTESTATION_TOKEN_CONTINUE` becomes [`AttestationRequest::Continue`],
//! which does one step of work (encode, sign) or copies the next chunk of
//! the finished token into the realm's buffer, lent as a writable lease.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

use super::{HashAlgo, Lease, RealmHandle};
use crate::wire::{BoundedBytes, Bytes};

/// Names a REC to the service: the PA of its REC granule.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, MaxSize,
)]
pub struct RecHandle(pub u64);

/// What a realm token says about the realm, supplied by the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct RealmClaimsInput {
    /// The realm's measurement hash algorithm.
    pub hash_algo: HashAlgo,
    /// Realm personalization value.
    pub rpv: Bytes<64>,
    /// RIM, zero-padded to 64 bytes (the token carries the digest length).
    pub rim: Bytes<64>,
    /// REMs 1..=4, zero-padded.
    pub rems: [Bytes<64>; 4],
}

/// A request to the attestation service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum AttestationRequest {
    /// Boot: the RAK's private scalar (P-384, big-endian). Answered with
    /// [`AttestationResponse::RakBinding`].
    ProvisionRak {
        /// The scalar.
        scalar: Bytes<48>,
    },
    /// Boot: the platform token the HES issued for the RAK binding, lent
    /// read-only in full. Refused unless its challenge is the binding.
    ProvisionPlatformToken {
        /// The lease holding the token.
        token: Lease,
    },
    /// `RSI_ATTESTATION_TOKEN_INIT`: start (or restart) a token for a REC.
    Init {
        /// The REC asking.
        rec: RecHandle,
        /// Its realm.
        realm: RealmHandle,
        /// The realm's 64-byte challenge.
        challenge: Bytes<64>,
        /// The realm's claims.
        claims: RealmClaimsInput,
    },
    /// `RSI_ATTESTATION_TOKEN_CONTINUE`: one step, or the next chunk
    /// written into `buffer` (a writable lease of the realm's granule) at
    /// `offset`, at most `size` bytes.
    Continue {
        /// The REC asking.
        rec: RecHandle,
        /// The lease of the realm's 4 KiB buffer granule.
        buffer: Lease,
        /// Offset in the granule.
        offset: u16,
        /// Bytes available from `offset`.
        size: u16,
    },
    /// Drop a REC's token (REC destroyed).
    Abort {
        /// The REC.
        rec: RecHandle,
    },
}

/// Why the attestation service refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum AttestationError {
    /// No RAK or no platform token yet.
    NotProvisioned,
    /// Already provisioned for this boot.
    AlreadyProvisioned,
    /// Not a valid P-384 scalar.
    BadKey,
    /// The platform token does not decode, or its challenge is not the
    /// RAK binding.
    BadPlatformToken,
    /// No token in progress for this REC.
    NoSession,
    /// Too many tokens in progress.
    NoSpace,
    /// A lease is missing, of the wrong size or not writable, or the
    /// offset/size fall outside it.
    BadLease,
    /// The request could not be decoded.
    Malformed,
    /// Signing failed.
    SigningFailed,
}

/// The attestation service's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum AttestationResponse {
    /// Done.
    Ok,
    /// The challenge the platform token must carry: the hash (SHA-256,
    /// as claim 44240 names) of the encoded RAK claim, digest-length.
    RakBinding {
        /// The challenge.
        challenge: BoundedBytes<64>,
    },
    /// A token was started; this is its exact size.
    Initialised {
        /// Bytes in the finished token.
        token_len: u32,
    },
    /// Progress on a `Continue`.
    Progress {
        /// Bytes written into the buffer by this call.
        written: u32,
        /// The whole token has been handed out.
        done: bool,
    },
    /// Refused.
    Error(AttestationError),
}

/// Upper bound of an encoded [`AttestationRequest`].
pub const REQUEST_MAX: usize = AttestationRequest::POSTCARD_MAX_SIZE;
/// Upper bound of an encoded [`AttestationResponse`].
pub const RESPONSE_MAX: usize = AttestationResponse::POSTCARD_MAX_SIZE;
/// Largest token the service produces; `RSI_ATTESTATION_TOKEN_INIT`
/// reports the exact size, never more than this.
pub const MAX_TOKEN_SIZE: usize = 16 * 1024;
