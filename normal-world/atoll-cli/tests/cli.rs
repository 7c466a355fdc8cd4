//! End-to-end tests of the `atoll` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn atoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .output()
        .expect("run atoll")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn measure_example_human() {
    let o = atoll(&["measure", example().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("hash algorithm: SHA-256"), "{out}");
    assert!(out.contains("realm:          hello-realm"), "{out}");
    let rim = out
        .lines()
        .find_map(|l| l.strip_prefix("RIM:"))
        .expect("a RIM line")
        .trim();
    assert_eq!(rim.len(), 64, "SHA-256 RIM in hex: {rim}");
    assert!(rim.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(rim, "0".repeat(64));
}

#[test]
fn measure_example_json_agrees_with_human() {
    let human = stdout(&atoll(&["measure", example().to_str().unwrap()]));
    let o = atoll(&["measure", "--json", example().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    let realm = &v["realm"][0];
    let rim = realm["initial-measurement"].as_str().unwrap();
    assert!(human.contains(rim));
    assert_eq!(realm["rak-hash-algorithm"], "sha-256");
    assert_eq!(realm["hash-algorithm"], "sha-256");
    let rpv = realm["personalization-value"].as_str().unwrap();
    assert!(rpv.starts_with("68656c6c6f2d7265616c6d00"));
    assert_eq!(rpv.len(), 128);
}

/// A copy of the example in a temporary directory, with a textual edit.
fn variant(from: &str, to: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ex = example();
    let text = std::fs::read_to_string(&ex).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::copy(
        ex.with_file_name("hello-realm.bin"),
        dir.path().join("hello-realm.bin"),
    )
    .unwrap();
    let path = dir.path().join("realm.toml");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    (dir, path)
}

#[test]
fn measure_changes_with_the_description() {
    let base = stdout(&atoll(&["measure", example().to_str().unwrap()]));
    let (_d, p) = variant("ripas_level = 3", "ripas_level = 2");
    let other = atoll(&["measure", p.to_str().unwrap()]);
    assert!(other.status.success(), "{}", stderr(&other));
    assert_ne!(stdout(&other), base);

    let (_d, p) = variant("\"sha-256\"", "\"sha-512\"");
    let o = atoll(&["measure", p.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.contains("hash algorithm: SHA-512"), "{out}");
    let rim = out
        .lines()
        .find_map(|l| l.strip_prefix("RIM:"))
        .unwrap()
        .trim();
    assert_eq!(rim.len(), 128);

    // The RPV is not measured.
    let (_d, p) = variant("rpv = \"68656c6c6f2d7265616c6d\"", "rpv = \"ff\"");
    let o = atoll(&["measure", p.to_str().unwrap()]);
    assert_eq!(
        stdout(&o).replace("hello-realm", ""),
        base.replace("hello-realm", "")
    );
}

fn fails_with(args: &[&str], needle: &str) {
    let o = atoll(args);
    assert!(!o.status.success(), "{args:?} should fail");
    let err = stderr(&o);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(stdout(&o).is_empty(), "nothing on stdout on failure");
}

#[test]
fn bad_inputs_fail_clearly() {
    fails_with(
        &["measure", "/nonexistent/realm.toml"],
        "cannot read /nonexistent/realm.toml",
    );

    let (_d, p) = variant("\"sha-256\"", "\"sha-1\"");
    fails_with(
        &["measure", p.to_str().unwrap()],
        "unknown hash algorithm \"sha-1\"",
    );

    let (_d, p) = variant("ipa = 0x4000_0000", "ipa = 0x4000_0800");
    fails_with(&["measure", p.to_str().unwrap()], "not 4 KiB aligned");

    let (_d, p) = variant("ipa = 0x4000_0000", "ipa = 0x5000_0000");
    fails_with(&["measure", p.to_str().unwrap()], "not inside a RAM region");

    let (_d, p) = variant("hello-realm.bin\"", "missing.bin\"");
    fails_with(&["measure", "--json", p.to_str().unwrap()], "missing.bin");

    let (_d, p) = variant("[memory]", "[memroy]");
    fails_with(
        &["measure", p.to_str().unwrap()],
        "invalid realm description",
    );

    let (_d, p) = variant("ripas_level = 3", "ripas_level = 4");
    fails_with(&["measure", p.to_str().unwrap()], "realm.toml");
}

#[test]
fn usage_errors() {
    let o = atoll(&["measure"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("DESCRIPTION"));
    let o = atoll(&["frobnicate"]);
    assert!(!o.status.success());
}
