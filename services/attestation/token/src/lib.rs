//! The Arm CCA attestation token: encoding, decoding, verification and appraisal.
//!
//! One crate for both ends so they cannot drift apart: the RMM's attestation
//! service encodes and signs realm tokens with it on bare metal (`no_std` +
//! `alloc`, the default `std` feature off), and relying-party tools
//! (`atoll token`, the key broker) decode, verify and appraise tokens with it.
//!
//! * [`RealmClaims`] / [`PlatformClaims`]: the claims, typed.
//! * Encoding: [`RealmClaims::unsigned_token`] gives an [`UnsignedToken`];
//!   sign its [`UnsignedToken::to_be_signed`] bytes wherever the key lives and
//!   [`UnsignedToken::assemble`] the signature (or [`UnsignedToken::sign_with`]
//!   a P-384 key in one step); [`encode_collection`] wraps the platform and
//!   realm tokens in the tag-399 collection.
//! * [`decode`]: tag 399 and tag 907 collections to a [`CcaToken`].
//! * [`CcaToken::verify`] / [`CcaToken::verification`]: both signatures and
//!   the RAK binding.
//! * With `std`: [`appraise`](mod@appraise) against Veraison-format trust
//!   anchors and reference values, and JSON views of the claims.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod claims;
pub mod decode;
pub mod encode;
pub mod error;
pub mod verify;

#[cfg(feature = "std")]
pub mod appraise;
#[cfg(feature = "std")]
pub mod json;

pub use ciborium::Value;
pub use claims::{
    HashAlgo, PlatformClaims, RakForm, RealmClaims, RealmPublicKey, SwComponent, PLATFORM_PROFILE_1_0,
    PLATFORM_PROFILE_LEGACY, REALM_PROFILE_1_0, REALM_PROFILE_2_0,
};
pub use decode::{
    decode, decode_platform_token, decode_realm_token, CcaToken, CollectionForm, PlatformToken, RealmToken,
    SignedEnvelope,
};
pub use encode::{encode_collection, SignatureAlgorithm, TokenSigner, UnsignedToken};
pub use error::{DecodeError, EncodeError, TokenPart, VerifyError};
pub use verify::{PlatformKey, Verification};
