//! Interoperability with the real `skopeo`: push an OCI layout to the
//! registry and copy it back, comparing digests.

mod common;

use common::{digest, Server};
use flate2::{write::GzEncoder, Compression};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn have_skopeo() -> bool {
    Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn ensure_skopeo() {
    if have_skopeo() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if root {
        let ok = Command::new("apt-get")
            .args(["install", "-y", "skopeo"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success());
        if ok && have_skopeo() {
            return;
        }
    }
    panic!("skopeo is required for this test: install it with `apt-get install -y skopeo`");
}

fn write_blob(dir: &Path, data: &[u8]) -> String {
    let d = digest(data);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), data).unwrap();
    d
}

/// Writes a one-layer OCI image layout and returns the manifest digest.
fn make_layout(dir: &Path, tag: &str) -> String {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();

    let mut tar = tar::Builder::new(Vec::new());
    let content = b"hello from an atoll realm\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    tar.append_data(&mut h, "hello.txt", &content[..]).unwrap();
    let layer_tar = tar.into_inner().unwrap();
    let diff_id = digest(&layer_tar);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    std::io::Write::write_all(&mut gz, &layer_tar).unwrap();
    let layer = gz.finish().unwrap();
    let layer_d = write_blob(dir, &layer);

    let config = serde_json::to_vec(&json!({
        "architecture": "arm64",
        "os": "linux",
        "config": { "Cmd": ["/hello"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    }))
    .unwrap();
    let config_d = write_blob(dir, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d, "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_d, "size": layer.len() }],
    }))
    .unwrap();
    let manifest_d = write_blob(dir, &manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_d,
            "size": manifest.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    manifest_d
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_and_pull() {
    ensure_skopeo();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let policy = tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let manifest_d = make_layout(&src, "v1");
    let s = Server::start(&tmp.path().join("registry")).await;
    let port = s.port;
    let (src_s, dst_s, policy_s) = (
        src.to_str().unwrap().to_string(),
        dst.to_str().unwrap().to_string(),
        policy.to_str().unwrap().to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let remote = format!("docker://127.0.0.1:{port}/atoll/hello:v1");
        skopeo(&[
            "--policy",
            &policy_s,
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{src_s}:v1"),
            &remote,
        ]);
        skopeo(&[
            "--policy",
            &policy_s,
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &remote,
            &format!("oci:{dst_s}:v1"),
        ]);
    })
    .await
    .unwrap();

    // The registry serves the manifest under the same digest.
    let r = common::http_client()
        .get(format!("{}/v2/atoll/hello/manifests/v1", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["docker-content-digest"], manifest_d.as_str());

    // The copy back has the same manifest digest and the same blobs.
    let index: Value =
        serde_json::from_slice(&std::fs::read(dst.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], manifest_d.as_str());
    let mut a: Vec<_> = std::fs::read_dir(src.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut b: Vec<_> = std::fs::read_dir(dst.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    for name in &a {
        let x = std::fs::read(src.join("blobs/sha256").join(name)).unwrap();
        let y = std::fs::read(dst.join("blobs/sha256").join(name)).unwrap();
        assert_eq!(x, y);
    }
    s.stop().await;
}
