//! `cargo xtask fuzz`: runs the libFuzzer targets of `ipc-schema/fuzz`
//! (every service message, ABI structure and frame decoder, and the service
//! handlers behind them) for a fixed time each and reports which crashed.
//!
//! Steps: install cargo-fuzz if it is missing, check that a nightly
//! toolchain exists (the sanitizer flags need one), write the seed corpora
//! (`cargo run --example gen-corpus`), then `cargo +nightly fuzz run
//! <target> -- -max_total_time=N` per target. See docs/fuzzing.md.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// The fuzz workspace, relative to the repository root.
const FUZZ_DIR: &str = "ipc-schema/fuzz";

/// How one target's run ended.
enum Outcome {
    /// Ran its time without a crash.
    Ok,
    /// Crashed (or libFuzzer failed); the reproducer, if one was written.
    Crash(Option<PathBuf>),
}

/// Runs every target (or `only`) for `seconds` each. Fails if any crashed.
pub(crate) fn run(root: &Path, seconds: u64, only: Option<&str>) -> Result<()> {
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let fuzz_dir = root.join(FUZZ_DIR);
    ensure_cargo_fuzz()?;
    ensure_nightly()?;

    let all = list_targets(&fuzz_dir)?;
    let targets: Vec<String> = match only {
        Some(t) if all.iter().any(|a| a == t) => vec![t.to_string()],
        Some(t) => bail!(
            "no fuzz target named {t:?}; the targets are: {}",
            all.join(", ")
        ),
        None => all,
    };

    eprintln!("xtask: writing the seed corpora");
    fuzz_cargo(&fuzz_dir, &["run", "--release", "--example", "gen-corpus"])
        .status()
        .context("running gen-corpus")
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                bail!("gen-corpus failed ({s})")
            }
        })?;

    let mut results = Vec::new();
    for target in &targets {
        eprintln!("xtask: fuzzing {target} for {seconds} s");
        let outcome = fuzz_one(&fuzz_dir, target, seconds)?;
        results.push((target.clone(), outcome));
    }

    println!();
    println!("fuzz results ({seconds} s per target):");
    let mut crashed = 0;
    for (target, outcome) in &results {
        match outcome {
            Outcome::Ok => println!("  OK     {target}"),
            Outcome::Crash(artifact) => {
                crashed += 1;
                match artifact {
                    Some(path) => println!("  CRASH  {target}: {}", path.display()),
                    None => println!("  CRASH  {target}: libFuzzer failed without an artifact"),
                }
            }
        }
    }
    if crashed > 0 {
        println!();
        println!(
            "reproduce with: cd {FUZZ_DIR} && cargo +nightly fuzz run <target> <artifact path>"
        );
        bail!("{crashed} of {} fuzz targets crashed", results.len());
    }
    Ok(())
}

/// A `cargo +nightly` command in the fuzz workspace. The fuzz workspace
/// keeps its own target directory (instrumented nightly builds must not mix
/// with the main workspace's), so an inherited `CARGO_TARGET_DIR` is dropped.
fn fuzz_cargo(fuzz_dir: &Path, args: &[&str]) -> Command {
    // The rustup proxy, not `$CARGO`: only the proxy understands `+nightly`.
    let mut cmd = Command::new("cargo");
    cmd.arg("+nightly")
        .args(args)
        .current_dir(fuzz_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTUP_TOOLCHAIN");
    cmd
}

/// Installs cargo-fuzz with `cargo install cargo-fuzz --locked` if
/// `cargo fuzz` does not run.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("xtask: cargo-fuzz is not installed; installing it with `cargo install cargo-fuzz --locked`");
    let status = Command::new("cargo")
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed ({status})");
    }
    Ok(())
}

/// Fails with the install command unless rustup lists a nightly toolchain.
fn ensure_nightly() -> Result<()> {
    let hint = "cargo-fuzz needs a nightly toolchain; install one with:\n\n    rustup toolchain install nightly\n";
    let out = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .with_context(|| {
            format!("running `rustup toolchain list` (is rustup installed?)\n{hint}")
        })?;
    let list = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !list.lines().any(|l| l.starts_with("nightly")) {
        bail!("no nightly toolchain found\n{hint}");
    }
    Ok(())
}

/// The targets `cargo fuzz list` reports.
fn list_targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let out = fuzz_cargo(fuzz_dir, &["fuzz", "list"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo fuzz list")?;
    if !out.status.success() {
        bail!("cargo fuzz list failed ({})", out.status);
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if targets.is_empty() {
        bail!("cargo fuzz list found no targets in {}", fuzz_dir.display());
    }
    Ok(targets)
}

/// Runs one target, passing its output through, and finds the artifact a
/// crash left: the path libFuzzer prints, else a file that appeared in the
/// target's artifact directory during the run.
fn fuzz_one(fuzz_dir: &Path, target: &str, seconds: u64) -> Result<Outcome> {
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = dir_entries(&artifacts);
    let time = format!("-max_total_time={seconds}");
    let mut child = fuzz_cargo(fuzz_dir, &["fuzz", "run", target, "--", &time])
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running cargo fuzz run {target}"))?;
    let mut reported = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading cargo fuzz output")?;
            eprintln!("{line}");
            if let Some(rest) = line.split("Test unit written to ").nth(1) {
                reported = Some(fuzz_dir.join(rest.trim()));
            }
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    if status.success() {
        return Ok(Outcome::Ok);
    }
    let appeared = dir_entries(&artifacts).difference(&before).next().cloned();
    Ok(Outcome::Crash(reported.or(appeared)))
}

/// The files in `dir` (none if it does not exist).
fn dir_entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}
