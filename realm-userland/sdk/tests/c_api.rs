//! The C API from C: `tests/c/sdk_test.c` is compiled with gcc against
//! `include/atoll_sdk.h` and the crate's static library, then run against
//! the simulated platform (atoll-sim, in this process on its own thread).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_realm_description::RealmDescription;
use atoll_sim::Background;
use sha2::{Digest, Sha256};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `libatoll_sdk.a`, built by cargo next to this test's own directory.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let lib = profile_dir.join("libatoll_sdk.a");
    assert!(lib.exists(), "{} not built", lib.display());
    lib
}

fn compile(dir: &Path) -> PathBuf {
    let out = dir.join("sdk_test");
    let status = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(crate_dir().join("tests/c/sdk_test.c"))
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm"])
        .status()
        .expect("run gcc");
    assert!(status.success(), "gcc failed");
    out
}

#[test]
fn c_program_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile(dir.path());
    let desc = RealmDescription::load(&crate_dir().join("../../images/examples/hello-realm.toml"))
        .unwrap();
    let sim = Background::start(desc, dir.path().join("realm.sock")).unwrap();
    let out = Command::new(&program).arg(sim.socket()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "C test failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kv: HashMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once('=')).collect();

    assert_eq!(kv["connect"], "0");
    assert_eq!(kv["rim"], hex::encode(sim.measurement().rim));
    // REM1 = SHA-256(zeros(32) || data), zero-padded to 64 bytes.
    let expected: [u8; 32] = Sha256::new()
        .chain_update([0u8; 32])
        .chain_update(b"measured by C")
        .finalize()
        .into();
    assert_eq!(
        kv["rem1"],
        format!("{}{}", hex::encode(expected), "00".repeat(32))
    );
    assert_eq!(kv["read5"], "-5", "RSI_ERROR_INPUT");
    assert_eq!(kv["unseal_junk"], "-10", "not an envelope");
    assert_eq!(kv["verify_junk"], "-12", "a JWK without a curve is no key");
    assert_eq!(
        kv["message"],
        "RSI_ERROR_UNKNOWN: the RMM could not complete the call"
    );
    // FLIP when the HES is plugged into atoll-sim: attest and seal then
    // succeed (attest=0 with a token line, seal=0 and unseal=0).
    assert_eq!(kv["attest"], "-7", "RSI_ERROR_UNKNOWN until the HES lands");
    assert_eq!(kv["seal"], "-7", "RSI_ERROR_UNKNOWN until the HES lands");
}
