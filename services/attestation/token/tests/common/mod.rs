//! Shared helpers for the integration tests (each test file includes this
//! with `mod common;`).
#![allow(dead_code)]

use std::path::PathBuf;

use atoll_cca_token::{HashAlgo, PlatformClaims, RealmClaims, SwComponent};
use p384::ecdsa::SigningKey;
use rand_core::OsRng;

/// A file from the public test vectors (a copy of /work/shared/vectors/cca-tokens).
pub fn vector(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

/// The bytes of a vector file.
pub fn read_vector(name: &str) -> Vec<u8> {
    std::fs::read(vector(name)).unwrap()
}

/// A freshly generated P-384 key (RAK or CPAK).
pub fn fresh_p384() -> SigningKey {
    SigningKey::random(&mut OsRng)
}

/// Realm claims as our RMM would produce them, with distinguishable values.
pub fn realm_claims(rak: &SigningKey, algo: HashAlgo) -> RealmClaims {
    let n = algo.digest_len();
    RealmClaims::new(
        [0x11; 64],
        [0x22; 64],
        &p384::PublicKey::from(rak.verifying_key()),
        algo,
        vec![0x33; n],
        [vec![0x44; n], vec![0x55; n], vec![0x66; n], vec![0x77; n]],
    )
    .unwrap()
}

/// Platform claims bound to `realm`.
pub fn platform_claims(realm: &RealmClaims) -> PlatformClaims {
    PlatformClaims {
        profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
        challenge: realm.binding_challenge(),
        implementation_id: [0xaa; 32],
        instance_id: {
            let mut id = [0xbb; 33];
            id[0] = 1;
            id
        },
        config: vec![0xcf, 0xcf],
        lifecycle: 0x3003,
        sw_components: vec![
            SwComponent {
                component_type: Some("BL2".into()),
                measurement: vec![1; 32],
                version: Some("1.0".into()),
                signer_id: vec![2; 32],
                algorithm: Some("sha-256".into()),
            },
            SwComponent {
                component_type: None,
                measurement: vec![3; 32],
                version: None,
                signer_id: vec![4; 32],
                algorithm: None,
            },
        ],
        verification_service: Some("https://verifier.example".into()),
        hash_algo: "sha-256".into(),
        extra: vec![],
    }
}
