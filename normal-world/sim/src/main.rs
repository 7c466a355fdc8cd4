//! `atoll-sim`: the simulated Arm CCA platform as a process.
//!
//! ```text
//! atoll-sim --realm images/examples/hello-realm.toml --socket /tmp/atoll-realm.sock [--once]
//! ```
//!
//! Builds the realm the description names on a simulated machine and RMM,
//! prints its RIM, and serves REC 0's vCPU on the socket until SIGINT or
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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let desc = RealmDescription::load(&cli.realm)
        .with_context(|| format!("loading {}", cli.realm.display()))?;
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
        },
    )
    .context("starting the simulator")?;
    println!(
        "RIM ({}): {}",
        sim.measurement().algo.name(),
        hex::encode(sim.rim())
    );
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
