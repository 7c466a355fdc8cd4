//! Installing a 100 MiB application end to end (RA-TLS fetch with a fresh
//! token, signature and digest checks, safe unpack, sealing onto the
//! application's disk) against `skopeo copy` of the same image from the
//! same registry (TLS listener) into a local directory, measured
//! alternately in the same run. Target: at most 1.5x.
//!
//! `cargo bench -p atoll-app-manager --bench install` (also run by
//! `cargo xtask bench`). Under `cargo test` it only says it was skipped.
//! Needs `skopeo` (installed with apt when running as root).

#![allow(missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ipc_schema::agent::{AgentRequest, AgentResponse, AppSpec};

const SIZE: usize = 100 << 20;
const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ensure_skopeo() -> bool {
    if Command::new("skopeo").arg("--version").output().is_ok() {
        return true;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let ok = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "skopeo"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        return ok;
    }
    eprintln!("skopeo is missing: sudo apt-get install skopeo");
    false
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("install benchmark: skipped (run it with `cargo bench`)");
        return;
    }
    tracing_subscriber::fmt().with_target(false).init();
    if !ensure_skopeo() {
        std::process::exit(1);
    }
    // A release registry, so the server is not what is measured.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "atoll-registry"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bed = Bed::with_registry(None, &target.join("release/atoll-registry"));

    // 100 MiB that does not compress (xorshift), in one layer.
    let src = bed.p("big-src");
    std::fs::create_dir_all(src.join("app")).unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..SIZE / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    std::fs::write(src.join("app/blob.bin"), &data).unwrap();
    std::fs::copy(
        root.join("images/examples/counter-app/app/counter.sh"),
        src.join("app/counter.sh"),
    )
    .unwrap();
    let layout = bed.p("images/big");
    let spec = atoll_oci_image::ImageSpec {
        entrypoint: vec!["/app/counter.sh".into()],
        volumes: vec!["/data".into()],
        version: Some("1.0".into()),
        compression: 1,
        ..atoll_oci_image::ImageSpec::for_host()
    };
    let built = atoll_oci_image::build(&[&src], &spec, &layout, "1.0").unwrap();
    bed.sign_and_push(&built.manifest, &bed.acme, &layout);
    let certs = bed.p("skopeo-certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(bed.p("tls/ca.pem"), certs.join("ca.crt")).unwrap();

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..ROUNDS {
        let name = format!("big{round}");
        let app = AppSpec {
            image_limit: 512 << 20,
            ..bed.spec(&name, "1.0")
        };
        bed.provision(vec![app]);
        let t = Instant::now();
        let r = bed.call(AgentRequest::InstallApp { name });
        ours.push(t.elapsed());
        assert_eq!(r, AgentResponse::Done, "install");

        let dest = bed.p(&format!("skopeo-{round}"));
        let t = Instant::now();
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--src-cert-dir"])
            .arg(&certs)
            .arg(format!("docker://{}/{}:1.0", bed.registry.push, REPO))
            .arg(format!("dir:{}", dest.display()))
            .status()
            .unwrap();
        theirs.push(t.elapsed());
        assert!(status.success(), "skopeo copy");
        let _ = std::fs::remove_dir_all(&dest);
    }
    let (a, b) = (median(ours.clone()), median(theirs.clone()));
    println!(
        "install_100mib/app_manager_install  median {:.3} s  {ours:?}",
        a.as_secs_f64()
    );
    println!(
        "install_100mib/skopeo_copy_baseline median {:.3} s  {theirs:?}",
        b.as_secs_f64()
    );
    println!(
        "install_100mib ratio {:.2}x (target <= 1.5x): {}",
        a.as_secs_f64() / b.as_secs_f64(),
        if a.as_secs_f64() <= 1.5 * b.as_secs_f64() {
            "met"
        } else {
            "NOT met"
        }
    );
}
