//! Distribution-spec protocol tests against a server on 127.0.0.1:0.

mod common;

use common::{digest, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

async fn push_blob(c: &Client, base: &str, repo: &str, data: &[u8]) -> String {
    let d = digest(data);
    let r = c
        .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
        .body(data.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["docker-content-digest"], d.as_str());
    d
}

fn manifest(
    config: &[u8],
    layers: &[&[u8]],
    subject: Option<(&str, usize)>,
    artifact: Option<&str>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len() },
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(l), "size": l.len()
        })).collect::<Vec<_>>(),
    });
    if let Some((d, size)) = subject {
        m["subject"] = json!({ "mediaType": MANIFEST, "digest": d, "size": size });
    }
    if let Some(a) = artifact {
        m["artifactType"] = json!(a);
    }
    serde_json::to_vec(&m).unwrap()
}

async fn put_manifest(
    c: &Client,
    base: &str,
    repo: &str,
    reference: &str,
    m: &[u8],
) -> reqwest::Response {
    c.put(format!("{base}/v2/{repo}/manifests/{reference}"))
        .header("content-type", MANIFEST)
        .body(m.to_vec())
        .send()
        .await
        .unwrap()
}

async fn error_code(r: reqwest::Response) -> String {
    let v: Value = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn push_pull_and_restart() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    let c = common::http_client();
    let base = &s.base;

    let r = c.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    let config = b"{}".to_vec();
    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    push_blob(&c, base, "lib/app", &config).await;
    let ld = push_blob(&c, base, "lib/app", &layer).await;
    assert!(root.path().join("blobs/sha256").join(&ld[7..]).is_file());

    let r = c
        .head(format!("{base}/v2/lib/app/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "300000");
    let got = c
        .get(format!("{base}/v2/lib/app/blobs/{ld}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &layer[..]);
    let r = c
        .get(format!("{base}/v2/lib/app/blobs/{ld}"))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/300000");
    assert_eq!(&r.bytes().await.unwrap()[..], &layer[10..20]);
    // Unknown blob, and a blob from another repository.
    let r = c
        .get(format!("{base}/v2/lib/app/blobs/{}", digest(b"nope")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
    let r = c
        .get(format!("{base}/v2/other/blobs/{ld}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Manifest with a missing blob is refused; the real one is accepted.
    let bad = manifest(&config, &[b"missing"], None, None);
    let r = put_manifest(&c, base, "lib/app", "v1", &bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "MANIFEST_BLOB_UNKNOWN");
    let r = put_manifest(&c, base, "lib/app", "v1", b"not json").await;
    assert_eq!(error_code(r).await, "MANIFEST_INVALID");
    let m = manifest(&config, &[&layer], None, None);
    let md = digest(&m);
    let r = put_manifest(&c, base, "lib/app", "v1", &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["docker-content-digest"], md.as_str());
    // By digest: a wrong digest is refused.
    let r = put_manifest(&c, base, "lib/app", &digest(b"x"), &m).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = put_manifest(&c, base, "lib/app", &md, &m).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    for reference in ["v1", md.as_str()] {
        let r = c
            .get(format!("{base}/v2/lib/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], MANIFEST);
        assert_eq!(r.headers()["docker-content-digest"], md.as_str());
        assert_eq!(&r.bytes().await.unwrap()[..], &m[..]);
        let r = c
            .head(format!("{base}/v2/lib/app/manifests/{reference}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-length"], m.len().to_string().as_str());
    }
    let r = c
        .get(format!("{base}/v2/lib/app/manifests/v2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");

    // Restart on the same root: everything committed is still served.
    s.stop().await;
    let s = Server::start(root.path()).await;
    let base = &s.base;
    let c = common::http_client();
    let got = c
        .get(format!("{base}/v2/lib/app/manifests/v1"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &m[..]);
    let got = c
        .get(format!("{base}/v2/lib/app/blobs/{ld}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &layer[..]);
    s.stop().await;
}

#[tokio::test]
async fn chunked_upload_and_digest_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    let c = common::http_client();
    let base = &s.base;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let d = digest(&data);

    let r = c
        .post(format!("{base}/v2/repo/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut loc = r.headers()["location"].to_str().unwrap().to_string();
    let mut off = 0;
    for chunk in data[..90_000].chunks(30_000) {
        let r = c
            .patch(format!("{base}{loc}"))
            .header(
                "content-range",
                format!("{}-{}", off, off + chunk.len() - 1),
            )
            .header("content-type", "application/octet-stream")
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        off += chunk.len();
        assert_eq!(r.headers()["range"], format!("0-{}", off - 1).as_str());
        loc = r.headers()["location"].to_str().unwrap().to_string();
    }
    // Out-of-order chunk.
    let r = c
        .patch(format!("{base}{loc}"))
        .header("content-range", "5-9")
        .body(vec![0u8; 5])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let r = c.get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["range"], "0-89999");
    // The last chunk comes with the PUT.
    let r = c
        .put(format!("{base}{loc}?digest={d}"))
        .body(data[90_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let got = c
        .get(format!("{base}/v2/repo/blobs/{d}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&got[..], &data[..]);
    // The session is gone.
    let r = c.get(format!("{base}{loc}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");

    // Digest mismatch: monolithic and chunked. Nothing is stored.
    let before = files_in(&root.path().join("blobs/sha256"));
    let wrong = digest(b"something else");
    let r = c
        .post(format!("{base}/v2/repo/blobs/uploads/?digest={wrong}"))
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "DIGEST_INVALID");
    let r = c
        .post(format!("{base}/v2/repo/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    c.patch(format!("{base}{loc}"))
        .body(b"payload".to_vec())
        .send()
        .await
        .unwrap();
    let r = c
        .put(format!("{base}{loc}?digest={wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(files_in(&root.path().join("blobs/sha256")), before);
    for d in [wrong, digest(b"payload")] {
        let r = c
            .head(format!("{base}/v2/repo/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    // Cancelled session.
    let r = c
        .post(format!("{base}/v2/repo/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        c.delete(format!("{base}{loc}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(files_in(&root.path().join("blobs/sha256")), before);
    s.stop().await;
}

#[tokio::test]
async fn mount_tags_deletes() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    let c = common::http_client();
    let base = &s.base;
    let cfg = push_blob(&c, base, "a", b"{}").await;

    // Mount from a repository that lacks the blob: falls back to a session.
    let r = c
        .post(format!("{base}/v2/b/blobs/uploads/?mount={cfg}&from=c"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c
        .post(format!("{base}/v2/b/blobs/uploads/?mount={cfg}&from=a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()["location"],
        format!("/v2/b/blobs/{cfg}").as_str()
    );
    assert_eq!(
        c.head(format!("{base}/v2/b/blobs/{cfg}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Tags with pagination.
    let m = manifest(b"{}", &[], None, None);
    let md = digest(&m);
    for t in ["d", "a", "c", "b", "e"] {
        assert_eq!(
            put_manifest(&c, base, "b", t, &m).await.status(),
            StatusCode::CREATED
        );
    }
    let v: Value = c
        .get(format!("{base}/v2/b/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({ "name": "b", "tags": ["a", "b", "c", "d", "e"] }));
    let r = c
        .get(format!("{base}/v2/b/tags/list?n=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["link"],
        "</v2/b/tags/list?n=2&last=b>; rel=\"next\""
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["a", "b"]));
    let r = c
        .get(format!("{base}/v2/b/tags/list?n=2&last=d"))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["tags"], json!(["e"]));
    let v: Value = c
        .get(format!("{base}/v2/b/tags/list?n=0"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], json!([]));
    let r = c
        .get(format!("{base}/v2/nothere/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");

    // Deletes: a tag, then the manifest (its other tags go too), then a blob.
    assert_eq!(
        c.delete(format!("{base}/v2/b/manifests/e"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    let v: Value = c
        .get(format!("{base}/v2/b/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], json!(["a", "b", "c", "d"]));
    assert_eq!(
        c.delete(format!("{base}/v2/b/manifests/{md}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        c.get(format!("{base}/v2/b/manifests/{md}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(format!("{base}/v2/b/manifests/a"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let v: Value = c
        .get(format!("{base}/v2/b/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], json!([]));
    assert_eq!(
        c.delete(format!("{base}/v2/b/manifests/{md}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.delete(format!("{base}/v2/b/blobs/{cfg}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        c.head(format!("{base}/v2/b/blobs/{cfg}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.delete(format!("{base}/v2/b/blobs/{cfg}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Still in the repository it was mounted from.
    assert_eq!(
        c.head(format!("{base}/v2/a/blobs/{cfg}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test]
async fn referrers() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    let c = common::http_client();
    let base = &s.base;
    push_blob(&c, base, "r", b"{}").await;
    let m = manifest(b"{}", &[], None, None);
    let md = digest(&m);
    put_manifest(&c, base, "r", "v1", &m).await;
    let sig = manifest(
        b"{}",
        &[],
        Some((&md, m.len())),
        Some("application/vnd.example.sig"),
    );
    let sbom = manifest(
        b"{}",
        &[],
        Some((&md, m.len())),
        Some("application/vnd.example.sbom"),
    );
    for a in [&sig, &sbom] {
        let r = put_manifest(&c, base, "r", &digest(a), a).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["oci-subject"], md.as_str());
    }
    let r = c
        .get(format!("{base}/v2/r/referrers/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.oci.image.index.v1+json"
    );
    let v: Value = r.json().await.unwrap();
    let mut got: Vec<(String, String)> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["digest"].as_str().unwrap().into(),
                d["artifactType"].as_str().unwrap().into(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (digest(&sig), "application/vnd.example.sig".to_string()),
        (digest(&sbom), "application/vnd.example.sbom".to_string()),
    ];
    want.sort();
    assert_eq!(got, want);
    let r = c
        .get(format!(
            "{base}/v2/r/referrers/{md}?artifactType=application/vnd.example.sbom"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], digest(&sbom).as_str());
    // No referrers: an empty index, not 404.
    let v: Value = c
        .get(format!("{base}/v2/r/referrers/{}", digest(b"z")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"], json!([]));
    // Deleting a referrer removes it from the list.
    c.delete(format!("{base}/v2/r/manifests/{}", digest(&sig)))
        .send()
        .await
        .unwrap();
    let v: Value = c
        .get(format!("{base}/v2/r/referrers/{md}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn interrupted_upload_leaves_no_blob() {
    use tokio::io::AsyncWriteExt;
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    let data = vec![0x5au8; 1 << 20];
    let d = digest(&data);
    // Monolithic upload that promises 1 MiB and sends half, then the client dies.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", s.port))
        .await
        .unwrap();
    let head = format!(
        "POST /v2/x/blobs/uploads/?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        data.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&data[..data.len() / 2]).await.unwrap();
    tcp.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tcp);
    // The server notices, removes its temp file, stores nothing.
    let blobs = root.path().join("blobs/sha256");
    for _ in 0..50 {
        if files_in(&blobs).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(files_in(&blobs), Vec::<String>::new());
    let c = common::http_client();
    let r = c
        .head(format!("{}/v2/x/blobs/{d}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    s.stop().await;

    // A crash mid-upload (temp file left behind) is cleaned up on restart.
    std::fs::write(blobs.join(".upload-deadbeef"), &data[..1000]).unwrap();
    let s = Server::start(root.path()).await;
    assert_eq!(files_in(&blobs), Vec::<String>::new());
    s.stop().await;
}
