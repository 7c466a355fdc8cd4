//! End-to-end tests of `atoll metadata`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn atoll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atoll"))
        .args(args)
        .output()
        .expect("run atoll")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml")
}

const RIM: &str = "abababababababababababababababababababababababababababababababab";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let env = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let o = atoll(&["metadata", "keygen", "-o", env.s("vendor.pem")]);
        assert!(o.status.success(), "{}", stderr(&o));
        env.write(
            "realm.yaml",
            &format!(
                "realm_id: com.example.realm\nversion: \"1.2.3\"\nsvn: 7\nhash_algo: sha-256\nrim: {RIM}\n"
            ),
        );
        env
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> &'static str {
        Box::leak(self.p(name).to_str().unwrap().to_string().into_boxed_str())
    }

    fn write(&self, name: &str, text: &str) {
        fs::write(self.p(name), text).unwrap();
    }

    fn create(&self, config: &str, out: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "metadata",
            "create",
            "--config",
            self.s(config),
            "--key",
            self.s("vendor.pem"),
            "-o",
            self.s(out),
        ];
        args.extend_from_slice(extra);
        atoll(&args)
    }
}

#[test]
fn create_verify_dump() {
    let env = Env::new();
    let o = env.create("realm.yaml", "md.bin", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let block = fs::read(env.p("md.bin")).unwrap();
    assert_eq!(block.len(), 432);
    assert_eq!(&block[8..25], b"com.example.realm");

    let o = atoll(&["metadata", "verify", env.s("md.bin")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("OK"), "{out}");
    assert!(out.contains("embedded key only"), "{out}");

    let o = atoll(&[
        "metadata",
        "verify",
        env.s("md.bin"),
        "--vendor-key",
        env.s("vendor.pub.pem"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("signed by the given vendor key"));

    let o = atoll(&["metadata", "dump", "--json", env.s("md.bin")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["realm_id"], "com.example.realm");
    assert_eq!(v["svn"], 7);
    assert_eq!(v["version"]["minor"], 2);
    assert_eq!(v["hash_algo"], "sha-256");
    assert_eq!(v["rim"], RIM);
    assert_eq!(v["signature_valid"], true);
    assert_eq!(v["public_key"].as_str().unwrap().len(), 192);

    let o = atoll(&["metadata", "dump", env.s("md.bin")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("version:        1.2.3"), "{out}");
    assert!(out.contains("signature ok:   yes"), "{out}");
}

#[test]
fn tampered_and_foreign_blocks_fail_verification() {
    let env = Env::new();
    assert!(env.create("realm.yaml", "md.bin", &[]).status.success());
    let mut block = fs::read(env.p("md.bin")).unwrap();
    block[0xD0] ^= 1; // svn
    fs::write(env.p("bad.bin"), &block).unwrap();
    let o = atoll(&["metadata", "verify", env.s("bad.bin")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("signature does not verify"),
        "{}",
        stderr(&o)
    );
    let o = atoll(&["metadata", "verify", "--json", env.s("bad.bin")]);
    assert!(!o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false);
    // dump still shows it, flagged.
    let o = atoll(&["metadata", "dump", env.s("bad.bin")]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("signature ok:   NO"));

    // Signed by another vendor: fine on its own, refused against ours.
    let o = atoll(&["metadata", "keygen", "-o", env.s("other.pem")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = atoll(&[
        "metadata",
        "verify",
        env.s("md.bin"),
        "--vendor-key",
        env.s("other.pub.pem"),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("other than the trusted vendor key"),
        "{}",
        stderr(&o)
    );

    fs::write(env.p("short.bin"), &block[..431]).unwrap();
    let o = atoll(&["metadata", "dump", env.s("short.bin")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("431 bytes"), "{}", stderr(&o));
}

#[test]
fn rim_from_a_realm_description() {
    let env = Env::new();
    env.write(
        "measured.yaml",
        "realm_id: hello\nversion: {major: 2, minor: 0, patch: 1}\nsvn: 1\n",
    );
    let o = env.create(
        "measured.yaml",
        "md.bin",
        &["--rim-from", example().to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = atoll(&["measure", "--json", example().to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    let rim = v["realm"][0]["initial-measurement"]
        .as_str()
        .unwrap()
        .to_string();
    let d = atoll(&["metadata", "dump", "--json", env.s("md.bin")]);
    let d: serde_json::Value = serde_json::from_slice(&d.stdout).unwrap();
    assert_eq!(d["rim"], rim.as_str());
    assert_eq!(d["version"]["major"], 2);

    // A RIM in both places is ambiguous.
    let o = env.create(
        "realm.yaml",
        "md2.bin",
        &["--rim-from", example().to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("keep one"), "{}", stderr(&o));
    assert!(!env.p("md2.bin").exists());
}

#[test]
fn bad_inputs_give_clear_errors_and_no_output() {
    let env = Env::new();
    let cases = [
        ("realm_id: \"\"\nversion: \"1.0.0\"\nsvn: 0\nhash_algo: sha-256\nrim: {RIM}\n", "realm id is empty"),
        ("realm_id: \"r\u{e9}alm\"\nversion: \"1.0.0\"\nsvn: 0\nhash_algo: sha-256\nrim: {RIM}\n", "not printable ASCII"),
        ("realm_id: r\nversion: \"1.0\"\nsvn: 0\nhash_algo: sha-256\nrim: {RIM}\n", "version"),
        ("realm_id: r\nversion: \"1.0.0\"\nsvn: 0\nhash_algo: sha-512\nrim: {RIM}\n", "sha-512 needs 64"),
        ("realm_id: r\nversion: \"1.0.0\"\nsvn: 0\nhash_algo: md5\nrim: {RIM}\n", "unknown algorithm"),
        ("realm_id: r\nversion: \"1.0.0\"\nsvm: 0\nhash_algo: sha-256\nrim: {RIM}\n", "unknown field"),
        ("realm_id: r\nversion: \"1.0.0\"\nsvn: 0\n", "no RIM"),
    ];
    for (yaml, want) in cases {
        env.write("bad.yaml", &yaml.replace("{RIM}", RIM));
        let o = env.create("bad.yaml", "out.bin", &[]);
        assert!(!o.status.success(), "{yaml}");
        assert!(stderr(&o).contains(want), "{yaml}: {}", stderr(&o));
        assert!(!env.p("out.bin").exists());
    }
    env.write("notakey.pem", "hello");
    let o = atoll(&[
        "metadata",
        "create",
        "--config",
        env.s("realm.yaml"),
        "--key",
        env.s("notakey.pem"),
        "-o",
        env.s("out.bin"),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a PEM P-384 key"), "{}", stderr(&o));
    // A public key cannot sign.
    let o = atoll(&[
        "metadata",
        "create",
        "--config",
        env.s("realm.yaml"),
        "--key",
        env.s("vendor.pub.pem"),
        "-o",
        env.s("out.bin"),
    ]);
    assert!(!o.status.success());
    assert!(!env.p("out.bin").exists());
    // No leftover temporary files.
    let names: Vec<_> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn create_is_deterministic_and_overwrites_atomically() {
    let env = Env::new();
    assert!(env.create("realm.yaml", "md.bin", &[]).status.success());
    let first = fs::read(env.p("md.bin")).unwrap();
    assert!(env.create("realm.yaml", "md.bin", &[]).status.success());
    assert_eq!(first, fs::read(env.p("md.bin")).unwrap());
}

#[test]
fn keygen_protects_keys() {
    let env = Env::new();
    let o = atoll(&["metadata", "keygen", "-o", env.s("vendor.pem")]);
    assert!(!o.status.success(), "refuses to overwrite");
    assert!(stderr(&o).contains("--force"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(env.p("vendor.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = fs::read_to_string(env.p("vendor.pem")).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"));
    let o = atoll(&["metadata", "keygen", "-o", env.s("vendor.pem"), "--force"]);
    assert!(o.status.success());
    assert_ne!(
        text,
        fs::read_to_string(env.p("vendor.pem")).unwrap(),
        "a fresh key"
    );
}
