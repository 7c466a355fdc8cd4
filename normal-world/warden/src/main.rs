//! `atoll-warden`: the daemon (`atoll-warden daemon`) and its CLI (every
//! other subcommand), which talk over a Unix socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use atoll_warden::backend::Binaries;
use atoll_warden::daemon::{serve, Warden};
use atoll_warden::protocol::{read_frame, write_frame, Request, Response};
use clap::{Parser, Subcommand};

/// Creates realms and deploys applications into them.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The daemon's socket.
    #[arg(long, global = true, env = "ATOLL_WARDEN_SOCKET")]
    socket: Option<PathBuf>,
    /// Print the daemon's answer as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon.
    Daemon {
        /// State directory (realms, disks, HES provisioning, state.json).
        #[arg(long)]
        state: PathBuf,
        /// Where atoll-hes, atoll-sim and atoll-app-manager are.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// Create a realm from a realm description and its metadata block.
    CreateRealm {
        /// Realm description (TOML).
        #[arg(long)]
        description: PathBuf,
        /// Vendor-signed metadata block (`atoll metadata create`).
        #[arg(long)]
        metadata: PathBuf,
        /// Name (default: the description's).
        #[arg(long)]
        name: Option<String>,
    },
    /// List realms.
    ListRealms,
    /// Show a realm, its CPAK and its applications' status.
    InspectRealm {
        /// Name or id.
        realm: String,
    },
    /// Start a realm.
    StartRealm {
        /// Name or id.
        realm: String,
    },
    /// Stop a realm (applications stop and their data is sealed).
    StopRealm {
        /// Name or id.
        realm: String,
    },
    /// Stop and start a realm.
    RebootRealm {
        /// Name or id.
        realm: String,
    },
    /// Remove a realm and its disks.
    DestroyRealm {
        /// Name or id.
        realm: String,
        /// Stop it first if it runs.
        #[arg(long)]
        force: bool,
    },
    /// Add an application (and its disk) to a realm.
    CreateApplication {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
        /// Application name.
        #[arg(long)]
        name: String,
        /// Version (image tag).
        #[arg(long)]
        version: String,
        /// Registry `host:port` (its RA-TLS listener).
        #[arg(long)]
        registry: String,
        /// Repository (default: the name).
        #[arg(long)]
        repository: Option<String>,
        /// Image partition, MiB.
        #[arg(long, default_value_t = 256)]
        image_size_mb: u64,
        /// Data partition, MiB.
        #[arg(long, default_value_t = 64)]
        data_size_mb: u64,
    },
    /// Start an application (installing it first when needed).
    StartApplication {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
        /// Application.
        #[arg(long)]
        name: String,
    },
    /// Stop an application.
    StopApplication {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
        /// Application.
        #[arg(long)]
        name: String,
    },
    /// Install another version of an application, keeping its data.
    UpdateApplication {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
        /// Application.
        #[arg(long)]
        name: String,
        /// New version.
        #[arg(long)]
        version: String,
    },
    /// Get an attestation token from the realm for a challenge.
    FetchAttestationToken {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
        /// 64 bytes, hex.
        #[arg(long)]
        challenge: String,
        /// Where to write the token (CBOR).
        #[arg(long)]
        output: PathBuf,
    },
    /// Show the realm's console log.
    Console {
        /// Realm name or id.
        #[arg(long)]
        realm: String,
    },
}

/// The socket the daemon and the CLI meet at when `--socket` is not given:
/// the user's runtime directory, or `/run` (root's). Never a shared
/// directory such as `/tmp`, where another user could answer as the
/// warden.
fn default_socket() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run"))
        .join("atoll-warden.sock")
}

