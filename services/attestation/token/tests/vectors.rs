//! Every public vector gives its documented result.

mod common;

use atoll_cca_token::json::load_token;
use atoll_cca_token::{
    decode, CollectionForm, HashAlgo, PlatformKey, RakForm, RealmPublicKey, SignatureAlgorithm,
    Value, VerifyError, REALM_PROFILE_1_0, REALM_PROFILE_2_0,
};
use common::{read_vector, vector};

fn tfm() -> PlatformKey {
    PlatformKey::from_jwk(
        &serde_json::from_slice(&read_vector("tfm-platform-cpak.jwk.json")).unwrap(),
    )
    .unwrap()
}

fn token02_key() -> PlatformKey {
    PlatformKey::from_jwk(
        &serde_json::from_slice(&read_vector("cca-token-02-cpak.jwk.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn token_01_verifies_with_raw_point_rak() {
    let t = load_token(vector("cca-token-01.cbor")).unwrap();
    assert_eq!(t.form, CollectionForm::Tag399);
    assert_eq!(t.realm.claims.rak.form(), RakForm::RawPoint);
    assert_eq!(t.realm.claims.rim, vec![0; 32]);
    assert!(t.realm.claims.rems.iter().all(|r| r == &vec![0; 32]));
    assert_eq!(t.realm.claims.profile, None);
    assert_eq!(t.platform.envelope.algorithm(), SignatureAlgorithm::Es384);
    assert_eq!(t.platform.claims.lifecycle_state(), "secured");
    assert_eq!(t.platform.claims.sw_components.len(), 4);
    assert_eq!(
        t.platform.claims.sw_components[0].version.as_deref(),
        Some("3.4.2")
    );
    t.verify(&tfm()).unwrap();
}

#[test]
fn token_02_verifies_es256_platform_and_sha512_binding() {
    let t = load_token(vector("cca-token-02.cbor")).unwrap();
    assert_eq!(t.platform.envelope.algorithm(), SignatureAlgorithm::Es256);
    assert_eq!(t.realm.claims.rak_hash_algo, HashAlgo::Sha512);
    assert_eq!(t.platform.claims.challenge.len(), 64);
    t.verify(&token02_key()).unwrap();
    // The P-384 TF-M key cannot verify an ES256 token.
    assert_eq!(
        t.verify(&tfm()),
        Err(VerifyError::PlatformKeyMismatch {
            token_alg: "ES256",
            key_curve: "P-384"
        })
    );
}

#[test]
fn draft_ffm_00_verifies_with_cose_key_rak() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    assert_eq!(t.realm.claims.rak.form(), RakForm::CoseKey);
    assert_eq!(t.realm.claims.profile.as_deref(), Some(REALM_PROFILE_1_0));
    assert_eq!(
        t.platform.claims.profile,
        atoll_cca_token::PLATFORM_PROFILE_1_0
    );
    t.verify(&tfm()).unwrap();
}

#[test]
fn our_cose_key_encoding_matches_the_draft_vector() {
    // Re-encoding the RAK from the draft vector must give the exact claim
    // bytes, or our tokens' bindings would hash something other than what
    // other verifiers expect.
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let rak = &t.realm.claims.rak;
    let ours = RealmPublicKey::new(rak.public_key(), RakForm::CoseKey).unwrap();
    assert_eq!(ours.encoded(), rak.encoded());
    // And the raw form of token 01's RAK round-trips too.
    let t1 = load_token(vector("cca-token-01.cbor")).unwrap();
    let raw = RealmPublicKey::new(t1.realm.claims.rak.public_key(), RakForm::RawPoint).unwrap();
    assert_eq!(raw.encoded(), t1.realm.claims.rak.encoded());
}

#[test]
fn cmw_tag907_verifies_with_realm_profile_2() {
    let t = load_token(vector("cmw-tag907.cbor")).unwrap();
    assert_eq!(t.form, CollectionForm::Tag907);
    assert_eq!(t.realm.claims.profile.as_deref(), Some(REALM_PROFILE_2_0));
    // Profile-2.0 claims this crate does not interpret are kept, in order.
    let keys: Vec<i64> = t.realm.claims.extra.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, vec![256, 44243]);
    assert_eq!(t.realm.claims.extra[1].1, Value::Integer(1.into()));
    t.verify(&tfm()).unwrap();
}

#[test]
fn trustee_verifies_with_sha512_rim() {
    let t = load_token(vector("trustee.cbor")).unwrap();
    assert_eq!(t.realm.claims.measurement_hash_algo, HashAlgo::Sha512);
    assert_eq!(t.realm.claims.rim.len(), 64);
    t.verify(&tfm()).unwrap();
}

#[test]
fn bug_33_is_rejected_on_the_binding() {
    let t = load_token(vector("bug-33-repro.cbor")).unwrap();
    let v = t.verification(&tfm());
    assert_eq!(v.platform_signature, Ok(()));
    assert_eq!(v.realm_signature, Ok(()));
    assert_eq!(v.binding, Err(VerifyError::Binding { alg: "sha-256" }));
    assert_eq!(
        t.verify(&tfm()),
        Err(VerifyError::Binding { alg: "sha-256" })
    );
}

#[test]
fn every_vector_is_covered() {
    // A new vector dropped into the directory must get a test above.
    let mut names: Vec<String> = std::fs::read_dir(vector(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cbor"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bug-33-repro.cbor",
            "cca-token-01.cbor",
            "cca-token-02.cbor",
            "cmw-tag907.cbor",
            "draft-ffm-00.cbor",
            "trustee.cbor"
        ]
    );
}

#[test]
fn wrong_platform_key_fails_only_the_platform_signature() {
    let t = decode(&read_vector("draft-ffm-00.cbor")).unwrap();
    let other = PlatformKey::from(*common::fresh_p384().verifying_key());
    let v = t.verification(&other);
    assert_eq!(v.platform_signature, Err(VerifyError::PlatformSignature));
    assert_eq!(v.realm_signature, Ok(()));
    assert_eq!(v.binding, Ok(()));
}

#[test]
fn vectors_match_the_shared_copy() {
    // The copy in tests/vectors must not drift from the shared directory
    // when it is present (it is absent outside the team's machines).
    let shared = std::path::Path::new("/work/shared/vectors/cca-tokens");
    if !shared.exists() {
        return;
    }
    for e in std::fs::read_dir(shared).unwrap() {
        let e = e.unwrap();
        let ours = std::fs::read(vector(e.file_name().to_str().unwrap())).unwrap();
        assert_eq!(
            ours,
            std::fs::read(e.path()).unwrap(),
            "{:?}",
            e.file_name()
        );
    }
}
