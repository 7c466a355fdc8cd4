//! `atoll-registry`: runs the OCI registry server.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// OCI Distribution v1.1 registry.
#[derive(Parser, Debug)]
#[command(name = "atoll-registry", version)]
struct Args {
    /// Storage root directory.
    #[arg(long)]
    root: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Serve plain HTTP (development only; required until TLS modes exist).
    #[arg(long)]
    insecure_http: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.insecure_http {
        anyhow::bail!(
            "only --insecure-http is implemented so far; TLS and RA-TLS modes are to come"
        );
    }
    let registry = Arc::new(atoll_registry::Registry::open(&args.root).await?);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    eprintln!("**********************************************************************");
    eprintln!("WARNING: atoll-registry is serving PLAIN HTTP on {addr}.");
    eprintln!("WARNING: no transport security, no authentication. DEVELOPMENT ONLY.");
    eprintln!("**********************************************************************");
    atoll_registry::serve(listener, atoll_registry::PlainAcceptor, registry, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
