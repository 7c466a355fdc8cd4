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
//!
//! Signing in steps, as the RMM does (the key may live behind another
//! service), then checking the result as a relying party would:
//!
//! ```
//! use atoll_cca_token::{decode, encode_collection, HashAlgo, PlatformClaims, PlatformKey, RealmClaims};
//! use p384::ecdsa::SigningKey;
//!
//! let rak = SigningKey::from_slice(&[0x11; 48]).unwrap();
//! let cpak = SigningKey::from_slice(&[0x22; 48]).unwrap();
//! let realm = RealmClaims::new(
//!     [0xaa; 64], // the realm's challenge
//!     [0; 64],    // RPV
//!     &p384::PublicKey::from(rak.verifying_key()),
//!     HashAlgo::Sha256,
//!     vec![0; 32],
//!     [vec![0; 32], vec![0; 32], vec![0; 32], vec![0; 32]],
//! )
//! .unwrap();
//!
//! // At boot the HES signs a platform token whose challenge is the binding.
//! let platform = PlatformClaims {
//!     profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
//!     challenge: realm.binding_challenge(),
//!     implementation_id: [0; 32],
//!     instance_id: [1; 33],
//!     config: vec![],
//!     lifecycle: 0x3000,
//!     sw_components: vec![],
//!     verification_service: None,
//!     hash_algo: "sha-256".into(),
//!     extra: vec![],
//! };
//! let platform_token = platform.sign_with(&cpak).unwrap();
//!
//! // Per request: the Sig_structure goes to the key holder, the signature comes back.
//! let unsigned = realm.unsigned_token().unwrap();
//! let tbs = unsigned.to_be_signed();
//! let sig: p384::ecdsa::Signature = ecdsa::signature::Signer::sign(&rak, &tbs);
//! let realm_token = unsigned.assemble(&sig.to_bytes()).unwrap();
//! let token = encode_collection(&platform_token, &realm_token).unwrap();
//!
//! let decoded = decode(&token).unwrap();
//! decoded.verify(&PlatformKey::from(*cpak.verifying_key())).unwrap();
//! assert_eq!(decoded.realm.claims.challenge, [0xaa; 64]);
//! ```
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
    HashAlgo, PlatformClaims, RakForm, RealmClaims, RealmPublicKey, SwComponent,
    PLATFORM_PROFILE_1_0, PLATFORM_PROFILE_LEGACY, REALM_PROFILE_1_0, REALM_PROFILE_2_0,
};
pub use decode::{
    decode, decode_platform_token, decode_realm_token, CcaToken, CollectionForm, PlatformToken,
    RealmToken, SignedEnvelope,
};
pub use encode::{encode_collection, SignatureAlgorithm, TokenSigner, UnsignedToken};
pub use error::{DecodeError, EncodeError, TokenPart, VerifyError};
pub use verify::{PlatformKey, Verification};
