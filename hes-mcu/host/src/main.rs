//! `atoll-hes`: the HES as its own process. See the crate doc of `atoll_hes`.

use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use anyhow::{bail, Context, Result};
use atoll_hes::provision::{self, Origin};
use atoll_hes::server;
use atoll_hes_mcu::token::LIFECYCLE_SECURED;
use atoll_hes_mcu::{Hes, PlatformIdentity};
use clap::Parser;
use ipc_schema::hes::BoundedStr;
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};
use tracing::info;

/// Runs the HES (root of trust: CPAK, RAK, VHUKs, measured boot, platform
/// token) as a process serving the HES link protocol.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Device secrets file (HUK, GUK). Created with mode 0600 on first start;
    /// refused later if group/other can access it or its size is wrong.
    /// Default: $XDG_STATE_HOME/atoll-hes/provision.bin
    /// (~/.local/state/atoll-hes/provision.bin).
    #[arg(long, value_name = "PATH")]
    provision: Option<PathBuf>,

    /// Unix socket to serve on. Default: $XDG_RUNTIME_DIR/atoll-hes.sock,
    /// else /tmp/atoll-hes.sock.
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,

    /// Also serve on TCP 127.0.0.1:PORT (the QEMU UART bridge; Islet uses 5002).
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "5002")]
    tcp: Option<u16>,

    /// Implementation id claim (2396), 32 bytes in hex. Default:
    /// SHA-256("atoll-hes simulation implementation").
    #[arg(long, value_name = "HEX")]
    implementation_id: Option<String>,

    /// Platform configuration claim (2401), up to 64 bytes in hex.
    #[arg(long, value_name = "HEX", default_value = "00000000")]
    platform_config: String,

    /// Security lifecycle claim (2395); 0x3000 is PSA "secured".
    #[arg(long, value_parser = parse_u16, default_value_t = LIFECYCLE_SECURED)]
    lifecycle: u16,

    /// Verification service claim (2400), up to 128 bytes.
    #[arg(
        long,
        default_value = "https://veraison.example/.well-known/veraison/verification"
    )]
    verification_service: String,
}

fn parse_u16(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("{s}: {e}"))
}

fn default_provision_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("atoll-hes/provision.bin")
}

fn default_socket_path() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
        .join("atoll-hes.sock")
}

fn identity(args: &Args) -> Result<PlatformIdentity> {
    let implementation_id = match &args.implementation_id {
        Some(h) => {
            let v = hex::decode(h).context("--implementation-id is not hex")?;
            <[u8; 32]>::try_from(v.as_slice()).map_err(|_| {
                anyhow::anyhow!("--implementation-id must be 32 bytes, got {}", v.len())
            })?
        }
        None => Sha256::digest(b"atoll-hes simulation implementation").into(),
    };
    let config = hex::decode(&args.platform_config).context("--platform-config is not hex")?;
    Ok(PlatformIdentity {
        implementation_id,
        platform_config: BoundedBytes::new(&config)
            .map_err(|_| anyhow::anyhow!("--platform-config is longer than 64 bytes"))?,
        lifecycle: args.lifecycle,
        verification_service: BoundedStr::new(&args.verification_service)
            .map_err(|_| anyhow::anyhow!("--verification-service is longer than 128 bytes"))?,
    })
}

/// Binds the Unix socket, replacing a stale one (left by a killed HES) but
/// never one a live HES is serving on.
fn bind_unix(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            bail!(
                "{}: another HES is already serving on this socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    // Whoever can connect gets the RAK and the VHUKs: owner only.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", path.display()))?;
    Ok(listener)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let identity = identity(&args)?;

    let provision_path = args
        .provision
        .clone()
        .unwrap_or_else(default_provision_path);
    let (secrets, origin) =
        provision::load_or_create(&provision_path).context("device secrets unavailable")?;
    match origin {
        Origin::Created => info!(
            "provisioned new device secrets in {}",
            provision_path.display()
        ),
        Origin::Loaded => info!("loaded device secrets from {}", provision_path.display()),
    }
    let hes = Arc::new(Mutex::new(Hes::new(secrets, identity)));

    let socket = args.socket.clone().unwrap_or_else(default_socket_path);
    let unix = bind_unix(&socket)?;
    let tcp = args
        .tcp
        .map(|port| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, port))
                .with_context(|| format!("binding 127.0.0.1:{port}"))
        })
        .transpose()?;
    info!("serving on {}", socket.display());
    if let Some(t) = tcp {
        info!("serving on tcp {}", t.local_addr()?);
        let hes = Arc::clone(&hes);
        thread::Builder::new()
            .name("hes tcp".into())
            .spawn(move || server::run_tcp(t, hes))
            .context("starting the TCP listener")?;
    }
    server::run_unix(unix, hes).context("serving the Unix socket")
}
