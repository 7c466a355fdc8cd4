//! Test helpers: a registry on 127.0.0.1:0.

#![allow(dead_code)]

pub mod logs;
pub mod pki;
pub mod raw;

use atoll_registry::{serve, PlainAcceptor, Registry, UploadLimits};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::sync::Arc;

/// A running server; dropping it stops accepting.
pub struct Server {
    pub base: String,
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(root: &Path) -> Server {
        Self::start_with(root, UploadLimits::default()).await
    }

    pub async fn start_with(root: &Path, limits: UploadLimits) -> Server {
        let registry = Arc::new(Registry::with_limits(root, limits).await.expect("open"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve(listener, PlainAcceptor::default(), registry, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            stop: Some(tx),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("server task");
    }
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Writes `registry.toml` into `dir` and starts a registry from it (through
/// `Config::load`, as the binary does).
pub async fn start_config(dir: &Path, toml: &str) -> atoll_registry::Running {
    let path = dir.join("registry.toml");
    std::fs::write(&path, toml).expect("write config");
    let config = atoll_registry::config::Config::load(&path).expect("config");
    atoll_registry::start(&config).await.expect("start")
}

/// The bound address of listener `i`.
pub fn addr(running: &atoll_registry::Running, i: usize) -> std::net::SocketAddr {
    running.listeners()[i].0
}

/// A plain reqwest client. The TLS tests enable reqwest's rustls without a
/// built-in crypto provider, so the process-wide default (ring) is
/// installed first.
pub fn http_client() -> reqwest::Client {
    let _ = atoll_ra_tls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
