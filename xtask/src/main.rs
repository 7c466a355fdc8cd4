//! `cargo xtask`: the one entry point for building, testing and measuring
//! Atoll beyond plain cargo.
//!
//! Every step runs cargo on the whole workspace with one shared target
//! directory, so the test command builds everything once.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod fuzz;
mod fvp;
mod qemu;

#[derive(Parser)]
#[command(about = "Atoll build, test and benchmark tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Format check, clippy (warnings are errors), every test, then the
    /// platform booted on QEMU with RME (`qemu --check`).
    Test {
        /// Skip the format and clippy checks.
        #[arg(long)]
        no_lint: bool,
        /// Skip the QEMU boot (it installs QEMU and the cross toolchain
        /// when missing).
        #[arg(long)]
        no_qemu: bool,
    },
    /// Build every crate (debug, or --release).
    Build {
        /// Optimised build.
        #[arg(long)]
        release: bool,
    },
    /// Run the criterion benchmarks and print each figure next to the
    /// baseline measured in the same run.
    Bench {
        /// Fewer samples: for a quick look, not for docs/benchmarks.md.
        #[arg(long)]
        quick: bool,
        /// Only benchmarks whose name contains this.
        filter: Option<String>,
    },
    /// Run the libFuzzer targets of ipc-schema/fuzz (cargo-fuzz, nightly)
    /// for a fixed time each; fails if any target crashed.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Only this target (`cargo fuzz list` in ipc-schema/fuzz names them).
        target: Option<String>,
    },
    /// Build the bare-metal images, pack target/qemu/atoll-fw.bin and boot
    /// it on QEMU with RME next to atoll-hes (docs/qemu.md).
    Qemu {
        /// Capture the console and verify the realm's token and RIM; exit
        /// non-zero on any failure.
        #[arg(long)]
        check: bool,
        /// Seconds before giving up on ATOLL-DONE.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// The whole deployment story on loopback: sign an application, push
    /// it to the registry, deploy it into a realm over RA-TLS, show its
    /// output and attestation, restart and show its data persisted.
    Demo {
        /// Keep the temporary directory (keys, logs, state) afterwards.
        #[arg(long)]
        keep: bool,
    },
    /// Build the same images and print the Arm FVP command line for them;
    /// fails when the FVP model is not installed.
    Fvp,
}

/// Host tests of the firmware workspaces: (directory, cargo arguments).
const FIRMWARE_HOST_TESTS: &[(&str, &[&str])] = &[
    ("kernel/monitor", &["test"]),
    (
        "kernel/rmm",
        &[
            "test",
            "-p",
            "atoll-arch-aarch64",
            "-p",
            "atoll-rmm",
            "--lib",
        ],
    ),
    ("normal-world/ns-host", &["test"]),
    ("realm-userland/payload", &["test"]),
];

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let root = workspace_root()?;
    match cli.task {
        Task::Test { no_lint, no_qemu } => {
            if !no_lint {
                cargo(&root, &["fmt", "--all", "--", "--check"])
                    .context("cargo fmt found unformatted code (run `cargo fmt --all`)")?;
                cargo(
                    &root,
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--",
                        "-D",
                        "warnings",
                    ],
                )?;
            }
            cargo(&root, &["test", "--workspace", "--all-targets"])?;
            cargo(&root, &["test", "--workspace", "--doc"])?;
            // The bare-metal images are workspaces of their own (built for
            // aarch64 by `cargo xtask qemu`); their logic is tested here on
            // the host.
            for (dir, args) in FIRMWARE_HOST_TESTS {
                cargo(&root.join(dir), args)?;
            }
            if no_qemu {
                eprintln!("xtask: skipping the QEMU boot (--no-qemu)");
                return Ok(());
            }
            qemu::run(&root, true, 600)
        }
        Task::Build { release } => {
            let mut args = vec!["build", "--workspace", "--all-targets"];
            if release {
                args.push("--release");
            }
            cargo(&root, &args)
        }
        Task::Bench { quick, filter } => bench::run(&root, quick, filter.as_deref()),
        Task::Fuzz { seconds, target } => fuzz::run(&root, seconds, target.as_deref()),
        Task::Qemu { check, timeout } => qemu::run(&root, check, timeout),
        Task::Fvp => fvp::run(&root),
        Task::Demo { keep } => demo::run_demo(&root, keep),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> Result<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// Runs cargo with `args` in `root`, failing on a non-zero exit.
pub(crate) fn cargo(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}
