//! The warden as users run it: a daemon process and CLI invocations, with
//! real `atoll-hes`, `atoll-sim` and `atoll-app-manager` processes under it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use atoll_sim::procs::{binary, workspace};

struct Tools {
    warden: PathBuf,
    atoll: PathBuf,
    bin_dir: PathBuf,
}

fn tools() -> Tools {
    let warden = binary("atoll-warden", "atoll-warden");
    for (p, b) in [
        ("atoll-hes", "atoll-hes"),
        ("atoll-sim", "atoll-sim"),
        ("atoll-app-manager", "atoll-app-manager"),
    ] {
        binary(p, b);
    }
    Tools {
        bin_dir: warden.parent().unwrap().to_owned(),
        atoll: binary("atoll-cli", "atoll"),
        warden,
    }
}

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(t: &Tools, state: &Path) -> Self {
        let socket = state.join("warden.sock");
        let child = Command::new(&t.warden)
            .args(["daemon", "--state"])
            .arg(state)
            .arg("--socket")
            .arg(&socket)
            .arg("--bin-dir")
            .arg(&t.bin_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the warden did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, socket }
    }

    /// SIGTERM and wait, as a service manager would.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    fn cli(&self, t: &Tools, args: &[&str]) -> Output {
        Command::new(&t.warden)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, t: &Tools, args: &[&str]) -> String {
        let out = self.cli(t, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, t: &Tools, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(t, &all)).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A metadata block for `description`, signed by a fresh key.
fn metadata(t: &Tools, dir: &Path, description: &Path) -> PathBuf {
    let key = dir.join("vendor.pem");
    if !key.exists() {
        let s = Command::new(&t.atoll)
            .args(["metadata", "keygen", "-o"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(s.success());
    }
    std::fs::write(
        dir.join("meta.yaml"),
        "realm_id: \"com.example.warden-test\"\nversion: \"1.0.0\"\nsvn: 1\nhash_algo: sha-256\n",
    )
    .unwrap();
    let out = dir.join(format!(
        "{}.meta",
        description.file_stem().unwrap().to_string_lossy()
    ));
    let s = Command::new(&t.atoll)
        .args(["metadata", "create", "--config"])
        .arg(dir.join("meta.yaml"))
        .arg("--key")
        .arg(&key)
        .arg("--rim-from")
        .arg(description)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    out
}

fn examples() -> PathBuf {
    workspace().join("images/examples")
}

#[test]
fn realm_lifecycle_survives_a_daemon_restart() {
    let t = tools();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let desc = examples().join("hello-realm.toml");
    let meta = metadata(&t, dir.path(), &desc);
    let d = Daemon::start(&t, &state);

    let created = d.json(
        &t,
        &[
            "create-realm",
            "--name",
            "hello",
            "--description",
            desc.to_str().unwrap(),
            "--metadata",
            meta.to_str().unwrap(),
        ],
    );
    let id = created["id"].as_str().unwrap().to_string();
    let list = d.json(&t, &["list-realms"]);
    assert_eq!(list[0]["state"], "stopped");
    assert_eq!(list[0]["name"], "hello");

    d.ok(&t, &["start-realm", "hello"]);
    let info = d.json(&t, &["inspect-realm", "hello"]);
    assert_eq!(info["state"], "running");
    assert!(info["cpak_jwk"].is_object(), "{info}");
    std::fs::write(dir.path().join("cpak.jwk"), info["cpak_jwk"].to_string()).unwrap();

    // A token from the realm's agent, for our challenge, verifies against
    // the platform's CPAK.
    let token = dir.path().join("token.cbor");
    d.ok(
        &t,
        &[
            "fetch-attestation-token",
            "--realm",
            &id,
            "--challenge",
            &"5a".repeat(64),
            "--output",
            token.to_str().unwrap(),
        ],
    );
    let verify = Command::new(&t.atoll)
        .args(["token", "verify", "--json", "--cpak"])
        .arg(dir.path().join("cpak.jwk"))
        .arg(&token)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // The daemon stops (realms with it) and comes back: the realm, whose
    // desired state is running, is started again.
    d.stop();
    let state_file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("state.json")).unwrap()).unwrap();
    assert_eq!(state_file["realms"][&id]["running"], true);
    let d = Daemon::start(&t, &state);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = d.json(&t, &["inspect-realm", &id]);
        if info["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {info}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // A running realm is not destroyed without --force.
    let out = d.cli(&t, &["destroy-realm", "hello"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    d.ok(&t, &["stop-realm", "hello"]);
    assert_eq!(d.json(&t, &["list-realms"])[0]["state"], "stopped");
    d.ok(&t, &["destroy-realm", "hello"]);
    assert_eq!(d.json(&t, &["list-realms"]), serde_json::json!([]));
    assert!(!state.join("realms").join(&id).exists());
}

#[test]
fn bad_requests_change_nothing() {
    let t = tools();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // Metadata signed for another realm's RIM (the same realm with more
    // RAM).
    let other_desc = dir.path().join("bigger-realm.toml");
    let text = std::fs::read_to_string(examples().join("hello-realm.toml")).unwrap();
    std::fs::write(
        &other_desc,
        text.replace("size = \"2MiB\"", "size = \"4MiB\""),
    )
    .unwrap();
    std::fs::copy(
        examples().join("hello-realm.bin"),
        dir.path().join("hello-realm.bin"),
    )
    .unwrap();
    let other = metadata(&t, dir.path(), &other_desc);
    let d = Daemon::start(&t, &state);
    let out = d.cli(
        &t,
        &[
            "create-realm",
            "--description",
            examples().join("hello-realm.toml").to_str().unwrap(),
            "--metadata",
            other.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("would refuse to activate"), "{err}");
    assert_eq!(d.json(&t, &["list-realms"]), serde_json::json!([]));
    assert_eq!(std::fs::read_dir(state.join("realms")).unwrap().count(), 0);

    let out = d.cli(&t, &["start-realm", "nosuch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no realm"));

    // Applications need a realm and a sane name.
    let meta = metadata(&t, dir.path(), &examples().join("hello-realm.toml"));
    d.ok(
        &t,
        &[
            "create-realm",
            "--name",
            "r",
            "--description",
            examples().join("hello-realm.toml").to_str().unwrap(),
            "--metadata",
            meta.to_str().unwrap(),
        ],
    );
    let long_version = "v".repeat(129);
    for (name, registry, version) in [
        ("../evil", "127.0.0.1:5000", "1"),
        ("ok", "no-port", "1"),
        ("ok", "127.0.0.1:5000", long_version.as_str()),
    ] {
        let out = d.cli(
            &t,
            &[
                "create-application",
                "--realm",
                "r",
                "--name",
                name,
                "--version",
                version,
                "--registry",
                registry,
            ],
        );
        assert!(!out.status.success(), "{name} {registry}");
    }
    assert_eq!(
        d.json(&t, &["list-realms"])[0]["apps"],
        serde_json::json!([])
    );
}

#[test]
fn a_corrupt_state_file_is_refused_not_reset() {
    let t = tools();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), b"{ not json").unwrap();
    let out = Command::new(&t.warden)
        .args(["daemon", "--state"])
        .arg(dir.path())
        .arg("--bin-dir")
        .arg(&t.bin_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert_eq!(
        std::fs::read(dir.path().join("state.json")).unwrap(),
        b"{ not json"
    );
}
