//! `atoll-rsi`: what a realm user runs to ask the RMM about the realm.
//!
//! ```text
//! atoll-rsi [--sim SOCKET] [--json] version
//! atoll-rsi [--sim SOCKET] [--json] measurement read N
//! atoll-rsi [--sim SOCKET] [--json] measurement extend N HEX
//! atoll-rsi [--sim SOCKET] [--json] attest --challenge HEX [-o token.cbor]
//! atoll-rsi [--json] verify token.cbor --cpak JWK
//! atoll-rsi [--sim SOCKET] [--json] sealing-key [--flags rim,realm-id,svn,key-m] [--svn N]
//! ```
//!
//! In simulation the realm is reached through `atoll-sim`'s socket
//! (`--sim`, default `/tmp/atoll-realm.sock`, or `ATOLL_SIM_SOCKET`).
//! Human output by default, JSON with `--json`; non-zero exit on failure.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use atoll_rsi_client::sim::SimBackend;
use atoll_rsi_client::{sealing_flags, RsiClient, RsiVersion};
use clap::{Parser, Subcommand};
use serde_json::json;

/// Asks the RMM about this realm through RSI.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The simulator's vCPU socket (simulation only).
    #[arg(
        long,
        global = true,
        env = "ATOLL_SIM_SOCKET",
        default_value = "/tmp/atoll-realm.sock"
    )]
    sim: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The RSI version the RMM implements.
    Version,
    /// Read or extend the realm's measurements.
    Measurement {
        #[command(subcommand)]
        op: MeasurementOp,
    },
    /// Get an attestation token for a challenge.
    Attest {
        /// The challenge, 32 to 64 bytes in hex (zero-padded to 64).
        #[arg(long)]
        challenge: String,
        /// Write the token (CBOR) here instead of printing it in hex.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify a token's signatures and binding against the platform's CPAK.
    Verify {
        /// The token (CBOR).
        token: PathBuf,
        /// The CPAK as a JWK: a file, or the JSON itself.
        #[arg(long)]
        cpak: String,
    },
    /// Derive the realm sealing key (RSI_ISLET_REALM_SEALING_KEY).
    SealingKey {
        /// Comma-separated: key-m (measurement-bound VHUK), rim, realm-id,
        /// svn; or a number.
        #[arg(long, default_value = "")]
        flags: String,
        /// The SVN to derive with (used with the `svn` flag).
        #[arg(long, default_value_t = 0)]
        svn: u64,
    },
}

#[derive(Subcommand)]
enum MeasurementOp {
    /// Read slot N (0 = RIM, 1..=4 = REMs).
    Read {
        /// Slot.
        index: u64,
    },
    /// Extend REM N with up to 64 bytes.
    Extend {
        /// Slot, 1..=4.
        index: u64,
        /// The data, in hex.
        data: String,
    },
}

fn parse_flags(s: &str) -> Result<u64> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let mut flags = 0;
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        flags |= match name {
            "key-m" => sealing_flags::KEY_M,
            "rim" => sealing_flags::RIM,
            "realm-id" => sealing_flags::REALM_ID,
            "svn" => sealing_flags::SVN,
            other => bail!("unknown sealing-key flag {other:?} (key-m, rim, realm-id, svn)"),
        };
    }
    Ok(flags)
}

fn connect(cli: &Cli) -> Result<RsiClient<SimBackend>> {
    let backend = SimBackend::connect(&cli.sim)
        .with_context(|| format!("connecting to the simulator at {}", cli.sim.display()))?;
    Ok(RsiClient::new(backend))
}

