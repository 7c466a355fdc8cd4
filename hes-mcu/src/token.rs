//! The CCA platform token: the platform claims, in the order the reference
//! firmware emits them, in a COSE_Sign1 (tag 18, ES384) signed by the CPAK.

use alloc::vec::Vec;

use ciborium::Value;
use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ipc_schema::hes::{BoundedStr, HesError};
use ipc_schema::wire::BoundedBytes;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};

use crate::slots::Slots;

/// Claim keys of the platform token (draft-ffm-rats-cca-token / PSA).
pub mod claim {
    /// Profile.
    pub const PROFILE: i64 = 265;
    /// Challenge.
    pub const CHALLENGE: i64 = 10;
    /// Implementation id.
    pub const IMPLEMENTATION_ID: i64 = 2396;
    /// Instance id.
    pub const INSTANCE_ID: i64 = 256;
    /// Platform configuration.
    pub const PLATFORM_CONFIG: i64 = 2401;
    /// Security lifecycle.
    pub const LIFECYCLE: i64 = 2395;
    /// Software components.
    pub const SW_COMPONENTS: i64 = 2399;
    /// Verification service.
    pub const VERIFICATION_SERVICE: i64 = 2400;
    /// Hash algorithm.
    pub const HASH_ALGO: i64 = 2402;
    /// Software component map keys.
    pub mod sw {
        /// Component type.
        pub const TYPE: i64 = 1;
        /// Measurement value.
        pub const MEASUREMENT: i64 = 2;
        /// Version.
        pub const VERSION: i64 = 4;
        /// Signer id.
        pub const SIGNER_ID: i64 = 5;
        /// Measurement hash algorithm.
        pub const ALGORITHM: i64 = 6;
    }
}

/// The CCA platform profile this HES emits.
pub const PROFILE: &str = "tag:arm.com,2023:cca_platform#1.0.0";
/// PSA lifecycle "secured" (0x3000): the only state a relying party should
/// accept for production evidence.
pub const LIFECYCLE_SECURED: u16 = 0x3000;

/// What the platform token says about the platform itself, fixed for the
/// device's life (on silicon: OTP; here: the host program's options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformIdentity {
    /// Claim 2396: names the implementation (the HES firmware and hardware
    /// design) for the verifier's endorsements.
    pub implementation_id: [u8; 32],
    /// Claim 2401: platform configuration bits.
    pub platform_config: BoundedBytes<64>,
    /// Claim 2395: PSA security lifecycle state.
    pub lifecycle: u16,
    /// Claim 2400: where a relying party verifies this token.
    pub verification_service: BoundedStr<128>,
}

/// Encodes the claims for `challenge` and signs them with `cpak`. The
/// software components are the populated boot slots, in slot order.
pub fn platform_token(
    cpak: &SigningKey,
    identity: &PlatformIdentity,
    instance_id: &[u8; 33],
    challenge: &[u8],
    slots: &Slots,
) -> Result<Vec<u8>, HesError> {
    let claims = claims(identity, instance_id, challenge, slots);
    let mut payload = Vec::new();
    ciborium::into_writer(&claims, &mut payload).map_err(|_| HesError::Crypto)?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES384)
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |tbs| {
            let sig: Signature = cpak.sign(tbs);
            sig.to_bytes().to_vec()
        })
        .build();
    sign1.to_tagged_vec().map_err(|_| HesError::Crypto)
}

fn int(v: i64) -> Value {
    Value::Integer(v.into())
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The claims map in the reference order: 265, 10, 2396, 256, 2401, 2395,
/// 2399, 2400, 2402.
fn claims(
    identity: &PlatformIdentity,
    instance_id: &[u8; 33],
    challenge: &[u8],
    slots: &Slots,
) -> Value {
    let components = slots
        .populated()
        .map(|(_, s)| {
            let r = &s.record;
            let mut m = Vec::with_capacity(5);
            // Optional in the profile: an empty type or version is omitted
            // rather than sent as an empty string.
            if !r.component_type.as_str().is_empty() {
                m.push((int(claim::sw::TYPE), text(r.component_type.as_str())));
            }
            m.push((
                int(claim::sw::MEASUREMENT),
                Value::Bytes(r.measurement.as_slice().into()),
            ));
            if !r.version.as_str().is_empty() {
                m.push((int(claim::sw::VERSION), text(r.version.as_str())));
            }
            m.push((
                int(claim::sw::SIGNER_ID),
                Value::Bytes(r.signer_id.as_slice().into()),
            ));
            m.push((int(claim::sw::ALGORITHM), text(r.algo.name())));
            Value::Map(m)
        })
        .collect();
    Value::Map(alloc::vec![
        (int(claim::PROFILE), text(PROFILE)),
        (int(claim::CHALLENGE), Value::Bytes(challenge.into())),
        (
            int(claim::IMPLEMENTATION_ID),
            Value::Bytes(identity.implementation_id.into())
        ),
        (int(claim::INSTANCE_ID), Value::Bytes(instance_id.into())),
        (
            int(claim::PLATFORM_CONFIG),
            Value::Bytes(identity.platform_config.as_slice().into())
        ),
        (int(claim::LIFECYCLE), int(i64::from(identity.lifecycle))),
        (int(claim::SW_COMPONENTS), Value::Array(components)),
        (
            int(claim::VERIFICATION_SERVICE),
            text(identity.verification_service.as_str())
        ),
        (int(claim::HASH_ALGO), text("sha-256")),
    ])
}

/// Parses a token this module made back into its parts, for tests of this
/// crate and of its users: the COSE_Sign1 and its claims map.
#[cfg(test)]
pub(crate) fn open(token: &[u8]) -> (coset::CoseSign1, Vec<(Value, Value)>) {
    let sign1 = coset::CoseSign1::from_tagged_slice(token).unwrap();
    let claims: Value = ciborium::from_reader(sign1.payload.as_deref().unwrap()).unwrap();
    let Value::Map(m) = claims else {
        panic!("claims are not a map")
    };
    (sign1, m)
}
