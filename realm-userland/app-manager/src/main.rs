//! `atoll-app-manager`: the realm's agent.
//!
//! ```text
//! atoll-app-manager --rsi vcpu.sock --control agent.sock --work-dir DIR
//! atoll-app-manager trust-bundle --vendor-ca root.pem --registry-ca tls-ca.pem -o trust-bundle.bin
//! ```
//!
//! The first form serves the warden's agent protocol on `--control` (in
//! simulation a Unix socket standing in for vsock), reaching the RMM
//! through `atoll-sim`'s vCPU socket `--rsi`. The second writes the trust
//! bundle to load, measured, into the realm image at
//! `atoll_app_manager::trust::TRUST_BUNDLE_IPA`.
#![forbid(unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context};
use atoll_app_manager::realm::SimRealm;
use atoll_app_manager::trust::TrustBundle;
use atoll_app_manager::Manager;
use clap::{Parser, Subcommand};

/// The realm agent: installs signed applications from an attested
/// registry into sealed storage and runs them.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// The simulator's vCPU socket (the realm's RSI).
    #[arg(long)]
    rsi: Option<PathBuf>,
    /// Where the warden connects (stands in for vsock).
    #[arg(long)]
    control: Option<PathBuf>,
    /// Private working directory: unpacked applications while they run
    /// (realm memory on hardware).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes a trust bundle for the realm image.
    TrustBundle {
        /// Root CA certificate(s) that certify application vendors (PEM).
        #[arg(long, required = true)]
        vendor_ca: Vec<PathBuf>,
        /// Root CA certificate(s) of registries' TLS certificates (PEM).
        #[arg(long)]
        registry_ca: Vec<PathBuf>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    if let Some(Cmd::TrustBundle {
        vendor_ca,
        registry_ca,
        output,
    }) = cli.command
    {
        let v: Vec<&std::path::Path> = vendor_ca.iter().map(|p| p.as_path()).collect();
        let r: Vec<&std::path::Path> = registry_ca.iter().map(|p| p.as_path()).collect();
        let bundle = TrustBundle::from_pem_files(&v, &r)?;
        let bytes = bundle.encode()?;
        atoll_app_manager::disk::write_atomic(&output, &bytes)?;
        println!(
            "{}: {} vendor root(s), {} registry root(s), {} bytes",
            output.display(),
            bundle.vendor_roots.len(),
            bundle.registry_roots.len(),
            bytes.len()
        );
        return Ok(());
    }
    let (Some(rsi), Some(control), Some(work_dir)) = (cli.rsi, cli.control, cli.work_dir) else {
        bail!("--rsi, --control and --work-dir are required (or a subcommand)");
    };
    let realm = Arc::new(SimRealm::new(&rsi));
    let manager = Arc::new(Manager::new(realm, &work_dir)?);
    match std::fs::remove_file(&control) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", control.display())),
    }
    let listener =
        UnixListener::bind(&control).with_context(|| format!("binding {}", control.display()))?;
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o600))?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, shutdown.clone()).context("signal handlers")?;
    }
    tracing::info!(
        "atoll-app-manager {}: agent on {}, RSI via {}",
        env!("CARGO_PKG_VERSION"),
        control.display(),
        rsi.display()
    );
    atoll_app_manager::agent::serve(listener, manager, shutdown);
    let _ = std::fs::remove_file(&control);
    Ok(())
}
