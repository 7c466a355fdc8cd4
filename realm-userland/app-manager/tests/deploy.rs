//! End to end on the simulated platform, with real processes and files:
//! an `atoll-hes`, the simulated RMM with a realm built from a description
//! whose measured image is the trust bundle (and vendor-signed metadata),
//! an `atoll-registry` with a TLS listener for pushes and an RA-TLS
//! listener for realms, and the app-manager's `Manager` talking to the
//! realm over the vCPU socket.
//!
//! Each bad input must give a clear error, install nothing and leave what
//! was installed before (and its data) intact.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use atoll_app_manager::keys::AppKeys;
use atoll_app_manager::realm::Realm;
use atoll_app_manager::Manager;
use common::*;
use ipc_schema::agent::{AgentErrorKind, AgentRequest, AgentResponse, AppSpec, AppState};
use sha2::Digest;

fn error_kind(r: AgentResponse) -> (AgentErrorKind, String) {
    match r {
        AgentResponse::Error { kind, message } => (kind, message),
        other => panic!("expected an error, got {other:?}"),
    }
}

fn disk_files(spec: &AppSpec) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&spec.disk)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn deploy_run_restart_without_registry_and_update() {
    let mut bed = Bed::new(None);
    let spec = bed.spec("counter", "1.0");
    let v1 = bed.publish_counter("1.0", &bed.acme);
    bed.provision(vec![spec.clone()]);
    assert_eq!(bed.run_to_exit("counter"), 0);
    let status = bed.status("counter");
    let installed = status.installed.unwrap();
    assert_eq!(installed.manifest_digest, v1);
    assert_eq!(installed.vendor, "CN=acme");
    assert_eq!(bed.runs(&spec), 1);
    // The disk holds only sealed partitions, the vendor chain and a label:
    // no plaintext of the image or the data.
    assert_eq!(
        disk_files(&spec),
        ["data.sealed", "image.sealed", "label.json", "vendor.pem"]
    );
    let image = std::fs::read(Path::new(&spec.disk).join("image.sealed")).unwrap();
    assert!(!image.windows(16).any(|w| w == b"hello from insid"));

    // The REM shows what runs.
    let rem = {
        let backend = atoll_rsi_client::sim::SimBackend::connect(bed.p("vcpu.sock")).unwrap();
        atoll_rsi_client::RsiClient::new(backend)
            .measurement_read(1)
            .unwrap()
    };
    assert_ne!(rem, [0u8; 64]);

    // The registry goes down: the installed copy still starts, and the
    // data is still there.
    bed.registry.stop();
    assert_eq!(bed.run_to_exit("counter"), 0);
    assert_eq!(bed.runs(&spec), 2);

    // A new app-manager (a realm restart) finds what is installed.
    let manager2 = Manager::new(bed.realm.clone(), &bed.p("work2")).unwrap();
    manager2.handle(AgentRequest::Provision {
        apps: vec![spec.clone()],
    });
    assert!(matches!(
        manager2.handle(AgentRequest::Status),
        AgentResponse::Status { apps } if apps[0].state == AppState::Installed
    ));
    drop(manager2);

    // Update to 1.1 from the same vendor: the data is kept.
    let label_path = Path::new(&spec.disk).join("label.json");
    let label_v1 = std::fs::read(&label_path).unwrap();
    bed.registry = RegistryProcess::start(&bed.registry.config.clone());
    let v2 = bed.publish_counter("1.1", &bed.acme);
    let spec2 = AppSpec {
        version: "1.1".into(),
        ..spec.clone()
    };
    bed.provision(vec![spec2.clone()]);
    assert_eq!(
        bed.call(AgentRequest::InstallApp {
            name: "counter".into()
        }),
        AgentResponse::Done
    );
    assert_eq!(bed.status("counter").installed.unwrap().manifest_digest, v2);
    // A crash between sealing 1.1 and writing its label would leave 1.0's
    // label: the sealed image is what counts, and the label is repaired.
    std::fs::write(&label_path, &label_v1).unwrap();
    assert_eq!(bed.run_to_exit("counter"), 0);
    assert_eq!(bed.runs(&spec2), 3);
    assert_eq!(bed.status("counter").installed.unwrap().manifest_digest, v2);
    let label: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&label_path).unwrap()).unwrap();
    assert_eq!(label["manifest_digest"], v2.as_str());

    // An attestation token for the warden's challenge.
    let token = match bed.call(AgentRequest::AttestationToken {
        challenge: ipc_schema::wire::Bytes([9; 64]),
    }) {
        AgentResponse::Token { token } => token,
        other => panic!("{other:?}"),
    };
    let decoded = atoll_cca_token::decode(&token).unwrap();
    assert_eq!(decoded.realm.claims.challenge.as_slice(), &[9u8; 64][..]);
}

