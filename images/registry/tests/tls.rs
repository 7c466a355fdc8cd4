//! TLS listeners: push and pull over rustls with a test CA; mutual TLS
//! refuses clients without a certificate from the configured client CA; a
//! read-only listener refuses pushes.

mod common;

use atoll_ra_tls::rustls;
use common::pki::Ca;
use common::{addr, digest, start_config};
use serde_json::json;

/// A reqwest client over rustls trusting `ca`, optionally with a client
/// certificate (chain PEM, key PEM).
fn client(ca: &Ca, identity: Option<(String, String)>) -> reqwest::Client {
    let builder = rustls::ClientConfig::builder_with_provider(atoll_ra_tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(ca.roots());
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            use rustls::pki_types::pem::PemObject;
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("chain");
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
            builder.with_client_auth_cert(chain, key).expect("identity")
        }
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .build()
        .expect("client")
}

async fn push_blob(c: &reqwest::Client, base: &str, repo: &str, data: &[u8]) -> reqwest::Response {
    c.post(format!(
        "{base}/v2/{repo}/blobs/uploads/?digest={}",
        digest(data)
    ))
    .header("content-type", "application/octet-stream")
    .body(data.to_vec())
    .send()
    .await
    .expect("push")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_push_and_pull() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test registry CA");
    ca.write_server(dir.path(), "registry");
    let running = start_config(
        dir.path(),
        r#"
storage = "store"
[[listener]]
address = "127.0.0.1:0"
mode = "tls"
cert = "registry.pem"
key = "registry-key.pem"
"#,
    )
    .await;
    let base = format!("https://localhost:{}", addr(&running, 0).port());
    let c = client(&ca, None);
    let v2 = c.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(v2.status(), 200);

    let layer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let config = br#"{"architecture":"arm64","os":"linux"}"#.to_vec();
    assert_eq!(push_blob(&c, &base, "acme/app", &layer).await.status(), 201);
    assert_eq!(
        push_blob(&c, &base, "acme/app", &config).await.status(),
        201
    );
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let put = c
        .put(format!("{base}/v2/acme/app/manifests/1.0"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);

    let got = c
        .get(format!("{base}/v2/acme/app/manifests/1.0"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), manifest);
    let blob = c
        .get(format!("{base}/v2/acme/app/blobs/{}", digest(&layer)))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 200);
    assert_eq!(
        blob.headers()["docker-content-digest"].to_str().unwrap(),
        digest(&layer)
    );
    assert_eq!(blob.bytes().await.unwrap().to_vec(), layer);

    // The same port does not speak plain HTTP.
    let plain = common::http_client()
        .get(format!("http://127.0.0.1:{}/v2/", addr(&running, 0).port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    // A client that does not trust the registry's CA is refused.
    let stranger = client(&Ca::new("another CA"), None);
    assert!(stranger.get(format!("{base}/v2/")).send().await.is_err());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_client_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test registry CA");
    ca.write_server(dir.path(), "registry");
    let pushers = Ca::new("pushers CA");
    std::fs::write(dir.path().join("pushers.pem"), pushers.pem()).unwrap();
    let running = start_config(
        dir.path(),
        r#"
storage = "store"
[[listener]]
address = "127.0.0.1:0"
mode = "tls"
access = "read-write"
cert = "registry.pem"
key = "registry-key.pem"
client_ca = "pushers.pem"
"#,
    )
    .await;
    let base = format!("https://localhost:{}", addr(&running, 0).port());
    let data = b"vendor layer".to_vec();

    // No client certificate: refused at the handshake.
    let anonymous = client(&ca, None);
    assert!(anonymous.get(format!("{base}/v2/")).send().await.is_err());
    // A certificate from another CA: refused too.
    let other = client(&ca, Some(Ca::new("other CA").issue(&["vendor"])));
    assert!(other.get(format!("{base}/v2/")).send().await.is_err());
    assert!(running
        .registry()
        .store()
        .has_blob(
            "acme/app",
            &atoll_registry::storage::Digest::parse(&digest(&data)).unwrap()
        )
        .await
        .unwrap()
        .is_none());

    // A certificate from the client CA: push and pull work.
    let vendor = client(&ca, Some(pushers.issue(&["vendor"])));
    assert_eq!(
        push_blob(&vendor, &base, "acme/app", &data).await.status(),
        201
    );
    let got = vendor
        .get(format!("{base}/v2/acme/app/blobs/{}", digest(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), data);
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_listener_refuses_pushes_with_denied() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test registry CA");
    ca.write_server(dir.path(), "registry");
    let running = start_config(
        dir.path(),
        r#"
storage = "store"
[[listener]]
address = "127.0.0.1:0"
mode = "tls"
access = "read-write"
cert = "registry.pem"
key = "registry-key.pem"

[[listener]]
address = "127.0.0.1:0"
mode = "tls"
access = "read-only"
cert = "registry.pem"
key = "registry-key.pem"
"#,
    )
    .await;
    let rw = format!("https://localhost:{}", addr(&running, 0).port());
    let ro = format!("https://localhost:{}", addr(&running, 1).port());
    let c = client(&ca, None);
    let data = b"some blob".to_vec();
    let refused = push_blob(&c, &ro, "acme/app", &data).await;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert_eq!(push_blob(&c, &rw, "acme/app", &data).await.status(), 201);
    let del = c
        .delete(format!("{ro}/v2/acme/app/blobs/{}", digest(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 403);
    let got = c
        .get(format!("{ro}/v2/acme/app/blobs/{}", digest(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), data);
    running.stop().await;
}
