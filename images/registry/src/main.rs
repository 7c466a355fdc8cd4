//! `atoll-registry`: runs the OCI registry server.
//!
//! ```text
//! atoll-registry --config registry.toml          # http / tls / ra-tls listeners
//! atoll-registry --root DIR --listen ADDR --insecure-http   # development
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use atoll_registry::config::{Config, Mode};
use atoll_registry::tls::{RaTlsAcceptor, TlsAcceptor};
use clap::Parser;

/// OCI Distribution v1.1 registry.
#[derive(Parser, Debug)]
#[command(name = "atoll-registry", version)]
struct Args {
    /// Configuration file (TOML): storage, listeners, RA-TLS policy.
    #[arg(long, conflicts_with_all = ["root", "insecure_http"])]
    config: Option<PathBuf>,
    /// Storage root directory (quick development mode).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Address to listen on (quick development mode).
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Serve plain HTTP (quick development mode).
    #[arg(long)]
    insecure_http: bool,
}

fn warn_plain(addr: SocketAddr) {
    eprintln!("**********************************************************************");
    eprintln!("WARNING: atoll-registry is serving PLAIN HTTP on {addr}.");
    eprintln!("WARNING: no transport security, no authentication. DEVELOPMENT ONLY.");
    eprintln!("**********************************************************************");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let args = Args::parse();
    let config = match (&args.config, &args.root) {
        (Some(path), _) => Config::load(path)?,
        (None, Some(root)) => {
            if !args.insecure_http {
                bail!("without --config, only --insecure-http is available (development)");
            }
            Config {
                storage: root.clone(),
                listeners: vec![atoll_registry::config::Listener {
                    address: args.listen,
                    mode: Mode::Http,
                    write: true,
                    cert_chain: Vec::new(),
                    key_pem: None,
                    client_ca: Vec::new(),
                }],
                trust_anchors: None,
                realms: Vec::new(),
            }
        }
        (None, None) => bail!("give --config FILE (or --root DIR --insecure-http for development)"),
    };
    let registry = Arc::new(
        atoll_registry::Registry::open(&config.storage)
            .await
            .with_context(|| format!("opening storage {}", config.storage.display()))?,
    );
    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    for l in &config.listeners {
        let listener = tokio::net::TcpListener::bind(l.address)
            .await
            .with_context(|| format!("binding {}", l.address))?;
        let addr = listener.local_addr()?;
        let mut stop = stop_tx.subscribe();
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        let registry = registry.clone();
        let access = if l.write { "read-write" } else { "read-only" };
        match l.mode {
            Mode::Http => {
                warn_plain(addr);
                tasks.push(tokio::spawn(atoll_registry::serve(
                    listener,
                    atoll_registry::PlainAcceptor,
                    registry,
                    shutdown,
                )));
            }
            Mode::Tls => {
                let acceptor = TlsAcceptor::new(l)?;
                tracing::info!("TLS on {addr} ({access})");
                tasks.push(tokio::spawn(atoll_registry::serve(
                    listener, acceptor, registry, shutdown,
                )));
            }
            Mode::RaTls => {
                let anchors = config
                    .trust_anchors
                    .as_ref()
                    .context("ra-tls needs trust_anchors")?;
                let acceptor = RaTlsAcceptor::new(l, anchors, &config.realms)?;
                tracing::info!(
                    "RA-TLS on {addr} (read-only; realms: {})",
                    config
                        .realms
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                tasks.push(tokio::spawn(atoll_registry::serve(
                    listener, acceptor, registry, shutdown,
                )));
            }
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