/// Installs 1.0, then checks that `bad` (an update attempt) fails with
/// `kind` and leaves 1.0 and its data in place.
fn update_must_fail(bed: &Bed, spec: &AppSpec, kind: AgentErrorKind, needle: &str) {
    let before = disk_files(spec);
    let label = std::fs::read(Path::new(&spec.disk).join("label.json")).unwrap();
    let bad = AppSpec {
        version: "bad".into(),
        ..spec.clone()
    };
    bed.provision(vec![bad]);
    let (k, msg) = error_kind(bed.call(AgentRequest::InstallApp {
        name: spec.name.clone(),
    }));
    assert_eq!(k, kind, "{msg}");
    assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}");
    assert_eq!(disk_files(spec), before);
    assert_eq!(
        std::fs::read(Path::new(&spec.disk).join("label.json")).unwrap(),
        label
    );
    // The installed copy still runs with its data.
    bed.provision(vec![spec.clone()]);
    let runs = bed.runs(spec);
    assert_eq!(bed.run_to_exit(&spec.name), 0);
    assert_eq!(bed.runs(spec), runs + 1);
}

fn installed_bed() -> (Bed, AppSpec) {
    let bed = Bed::new(None);
    let spec = bed.spec("counter", "1.0");
    bed.publish_counter("1.0", &bed.acme);
    bed.provision(vec![spec.clone()]);
    assert_eq!(bed.run_to_exit("counter"), 0);
    (bed, spec)
}

/// Builds a one-layer image from raw tar bytes as version `bad`.
fn raw_image(bed: &Bed, tar: &[u8], gzip: bool) -> (PathBuf, Vec<u8>) {
    let layout = bed.p(&format!("images/raw-{}", rand_suffix()));
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| -> String {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let diff_id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(tar)));
    let (blob, media) = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).unwrap();
        (
            gz.finish().unwrap(),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
    } else {
        (tar.to_vec(), "application/vnd.oci.image.layer.v1.tar")
    };
    let layer = put(&blob);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["/app/counter.sh"], "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    .to_string();
    let config_digest = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": media, "digest": layer, "size": blob.len()}],
    })
    .to_string();
    let manifest_digest = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
            "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "bad"}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    (layout, manifest.into_bytes())
}

/// A tar entry with a raw name (tools refuse to write these).
fn tar_entry(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: &str,
) {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

fn publish_raw(bed: &Bed, entries: &[(&str, tar::EntryType, &[u8], &str)]) {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, data, link) in entries {
        tar_entry(&mut tar, name, *kind, data, link);
    }
    let (layout, manifest) = raw_image(bed, &tar.into_inner().unwrap(), true);
    bed.sign_and_push(&manifest, &bed.acme, &layout);
}

#[test]
fn unsafe_layers_install_nothing() {
    let (bed, spec) = installed_bed();
    use tar::EntryType::{Regular, Symlink};
    publish_raw(&bed, &[("app/../../escape", Regular, b"x", "")]);
    update_must_fail(&bed, &spec, AgentErrorKind::Install, "`..`");
    publish_raw(&bed, &[("/etc/passwd", Regular, b"x", "")]);
    update_must_fail(&bed, &spec, AgentErrorKind::Install, "absolute");
    publish_raw(
        &bed,
        &[
            ("up", Symlink, b"", "../../../.."),
            ("up/tmp/x", Regular, b"x", ""),
        ],
    );
    update_must_fail(&bed, &spec, AgentErrorKind::Install, "outside the root");
}

#[test]
fn decompression_bomb_installs_nothing() {
    let (bed, spec) = installed_bed();
    // 128 MiB of zeros, a few hundred KiB compressed; the image partition
    // is 64 MiB.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("bomb").unwrap();
    h.set_size(128 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, std::io::Read::take(std::io::repeat(0), 128 << 20))
        .unwrap();
    let (layout, manifest) = raw_image(&bed, &tar.into_inner().unwrap(), true);
    assert!(std::fs::metadata(&layout).is_ok());
    bed.sign_and_push(&manifest, &bed.acme, &layout);
    update_must_fail(&bed, &spec, AgentErrorKind::Install, "more than");
}

