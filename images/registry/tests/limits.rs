//! What a client cannot do to the registry's resources: hold unbounded
//! upload sessions, hold unbounded connections, or crash a request's task
//! with a malformed path.

mod common;

use atoll_registry::{UploadLimits, MAX_CONNECTIONS};
use common::{raw, Server};
use std::path::Path;
use std::time::Duration;
use tokio::net::TcpStream;

fn upload_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".upload-")
        })
        .count()
}

async fn post_upload(port: u16) -> raw::Response {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    raw::request(tcp, "POST", "/v2/acme/app/blobs/uploads/", b"")
        .await
        .unwrap()
}

#[tokio::test]
async fn upload_sessions_are_bounded_and_expire() {
    let root = tempfile::tempdir().unwrap();
    let limits = UploadLimits {
        max_sessions: 2,
        idle_timeout: Duration::from_millis(300),
    };
    let s = Server::start_with(root.path(), limits).await;

    let first = post_upload(s.port).await;
    assert_eq!(first.status, 202);
    assert_eq!(post_upload(s.port).await.status, 202);
    assert_eq!(upload_files(root.path()), 2);

    // The third is refused, with the spec's error code, and opens nothing.
    let refused = post_upload(s.port).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code().as_deref(), Some("TOOMANYREQUESTS"));
    assert_eq!(upload_files(root.path()), 2);

    // Once the sessions have been idle past the limit, opening a new one
    // discards them and their temp files.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = post_upload(s.port).await;
    assert_eq!(third.status, 202);
    assert_eq!(upload_files(root.path()), 1);
    let stale = first.header("location").unwrap().to_string();
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let r = raw::request(tcp, "GET", &stale, b"").await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("BLOB_UPLOAD_UNKNOWN"));
    s.stop().await;
}

#[tokio::test]
async fn a_non_ascii_path_is_not_found_and_the_server_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    for path in [
        "/v2\u{e9}/acme/app/manifests/1",
        "/v2\u{e9}",
        "/v2/\u{e9}/manifests/1",
    ] {
        let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        let r = raw::request(tcp, "GET", path, b"").await.unwrap();
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: status {}",
            r.status
        );
    }
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    assert_eq!(
        raw::request(tcp, "GET", "/v2/", b"").await.unwrap().status,
        200
    );
    s.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let root = tempfile::tempdir().unwrap();
    let s = Server::start(root.path()).await;
    // Fill every slot with a connection that sends nothing.
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        idle.push(TcpStream::connect(("127.0.0.1", s.port)).await.unwrap());
    }
    // One more client: the kernel accepts it, the registry does not serve
    // it while every slot is taken.
    let port = s.port;
    let waiting = tokio::spawn(async move {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        raw::request(tcp, "GET", "/v2/", b"").await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served beyond MAX_CONNECTIONS");
    // Closing one idle connection frees a slot.
    drop(idle.pop());
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
    drop(idle);
    s.stop().await;
}
