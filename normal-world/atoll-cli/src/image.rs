//! `atoll image build`: package a directory as a signed-application image.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::json;

/// `atoll image` arguments.
#[derive(Parser)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a reproducible OCI image layout from directories (one layer
    /// each), ready for `atoll sign image` and `atoll push`.
    Build {
        /// Directory to pack as a layer (repeatable, in layer order).
        #[arg(long = "layer", value_name = "DIR", required = true)]
        layers: Vec<PathBuf>,
        /// Entrypoint argument (repeatable, in order).
        #[arg(long = "entrypoint", value_name = "ARG")]
        entrypoint: Vec<String>,
        /// Cmd argument (repeatable, in order).
        #[arg(long = "cmd", value_name = "ARG")]
        cmd: Vec<String>,
        /// Environment variable KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Working directory.
        #[arg(long)]
        workdir: Option<String>,
        /// Volume: a directory whose contents persist (repeatable).
        #[arg(long = "volume", value_name = "PATH")]
        volumes: Vec<String>,
        /// Version annotation; also the default tag.
        #[arg(long)]
        version: String,
        /// Tag in the layout's index.json (default: the version).
        #[arg(long)]
        tag: Option<String>,
        /// gzip level 0-9.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
        compression: u32,
        /// Output OCI image layout directory.
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `atoll image <command>`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let Cmd::Build {
        layers,
        entrypoint,
        cmd,
        env,
        workdir,
        volumes,
        version,
        tag,
        compression,
        output,
        json,
    } = &args.cmd;
    for e in env {
        anyhow::ensure!(e.contains('='), "environment entry {e:?} is not KEY=VALUE");
    }
    for v in volumes {
        anyhow::ensure!(v.starts_with('/'), "volume {v:?} is not an absolute path");
    }
    anyhow::ensure!(
        !entrypoint.is_empty() || !cmd.is_empty(),
        "give --entrypoint or --cmd: the image must say what it runs"
    );
    let spec = atoll_oci_image::ImageSpec {
        entrypoint: entrypoint.clone(),
        cmd: cmd.clone(),
        env: env.clone(),
        working_dir: workdir.clone(),
        volumes: volumes.clone(),
        version: Some(version.clone()),
        compression: *compression,
        ..atoll_oci_image::ImageSpec::for_host()
    };
    let tag = tag.as_deref().unwrap_or(version);
    let dirs: Vec<&std::path::Path> = layers.iter().map(|p| p.as_path()).collect();
    let built = atoll_oci_image::build(&dirs, &spec, output, tag)
        .with_context(|| format!("building {}", output.display()))?;
    let manifest_path = output
        .join("blobs/sha256")
        .join(built.manifest_digest.trim_start_matches("sha256:"));
    let mut out = std::io::stdout().lock();
    if *json {
        let j = json!({
            "layout": output.display().to_string(),
            "tag": tag,
            "manifest": built.manifest_digest,
            "manifest_path": manifest_path.display().to_string(),
            "config": built.config_digest,
            "layers": built.layers.iter().map(|(d, diff)| json!({"digest": d, "diff_id": diff})).collect::<Vec<_>>(),
            "bytes": built.total_bytes,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }
    writeln!(out, "wrote OCI layout {} (tag {tag})", output.display())?;
    writeln!(out, "manifest:  {}", built.manifest_digest)?;
    writeln!(out, "           {}", manifest_path.display())?;
    writeln!(out, "config:    {}", built.config_digest)?;
    for (d, diff) in &built.layers {
        writeln!(out, "layer:     {d} (diff_id {diff})")?;
    }
    writeln!(out, "bytes:     {}", built.total_bytes)?;
    Ok(())
}