fn call(socket: &Path, req: &Request) -> Result<Response> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "connecting to the warden at {} (is `atoll-warden daemon` running?)",
            socket.display()
        )
    })?;
    write_frame(&mut s, req)?;
    read_frame(&mut s)?.context("the warden closed the connection")
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    atoll_atomic_file::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn human(cmd: &Cmd, data: &serde_json::Value) -> Result<()> {
    match cmd {
        Cmd::ListRealms => {
            for r in data.as_array().into_iter().flatten() {
                println!(
                    "{}  {:<16} {:<8} RIM {}  apps: {}",
                    r["id"].as_str().unwrap_or(""),
                    r["name"].as_str().unwrap_or(""),
                    r["state"].as_str().unwrap_or(""),
                    r["rim"].as_str().unwrap_or(""),
                    r["apps"].as_array().map(|a| a.len()).unwrap_or(0)
                );
            }
        }
        Cmd::Console { .. } => print!("{}", data["console"].as_str().unwrap_or("")),
        Cmd::CreateRealm { .. } => println!("{}", data["id"].as_str().unwrap_or("")),
        _ => println!("{}", serde_json::to_string_pretty(data)?),
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if let Cmd::Daemon { state, bin_dir } = &cli.cmd {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "info".into()),
            )
            .with_target(false)
            .init();
        let bins = Binaries::find(bin_dir.as_deref())?;
        let warden = Arc::new(Warden::open(state, bins)?);
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone())?;
        }
        let socket = cli.socket.clone().unwrap_or_else(default_socket);
        tracing::info!(
            "atoll-warden {} on {}",
            env!("CARGO_PKG_VERSION"),
            socket.display()
        );
        return serve(warden, &socket, stop);
    }
    let socket = cli.socket.clone().unwrap_or_else(default_socket);
    let req = match &cli.cmd {
        Cmd::Daemon { .. } => unreachable!("handled above"),
        Cmd::CreateRealm {
            description,
            metadata,
            name,
        } => Request::CreateRealm {
            name: name.clone(),
            description: std::path::absolute(description)?,
            metadata: std::path::absolute(metadata)?,
        },
        Cmd::ListRealms => Request::ListRealms,
        Cmd::InspectRealm { realm } => Request::InspectRealm {
            realm: realm.clone(),
        },
        Cmd::StartRealm { realm } => Request::StartRealm {
            realm: realm.clone(),
        },
        Cmd::StopRealm { realm } => Request::StopRealm {
            realm: realm.clone(),
        },
        Cmd::RebootRealm { realm } => Request::RebootRealm {
            realm: realm.clone(),
        },
        Cmd::DestroyRealm { realm, force } => Request::DestroyRealm {
            realm: realm.clone(),
            force: *force,
        },
        Cmd::CreateApplication {
            realm,
            name,
            version,
            registry,
            repository,
            image_size_mb,
            data_size_mb,
        } => Request::CreateApplication {
            realm: realm.clone(),
            name: name.clone(),
            version: version.clone(),
            registry: registry.clone(),
            repository: repository.clone(),
            image_size_mb: *image_size_mb,
            data_size_mb: *data_size_mb,
        },
        Cmd::StartApplication { realm, name } => Request::StartApplication {
            realm: realm.clone(),
            name: name.clone(),
        },
        Cmd::StopApplication { realm, name } => Request::StopApplication {
            realm: realm.clone(),
            name: name.clone(),
        },
        Cmd::UpdateApplication {
            realm,
            name,
            version,
        } => Request::UpdateApplication {
            realm: realm.clone(),
            name: name.clone(),
            version: version.clone(),
        },
        Cmd::FetchAttestationToken {
            realm, challenge, ..
        } => Request::FetchAttestationToken {
            realm: realm.clone(),
            challenge: challenge.clone(),
        },
        Cmd::Console { realm } => Request::Console {
            realm: realm.clone(),
        },
    };
    let resp = call(&socket, &req)?;
    if !resp.ok {
        bail!("{}", resp.error.unwrap_or_else(|| "failed".into()));
    }
    if let Cmd::FetchAttestationToken { output, .. } = &cli.cmd {
        let token = hex::decode(resp.data["token"].as_str().unwrap_or_default())?;
        write_atomic(output, &token)?;
        if !cli.json {
            println!("wrote {} ({} bytes)", output.display(), token.len());
            return Ok(());
        }
    }
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&resp.data)?);
        return Ok(());
    }
    human(&cli.cmd, &resp.data)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atoll-warden: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
