//! `atoll sign`: a CA for vendors, and detached signatures of OCI images.
//!
//! `keygen --ca-root DIR` makes the root CA (`root-key.pem`, `root.pem`);
//! `vendor` certifies a vendor key with it (`vendor.pem` key,
//! `vendor-cert.pem`, `vendor-chain.pem` = vendor then root); `image` signs
//! an OCI manifest into a signature artifact written as an OCI image layout
//! (push it with e.g. `skopeo copy oci:DIR docker://...`); `verify` checks
//! such an artifact against trusted roots. See the `atoll-signing` crate.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use atoll_signing::cert::{self, ValidityPeriod};
use atoll_signing::{keys, layout, SignatureArtifact};
use serde_json::json;

/// Arguments of `atoll sign`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Create a root CA: DIR/root-key.pem (private, 0600) and DIR/root.pem
    /// (self-signed certificate, the trust anchor realms embed).
    Keygen {
        /// Output directory (created if needed).
        #[arg(long = "ca-root", value_name = "DIR")]
        ca_root: PathBuf,
        /// The CA's common name.
        #[arg(long, default_value = "Atoll Root CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Create a vendor key and certificate signed by the root CA:
    /// OUT/vendor.pem (private), OUT/vendor-cert.pem, OUT/vendor-chain.pem.
    Vendor {
        /// The CA directory (root-key.pem and root.pem).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The vendor's name (certificate common name).
        #[arg(long)]
        name: String,
        /// Output directory (created if needed).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign an OCI manifest: writes the signature artifact (manifest,
    /// empty config, envelope) as an OCI image layout.
    Image {
        /// Vendor private key (P-384 PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Vendor certificate chain (PEM, vendor first; the root may follow).
        #[arg(long)]
        chain: PathBuf,
        /// The OCI manifest (or index) to sign, exactly as the registry
        /// serves it.
        #[arg(long)]
        manifest: PathBuf,
        /// Signed annotation KEY=VALUE (repeatable).
        #[arg(long = "annotation", value_name = "KEY=VALUE")]
        annotations: Vec<String>,
        /// Output directory (OCI image layout).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a signature artifact against trusted roots; exits non-zero if
    /// it does not verify.
    Verify {
        /// Trusted root certificate(s) (PEM; repeatable).
        #[arg(long = "root", required = true)]
        roots: Vec<PathBuf>,
        /// The signed OCI manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// The signature artifact (OCI image layout from `atoll sign image`).
        #[arg(long)]
        signature: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `atoll sign <command>`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Cmd::Keygen {
            ca_root,
            name,
            days,
            force,
        } => keygen(ca_root, name, *days, *force),
        Cmd::Vendor {
            ca,
            name,
            output,
            days,
            force,
        } => vendor(ca, name, output, *days, *force),
        Cmd::Image {
            key,
            chain,
            manifest,
            annotations,
            output,
            json,
        } => image(key, chain, manifest, annotations, output, *json),
        Cmd::Verify {
            roots,
            manifest,
            signature,
            json,
        } => verify(roots, manifest, signature, *json),
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<x509_cert::Certificate>> {
    cert::from_pem(&read_text(path)?).with_context(|| format!("{}", path.display()))
}

fn check_absent(paths: &[&Path], force: bool) -> anyhow::Result<()> {
    for p in paths {
        if !force && p.exists() {
            bail!("{} exists (use --force to overwrite)", p.display());
        }
    }
    Ok(())
}

fn keygen(dir: &Path, name: &str, days: u32, force: bool) -> anyhow::Result<()> {
    let key_path = dir.join("root-key.pem");
    let cert_path = dir.join("root.pem");
    check_absent(&[&key_path, &cert_path], force)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = keys::generate();
    let root = cert::create_root(&key, name, ValidityPeriod::days_from_now(days))?;
    write_file(&key_path, keys::signing_key_to_pem(&key)?.as_bytes(), true)?;
    write_file(
        &cert_path,
        cert::to_pem(std::slice::from_ref(&root))?.as_bytes(),
        false,
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} (private) and {}",
        key_path.display(),
        cert_path.display()
    )?;
    writeln!(out, "root CA:     {}", cert::subject(&root))?;
    writeln!(out, "fingerprint: sha256:{}", cert::fingerprint(&root))?;
    Ok(())
}

fn vendor(ca: &Path, name: &str, dir: &Path, days: u32, force: bool) -> anyhow::Result<()> {
    let ca_key_path = ca.join("root-key.pem");
    let ca_key = keys::signing_key_from_pem(&read_text(&ca_key_path)?)
        .with_context(|| format!("{}", ca_key_path.display()))?;
    let ca_cert_path = ca.join("root.pem");
    let ca_cert = read_certs(&ca_cert_path)?.swap_remove(0);
    let key_path = dir.join("vendor.pem");
    let cert_path = dir.join("vendor-cert.pem");
    let chain_path = dir.join("vendor-chain.pem");
    check_absent(&[&key_path, &cert_path, &chain_path], force)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = keys::generate();
    let cert = cert::issue_vendor(
        &ca_key,
        &ca_cert,
        key.verifying_key(),
        name,
        ValidityPeriod::days_from_now(days),
    )
    .with_context(|| format!("issuing with {}", ca_cert_path.display()))?;
    write_file(&key_path, keys::signing_key_to_pem(&key)?.as_bytes(), true)?;
    write_file(
        &cert_path,
        cert::to_pem(std::slice::from_ref(&cert))?.as_bytes(),
        false,
    )?;
    write_file(
        &chain_path,
        cert::to_pem(&[cert.clone(), ca_cert.clone()])?.as_bytes(),
        false,
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "wrote {} (private), {} and {}",
        key_path.display(),
        cert_path.display(),
        chain_path.display()
    )?;
    writeln!(out, "vendor:      {}", cert::subject(&cert))?;
    writeln!(out, "issuer:      {}", cert::subject(&ca_cert))?;
    writeln!(out, "fingerprint: sha256:{}", cert::fingerprint(&cert))?;
    Ok(())
}

fn image(
    key: &Path,
    chain: &Path,
    manifest: &Path,
    annotations: &[String],
    output: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let signing_key = keys::signing_key_from_pem(&read_text(key)?)
        .with_context(|| format!("{}", key.display()))?;
    let certs = read_certs(chain)?;
    let manifest_bytes = read_bytes(manifest)?;
    let mut ann = BTreeMap::new();
    for a in annotations {
        let Some((k, v)) = a.split_once('=') else {
            bail!("annotation {a:?} is not KEY=VALUE");
        };
        ann.insert(k.to_string(), v.to_string());
    }
    let artifact = SignatureArtifact::sign(&manifest_bytes, &signing_key, &certs, ann)
        .with_context(|| format!("signing {}", manifest.display()))?;
    layout::write(output, &artifact)?;
    let subject = atoll_signing::artifact::manifest_subject(&manifest_bytes)?;
    let mut out = std::io::stdout().lock();
    if json {
        let j = json!({
            "subject": subject.digest,
            "subject_media_type": subject.media_type,
            "vendor": cert::subject(&certs[0]),
            "layout": output.display().to_string(),
            "manifest": artifact.descriptor.digest().to_string(),
            "manifest_size": artifact.descriptor.size(),
            "artifact_type": atoll_signing::ARTIFACT_TYPE,
            "config": artifact.config.descriptor.digest().to_string(),
            "envelope": artifact.envelope.descriptor.digest().to_string(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }
    writeln!(out, "wrote OCI layout {}", output.display())?;
    writeln!(
        out,
        "signed:    {} ({})",
        subject.digest, subject.media_type
    )?;
    writeln!(out, "vendor:    {}", cert::subject(&certs[0]))?;
    writeln!(
        out,
        "manifest:  {} ({} bytes, artifactType {})",
        artifact.descriptor.digest(),
        artifact.descriptor.size(),
        atoll_signing::ARTIFACT_TYPE
    )?;
    writeln!(out, "config:    {}", artifact.config.descriptor.digest())?;
    writeln!(out, "envelope:  {}", artifact.envelope.descriptor.digest())?;
    Ok(())
}

fn verify(roots: &[PathBuf], manifest: &Path, signature: &Path, json: bool) -> anyhow::Result<()> {
    let mut trusted = Vec::new();
    for r in roots {
        trusted.extend(read_certs(r)?);
    }
    let manifest_bytes = read_bytes(manifest)?;
    let result = layout::read(signature)
        .and_then(|a| a.verify(&manifest_bytes, &trusted, SystemTime::now()));
    let mut out = std::io::stdout().lock();
    match (&result, json) {
        (Ok(v), true) => {
            let j = json!({
                "valid": true,
                "manifest": v.subject.digest,
                "media_type": v.subject.media_type,
                "vendor": v.vendor(),
                "vendor_fingerprint": format!("sha256:{}", cert::fingerprint(&v.chain[0])),
                "root": cert::subject(&trusted[v.root_index]),
                "annotations": v.annotations,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        }
        (Err(e), true) => {
            let j = json!({ "valid": false, "error": e.to_string() });
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        }
        (Ok(v), false) => {
            writeln!(out, "{}: OK: {}", manifest.display(), v.subject.digest)?;
            writeln!(out, "vendor:  {}", v.vendor())?;
            writeln!(out, "root:    {}", cert::subject(&trusted[v.root_index]))?;
            for (k, val) in &v.annotations {
                writeln!(out, "annotation {k}={val}")?;
            }
        }
        (Err(_), false) => {}
    }
    result.map(|_| ()).with_context(|| {
        format!(
            "{}: signature {} does not verify",
            manifest.display(),
            signature.display()
        )
    })
}

/// Replaces `path` with `data` atomically and durably; `secret` files are
/// mode 0600 from the start.
fn write_file(path: &Path, data: &[u8], secret: bool) -> anyhow::Result<()> {
    if secret {
        atoll_atomic_file::write_secret(path, data)
    } else {
        atoll_atomic_file::write(path, data)
    }
    .with_context(|| format!("writing {}", path.display()))
}
