//! `atoll-rsi` against `atoll-sim`, both as separate processes the way a
//! user runs them: the example realm is built by the simulator, and the
//! tool reads its RIM (which must equal `atoll measure`'s prediction),
//! extends and reads a REM, gets tokens that `atoll-rsi verify` accepts
//! against the CPAK of the `atoll-hes` process the simulator booted
//! against, and sealing keys from it; and, without an HES, meets the
//! specified failures.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use atoll_sim::hes::HesRoot;
use atoll_sim::procs::HesProcess;
use sha2::{Digest, Sha256};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> PathBuf {
    workspace().join("images/examples/hello-realm.toml")
}

/// Builds (if needed) and returns a workspace binary: cargo only hands a
/// test the binaries of its own package.
fn binary(package: &str, name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .current_dir(workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {name}");
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

/// A running `atoll-sim`, stopped with SIGTERM-like kill when dropped.
struct SimProcess {
    child: Child,
    socket: PathBuf,
    /// What it printed before serving: the RIM line, the root of trust
    /// (and the CPAK with an HES).
    lines: Vec<String>,
}

impl SimProcess {
    /// `atoll-sim` on a platform without a root of trust.
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// `atoll-sim` with `extra` arguments (`--hes`, `--cpak-jwk`).
    fn start_with(dir: &Path, extra: &[&std::ffi::OsStr]) -> Self {
        let socket = dir.join("realm.sock");
        let mut child = Command::new(binary("atoll-sim", "atoll-sim"))
            .arg("--realm")
            .arg(example())
            .arg("--socket")
            .arg(&socket)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start atoll-sim");
        // It prints the RIM and its root of trust, then that it is
        // serving: the socket is bound.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut l = String::new();
            assert!(out.read_line(&mut l).unwrap() > 0, "atoll-sim: {lines:?}");
            if l.starts_with("serving REC 0") {
                break;
            }
            lines.push(l.trim().to_string());
        }
        // Keep draining console output so the simulator never blocks.
        std::thread::spawn(move || for _ in out.lines() {});
        Self {
            child,
            socket,
            lines,
        }
    }

    /// With an HES: the platform's root of trust, printed and written as a
    /// JWK to `jwk`.
    fn start_with_hes(dir: &Path, hes: &HesProcess, jwk: &Path) -> Self {
        Self::start_with(
            dir,
            &[
                "--hes".as_ref(),
                hes.socket.as_os_str(),
                "--cpak-jwk".as_ref(),
                jwk.as_os_str(),
            ],
        )
    }

    fn rsi(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_atoll-rsi"))
            .arg("--sim")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run atoll-rsi")
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok_json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "atoll-rsi failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn atoll_measure_rim() -> String {
    let out = Command::new(binary("atoll-cli", "atoll"))
        .args(["measure", "--json"])
        .arg(example())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["realm"][0]["initial-measurement"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn version_measurements_and_platform_answers() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path());
    let rim = atoll_measure_rim();
    assert_eq!(sim.lines[0], format!("RIM (sha-256): {rim}"));

    // version, human and JSON.
    let out = sim.rsi(&["version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "RSI 1.0 (the RMM implements 1.0 to 1.0)"
    );
    let v = ok_json(sim.rsi(&["--json", "version"]));
    assert_eq!(v, serde_json::json!({"lower": "1.0", "higher": "1.0"}));

    // The RIM the realm reads is the one atoll measure predicts.
    let m = ok_json(sim.rsi(&["--json", "measurement", "read", "0"]));
    assert_eq!(m["value"], rim.as_str());
    assert_eq!(m["algorithm"], "sha-256");
    let out = sim.rsi(&["measurement", "read", "0"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("RIM 0 (sha-256): {rim}")
    );

    // Extend then read: REM = SHA-256(old || data), and it persists across
    // the tool's separate connections.
    let rem0 = ok_json(sim.rsi(&["--json", "measurement", "read", "2"]));
    assert_eq!(rem0["value"], "00".repeat(32));
    ok_json(sim.rsi(&["--json", "measurement", "extend", "2", "c0ffee"]));
    let rem = ok_json(sim.rsi(&["--json", "measurement", "read", "2"]));
    let expected = hex_sha256(&[&[0u8; 32][..], &[0xc0, 0xff, 0xee]].concat());
    assert_eq!(rem["value"], expected.as_str());
    let out = sim.rsi(&["measurement", "extend", "2", "00"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "extended REM 2 with 1 bytes"
    );
    let rem2 = ok_json(sim.rsi(&["--json", "measurement", "read", "2"]));
    let mut chained = hex::decode(&expected).unwrap();
    chained.push(0);
    assert_eq!(rem2["value"], hex_sha256(&chained).as_str());

    // Failures exit non-zero with the RMM's reason.
    let out = sim.rsi(&["measurement", "extend", "0", "00"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RSI_ERROR_INPUT"));
    let out = sim.rsi(&["measurement", "extend", "1", "zz"]);
    assert!(!out.status.success());
    let out = sim.rsi(&["attest", "--challenge", "0011"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("challenge must be 32 to 64 bytes"));
}

/// Without a root of trust (no `--hes`): the simulator says so, and the
/// RMM answers token and sealing-key requests with `RSI_ERROR_UNKNOWN`.
#[test]
fn attest_and_sealing_key_without_a_root_of_trust() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start(dir.path());
    assert_eq!(
        sim.lines[1..],
        ["root of trust: none (no --hes); attestation and sealing unavailable (RSI_ERROR_UNKNOWN)"]
    );
    let token = dir.path().join("token.cbor");
    let out = sim.rsi(&[
        "attest",
        "--challenge",
        &"ab".repeat(64),
        "-o",
        token.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RSI_ERROR_UNKNOWN"));
    assert!(!token.exists());
    let out = sim.rsi(&["sealing-key", "--flags", "rim"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RSI_ERROR_UNKNOWN"));
    let out = sim.rsi(&["sealing-key", "--flags", "bogus"]);
    assert!(!out.status.success());
}

/// The sealing keys a realm gets for each flag set, as `atoll-rsi
/// sealing-key --json` prints them.
fn sealing_keys(sim: &SimProcess) -> Vec<String> {
    ["", "rim", "key-m", "key-m,rim"]
        .iter()
        .map(|flags| {
            let v = ok_json(sim.rsi(&["--json", "sealing-key", "--flags", flags]));
            let key = v["key"].as_str().unwrap().to_string();
            assert_eq!(key.len(), 64, "{v}");
            key
        })
        .collect()
}

/// With `--hes`: the printed CPAK is the HES's, `attest` writes a token
/// that `verify --cpak` accepts with the realm's challenge and the RIM
/// `atoll measure` predicts (and another key refuses), and sealing keys
/// are stable for the same flags, across a restart of the HES and the
/// simulator on the same provisioning file, and differ across flags that
/// select another key.
#[test]
fn attest_verify_and_sealing_keys_with_the_hes() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = dir.path().join("cpak.jwk");
    let rim = atoll_measure_rim();
    let first_keys = {
        let hes = HesProcess::start(dir.path());
        let sim = SimProcess::start_with_hes(dir.path(), &hes, &jwk);
        assert_eq!(sim.lines[0], format!("RIM (sha-256): {rim}"));
        assert_eq!(
            sim.lines[1],
            format!(
                "root of trust: atoll-hes at {}; attestation and sealing available",
                hes.socket.display()
            )
        );
        let cpak = HesRoot::connect(&hes.socket)
            .unwrap()
            .cpak_public_key()
            .unwrap();
        assert_eq!(
            sim.lines[2],
            format!("CPAK (P-384, SEC1): {}", hex::encode(cpak))
        );

        // A token, written to a file, that verifies against the CPAK.
        let challenge = "c3".repeat(40);
        let token = dir.path().join("token.cbor");
        let out = ok_json(sim.rsi(&[
            "--json",
            "attest",
            "--challenge",
            &challenge,
            "-o",
            token.to_str().unwrap(),
        ]));
        assert_eq!(
            out["bytes"].as_u64(),
            Some(std::fs::metadata(&token).unwrap().len())
        );
        let v = ok_json(sim.rsi(&[
            "--json",
            "verify",
            token.to_str().unwrap(),
            "--cpak",
            jwk.to_str().unwrap(),
        ]));
        assert_eq!(v["verified"], true);
        assert_eq!(v["challenge"], format!("{challenge}{}", "00".repeat(24)));
        assert_eq!(v["rim"], rim.as_str());
        // Human output, and the token in hex without -o.
        let out = sim.rsi(&[
            "verify",
            token.to_str().unwrap(),
            "--cpak",
            jwk.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout)
            .starts_with("verified: platform signature, realm signature, RAK binding"));
        let hex_token = sim.rsi(&["attest", "--challenge", &"01".repeat(32)]);
        assert!(hex_token.status.success());
        assert!(hex::decode(String::from_utf8_lossy(&hex_token.stdout).trim()).is_ok());
        // Another platform's key refuses it.
        let stranger = p384::ecdsa::SigningKey::from_slice(&[0x33; 48]).unwrap();
        let point: [u8; 97] = stranger
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .try_into()
            .unwrap();
        let other = atoll_sim::hes::cpak_jwk(&point).unwrap();
        let out = sim.rsi(&["verify", token.to_str().unwrap(), "--cpak", &other]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("token does not verify"));

        // Sealing keys: the same for the same flags, VHUK_A and VHUK_M
        // keys differ; without vendor metadata the RIM is always mixed in
        // (no flags = rim), and realm-id needs metadata.
        let keys = sealing_keys(&sim);
        assert_eq!(keys, sealing_keys(&sim));
        assert_eq!(keys[0], keys[1]);
        assert_eq!(keys[2], keys[3]);
        assert_ne!(keys[1], keys[2]);
        let out = sim.rsi(&["sealing-key", "--flags", "realm-id"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("RSI_ERROR_STATE"));
        keys
    };

    // Both restarted, the HES on the same provisioning file: same keys.
    let hes = HesProcess::start(dir.path());
    let sim = SimProcess::start_with_hes(dir.path(), &hes, &jwk);
    assert_eq!(sealing_keys(&sim), first_keys);
}

#[test]
fn verify_refuses_what_is_not_a_token_and_missing_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.cbor");
    std::fs::write(&token, b"\xd9\x01\x8f\xa0").unwrap();
    let jwk = r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#;
    let out = Command::new(env!("CARGO_BIN_EXE_atoll-rsi"))
        .args(["verify", token.to_str().unwrap(), "--cpak", jwk])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_atoll-rsi"))
        .arg("--sim")
        .arg(dir.path().join("nobody.sock"))
        .arg("version")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("connecting to the simulator"));
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
