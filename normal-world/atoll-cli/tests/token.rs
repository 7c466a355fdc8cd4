//! `atoll token show|verify|appraise` on the public vectors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::json;

fn atoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .output()
        .expect("run atoll")
}

fn vector(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../services/attestation/token/tests/vectors")
        .join(name)
        .to_str()
        .unwrap()
        .to_owned()
}

fn out(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const TFM: &str = "tfm-platform-cpak.jwk.json";

#[test]
fn show_prints_claims() {
    let o = atoll(&["token", "show", &vector("cca-token-01.cbor")]);
    assert!(o.status.success(), "{}", err(&o));
    let s = out(&o);
    assert!(s.contains("tag 399"), "{s}");
    assert!(s.contains("NOT verified"), "{s}");
    assert!(s.contains("lifecycle:             0x3003 (secured)"), "{s}");
    assert!(s.contains("- BL version 3.4.2"), "{s}");
    assert!(s.contains("(raw-point)"), "{s}");
    assert!(
        s.contains(&format!("RIM:                   {}", "0".repeat(64))),
        "{s}"
    );

    let s = out(&atoll(&["token", "show", &vector("cmw-tag907.cbor")]));
    assert!(s.contains("tag 907"), "{s}");
    assert!(s.contains("tag:arm.com,2024:realm#2.0.0"), "{s}");
    assert!(s.contains("(cose-key)"), "{s}");
    assert!(s.contains("other claims:"), "{s}");
}

#[test]
fn show_json() {
    let o = atoll(&["token", "show", "--json", &vector("cca-token-02.cbor")]);
    assert!(o.status.success(), "{}", err(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["collection"], "tag-399");
    assert_eq!(j["platform"]["algorithm"], "ES256");
    assert_eq!(j["realm"]["rak-hash-algorithm"], "sha-512");
    assert_eq!(j["realm"]["challenge"], "4142".repeat(32));
    assert_eq!(
        j["platform"]["sw-components"][0]["measurement-value"],
        "03".repeat(32)
    );
}

#[test]
fn verify_accepts_good_tokens() {
    for (t, k) in [
        ("cca-token-01.cbor", TFM),
        ("cca-token-02.cbor", "cca-token-02-cpak.jwk.json"),
        ("draft-ffm-00.cbor", TFM),
        ("cmw-tag907.cbor", TFM),
        ("trustee.cbor", TFM),
    ] {
        let o = atoll(&["token", "verify", &vector(t), "--cpak", &vector(k)]);
        assert!(o.status.success(), "{t}: {}{}", out(&o), err(&o));
        let s = out(&o);
        assert_eq!(s.matches(" ok").count(), 3, "{t}: {s}");
    }
}

#[test]
fn verify_rejects_bug_33_on_the_binding() {
    let o = atoll(&[
        "token",
        "verify",
        &vector("bug-33-repro.cbor"),
        "--cpak",
        &vector(TFM),
    ]);
    assert!(!o.status.success());
    let s = out(&o);
    assert!(s.contains("platform signature: ok"), "{s}");
    assert!(s.contains("realm signature:    ok"), "{s}");
    assert!(s.contains("binding:            FAILED"), "{s}");
    assert!(
        err(&o).contains("token verification failed: binding"),
        "{}",
        err(&o)
    );

    let o = atoll(&[
        "token",
        "verify",
        "--json",
        &vector("bug-33-repro.cbor"),
        "--cpak",
        &vector(TFM),
    ]);
    assert!(!o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["binding"]["ok"], false);
    assert_eq!(j["platform-signature"]["ok"], true);
}

#[test]
fn verify_rejects_the_wrong_key() {
    let o = atoll(&[
        "token",
        "verify",
        &vector("cca-token-02.cbor"),
        "--cpak",
        &vector(TFM),
    ]);
    assert!(!o.status.success());
    assert!(
        out(&o).contains("platform signature: FAILED"),
        "{}",
        out(&o)
    );
    assert!(err(&o).contains("platform signature"), "{}", err(&o));
}

fn write(dir: &Path, name: &str, v: &serde_json::Value) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Trust anchors and reference values that describe draft-ffm-00.
fn inputs() -> (serde_json::Value, serde_json::Value) {
    let show = atoll(&["token", "show", "--json", &vector("draft-ffm-00.cbor")]);
    let j: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let (p, r) = (&j["platform"], &j["realm"]);
    let jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(vector(TFM)).unwrap()).unwrap();
    (
        json!([{"instance-id": p["instance-id"], "implementation-id": p["implementation-id"], "pkey": jwk}]),
        json!({
            "platform": [{
                "implementation-id": p["implementation-id"],
                "platform-configuration": p["platform-configuration"],
                "sw-components": p["sw-components"],
            }],
            "realm": [{
                "initial-measurement": r["initial-measurement"],
                "extensible-measurements": r["extensible-measurements"],
                "rak-hash-algorithm": "sha-256",
            }]
        }),
    )
}

#[test]
fn verify_takes_a_trust_anchor_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ta, _) = inputs();
    let ta = write(dir.path(), "ta.json", &ta);
    let o = atoll(&[
        "token",
        "verify",
        &vector("draft-ffm-00.cbor"),
        "--cpak",
        &ta,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    // The anchor is pinned to draft-ffm-00's instance; token 02's platform is another.
    let o = atoll(&[
        "token",
        "verify",
        &vector("cca-token-02.cbor"),
        "--cpak",
        &ta,
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("no key in"), "{}", err(&o));
}

#[test]
fn appraise_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (ta, rv) = inputs();
    let ta_f = write(dir.path(), "ta.json", &ta);
    let rv_f = write(dir.path(), "rv.json", &rv);
    let args = |t: &str, rv: &str, json: bool| {
        let mut a = vec![
            "token".to_owned(),
            "appraise".into(),
            vector(t),
            "--trust-anchors".into(),
            ta_f.clone(),
        ];
        a.extend(["--reference-values".to_owned(), rv.to_owned()]);
        if json {
            a.push("--json".into());
        }
        atoll(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let o = args("draft-ffm-00.cbor", &rv_f, false);
    assert!(o.status.success(), "{}{}", out(&o), err(&o));
    assert_eq!(out(&o).matches(" pass ").count(), 6, "{}", out(&o));
    assert!(out(&o).contains("verdict: affirming"), "{}", out(&o));

    let o = args("draft-ffm-00.cbor", &rv_f, true);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["verdict"], "affirming");
    assert_eq!(j["realm-reference-values"]["status"], "pass");

    // A different RIM: only the realm reference values fail.
    let mut bad = rv.clone();
    bad["realm"][0]["initial-measurement"] = json!("00".repeat(32));
    let bad_f = write(dir.path(), "bad.json", &bad);
    let o = args("draft-ffm-00.cbor", &bad_f, true);
    assert!(!o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["realm-reference-values"]["status"], "fail");
    assert_eq!(j["platform-reference-values"]["status"], "pass");
    assert_eq!(j["binding"]["status"], "pass");
    assert_eq!(j["verdict"], "contraindicated");
    assert!(
        err(&o).contains("appraisal failed: realm reference values"),
        "{}",
        err(&o)
    );

    // No platform reference values: a warning, exit 0.
    let mut realm_only = rv.clone();
    realm_only.as_object_mut().unwrap().remove("platform");
    let ro = write(dir.path(), "realm-only.json", &realm_only);
    let o = args("draft-ffm-00.cbor", &ro, false);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("verdict: warning"), "{}", out(&o));
}

#[test]
fn bad_input_is_a_clear_error() {
    let o = atoll(&["token", "show", &vector("README.md")]);
    assert!(!o.status.success());
    assert!(err(&o).contains("reading the token"), "{}", err(&o));
    assert!(err(&o).contains("token collection"), "{}", err(&o));
    let o = atoll(&[
        "token",
        "verify",
        &vector("trustee.cbor"),
        "--cpak",
        &vector("trustee.cbor"),
    ]);
    assert!(!o.status.success());
    assert!(err(&o).contains("reading the platform key"), "{}", err(&o));
    let o = atoll(&["token", "show", "/nonexistent/token.cbor"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("/nonexistent/token.cbor"), "{}", err(&o));
}
