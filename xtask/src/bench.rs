//! `cargo xtask bench`: runs the criterion benchmarks, then prints each
//! measured figure beside the baseline measured in the same run and checks
//! it against its target.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cargo;

/// A figure compared with a baseline from the same run.
struct Comparison {
    what: &'static str,
    /// Criterion benchmark id (group/function) of the measured figure.
    measured: &'static str,
    /// Criterion benchmark id of the baseline.
    baseline: &'static str,
    /// Highest acceptable measured/baseline time ratio.
    max_ratio: f64,
}

const COMPARISONS: &[Comparison] = &[
    Comparison {
        what: "64 MiB realm, every page measured, vs sha2 over the same bytes",
        measured: "realm_build_64mib/rmm",
        baseline: "realm_build_64mib/sha256_baseline",
        max_ratio: 1.25,
    },
    Comparison {
        what: "whole realm token (INIT..last CONTINUE) vs one P-384 signature",
        measured: "realm_token/whole_token",
        baseline: "realm_token/p384_sign_baseline",
        max_ratio: 1.3,
    },
    Comparison {
        what: "sealed store writing 64 MiB vs raw AES-256-GCM (>= 0.7x)",
        measured: "seal_64mib/sealed_writer",
        baseline: "seal_64mib/aes_gcm_baseline",
        max_ratio: 1.0 / 0.7,
    },
    Comparison {
        what: "token verification vs two P-384 verifications",
        measured: "cca_token_verify/token_verify",
        baseline: "cca_token_verify/two_p384_verify_baseline",
        max_ratio: 1.2,
    },
];

/// The criterion benchmark targets, as (package, bench).
const TARGETS: &[(&str, &str)] = &[
    ("atoll-kernel", "rmm"),
    ("atoll-attestation", "token"),
    ("atoll-cca-token", "verify"),
    ("atoll-sealed-store", "seal"),
];

/// Whole-flow benchmarks (their own harness: they start servers and
/// external tools, and print their figures and verdict themselves), as
/// (package, bench).
const FLOWS: &[(&str, &str)] = &[
    // atoll-registry vs Debian's docker-registry, 256 MiB pulls.
    ("atoll-registry", "pull"),
    // app-manager install of a 100 MiB application vs skopeo copy.
    ("atoll-app-manager", "install"),
];

/// Benchmarks reported as rates.
const RATES: &[(&str, &str, u64)] = &[
    (
        "GRANULE_DELEGATE+UNDELEGATE pairs",
        "rmi/delegate_undelegate_1024",
        1024,
    ),
    (
        "RSI_MEASUREMENT_EXTEND calls (through a REC)",
        "rsi/measurement_extend_1024",
        1024,
    ),
    (
        "MEASUREMENT_EXTEND requests (service alone)",
        "rsi/measurement_service_extend_1024",
        1024,
    ),
];

pub(crate) fn run(root: &Path, quick: bool, filter: Option<&str>) -> Result<()> {
    for (package, bench) in TARGETS {
        let mut args = vec!["bench", "-p", package, "--bench", bench, "--"];
        if quick {
            args.extend([
                "--warm-up-time",
                "1",
                "--measurement-time",
                "2",
                "--sample-size",
                "10",
            ]);
        }
        if let Some(f) = filter {
            args.push(f);
        }
        cargo(root, &args)?;
    }

    for (package, bench) in FLOWS {
        if filter.is_some_and(|f| !bench.contains(f) && !package.contains(f)) {
            continue;
        }
        cargo(root, &["bench", "-p", package, "--bench", bench])?;
    }

    let dir = root.join("target/criterion");
    println!(
        "\n{:<62} {:>14} {:>14} {:>8} {:>8}",
        "comparison", "measured", "baseline", "ratio", "target"
    );
    let mut missed = Vec::new();
    for c in COMPARISONS {
        let (Some(m), Some(b)) = (mean_ns(&dir, c.measured), mean_ns(&dir, c.baseline)) else {
            continue;
        };
        let ratio = m / b;
        let ok = ratio <= c.max_ratio;
        println!(
            "{:<62} {:>11.2} ms {:>11.2} ms {:>7.3}x {:>6.2}x{}",
            c.what,
            m / 1e6,
            b / 1e6,
            ratio,
            c.max_ratio,
            if ok { "" } else { "  MISSED" }
        );
        if !ok {
            missed.push(c.what);
        }
    }
    println!();
    for (what, id, per_iter) in RATES {
        if let Some(ns) = mean_ns(&dir, id) {
            println!("{what:<62} {:>14.0} /s", *per_iter as f64 / (ns / 1e9));
        }
    }
    if !missed.is_empty() {
        println!("\ntargets missed: {}", missed.join("; "));
    }
    Ok(())
}

/// Mean time per iteration in nanoseconds from criterion's estimates.
fn mean_ns(dir: &Path, id: &str) -> Option<f64> {
    let path = dir.join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| path.display().to_string())
        .ok()?;
    v["mean"]["point_estimate"].as_f64()
}