fn version_str(v: u64) -> String {
    let (major, minor) = RsiVersion::split(v);
    format!("{major}.{minor}")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Version => {
            let v = connect(&cli)?.version().context("RSI_VERSION")?;
            if cli.json {
                println!(
                    "{}",
                    json!({"lower": version_str(v.lower), "higher": version_str(v.higher)})
                );
            } else {
                println!(
                    "RSI {} (the RMM implements {} to {})",
                    version_str(v.lower),
                    version_str(v.lower),
                    version_str(v.higher)
                );
            }
        }
        Command::Measurement {
            op: MeasurementOp::Read { index },
        } => {
            let mut rsi = connect(&cli)?;
            let algo = rsi.realm_config().context("RSI_REALM_CONFIG")?.hash_algo;
            let value = rsi
                .measurement_read(*index)
                .with_context(|| format!("reading measurement {index}"))?;
            let digest = hex::encode(&value[..algo.digest_len()]);
            if cli.json {
                println!(
                    "{}",
                    json!({"index": index, "algorithm": algo.name(), "value": digest})
                );
            } else {
                let name = if *index == 0 { "RIM" } else { "REM" };
                println!("{name} {index} ({}): {digest}", algo.name());
            }
        }
        Command::Measurement {
            op: MeasurementOp::Extend { index, data },
        } => {
            let bytes = hex::decode(data).context("data is not hex")?;
            connect(&cli)?
                .measurement_extend(*index, &bytes)
                .with_context(|| format!("extending measurement {index}"))?;
            if cli.json {
                println!("{}", json!({"index": index, "extended": bytes.len()}));
            } else {
                println!("extended REM {index} with {} bytes", bytes.len());
            }
        }
        Command::Attest { challenge, output } => {
            let challenge = hex::decode(challenge).context("challenge is not hex")?;
            let mut sdk = atoll_sdk::Sdk::new(connect(&cli)?);
            let token = sdk.attest(&challenge).context("getting a token")?;
            match output {
                Some(path) => {
                    std::fs::write(path, &token)
                        .with_context(|| format!("writing {}", path.display()))?;
                    if cli.json {
                        println!(
                            "{}",
                            json!({"file": path.display().to_string(), "bytes": token.len()})
                        );
                    } else {
                        println!("wrote {} bytes to {}", token.len(), path.display());
                    }
                }
                None if cli.json => println!("{}", json!({"token": hex::encode(&token)})),
                None => println!("{}", hex::encode(&token)),
            }
        }
        Command::Verify { token, cpak } => {
            let bytes =
                std::fs::read(token).with_context(|| format!("reading {}", token.display()))?;
            let jwk = if cpak.trim_start().starts_with('{') {
                cpak.clone()
            } else {
                std::fs::read_to_string(cpak).with_context(|| format!("reading {cpak}"))?
            };
            let key = atoll_sdk::cpak_from_jwk(&jwk)?;
            let decoded = atoll_sdk::verify(&bytes, &key).context("token does not verify")?;
            let realm = &decoded.realm.claims;
            if cli.json {
                println!(
                    "{}",
                    json!({
                        "verified": true,
                        "challenge": hex::encode(realm.challenge),
                        "rim": hex::encode(&realm.rim),
                    })
                );
            } else {
                println!("verified: platform signature, realm signature, RAK binding");
                println!("challenge: {}", hex::encode(realm.challenge));
                println!("RIM:       {}", hex::encode(&realm.rim));
            }
        }
        Command::SealingKey { flags, svn } => {
            let flags = parse_flags(flags)?;
            let key = connect(&cli)?
                .sealing_key(flags, *svn)
                .context("RSI_ISLET_REALM_SEALING_KEY")?;
            if cli.json {
                println!(
                    "{}",
                    json!({"flags": flags, "svn": svn, "key": hex::encode(key.0)})
                );
            } else {
                println!("{}", hex::encode(key.0));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_flags;
    use atoll_rsi_client::sealing_flags;

    #[test]
    fn flags() {
        assert_eq!(parse_flags("").unwrap(), 0);
        assert_eq!(parse_flags("6").unwrap(), 6);
        assert_eq!(
            parse_flags("rim, svn").unwrap(),
            sealing_flags::RIM | sealing_flags::SVN
        );
        assert_eq!(parse_flags("key-m,realm-id").unwrap(), 0b101);
        assert!(parse_flags("rim,bogus").is_err());
    }
}
