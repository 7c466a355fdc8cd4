//! RA-TLS listeners: realms with real CCA tokens (test platform keys) pull
//! what their policy entry allows and nothing else, never push; a token
//! whose RIM no entry knows, and a certificate replayed from an earlier
//! connection, are refused at the handshake.

mod common;

use std::sync::{Arc, Mutex};

use atoll_ra_tls::rustls::{self, client::ResolvesClientCert, sign::CertifiedKey, SignatureScheme};
use atoll_ra_tls::{nonce_from_ca_hints, AttestedCert, CertOptions};
use common::pki::{realm_client, write_reference_values, write_trust_anchors, Ca, TestRealm};
use common::raw::tls_request;
use common::{addr, digest, start_config};

const ACME_RIM: [u8; 32] = [0x33; 32];
const OTHER_RIM: [u8; 32] = [0x44; 32];
const UNKNOWN_RIM: [u8; 32] = [0x99; 32];

struct Setup {
    _dir: tempfile::TempDir,
    ca: Ca,
    running: atoll_registry::Running,
    /// Layer blobs pushed to `acme/app` and `other/app`.
    acme_blob: Vec<u8>,
    other_blob: Vec<u8>,
}

/// A registry with a TLS push listener (listener 0) and an RA-TLS listener
/// (listener 1); realm entry `acme` (RIM 0x33..) may pull `acme/*`, entry
/// `other` (RIM 0x44..) may pull `other/app`. One blob is pushed to each
/// repository over TLS.
async fn setup() -> Setup {
    common::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test registry CA");
    ca.write_server(dir.path(), "registry");
    std::fs::create_dir(dir.path().join("policy")).unwrap();
    write_trust_anchors(&dir.path().join("policy/cpak.json"));
    write_reference_values(&dir.path().join("policy/acme-realm.json"), ACME_RIM);
    write_reference_values(&dir.path().join("policy/other-realm.json"), OTHER_RIM);
    let running = start_config(
        dir.path(),
        r#"
storage = "store"
trust_anchors = "policy/cpak.json"

[[listener]]
address = "127.0.0.1:0"
mode = "tls"
access = "read-write"
cert = "registry.pem"
key = "registry-key.pem"

[[listener]]
address = "127.0.0.1:0"
mode = "ra-tls"
cert = "registry.pem"
key = "registry-key.pem"

[[realm]]
name = "acme"
reference_values = "policy/acme-realm.json"
repositories = ["acme/*"]

[[realm]]
name = "other"
reference_values = "policy/other-realm.json"
repositories = ["other/app"]
"#,
    )
    .await;
    let acme_blob = b"acme application layer".to_vec();
    let other_blob = b"other application layer".to_vec();
    let push = rustls::ClientConfig::builder_with_provider(atoll_ra_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    for (repo, blob) in [("acme/app", &acme_blob), ("other/app", &other_blob)] {
        let r = tls_request(
            addr(&running, 0),
            push.clone(),
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={}", digest(blob)),
            blob,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 201, "push to {repo}");
    }
    Setup {
        _dir: dir,
        ca,
        running,
        acme_blob,
        other_blob,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_realm_pulls_what_its_policy_allows_and_nothing_else() {
    let s = setup().await;
    let ra = addr(&s.running, 1);
    let acme = || realm_client(TestRealm::new(ACME_RIM), &s.ca);

    let v2 = tls_request(ra, acme(), "GET", "/v2/", b"").await.unwrap();
    assert_eq!(v2.status, 200);

    let path = format!("/v2/acme/app/blobs/{}", digest(&s.acme_blob));
    let got = tls_request(ra, acme(), "GET", &path, b"").await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body, s.acme_blob);
    assert_eq!(
        got.header("docker-content-digest"),
        Some(digest(&s.acme_blob).as_str())
    );

    // A repository its entry does not allow: 403 DENIED, even though the
    // blob exists (and another realm entry may pull it).
    let path = format!("/v2/other/app/blobs/{}", digest(&s.other_blob));
    let denied = tls_request(ra, acme(), "GET", &path, b"").await.unwrap();
    assert_eq!(denied.status, 403);
    assert_eq!(denied.error_code().as_deref(), Some("DENIED"));
    assert!(
        common::logs::wait_for(&["realm acme", "other/app", "not in policy"])
            .await
            .is_some()
    );
    let denied = tls_request(ra, acme(), "GET", "/v2/other/app/tags/list", b"")
        .await
        .unwrap();
    assert_eq!(denied.status, 403);

    // The other realm gets exactly the opposite.
    let other = realm_client(TestRealm::new(OTHER_RIM), &s.ca);
    let got = tls_request(ra, other.clone(), "GET", &path, b"")
        .await
        .unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.body, s.other_blob);
    let path = format!("/v2/acme/app/blobs/{}", digest(&s.acme_blob));
    let denied = tls_request(ra, other, "GET", &path, b"").await.unwrap();
    assert_eq!(denied.status, 403);
    assert_eq!(denied.error_code().as_deref(), Some("DENIED"));
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ra_tls_listener_refuses_pushes_and_deletes() {
    let s = setup().await;
    let ra = addr(&s.running, 1);
    let acme = || realm_client(TestRealm::new(ACME_RIM), &s.ca);
    let data = b"a realm trying to push".to_vec();
    let push = tls_request(
        ra,
        acme(),
        "POST",
        &format!("/v2/acme/app/blobs/uploads/?digest={}", digest(&data)),
        &data,
    )
    .await
    .unwrap();
    assert_eq!(push.status, 403);
    assert_eq!(push.error_code().as_deref(), Some("DENIED"));
    let put = tls_request(ra, acme(), "PUT", "/v2/acme/app/manifests/1.0", b"{}")
        .await
        .unwrap();
    assert_eq!(put.status, 403);
    assert_eq!(put.error_code().as_deref(), Some("DENIED"));
    let del = tls_request(
        ra,
        acme(),
        "DELETE",
        &format!("/v2/acme/app/blobs/{}", digest(&s.acme_blob)),
        b"",
    )
    .await
    .unwrap();
    assert_eq!(del.status, 403);
    // Nothing changed: the pushed-at blob is absent, the deleted one stays.
    let store = s.running.registry().store();
    let d = |b: &[u8]| atoll_registry::storage::Digest::parse(&digest(b)).unwrap();
    assert!(store
        .has_blob("acme/app", &d(&data))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .has_blob("acme/app", &d(&s.acme_blob))
        .await
        .unwrap()
        .is_some());
    s.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_unknown_rim_is_refused_at_the_handshake() {
    let s = setup().await;
    let ra = addr(&s.running, 1);
    let stranger = realm_client(TestRealm::new(UNKNOWN_RIM), &s.ca);
    let r = tls_request(ra, stranger, "GET", "/v2/", b"").await;
    assert!(r.is_err(), "a realm no entry knows got an answer");
    let line = common::logs::wait_for(&["refused", "matches no registry policy"]).await;
    assert!(
        line.as_deref()
            .is_some_and(|l| l.contains(&hex::encode(UNKNOWN_RIM))),
        "no log naming the unknown RIM: {line:?}"
    );
    // Not an ordinary client either.
    let anonymous = rustls::ClientConfig::builder_with_provider(atoll_ra_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(s.ca.roots())
        .with_no_client_auth();
    assert!(tls_request(ra, anonymous, "GET", "/v2/", b"")
        .await
        .is_err());
    // The listener still serves a good realm afterwards.
    let good = realm_client(TestRealm::new(ACME_RIM), &s.ca);
    assert_eq!(
        tls_request(ra, good, "GET", "/v2/", b"")
            .await
            .unwrap()
            .status,
        200
    );
    s.running.stop().await;
}

/// Presents the certificate of the first connection on every later one.
#[derive(Debug)]
struct Replaying {
    realm: TestRealm,
    first: Mutex<Option<Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for TestRealm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TestRealm")
    }
}

impl ResolvesClientCert for Replaying {
    fn resolve(&self, hints: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let nonce = nonce_from_ca_hints(hints)?;
        let mut first = self.first.lock().unwrap();
        if let Some(k) = first.as_ref() {
            return Some(k.clone());
        }
        let cert = AttestedCert::generate(&self.realm, &nonce, &CertOptions::default()).ok()?;
        let k = Arc::new(cert.certified_key(&atoll_ra_tls::provider()).ok()?);
        *first = Some(k.clone());
        Some(k)
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_attested_certificate_is_refused() {
    let s = setup().await;
    let ra = addr(&s.running, 1);
    let resolver = Arc::new(Replaying {
        realm: TestRealm::new(ACME_RIM),
        first: Mutex::new(None),
    });
    let config = rustls::ClientConfig::builder_with_provider(atoll_ra_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(s.ca.roots())
        .with_client_cert_resolver(resolver.clone());
    let path = format!("/v2/acme/app/blobs/{}", digest(&s.acme_blob));
    // The first connection: a fresh token for its nonce, accepted.
    let first = tls_request(ra, config.clone(), "GET", &path, b"")
        .await
        .unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.body, s.acme_blob);
    // The same certificate (bound to the first nonce) on a new connection.
    let replay = tls_request(ra, config, "GET", &path, b"").await;
    assert!(replay.is_err(), "a replayed certificate was accepted");
    // Refused for the right reason, and the refusal is logged.
    assert!(
        common::logs::wait_for(&["refused", "realm challenge is not SHA-512"])
            .await
            .is_some(),
        "no log of the replay refusal"
    );
    s.running.stop().await;
}
