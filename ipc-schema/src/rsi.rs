//! Realm Services Interface (realm -> RMM), RMM specification v1.0.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::assert_layout;

/// RSI function IDs: `0xC400_0000 | fnum`.
pub mod fid {
    /// `RSI_VERSION`.
    pub const VERSION: u64 = 0xC400_0190;
    /// `RSI_FEATURES`.
    pub const FEATURES: u64 = 0xC400_0191;
    /// `RSI_MEASUREMENT_READ`.
    pub const MEASUREMENT_READ: u64 = 0xC400_0192;
    /// `RSI_MEASUREMENT_EXTEND`.
    pub const MEASUREMENT_EXTEND: u64 = 0xC400_0193;
    /// `RSI_ATTESTATION_TOKEN_INIT`.
    pub const ATTEST_TOKEN_INIT: u64 = 0xC400_0194;
    /// `RSI_ATTESTATION_TOKEN_CONTINUE`.
    pub const ATTEST_TOKEN_CONTINUE: u64 = 0xC400_0195;
    /// `RSI_REALM_CONFIG`.
    pub const REALM_CONFIG: u64 = 0xC400_0196;
    /// `RSI_IPA_STATE_SET`.
    pub const IPA_STATE_SET: u64 = 0xC400_0197;
    /// `RSI_IPA_STATE_GET`.
    pub const IPA_STATE_GET: u64 = 0xC400_0198;
    /// `RSI_HOST_CALL`.
    pub const HOST_CALL: u64 = 0xC400_0199;

    /// Every RSI v1.0 function ID with its name.
    pub const ALL: &[(u64, &str)] = &[
        (VERSION, "RSI_VERSION"),
        (FEATURES, "RSI_FEATURES"),
        (MEASUREMENT_READ, "RSI_MEASUREMENT_READ"),
        (MEASUREMENT_EXTEND, "RSI_MEASUREMENT_EXTEND"),
        (ATTEST_TOKEN_INIT, "RSI_ATTESTATION_TOKEN_INIT"),
        (ATTEST_TOKEN_CONTINUE, "RSI_ATTESTATION_TOKEN_CONTINUE"),
        (REALM_CONFIG, "RSI_REALM_CONFIG"),
        (IPA_STATE_SET, "RSI_IPA_STATE_SET"),
        (IPA_STATE_GET, "RSI_IPA_STATE_GET"),
        (HOST_CALL, "RSI_HOST_CALL"),
    ];
}

/// RSI interface version implemented: 1.0.
pub const VERSION_1_0: u64 = 0x1_0000;

/// RSI status codes (x0).
pub mod status {
    /// `RSI_SUCCESS`.
    pub const SUCCESS: u64 = 0;
    /// `RSI_ERROR_INPUT`.
    pub const ERROR_INPUT: u64 = 1;
    /// `RSI_ERROR_STATE`.
    pub const ERROR_STATE: u64 = 2;
    /// `RSI_INCOMPLETE`.
    pub const INCOMPLETE: u64 = 3;
    /// `RSI_ERROR_UNKNOWN`.
    pub const ERROR_UNKNOWN: u64 = 4;
}

/// Hash algorithm encodings in `RsiRealmConfig::hash_algo`.
pub mod hash_algo {
    /// SHA-256.
    pub const SHA_256: u8 = 0;
    /// SHA-512.
    pub const SHA_512: u8 = 1;
}

/// `RSI_IPA_STATE_SET` flags.
pub mod ipa_state_flags {
    /// Allow DESTROYED entries to change.
    pub const CHANGE_DESTROYED: u64 = 1 << 0;
}

/// `RSI_IPA_STATE_SET` responses (x2).
pub mod ripas_response {
    /// The host accepted the change.
    pub const ACCEPT: u64 = 0;
    /// The host rejected the change.
    pub const REJECT: u64 = 1;
}

/// Number of measurement slots: the RIM (0) and four REMs (1..=4).
pub const MEASUREMENT_SLOTS: usize = 5;
/// Bytes in a measurement slot.
pub const MEASUREMENT_BYTES: usize = 64;
/// Bytes in an attestation challenge.
pub const CHALLENGE_BYTES: usize = 64;

/// `RsiRealmConfig`, written by `RSI_REALM_CONFIG` into a realm page.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RsiRealmConfig {
    /// IPA width in bits.
    pub ipa_width: u64,
    /// [`hash_algo`]. Linux reads this as a u64, so the page is zeroed first.
    pub hash_algo: u8,
    _pad0: [u8; 0x200 - 0x9],
    /// Realm personalization value.
    pub rpv: [u8; 64],
    _pad1: [u8; 0x1000 - 0x240],
}
assert_layout!(RsiRealmConfig, size = 0x1000, { ipa_width @ 0x0, hash_algo @ 0x8, rpv @ 0x200 });

/// `RsiHostCall`: the 256-byte structure a realm passes to `RSI_HOST_CALL`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RsiHostCall {
    /// Immediate value the host sees in the exit.
    pub imm: u16,
    _pad0: [u8; 6],
    /// x0..x30 passed to the host and overwritten with its answer.
    pub gprs: [u64; 31],
}
assert_layout!(RsiHostCall, size = 0x100, { imm @ 0x0, gprs @ 0x8 });

/// Required alignment of an `RsiHostCall` IPA.
pub const HOST_CALL_ALIGN: u64 = 0x100;
