//! `atoll-rsi` against `atoll-sim`, both as separate processes the way a
//! user runs them: the example realm is built by the simulator, and the
//! tool reads its RIM (which must equal `atoll measure`'s prediction),
//! extends and reads a REM, and meets the platform's current answers for
//! tokens and sealing keys.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

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
    rim_line: String,
}

impl SimProcess {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("realm.sock");
        let mut child = Command::new(binary("atoll-sim", "atoll-sim"))
            .arg("--realm")
            .arg(example())
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start atoll-sim");
        // It prints the RIM, then that it is serving: the socket is bound.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut rim_line = String::new();
        out.read_line(&mut rim_line).unwrap();
        let mut serving = String::new();
        out.read_line(&mut serving).unwrap();
        assert!(serving.starts_with("serving REC 0"), "{serving}");
        // Keep draining console output so the simulator never blocks.
        std::thread::spawn(move || for _ in out.lines() {});
        Self {
            child,
            socket,
            rim_line,
        }
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
    assert_eq!(sim.rim_line.trim(), format!("RIM (sha-256): {rim}"));

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

    // FLIP when the HES is plugged into atoll-sim: `attest` then writes a
    // token that `verify --cpak` accepts, and `sealing-key` prints a key
    // (the same one for the same flags, a different one for other flags).
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
