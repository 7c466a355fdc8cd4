//! `atoll token`: show, verify and appraise CCA attestation tokens.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use atoll_cca_token::appraise::{appraise, ReferenceValues, Status, TrustAnchors, Verdict};
use atoll_cca_token::json::load_token;
use atoll_cca_token::{CcaToken, CollectionForm, VerifyError};
use serde_json::{json, Value};

/// Arguments of `atoll token`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// Print a token's claims (nothing is verified).
    Show {
        /// The token (CBOR, tag 399 or 907).
        token: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify both signatures and the RAK binding.
    Verify {
        /// The token (CBOR, tag 399 or 907).
        token: PathBuf,
        /// The platform key: a JWK, or a trust-anchor file
        /// (`[{"instance-id", "implementation-id", "pkey"}]`).
        #[arg(long)]
        cpak: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify and compare the claims with reference values.
    Appraise {
        /// The token (CBOR, tag 399 or 907).
        token: PathBuf,
        /// Trust anchors (Veraison JSON, or a bare JWK).
        #[arg(long)]
        trust_anchors: PathBuf,
        /// Reference values (Veraison JSON; `atoll measure --json` output works).
        #[arg(long)]
        reference_values: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs the subcommand.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        TokenCommand::Show { token, json } => show(&load(token)?, *json),
        TokenCommand::Verify { token, cpak, json } => verify(&load(token)?, cpak, *json),
        TokenCommand::Appraise {
            token,
            trust_anchors,
            reference_values,
            json,
        } => {
            let anchors = TrustAnchors::load(trust_anchors).context("reading trust anchors")?;
            let refs =
                ReferenceValues::load(reference_values).context("reading reference values")?;
            appraise_cmd(&load(token)?, &anchors, &refs, *json)
        }
    }
}

fn load(path: &Path) -> anyhow::Result<CcaToken> {
    load_token(path).context("reading the token")
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(absent)".into(),
        other => other.to_string(),
    }
}

fn show(t: &CcaToken, as_json: bool) -> anyhow::Result<()> {
    let j = t.to_json();
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
        return Ok(());
    }
    let (p, r) = (&j["platform"], &j["realm"]);
    let form = match t.form {
        CollectionForm::Tag399 => "tag 399 (RMM 1.0 collection)",
        CollectionForm::Tag907 => "tag 907 (CMW collection)",
    };
    writeln!(
        out,
        "{:<24} {form}; signatures NOT verified (use `atoll token verify`)",
        "token:"
    )?;
    writeln!(out, "platform token ({}):", s(&p["algorithm"]))?;
    for (label, key) in [
        ("profile", "profile"),
        ("challenge", "challenge"),
        ("implementation id", "implementation-id"),
        ("instance id", "instance-id"),
        ("platform config", "platform-configuration"),
        ("verification service", "verification-service"),
        ("hash algorithm", "hash-algo-id"),
    ] {
        writeln!(out, "  {:<22} {}", format!("{label}:"), s(&p[key]))?;
    }
    let lc = &p["lifecycle"];
    let lcv = lc["value"].as_u64().unwrap_or_default();
    writeln!(
        out,
        "  {:<22} {lcv:#06x} ({})",
        "lifecycle:",
        s(&lc["state"])
    )?;
    let comps = p["sw-components"].as_array().cloned().unwrap_or_default();
    writeln!(out, "  {:<22} {}", "software components:", comps.len())?;
    for c in &comps {
        writeln!(
            out,
            "    - {}{}",
            c.get("component-type").map_or("(untyped)".into(), s),
            c.get("version")
                .map_or(String::new(), |v| format!(" version {}", s(v))),
        )?;
        writeln!(
            out,
            "      measurement: {}{}",
            s(&c["measurement-value"]),
            c.get("hash-algo-id")
                .map_or(String::new(), |a| format!(" ({})", s(a))),
        )?;
        writeln!(out, "      signer id:   {}", s(&c["signer-id"]))?;
    }
    if let Some(o) = p.get("other-claims") {
        writeln!(out, "  {:<22} {o}", "other claims:")?;
    }
    writeln!(out, "realm token ({}):", s(&r["algorithm"]))?;
    for (label, key) in [
        ("profile", "profile"),
        ("challenge", "challenge"),
        ("personalization value", "personalization-value"),
        ("measurement hash", "hash-algorithm"),
        ("RAK hash", "rak-hash-algorithm"),
        ("RIM", "initial-measurement"),
    ] {
        writeln!(out, "  {:<22} {}", format!("{label}:"), s(&r[key]))?;
    }
    for (i, rem) in r["extensible-measurements"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        writeln!(out, "  {:<22} {}", format!("REM{i}:"), s(rem))?;
    }
    writeln!(
        out,
        "  {:<22} {} ({})",
        "public key (RAK):",
        s(&r["public-key"]),
        s(&r["public-key-form"])
    )?;
    if let Some(o) = r.get("other-claims") {
        writeln!(out, "  {:<22} {o}", "other claims:")?;
    }
    Ok(())
}

