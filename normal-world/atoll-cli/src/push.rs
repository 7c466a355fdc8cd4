//! `atoll push`: push an OCI image layout (an image, or a signature
//! artifact) to a registry.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;

/// `atoll push` arguments.
#[derive(Parser)]
pub struct Args {
    /// The OCI image layout directory (`atoll image build`, `atoll sign image`).
    layout: PathBuf,
    /// Registry `host:port`.
    #[arg(long)]
    registry: String,
    /// Repository to push to.
    #[arg(long)]
    repository: String,
    /// CA certificate(s) (PEM) the registry's TLS certificate chains to.
    #[arg(long, value_name = "PEM", conflicts_with = "plain_http")]
    ca: Option<PathBuf>,
    /// Plain HTTP (development registries only).
    #[arg(long)]
    plain_http: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `atoll push`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let client = match (&args.ca, args.plain_http) {
        (Some(ca), false) => {
            let pem = std::fs::read(ca).with_context(|| format!("{}", ca.display()))?;
            atoll_oci_client::Client::tls_with_roots(&args.registry, &pem)?
        }
        (None, true) => atoll_oci_client::Client::plain(&args.registry)?,
        _ => bail!("give --ca PEM (TLS) or --plain-http"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pushed = rt
        .block_on(client.push_layout(&args.layout, &args.repository))
        .with_context(|| format!("pushing {}", args.layout.display()))?;
    if args.json {
        let j: Vec<_> = pushed
            .iter()
            .map(|(d, t)| serde_json::json!({"digest": d, "tag": t}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&j)?);
    } else {
        for (digest, tag) in &pushed {
            let reference = tag.as_deref().map(|t| format!(":{t}")).unwrap_or_default();
            println!(
                "pushed {}/{}{reference} {digest}",
                args.registry, args.repository
            );
        }
    }
    Ok(())
}
