//! `atoll measure`: the RIM a realm description will produce.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use atoll_realm_description::{BuildPlan, DescriptionError, RealmDescription};

/// Arguments of `atoll measure`.
#[derive(clap::Args)]
pub struct Args {
    /// The realm description (TOML).
    pub description: PathBuf,
    /// Print Veraison reference values as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
}

/// Loads the description, derives its build plan, replays it through the
/// measurement service and prints the result.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let path = &args.description;
    // I/O errors already name the file they failed on; everything else is
    // about the description's content, so name the description.
    let in_file = |e: DescriptionError| match e {
        DescriptionError::Io { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("{}", path.display())),
    };
    let desc = RealmDescription::load(path).map_err(in_file)?;
    let plan = BuildPlan::new(&desc).map_err(in_file)?;
    let m = atoll_measure::measure(&plan).context("measuring the build plan")?;

    let mut out = std::io::stdout().lock();
    if args.json {
        let v = atoll_measure::reference_values(&plan, &m);
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let algo = match m.algo {
        atoll_realm_description::HashAlgo::Sha256 => "SHA-256",
        atoll_realm_description::HashAlgo::Sha512 => "SHA-512",
    };
    if let Some(name) = plan.name() {
        writeln!(out, "realm:          {name}")?;
    }
    writeln!(out, "hash algorithm: {algo}")?;
    writeln!(out, "RIM:            {}", m.rim_hex())?;
    writeln!(
        out,
        "built from:     {} data page(s), {} RIPAS entr{}, {} REC(s) ({} runnable), {} RTT(s)",
        plan.data_page_count(),
        plan.ripas_entry_count(),
        if plan.ripas_entry_count() == 1 {
            "y"
        } else {
            "ies"
        },
        plan.recs().len(),
        plan.recs().iter().filter(|r| r.runnable()).count(),
        plan.rtt_count(),
    )?;
    Ok(())
}