fn verify(t: &CcaToken, cpak: &Path, as_json: bool) -> anyhow::Result<()> {
    let anchors = TrustAnchors::load(cpak).context("reading the platform key")?;
    let p = &t.platform.claims;
    let candidates: Vec<_> = anchors
        .matching(&p.instance_id, &p.implementation_id)
        .collect();
    if candidates.is_empty() {
        bail!(
            "no key in {} applies to this platform (instance id {})",
            cpak.display(),
            t.to_json()["platform"]["instance-id"]
                .as_str()
                .unwrap_or_default()
        );
    }
    // With several applicable keys, the platform signature passes if any verifies.
    let mut v = t.verification(&candidates[0].key);
    if v.platform_signature.is_err() {
        if let Some(ok) = candidates[1..]
            .iter()
            .map(|a| t.verification(&a.key))
            .find(|v| v.platform_signature.is_ok())
        {
            v = ok;
        }
    }
    let checks = [
        ("platform signature", &v.platform_signature),
        ("realm signature", &v.realm_signature),
        ("binding", &v.binding),
    ];
    let mut out = std::io::stdout().lock();
    if as_json {
        let one = |r: &Result<(), VerifyError>| match r {
            Ok(()) => json!({"ok": true}),
            Err(e) => json!({"ok": false, "error": e.to_string()}),
        };
        let j = json!({
            "platform-signature": one(&v.platform_signature),
            "realm-signature": one(&v.realm_signature),
            "binding": one(&v.binding),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        for (name, r) in checks {
            match r {
                Ok(()) => writeln!(out, "{:<19} ok", format!("{name}:"))?,
                Err(e) => writeln!(out, "{:<19} FAILED: {e}", format!("{name}:"))?,
            }
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(n, _)| *n)
        .collect();
    if !failed.is_empty() {
        bail!("token verification failed: {}", failed.join(", "));
    }
    Ok(())
}

fn appraise_cmd(
    t: &CcaToken,
    anchors: &TrustAnchors,
    refs: &ReferenceValues,
    as_json: bool,
) -> anyhow::Result<()> {
    let a = appraise(t, anchors, refs);
    let verdict = a.verdict();
    let mut out = std::io::stdout().lock();
    if as_json {
        let mut j = serde_json::to_value(&a)?;
        j["verdict"] = serde_json::to_value(verdict)?;
        writeln!(out, "{}", serde_json::to_string_pretty(&j)?)?;
    } else {
        for (name, c) in a.checks() {
            let st = match c.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::NotChecked => "not checked",
            };
            writeln!(out, "{:<26} {st:<11} {}", format!("{name}:"), c.detail)?;
        }
        writeln!(
            out,
            "verdict: {}",
            serde_json::to_value(verdict)?.as_str().unwrap_or_default()
        )?;
    }
    if verdict == Verdict::Contraindicated {
        let failed: Vec<&str> = a
            .checks()
            .iter()
            .filter(|(_, c)| c.status != Status::Pass)
            .map(|(n, _)| *n)
            .collect();
        bail!("appraisal failed: {}", failed.join(", "));
    }
    Ok(())
}
