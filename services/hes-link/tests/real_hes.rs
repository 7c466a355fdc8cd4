//! The client against the real `atoll-hes` process over its Unix socket:
//! the boot flow of the root monitor and RMM, ending in a whole CCA token
//! (HES platform token + realm token signed with the HES's RAK) that
//! `atoll-cca-token`'s verifier accepts.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atoll_cca_token::{decode, encode_collection, HashAlgo, PlatformKey, RealmClaims};
use atoll_hes_link::{HesLink, LinkError};
use ipc_schema::hes::{BoundedStr, EccCurve, HesError, HesHashAlgo, MeasurementRecord, VhukId};
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};

/// Builds `atoll-hes` into this test's target directory and returns its
/// path (the binary belongs to another package, so cargo does not hand it
/// to this test on its own).
fn hes_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // .../<target>/<profile>/deps/real_hes-xxxx
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", "atoll-hes", "--bin", "atoll-hes"])
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().unwrap().success(), "building atoll-hes failed");
    profile_dir.join("atoll-hes")
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> (Running, PathBuf) {
    let socket = dir.join("hes.sock");
    let child = Command::new(hes_binary())
        .arg("--provision")
        .arg(dir.join("provision.bin"))
        .arg("--socket")
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(&socket).is_err() {
        assert!(running.0.try_wait().unwrap().is_none(), "atoll-hes exited");
        assert!(Instant::now() < deadline, "atoll-hes did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (running, socket)
}

fn record(kind: &str, image: &[u8], signer: u8, version: &str) -> MeasurementRecord {
    MeasurementRecord {
        algo: HesHashAlgo::Sha256,
        measurement: BoundedBytes::new(&Sha256::digest(image)).unwrap(),
        signer_id: BoundedBytes::new(&[signer; 32]).unwrap(),
        version: BoundedStr::new(version).unwrap(),
        component_type: BoundedStr::new(kind).unwrap(),
    }
}

#[test]
fn boot_flow_ends_in_a_verifiable_cca_token() {
    let dir = tempfile::tempdir().unwrap();
    let (_hes, socket) = start(dir.path());
    let mut link = HesLink::connect_unix(&socket).unwrap();

    // The root monitor measures the boot chain, then closes it.
    let chain = [
        ("BL2", &b"bl2 image"[..], 0x51, "1.0.0"),
        ("BL31", &b"bl31 image"[..], 0x51, "2.12.0"),
        ("RMM", &b"rmm image"[..], 0x52, "0.6.0"),
    ];
    for (slot, (kind, image, signer, version)) in chain.iter().enumerate() {
        link.extend(slot as u8, record(kind, image, *signer, version), slot == 2)
            .unwrap();
    }
    link.boot_complete().unwrap();
    assert!(matches!(
        link.extend(3, record("LATE", b"x", 1, "1"), false),
        Err(LinkError::Hes(HesError::SlotLocked))
    ));

    // The RMM gets its RAK, and a platform token bound to it.
    let rak_bytes = link.realm_key(EccCurve::P384, HesHashAlgo::Sha256).unwrap();
    let rak = p384::ecdsa::SigningKey::from_slice(&rak_bytes[..]).unwrap();
    let claims = RealmClaims::new(
        [7; 64],
        [0; 64],
        &p384::PublicKey::from(rak.verifying_key()),
        HashAlgo::Sha256,
        vec![0x11; 32],
        [vec![0; 32], vec![0; 32], vec![0; 32], vec![0; 32]],
    )
    .unwrap();
    let platform = link.platform_token(&claims.binding_challenge()).unwrap();
    let realm = claims.sign_with(&rak).unwrap();
    let token = encode_collection(&platform, &realm).unwrap();

    // A relying party with the CPAK as trust anchor accepts it.
    let cpak_point = link.cpak_public_key().unwrap();
    let cpak = p384::ecdsa::VerifyingKey::from_sec1_bytes(&cpak_point).unwrap();
    let decoded = decode(&token).unwrap();
    decoded.verify(&PlatformKey::P384(cpak)).unwrap();

    let p = &decoded.platform.claims;
    assert_eq!(p.profile, "tag:arm.com,2023:cca_platform#1.0.0");
    let mut iid = [0u8; 33];
    iid[0] = 1;
    iid[1..].copy_from_slice(&Sha256::digest(cpak_point));
    assert_eq!(p.instance_id, iid);
    assert_eq!(p.hash_algo, "sha-256");
    assert_eq!(p.lifecycle, 0x3000);
    let got: Vec<(String, Vec<u8>, String, Vec<u8>)> = p
        .sw_components
        .iter()
        .map(|c| {
            assert_eq!(c.algorithm.as_deref(), Some("sha-256"));
            (
                c.component_type.clone().unwrap(),
                c.measurement.clone(),
                c.version.clone().unwrap(),
                c.signer_id.clone(),
            )
        })
        .collect();
    let want: Vec<(String, Vec<u8>, String, Vec<u8>)> = chain
        .iter()
        .map(|(k, image, s, v)| {
            (
                k.to_string(),
                Sha256::digest(image).to_vec(),
                v.to_string(),
                vec![*s; 32],
            )
        })
        .collect();
    assert_eq!(got, want);

    // Another key does not verify it.
    let stranger = p384::ecdsa::SigningKey::from_slice(&[3; 48]).unwrap();
    assert!(decoded
        .verify(&PlatformKey::P384(*stranger.verifying_key()))
        .is_err());

    // The VHUKs are stable for the life of the process and distinct.
    let a = link.vhuk(VhukId::A).unwrap();
    let m = link.vhuk(VhukId::M).unwrap();
    assert_ne!(*a, *m);
    let mut again = HesLink::connect_unix(&socket).unwrap();
    assert_eq!(*again.vhuk(VhukId::A).unwrap(), *a);
}

#[test]
fn a_dead_hes_is_a_transport_error() {
    let dir = tempfile::tempdir().unwrap();
    let (hes, socket) = start(dir.path());
    let mut link = HesLink::connect_unix(&socket).unwrap();
    link.read_slot(0).unwrap_err();
    drop(hes);
    assert!(matches!(link.vhuk(VhukId::A), Err(LinkError::Transport(_))));
    assert!(matches!(
        link.vhuk(VhukId::A),
        Err(LinkError::Desynchronized)
    ));
}
