//! `atoll metadata`: make, check and show Islet realm metadata blocks.
//!
//! A vendor writes a small YAML file (realm id, version, SVN, RIM), signs it
//! with its P-384 key into the 432-byte block the host passes to
//! `RMI_ISLET_REALM_SET_METADATA`, and anyone can verify or dump a block.
//! The RIM can come straight from `atoll measure` of the realm description
//! (`--rim-from`), so the block always names the realm that will really be
//! built.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use atoll_metadata::config::RealmConfig;
use atoll_metadata::{
    pem, Metadata, MetadataError, PublicKey, Trust, TrustAnchor, VerifiedMetadata,
};
use atoll_realm_description::{BuildPlan, DescriptionError, RealmDescription};
use serde_json::{json, Value};

/// Arguments of `atoll metadata`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Build and sign a metadata block from a YAML realm configuration.
    Create {
        /// Realm configuration (YAML): realm_id, version, svn, rim, hash_algo.
        #[arg(long)]
        config: PathBuf,
        /// Vendor private key (P-384, PKCS#8 or SEC1 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Take the RIM and hash algorithm from measuring this realm
        /// description (TOML) instead of the configuration's `rim`.
        #[arg(long, value_name = "REALM_TOML")]
        rim_from: Option<PathBuf>,
        /// Where to write the 432-byte block (written atomically).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Check a block's format, fields and signature; exits non-zero if bad.
    Verify {
        /// The block.
        block: PathBuf,
        /// Also require the block to be signed by this vendor key (public
        /// or private PEM). Without it only the embedded key is checked.
        #[arg(long)]
        vendor_key: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a block's fields and whether its signature verifies.
    Dump {
        /// The block.
        block: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate a P-384 vendor key pair (PKCS#8 private, SPKI public PEM).
    Keygen {
        /// Private key output; created with mode 0600.
        #[arg(short, long)]
        output: PathBuf,
        /// Public key output (default: the private key path with `.pub.pem`).
        #[arg(long)]
        public: Option<PathBuf>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `atoll metadata <command>`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Cmd::Create {
            config,
            key,
            rim_from,
            output,
        } => create(config, key, rim_from.as_deref(), output),
        Cmd::Verify {
            block,
            vendor_key,
            json,
        } => verify(block, vendor_key.as_deref(), *json),
        Cmd::Dump { block, json } => dump(block, *json),
        Cmd::Keygen {
            output,
            public,
            force,
        } => keygen(output, public.as_deref(), *force),
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn create(config: &Path, key: &Path, rim_from: Option<&Path>, output: &Path) -> anyhow::Result<()> {
    let cfg = RealmConfig::from_yaml(&read_text(config)?)
        .with_context(|| format!("{}", config.display()))?;
    let signing_key = pem::signing_key_from_pem(&read_text(key)?)
        .with_context(|| format!("{}", key.display()))?;
    let measured = match rim_from {
        Some(desc) => Some(measure(desc)?),
        None => None,
    };
    let fields = cfg
        .to_metadata(measured.as_ref().map(|m| (m.algo, m.rim())))
        .with_context(|| format!("{}", config.display()))?;
    let block = atoll_metadata::sign(&fields, &signing_key);
    // Check what we are about to ship with the same code the RMM runs.
    atoll_metadata::verify(&block, TrustAnchor::VendorKey(signing_key.verifying_key()))
        .context("the block just signed does not verify (bug)")?;
    write_atomic(output, &block, false)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wrote {} ({} bytes)", output.display(), block.len())?;
    writeln!(out, "realm id:       {}", fields.realm_id)?;
    writeln!(out, "version:        {}", fields.version)?;
    writeln!(out, "svn:            {}", fields.svn)?;
    writeln!(
        out,
        "RIM:            {} {}{}",
        fields.rim.algo().name(),
        hex::encode(fields.rim.digest()),
        if rim_from.is_some() {
            " (measured)"
        } else {
            ""
        }
    )?;
    Ok(())
}

/// The RIM of a realm description, as `atoll measure` computes it.
fn measure(path: &Path) -> anyhow::Result<atoll_measure::RealmMeasurement> {
    let in_file = |e: DescriptionError| match e {
        DescriptionError::Io { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("{}", path.display())),
    };
    let desc = RealmDescription::load(path).map_err(in_file)?;
    let plan = BuildPlan::new(&desc).map_err(in_file)?;
    atoll_measure::measure(&plan).with_context(|| format!("measuring {}", path.display()))
}

fn read_block(path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn trust_name(t: Trust) -> &'static str {
    match t {
        Trust::EmbeddedKeyOnly => "embedded-key-only",
        Trust::VendorKey => "vendor-key",
    }
}

fn verify(path: &Path, vendor_key: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let bytes = read_block(path)?;
    let vendor = match vendor_key {
        Some(p) => Some(
            pem::verifying_key_from_pem(&read_text(p)?)
                .with_context(|| format!("{}", p.display()))?,
        ),
        None => None,
    };
    let anchor = match &vendor {
        Some(k) => TrustAnchor::VendorKey(k),
        None => TrustAnchor::EmbeddedKeyOnly,
    };
    let result = atoll_metadata::verify(&bytes, anchor);
    let mut out = std::io::stdout().lock();
    match (&result, json) {
        (Ok(v), true) => {
            let mut j = fields_json(&v.metadata, &v.public_key);
            j["valid"] = json!(true);
            j["trust"] = json!(trust_name(v.trust));
            j["signature_low_s"] = json!(v.low_s);
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        }
        (Err(e), true) => {
            let j = json!({ "valid": false, "error": e.to_string() });
            writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        }
        (Ok(v), false) => {
            writeln!(
                out,
                "{}: OK: realm {:?} version {} svn {}",
                path.display(),
                v.metadata.realm_id.as_str(),
                v.metadata.version,
                v.metadata.svn
            )?;
            match v.trust {
                Trust::VendorKey => writeln!(out, "trust: signed by the given vendor key")?,
                Trust::EmbeddedKeyOnly => writeln!(
                    out,
                    "trust: signed by its embedded key only; who holds that key was not \
                     checked (pass --vendor-key)"
                )?,
            }
        }
        (Err(_), false) => {}
    }
    result
        .map(|_| ())
        .with_context(|| format!("{}: verification failed", path.display()))
}

fn fields_json(m: &Metadata, public_key: &PublicKey) -> Value {
    json!({
        "fmt_version": ipc_schema::islet::METADATA_FMT_VERSION,
        "realm_id": m.realm_id.as_str(),
        "version": { "major": m.version.major, "minor": m.version.minor, "patch": m.version.patch },
        "svn": m.svn,
        "hash_algo": m.rim.algo().name(),
        "rim": hex::encode(m.rim.digest()),
        "public_key": hex::encode(public_key.0),
    })
}

fn dump(path: &Path, json: bool) -> anyhow::Result<()> {
    let bytes = read_block(path)?;
    let parsed = atoll_metadata::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let check: Result<VerifiedMetadata, MetadataError> =
        atoll_metadata::verify(&bytes, TrustAnchor::EmbeddedKeyOnly);
    let mut out = std::io::stdout().lock();
    if json {
        let mut j = fields_json(&parsed.metadata, &parsed.public_key);
        j["signature"] = json!(hex::encode(parsed.signature));
        j["signature_valid"] = json!(check.is_ok());
        if let Err(e) = &check {
            j["signature_error"] = json!(e.to_string());
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }
    let m = &parsed.metadata;
    writeln!(
        out,
        "format version: {}",
        ipc_schema::islet::METADATA_FMT_VERSION
    )?;
    writeln!(out, "realm id:       {}", m.realm_id)?;
    writeln!(out, "version:        {}", m.version)?;
    writeln!(out, "svn:            {}", m.svn)?;
    writeln!(out, "hash algorithm: {}", m.rim.algo().name())?;
    writeln!(out, "RIM:            {}", hex::encode(m.rim.digest()))?;
    writeln!(out, "public key:     {}", hex::encode(parsed.public_key.0))?;
    writeln!(out, "signature:      {}", hex::encode(parsed.signature))?;
    match check {
        Ok(_) => writeln!(out, "signature ok:   yes (against the embedded key)")?,
        Err(e) => writeln!(out, "signature ok:   NO: {e}")?,
    }
    Ok(())
}

fn keygen(private: &Path, public: Option<&Path>, force: bool) -> anyhow::Result<()> {
    let public = public
        .map(Path::to_path_buf)
        .unwrap_or_else(|| private.with_extension("pub.pem"));
    if private == public {
        bail!("the private and public key paths are the same");
    }
    for p in [private, public.as_path()] {
        if !force && p.exists() {
            bail!("{} exists (use --force to overwrite)", p.display());
        }
    }
    let key = p384::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let private_pem = pem::signing_key_to_pem(&key)?;
    let public_pem = pem::verifying_key_to_pem(key.verifying_key())?;
    write_atomic(private, private_pem.as_bytes(), true)?;
    write_atomic(&public, public_pem.as_bytes(), false)?;
    println!(
        "wrote {} (private) and {} (public)",
        private.display(),
        public.display()
    );
    Ok(())
}

/// Replaces `path` with `data` atomically and durably; `secret` files are
/// mode 0600 from the start.
fn write_atomic(path: &Path, data: &[u8], secret: bool) -> anyhow::Result<()> {
    if secret {
        atoll_atomic_file::write_secret(path, data)
    } else {
        atoll_atomic_file::write(path, data)
    }
    .with_context(|| format!("writing {}", path.display()))
}
