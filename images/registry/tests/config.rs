//! Configuration checking: every mistake is refused at startup with a
//! message naming the file, listener or realm entry; a good file with
//! relative paths loads.

mod common;

use std::path::Path;
use std::process::Command;

use atoll_registry::config::{Config, Mode};
use common::pki::{write_reference_values, write_trust_anchors, Ca};

/// A directory with valid TLS material and RA-TLS policy files.
fn material() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test CA");
    ca.write_server(dir.path(), "registry");
    std::fs::write(dir.path().join("pushers.pem"), Ca::new("pushers").pem()).unwrap();
    write_trust_anchors(&dir.path().join("cpak.json"));
    write_reference_values(&dir.path().join("realm.json"), [0x33; 32]);
    std::fs::write(dir.path().join("garbage.pem"), "not PEM at all\n").unwrap();
    dir
}

const GOOD: &str = r#"
storage = "store"
trust_anchors = "cpak.json"

[[listener]]
address = "127.0.0.1:0"
mode = "tls"
access = "read-write"
cert = "registry.pem"
key = "registry-key.pem"
client_ca = "pushers.pem"

[[listener]]
address = "127.0.0.1:0"
mode = "ra-tls"
cert = "registry.pem"
key = "registry-key.pem"

[[listener]]
address = "127.0.0.1:0"
mode = "http"
access = "read-only"

[[realm]]
name = "demo"
reference_values = "realm.json"
repositories = ["acme/*", "exact/name"]
"#;

fn load(dir: &Path, toml: &str) -> Result<Config, String> {
    let path = dir.join("registry.toml");
    std::fs::write(&path, toml).unwrap();
    Config::load(&path).map_err(|e| e.to_string())
}

#[test]
fn good_config_loads_with_paths_relative_to_the_file() {
    let dir = material();
    let c = load(dir.path(), GOOD).unwrap();
    assert_eq!(c.storage, dir.path().join("store"));
    let modes: Vec<(Mode, bool)> = c.listeners.iter().map(|l| (l.mode, l.write)).collect();
    assert_eq!(
        modes,
        [(Mode::Tls, true), (Mode::RaTls, false), (Mode::Http, false)]
    );
    assert_eq!(c.listeners[0].cert_chain.len(), 2);
    assert_eq!(c.listeners[0].client_ca.len(), 1);
    assert_eq!(c.realms.len(), 1);
    assert_eq!(c.realms[0].reference_values.realm[0].rim, vec![0x33; 32]);
    assert_eq!(c.trust_anchors.as_ref().unwrap().0.len(), 1);
}

#[test]
fn mistakes_are_refused_with_a_clear_message() {
    let dir = material();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown key",
            GOOD.replace("mode = \"http\"", "mode = \"http\"\nport = 5000"),
            "unknown field `port`",
        ),
        (
            "unknown mode",
            GOOD.replace("mode = \"http\"", "mode = \"https\""),
            "unknown variant `https`",
        ),
        (
            "missing certificate file",
            GOOD.replacen("cert = \"registry.pem\"", "cert = \"missing.pem\"", 1),
            "missing.pem",
        ),
        (
            "bad PEM certificate",
            GOOD.replacen("cert = \"registry.pem\"", "cert = \"garbage.pem\"", 1),
            "garbage.pem: no PEM section",
        ),
        (
            "key that is not a key",
            GOOD.replacen("key = \"registry-key.pem\"", "key = \"registry.pem\"", 1),
            "no usable private key",
        ),
        (
            "missing client CA",
            GOOD.replace("client_ca = \"pushers.pem\"", "client_ca = \"nope.pem\""),
            "client CA",
        ),
        (
            "read-write ra-tls",
            GOOD.replace(
                "mode = \"ra-tls\"",
                "mode = \"ra-tls\"\naccess = \"read-write\"",
            ),
            "ra-tls listeners are read-only",
        ),
        (
            "tls without a key",
            GOOD.replacen("key = \"registry-key.pem\"\n", "", 1),
            "cert and key are required",
        ),
        (
            "ra-tls without trust anchors",
            GOOD.replace("trust_anchors = \"cpak.json\"\n", ""),
            "needs trust_anchors",
        ),
        (
            "ra-tls without realms",
            GOOD[..GOOD.find("[[realm]]").unwrap()].to_string(),
            "at least one [[realm]]",
        ),
        (
            "missing reference values",
            GOOD.replace("\"realm.json\"", "\"absent.json\""),
            "realm demo: reference values",
        ),
        (
            "reference values that are not JSON",
            GOOD.replace("\"realm.json\"", "\"garbage.pem\""),
            "realm demo: reference values",
        ),
        (
            "unsupported glob",
            GOOD.replace("\"exact/name\"", "\"acme*\""),
            "repository pattern \"acme*\"",
        ),
        (
            "no repositories",
            GOOD.replace("[\"acme/*\", \"exact/name\"]", "[]"),
            "no repositories",
        ),
        (
            "no listener",
            "storage = \"store\"\n".to_string(),
            "no [[listener]]",
        ),
        (
            "http with a certificate",
            GOOD.replace(
                "mode = \"http\"",
                "mode = \"http\"\ncert = \"registry.pem\"",
            ),
            "http takes no cert",
        ),
    ];
    for (name, toml, want) in cases {
        match load(dir.path(), &toml) {
            Ok(_) => panic!("{name}: accepted"),
            Err(e) => assert!(e.contains(want), "{name}: {e:?} does not say {want:?}"),
        }
    }
}

#[test]
fn binary_refuses_a_bad_config_and_checks_a_good_one() {
    let dir = material();
    let path = dir.path().join("registry.toml");
    let bin = env!("CARGO_BIN_EXE_atoll-registry");
    std::fs::write(&path, GOOD.replace("\"realm.json\"", "\"absent.json\"")).unwrap();
    let out = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("realm demo: reference values") && err.contains("absent.json"),
        "{err}"
    );
    std::fs::write(&path, GOOD).unwrap();
    let out = Command::new(bin)
        .arg("--config")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
}
