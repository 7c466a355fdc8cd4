//! `atoll-registry`: runs the OCI registry server.
//!
//! ```text
//! atoll-registry --config registry.toml          # http / tls / ra-tls listeners
//! atoll-registry --root DIR --listen ADDR --insecure-http   # development
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
use atoll_registry::config::{Config, Mode};
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
    /// Check the configuration (files, PEM, policy) and exit.
    #[arg(long, requires = "config")]
    check: bool,
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
            Config::dev_http(root, args.listen)
        }
        (None, None) => bail!("give --config FILE (or --root DIR --insecure-http for development)"),
    };
    if args.check {
        // Building the acceptors checks that keys match certificates.
        for l in &config.listeners {
            match l.mode {
                Mode::Http => {}
                Mode::Tls => {
                    atoll_registry::tls::TlsAcceptor::new(l)?;
                }
                Mode::RaTls => {
                    if let Some(anchors) = &config.trust_anchors {
                        atoll_registry::tls::RaTlsAcceptor::new(l, anchors, &config.realms)?;
                    }
                }
            }
        }
        println!(
            "configuration OK: {} listener(s), {} realm entr{}",
            config.listeners.len(),
            config.realms.len(),
            if config.realms.len() == 1 { "y" } else { "ies" }
        );
        return Ok(());
    }
    let running = atoll_registry::start(&config).await?;
    for (addr, mode, _) in running.listeners() {
        if *mode == Mode::Http {
            warn_plain(*addr);
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}
