//! End-to-end tests of `atoll sign`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn atoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .output()
        .expect("run atoll")
}

fn ok(args: &[&str]) -> String {
    let o = atoll(args);
    assert!(
        o.status.success(),
        "atoll {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// A CA, a vendor and a signed manifest in `dir`.
fn setup(dir: &Path) {
    let out = ok(&["sign", "keygen", "--ca-root", s(&dir.join("ca"))]);
    assert!(out.contains("root CA:     CN=Atoll Root CA"), "{out}");
    let out = ok(&[
        "sign",
        "vendor",
        "--ca",
        s(&dir.join("ca")),
        "--name",
        "Vendor",
        "-o",
        s(&dir.join("vendor")),
    ]);
    assert!(out.contains("vendor:      CN=Vendor"), "{out}");
    fs::write(dir.join("manifest.json"), MANIFEST).unwrap();
    let out = ok(&[
        "sign",
        "image",
        "--key",
        s(&dir.join("vendor/vendor.pem")),
        "--chain",
        s(&dir.join("vendor/vendor-chain.pem")),
        "--manifest",
        s(&dir.join("manifest.json")),
        "--annotation",
        "com.atoll.app=hello",
        "-o",
        s(&dir.join("sig")),
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = j["manifest"].as_str().unwrap();
    let hex = m.strip_prefix("sha256:").unwrap();
    assert!(dir.join("sig/blobs/sha256").join(hex).is_file());
    assert!(dir.join("sig/index.json").is_file());
    assert!(dir.join("sig/oci-layout").is_file());
}

fn verify(dir: &Path, root: &Path, json: bool) -> Output {
    let manifest = dir.join("manifest.json");
    let sig = dir.join("sig");
    let mut args = vec![
        "sign",
        "verify",
        "--root",
        s(root),
        "--manifest",
        s(&manifest),
        "--signature",
        s(&sig),
    ];
    if json {
        args.push("--json");
    }
    atoll(&args)
}

#[test]
fn sign_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let o = verify(d, &d.join("ca/root.pem"), false);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(": OK: sha256:"), "{out}");
    assert!(out.contains("vendor:  CN=Vendor"), "{out}");
    assert!(out.contains("annotation com.atoll.app=hello"), "{out}");
    let o = verify(d, &d.join("ca/root.pem"), true);
    assert!(o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["valid"], true);
    assert_eq!(j["vendor"], "CN=Vendor");
    assert_eq!(j["annotations"]["com.atoll.app"], "hello");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(d.join("vendor/vendor.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn tampered_manifest_and_wrong_root_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    fs::write(
        d.join("manifest.json"),
        MANIFEST.replace("\"layers\":[]", "\"layers\": []"),
    )
    .unwrap();
    let o = verify(d, &d.join("ca/root.pem"), false);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("atoll: error:"), "{err}");
    assert!(err.contains("the signature is for manifest"), "{err}");
    let o = verify(d, &d.join("ca/root.pem"), true);
    assert!(!o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["valid"], false);

    fs::write(d.join("manifest.json"), MANIFEST).unwrap();
    ok(&[
        "sign",
        "keygen",
        "--ca-root",
        s(&d.join("other")),
        "--name",
        "Other",
    ]);
    let o = verify(d, &d.join("other/root.pem"), false);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a trusted root"), "{err}");
}

#[test]
fn refuses_to_overwrite_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca");
    ok(&["sign", "keygen", "--ca-root", s(&ca)]);
    let o = atoll(&["sign", "keygen", "--ca-root", s(&ca)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    ok(&["sign", "keygen", "--ca-root", s(&ca), "--force"]);
}