#[test]
fn bad_signatures_install_nothing() {
    let (bed, spec) = installed_bed();
    // Unknown CA: a vendor certified by a CA the realm does not trust.
    let rogue = make_vendor(&bed.atoll, bed.dir.path(), "Rogue CA", "rogue");
    let layout = bed.p("images/rogue");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/counter-app");
    let spec_img = atoll_oci_image::ImageSpec {
        entrypoint: vec!["/app/counter.sh".into()],
        volumes: vec!["/data".into()],
        ..atoll_oci_image::ImageSpec::for_host()
    };
    let built = atoll_oci_image::build(&[&src], &spec_img, &layout, "bad").unwrap();
    bed.sign_and_push(&built.manifest, &rogue, &layout);
    update_must_fail(&bed, &spec, AgentErrorKind::Verify, "no valid signature");

    // Wrong signature: the vendor's signature artifact, bytes of its
    // signature flipped.
    let layout = bed.p("images/wrongsig");
    let spec_img = atoll_oci_image::ImageSpec {
        env: vec!["X=1".into()],
        ..spec_img
    };
    let built = atoll_oci_image::build(&[&src], &spec_img, &layout, "bad").unwrap();
    let key = atoll_signing::keys::signing_key_from_pem(
        &std::fs::read_to_string(bed.acme.dir.join("vendor.pem")).unwrap(),
    )
    .unwrap();
    let chain = x509_cert::Certificate::load_pem_chain(
        &std::fs::read(bed.acme.dir.join("vendor-chain.pem")).unwrap(),
    )
    .unwrap();
    let mut artifact =
        atoll_signing::SignatureArtifact::sign(&built.manifest, &key, &chain, BTreeMap::new())
            .unwrap();
    let mut env: serde_json::Value = serde_json::from_slice(&artifact.envelope.data).unwrap();
    let sig = env["signatures"][0]["sig"].as_str().unwrap().to_string();
    let mut sig_bytes = base64_decode(&sig);
    let n = sig_bytes.len();
    sig_bytes[n - 3] ^= 0x55;
    env["signatures"][0]["sig"] = base64_encode(&sig_bytes).into();
    // Re-wrap the tampered envelope with consistent digests, as an
    // attacker with registry access could.
    artifact = rewrap(&artifact, serde_json::to_vec(&env).unwrap());
    let sigdir = layout.with_extension("sig");
    atoll_signing::layout::write(&sigdir, &artifact).unwrap();
    bed.push(&layout);
    bed.push(&sigdir);
    update_must_fail(&bed, &spec, AgentErrorKind::Verify, "no valid signature");

    // No signature at all.
    let layout = bed.p("images/unsigned");
    let spec_img = atoll_oci_image::ImageSpec {
        env: vec!["X=2".into()],
        ..spec_img
    };
    atoll_oci_image::build(&[&src], &spec_img, &layout, "bad").unwrap();
    bed.push(&layout);
    update_must_fail(&bed, &spec, AgentErrorKind::Verify, "no signature");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The artifact with another envelope (manifest rebuilt around it).
fn rewrap(
    a: &atoll_signing::SignatureArtifact,
    envelope: Vec<u8>,
) -> atoll_signing::SignatureArtifact {
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&envelope)));
    let mut manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    manifest["layers"][0]["digest"] = digest.clone().into();
    manifest["layers"][0]["size"] = envelope.len().into();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let blobs = [
        (
            a.config.descriptor.digest().to_string(),
            a.config.data.clone(),
        ),
        (digest, envelope),
    ];
    atoll_signing::SignatureArtifact::parse(&bytes, |d| {
        blobs
            .iter()
            .find(|(k, _)| *k == d.digest().to_string())
            .map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[test]
fn tampered_registry_content_installs_nothing() {
    let (bed, spec) = installed_bed();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/counter-app");
    // A tampered layer: the registry's stored blob changed after the push.
    let layout = bed.p("images/tampered-layer");
    let img = atoll_oci_image::ImageSpec {
        entrypoint: vec!["/app/counter.sh".into()],
        volumes: vec!["/data".into()],
        env: vec!["T=1".into()],
        ..atoll_oci_image::ImageSpec::for_host()
    };
    let built = atoll_oci_image::build(&[&src], &img, &layout, "bad").unwrap();
    bed.sign_and_push(&built.manifest, &bed.acme, &layout);
    let blob = bed.p("registry/blobs/sha256").join(&built.layers[0].0[7..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    update_must_fail(&bed, &spec, AgentErrorKind::Verify, "hashes to");

    // A manifest whose bytes no longer match its digest.
    let layout = bed.p("images/tampered-manifest");
    let img = atoll_oci_image::ImageSpec {
        env: vec!["T=2".into()],
        ..img
    };
    let built = atoll_oci_image::build(&[&src], &img, &layout, "bad").unwrap();
    bed.sign_and_push(&built.manifest, &bed.acme, &layout);
    let stored = bed
        .p("registry/blobs/sha256")
        .join(&built.manifest_digest[7..]);
    let text = String::from_utf8(std::fs::read(&stored).unwrap()).unwrap();
    std::fs::write(&stored, text.replacen("\"size\"", "\"size\" ", 1)).unwrap();
    let (k, msg) = {
        let bad = AppSpec {
            version: "bad".into(),
            ..spec.clone()
        };
        bed.provision(vec![bad]);
        error_kind(bed.call(AgentRequest::InstallApp {
            name: "counter".into(),
        }))
    };
    assert!(
        matches!(k, AgentErrorKind::Fetch | AgentErrorKind::Verify),
        "{k:?}: {msg}"
    );
    assert!(msg.contains("hashes to"), "{msg}");
    bed.provision(vec![spec.clone()]);
    assert_eq!(bed.run_to_exit("counter"), 0);
}

#[test]
fn registry_refuses_a_realm_not_in_its_reference_values() {
    let bed = Bed::new(Some(&"ab".repeat(32)));
    let spec = bed.spec("counter", "1.0");
    bed.publish_counter("1.0", &bed.acme);
    bed.provision(vec![spec.clone()]);
    let (k, msg) = error_kind(bed.call(AgentRequest::InstallApp {
        name: "counter".into(),
    }));
    assert_eq!(k, AgentErrorKind::Fetch, "{msg}");
    assert!(disk_files(&spec).is_empty());
}

#[test]
fn another_vendor_cannot_install_or_open_the_data() {
    let (bed, spec) = installed_bed();
    // A second vendor under the same trusted CA.
    let globex = bed.p("globex");
    run(Command::new(&bed.atoll)
        .args(["sign", "vendor", "--name", "globex", "--ca"])
        .arg(&bed.acme.ca)
        .arg("-o")
        .arg(&globex));
    let globex = Vendor {
        ca: bed.acme.ca.clone(),
        dir: globex,
    };
    // Its application, into the same realm: refused (one vendor per realm).
    let other = AppSpec {
        repository: REPO.into(),
        ..bed.spec("other", "g1")
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/counter-app");
    let layout = bed.p("images/globex");
    let img = atoll_oci_image::ImageSpec {
        entrypoint: vec!["/app/counter.sh".into()],
        volumes: vec!["/data".into()],
        ..atoll_oci_image::ImageSpec::for_host()
    };
    let built = atoll_oci_image::build(&[&src], &img, &layout, "g1").unwrap();
    bed.sign_and_push(&built.manifest, &globex, &layout);
    bed.provision(vec![spec.clone(), other.clone()]);
    let (k, msg) = error_kind(bed.call(AgentRequest::InstallApp {
        name: "other".into(),
    }));
    assert_eq!(k, AgentErrorKind::Verify, "{msg}");
    assert!(msg.contains("applications of vendor CN=acme"), "{msg}");
    assert!(disk_files(&other).is_empty());
    // Nor when the host leaves acme's application out of the list (so no
    // disk shows acme): the realm remembers whom it serves.
    bed.provision(vec![other.clone()]);
    let (k, msg) = error_kind(bed.call(AgentRequest::InstallApp {
        name: "other".into(),
    }));
    assert_eq!(k, AgentErrorKind::Verify, "{msg}");
    assert!(
        msg.contains("this realm runs applications of vendor CN=acme"),
        "{msg}"
    );
    assert!(disk_files(&other).is_empty());
    // Nor can globex's update replace acme's application...
    let same_name = AppSpec {
        version: "g1".into(),
        ..spec.clone()
    };
    bed.provision(vec![same_name]);
    let (k, msg) = error_kind(bed.call(AgentRequest::InstallApp {
        name: "counter".into(),
    }));
    assert_eq!(k, AgentErrorKind::Verify, "{msg}");
    // ...and its keys do not open acme's data.
    let bundle = bed.realm.trust_bundle().unwrap();
    let chain = x509_cert::Certificate::load_pem_chain(
        &std::fs::read(globex.dir.join("vendor-chain.pem")).unwrap(),
    )
    .unwrap();
    let vendor =
        atoll_app_manager::install::vendor_identity(&chain, &bundle.vendor_roots[0]).unwrap();
    let keys = AppKeys::derive(bed.realm.as_ref(), &vendor, "counter").unwrap();
    let err = keys
        .unseal_data(
            &Path::new(&spec.disk).join("data.sealed"),
            &bed.p("peek-globex"),
            1 << 30,
        )
        .unwrap_err();
    assert!(err.to_string().contains("another key"), "{err}");
    bed.provision(vec![spec.clone()]);
    assert_eq!(bed.run_to_exit("counter"), 0);
    assert_eq!(bed.runs(&spec), 2);
}
