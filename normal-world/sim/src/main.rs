//! `atoll-sim`: the simulated Arm CCA platform as a process.
//!
//! ```text
//! atoll-sim --realm images/examples/hello-realm.toml --socket /tmp/atoll-realm.sock
//!           [--hes /tmp/atoll-hes.sock [--cpak-jwk cpak.jwk]] [--once]
//! ```
//!
//! Boots the simulated platform (against a running `atoll-hes` with
//! `--hes`: the boot chain is measured into it and the RMM gets its
//! attestation and sealing keys from it), builds the realm the description
//! names on the simulated machine and RMM, prints its RIM and the
//! platform's root of trust (the CPAK, or that attestation and sealing are
//! unavailable), and serves REC 0's vCPU on the socket until SIGINT or
//! SIGTERM (or, with `--once`, until the first realm process disconnects).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use atoll_realm_description::RealmDescription;
use atoll_sim::{RunEnd, SimOptions, Simulator};
use clap::Parser;

/// Runs a realm on the simulated platform and serves its vCPU to a realm
/// process over a Unix socket.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The realm description (TOML).
    #[arg(long)]
    realm: PathBuf,
    /// Where realm processes connect.
    #[arg(long, default_value = "/tmp/atoll-realm.sock")]
    socket: PathBuf,
    /// Exit after the first realm process disconnects.
    #[arg(long)]
    once: bool,
    /// The socket of a running `atoll-hes`: the platform's root of trust
    /// (attestation tokens and sealing keys). One HES process serves one
    /// platform boot; restart it for the next simulator.
    #[arg(long, value_name = "SOCKET")]
    hes: Option<PathBuf>,
    /// Also write the CPAK as a JWK to this file (for `atoll-rsi verify`
    /// and `atoll token verify`). Needs `--hes`.
    #[arg(long, value_name = "FILE", requires = "hes")]
    cpak_jwk: Option<PathBuf>,
    /// A realm metadata block (`atoll metadata create`): the realm is
    /// activated only if its RIM matches the block, and its sealing keys
    /// are bound to the block's realm id and vendor key.
    #[arg(long, value_name = "FILE")]
    metadata: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let desc = RealmDescription::load(&cli.realm)
        .with_context(|| format!("loading {}", cli.realm.display()))?;
    let metadata = match &cli.metadata {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let block: [u8; atoll_rmi_client::METADATA_LEN] =
                bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "{}: a realm metadata block is {} bytes, this file has {}",
                        path.display(),
                        atoll_rmi_client::METADATA_LEN,
                        bytes.len()
                    )
                })?;
            Some(block)
        }
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let mut sim = Simulator::new(
        &desc,
        SimOptions {
            socket: cli.socket.clone(),
            once: cli.once,
            stop,
            console: Box::new(std::io::stdout()),
            hes: cli.hes.clone(),
            metadata,
        },
    )
    .context("starting the simulator")?;
    println!(
        "RIM ({}): {}",
        sim.measurement().algo.name(),
        hex::encode(sim.rim())
    );
    match (sim.cpak(), &cli.hes) {
        (Some(cpak), Some(hes)) => {
            println!(
                "root of trust: atoll-hes at {}; attestation and sealing available",
                hes.display()
            );
            println!("CPAK (P-384, SEC1): {}", hex::encode(cpak));
            if let Some(path) = &cli.cpak_jwk {
                let jwk = atoll_sim::hes::cpak_jwk(cpak)?;
                std::fs::write(path, jwk).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        _ => println!(
            "root of trust: none (no --hes); attestation and sealing unavailable \
             (RSI_ERROR_UNKNOWN)"
        ),
    }
    println!("serving REC 0 on {}", cli.socket.display());
    let end = sim.run().context("running the realm")?;
    match end {
        RunEnd::Stopped => println!("stopped"),
        RunEnd::CpuOff => println!("REC 0 is off"),
        RunEnd::SystemOff => println!("realm powered off (PSCI_SYSTEM_OFF)"),
        RunEnd::SystemReset => println!("realm asked for a reset (PSCI_SYSTEM_RESET); exiting"),
    }
    Ok(())
}
