//! Appraisal against trust anchors and reference values: each check passes
//! and fails on its own.

mod common;

use atoll_cca_token::appraise::{
    appraise, Appraisal, ReferenceValues, Status, TrustAnchors, Verdict,
};
use atoll_cca_token::json::{load_token, InputError};
use atoll_cca_token::CcaToken;
use common::{read_vector, vector};
use serde_json::json;

fn tfm_jwk() -> serde_json::Value {
    serde_json::from_slice(&read_vector("tfm-platform-cpak.jwk.json")).unwrap()
}

fn anchors(v: serde_json::Value) -> TrustAnchors {
    TrustAnchors::from_json(v.to_string().as_bytes()).unwrap()
}

fn refs(v: serde_json::Value) -> ReferenceValues {
    ReferenceValues::from_json(v.to_string().as_bytes()).unwrap()
}

/// Reference values that describe `t` exactly (platform and realm).
fn exact_refs(t: &CcaToken) -> serde_json::Value {
    let j = t.to_json();
    let p = &j["platform"];
    let r = &j["realm"];
    json!({
        "platform": [{
            "implementation-id": p["implementation-id"],
            "platform-configuration": p["platform-configuration"],
            "sw-components": p["sw-components"],
        }],
        "realm": [{
            "initial-measurement": r["initial-measurement"],
            "extensible-measurements": r["extensible-measurements"],
            "personalization-value": r["personalization-value"],
            "rak-hash-algorithm": r["rak-hash-algorithm"],
        }]
    })
}

fn pinned_anchor(t: &CcaToken) -> serde_json::Value {
    json!([{
        "instance-id": hex::encode(t.platform.claims.instance_id),
        "implementation-id": hex::encode(t.platform.claims.implementation_id),
        "pkey": tfm_jwk(),
    }])
}

fn statuses(a: &Appraisal) -> Vec<Status> {
    a.checks().iter().map(|(_, c)| c.status).collect()
}

#[test]
fn all_checks_pass_on_matching_references() {
    for name in [
        "draft-ffm-00.cbor",
        "cca-token-01.cbor",
        "cmw-tag907.cbor",
        "trustee.cbor",
    ] {
        let t = load_token(vector(name)).unwrap();
        let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(exact_refs(&t)));
        assert_eq!(statuses(&a), vec![Status::Pass; 6], "{name}: {a:#?}");
        assert_eq!(a.verdict(), Verdict::Affirming);
    }
}

#[test]
fn bug_33_fails_only_the_binding() {
    let t = load_token(vector("bug-33-repro.cbor")).unwrap();
    let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(exact_refs(&t)));
    assert_eq!(a.binding.status, Status::Fail);
    assert_eq!(a.platform_signature.status, Status::Pass);
    assert_eq!(a.realm_signature.status, Status::Pass);
    assert_eq!(a.verdict(), Verdict::Contraindicated);
}

#[test]
fn bare_jwk_is_an_anchor_for_any_platform() {
    let t = load_token(vector("cca-token-02.cbor")).unwrap();
    let jwk = TrustAnchors::from_json(&read_vector("cca-token-02-cpak.jwk.json")).unwrap();
    let a = appraise(&t, &jwk, &refs(exact_refs(&t)));
    assert_eq!(a.verdict(), Verdict::Affirming, "{a:#?}");
}

#[test]
fn anchor_for_another_instance_fails_the_trust_anchor() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let mut ta = pinned_anchor(&t);
    ta[0]["instance-id"] = json!(format!("01{}", "00".repeat(32)));
    let a = appraise(&t, &anchors(ta), &refs(exact_refs(&t)));
    assert_eq!(a.trust_anchor.status, Status::Fail);
    assert_eq!(a.platform_signature.status, Status::NotChecked);
    assert_eq!(a.verdict(), Verdict::Contraindicated);
}

#[test]
fn wrong_key_fails_the_platform_signature() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let mut ta = pinned_anchor(&t);
    ta[0]["pkey"] = serde_json::from_slice(&read_vector("cca-token-02-cpak.jwk.json")).unwrap();
    let a = appraise(&t, &anchors(ta), &refs(exact_refs(&t)));
    assert_eq!(a.trust_anchor.status, Status::Pass);
    assert_eq!(a.platform_signature.status, Status::Fail);
    assert!(
        a.platform_signature.detail.contains("P-256"),
        "{}",
        a.platform_signature.detail
    );
}

