//! The C API from C: `tests/c/sdk_test.c` is compiled with gcc against
//! `include/atoll_sdk.h` and the crate's static library, then run against
//! the simulated platform (atoll-sim, in this process on its own thread),
//! booted against an `atoll-hes` process and without a root of trust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_cca_token::PlatformKey;
use atoll_realm_description::RealmDescription;
use atoll_sdk::{EnvelopeError, Sdk, SdkError};
use atoll_sim::procs::HesProcess;
use atoll_sim::Background;
use sha2::{Digest, Sha256};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `libatoll_sdk.a`, next to this test's own directory. `cargo test` does
/// not build a library's staticlib output, so build it here (a no-op when
/// it is up to date).
fn static_lib() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "atoll-sdk", "--lib"])
        .current_dir(crate_dir())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building libatoll_sdk.a");
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

/// Runs the C program against `sim` and returns its `key=value` lines,
/// after checking what does not depend on the platform's root of trust.
fn run_c(dir: &Path, sim: &Background) -> HashMap<String, String> {
    let program = compile(dir);
    let out = Command::new(&program).arg(sim.socket()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "C test failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kv: HashMap<String, String> = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

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
    kv
}

fn example() -> RealmDescription {
    RealmDescription::load(&crate_dir().join("../../images/examples/hello-realm.toml")).unwrap()
}

/// With an `atoll-hes` process as the platform's root of trust: the C
/// program's token verifies against the CPAK with its challenge and the
/// realm's RIM, and what it seals unseals, in C and through the Rust SDK
/// (the same envelope), and only in this realm.
#[test]
fn c_program_against_the_simulator_with_the_hes() {
    let dir = tempfile::tempdir().unwrap();
    let hes = HesProcess::start(dir.path());
    let sim = Background::start_with(
        example(),
        dir.path().join("realm.sock"),
        Some(hes.socket.clone()),
    )
    .unwrap();
    let kv = run_c(dir.path(), &sim);
    assert_eq!(kv["attest"], "0");
    let token = hex::decode(&kv["token"]).unwrap();
    let cpak = p384::ecdsa::VerifyingKey::from_sec1_bytes(sim.cpak().unwrap()).unwrap();
    let decoded = atoll_sdk::verify(&token, &PlatformKey::from(cpak)).unwrap();
    assert_eq!(decoded.realm.claims.challenge, [0xA5; 64]);
    assert_eq!(decoded.realm.claims.rim, sim.measurement().rim());
    assert_eq!(kv["seal"], "0");
    assert_eq!(kv["unseal"], "0");

    // The envelope sealed from C opens through the Rust SDK in the same
    // realm, and not with a key it was not sealed under.
    let mut sealed = hex::decode(&kv["sealed"]).unwrap();
    let mut sdk = Sdk::connect_sim(sim.socket()).unwrap();
    assert_eq!(sdk.unseal(&sealed).unwrap(), b"measured by C");
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    assert!(matches!(
        sdk.unseal(&sealed),
        Err(SdkError::Envelope(EnvelopeError::Authentication))
    ));
}

/// Without a root of trust: attest and seal fail with RSI_ERROR_UNKNOWN
/// (`ATOLL_STATUS_RSI_UNKNOWN`), as the RMM specifies, and nothing else
/// changes.
#[test]
fn c_program_without_a_root_of_trust() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Background::start(example(), dir.path().join("realm.sock")).unwrap();
    let kv = run_c(dir.path(), &sim);
    assert_eq!(kv["attest"], "-7", "RSI_ERROR_UNKNOWN");
    assert_eq!(kv["seal"], "-7", "RSI_ERROR_UNKNOWN");
    assert!(!kv.contains_key("token") && !kv.contains_key("unseal"));
}