#[test]
fn unknown_firmware_fails_platform_reference_values() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let mut r = exact_refs(&t);
    r["platform"][0]["sw-components"][2]["measurement-value"] = json!("00".repeat(32));
    let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(r));
    assert_eq!(a.platform_reference_values.status, Status::Fail);
    assert_eq!(a.realm_reference_values.status, Status::Pass);
    let comp = t.platform.claims.sw_components[2]
        .component_type
        .clone()
        .unwrap();
    assert!(
        a.platform_reference_values.detail.contains(&comp),
        "{}",
        a.platform_reference_values.detail
    );

    let mut r = exact_refs(&t);
    r["platform"][0]["implementation-id"] = json!("11".repeat(32));
    let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(r));
    assert_eq!(a.platform_reference_values.status, Status::Fail);

    let mut r = exact_refs(&t);
    r["platform"][0]["platform-configuration"] = json!("00");
    let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(r));
    assert_eq!(a.platform_reference_values.status, Status::Fail);
}

#[test]
fn realm_reference_value_mismatches() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let ta = anchors(pinned_anchor(&t));
    let check = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut r = exact_refs(&t);
        edit(&mut r["realm"][0]);
        appraise(&t, &ta, &refs(r)).realm_reference_values
    };
    assert_eq!(check(&|_| {}).status, Status::Pass);
    let c = check(&|r| r["initial-measurement"] = json!("00".repeat(32)));
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("RIM"));
    let c = check(&|r| r["extensible-measurements"][3] = json!("00".repeat(32)));
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("REM3"), "{}", c.detail);
    let c = check(&|r| r["personalization-value"] = json!("00".repeat(64)));
    assert_eq!(c.status, Status::Fail);
    let c = check(&|r| r["rak-hash-algorithm"] = json!("sha-512"));
    assert_eq!(c.status, Status::Fail);
    // Optional fields absent: only the RIM and RAK hash algorithm constrain.
    let c = check(&|r| {
        r.as_object_mut().unwrap().remove("extensible-measurements");
        r.as_object_mut().unwrap().remove("personalization-value");
    });
    assert_eq!(c.status, Status::Pass);
    // `atoll measure --json` adds "hash-algorithm"; a wrong one fails.
    let c = check(&|r| r["hash-algorithm"] = json!("sha-512"));
    assert_eq!(c.status, Status::Fail);
}

#[test]
fn missing_reference_values_give_a_warning() {
    let t = load_token(vector("draft-ffm-00.cbor")).unwrap();
    let mut r = exact_refs(&t);
    r.as_object_mut().unwrap().remove("platform");
    let a = appraise(&t, &anchors(pinned_anchor(&t)), &refs(r));
    assert_eq!(a.platform_reference_values.status, Status::NotChecked);
    assert_eq!(a.verdict(), Verdict::Warning);
}

#[test]
fn bad_inputs_are_typed_errors() {
    assert!(matches!(
        TrustAnchors::from_json(b"nope"),
        Err(InputError::Json { .. })
    ));
    assert!(matches!(
        TrustAnchors::from_json(br#"{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}"#),
        Err(InputError::Jwk(_))
    ));
    let mut jwk = tfm_jwk();
    jwk["y"] = jwk["x"].clone();
    assert!(matches!(
        TrustAnchors::from_json(jwk.to_string().as_bytes()),
        Err(InputError::Jwk(_))
    ));
    assert!(matches!(
        TrustAnchors::from_json(
            json!([{"instance-id": "zz", "pkey": tfm_jwk()}])
                .to_string()
                .as_bytes()
        ),
        Err(InputError::Hex { .. })
    ));
    assert!(matches!(
        TrustAnchors::from_json(json!([{"instance-id": "01"}]).to_string().as_bytes()),
        Err(InputError::Field { .. })
    ));
    assert!(matches!(
        ReferenceValues::from_json(
            br#"{"realm": [{"initial-measurement": "00", "rak-hash-algorithm": "md5"}]}"#
        ),
        Err(InputError::Field { .. })
    ));
    assert!(matches!(
        ReferenceValues::from_json(br#"{"realm": [{"rak-hash-algorithm": "sha-256"}]}"#),
        Err(InputError::Json { .. })
    ));
    assert!(matches!(
        load_token(vector("README.md")),
        Err(InputError::Token { .. })
    ));
    assert!(matches!(
        load_token(vector("absent.cbor")),
        Err(InputError::Io { .. })
    ));
}

#[test]
fn jwk_round_trip() {
    let k = atoll_cca_token::PlatformKey::from_jwk(&tfm_jwk()).unwrap();
    let back = k.to_jwk();
    assert_eq!(back["x"], tfm_jwk()["x"]);
    assert_eq!(back["y"], tfm_jwk()["y"]);
    assert_eq!(back["crv"], "P-384");
}
