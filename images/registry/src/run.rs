//! Serving a whole [`Config`]: one storage, every listener.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError, Mode};
use crate::tls::{RaTlsAcceptor, TlsAcceptor};
use crate::{serve, PlainAcceptor, Registry};

/// Why [`start`] could not bring the registry up. Nothing listens when it
/// fails.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's TLS material or the RA-TLS policy cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The storage root cannot be opened or created.
    #[error("storage {path}: {source}")]
    Storage {
        /// The root.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A listener's address cannot be bound.
    #[error("listener {address}: {source}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
}

/// A registry serving its listeners; [`Running::stop`] takes it down.
pub struct Running {
    registry: Arc<Registry>,
    listeners: Vec<(SocketAddr, Mode, bool)>,
    stop: broadcast::Sender<()>,
    tasks: Vec<JoinHandle<io::Result<()>>>,
}

impl Running {
    /// The bound address, mode and write permission of each listener, in
    /// configuration order (a port 0 in the configuration shows the port
    /// the system chose).
    pub fn listeners(&self) -> &[(SocketAddr, Mode, bool)] {
        &self.listeners
    }

    /// The registry the listeners share.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops accepting on every listener and waits for the accept loops.
    /// Connections already open finish on their own tasks.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        for t in self.tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("listener ended with {e}"),
                Err(e) => tracing::warn!("listener task: {e}"),
            }
        }
    }
}

enum Built {
    Http,
    Tls(TlsAcceptor),
    RaTls(RaTlsAcceptor),
}

/// Opens the storage, builds every listener's acceptor (so a bad key or
/// policy fails before anything listens), binds every address and serves
/// them all on the current tokio runtime. A plain HTTP listener is logged
/// as a warning: it is for development only.
pub async fn start(config: &Config) -> Result<Running, StartError> {
    let mut built = Vec::new();
    for l in &config.listeners {
        built.push(match l.mode {
            Mode::Http => Built::Http,
            Mode::Tls => Built::Tls(TlsAcceptor::new(l)?),
            Mode::RaTls => {
                let anchors = config.trust_anchors.as_ref().ok_or_else(|| {
                    ConfigError(format!(
                        "listener {}: ra-tls needs trust_anchors",
                        l.address
                    ))
                })?;
                if config.realms.is_empty() {
                    return Err(ConfigError(format!(
                        "listener {}: ra-tls needs at least one [[realm]]",
                        l.address
                    ))
                    .into());
                }
                Built::RaTls(RaTlsAcceptor::new(l, anchors, &config.realms)?)
            }
        });
    }
    let registry =
        Arc::new(
            Registry::open(&config.storage)
                .await
                .map_err(|source| StartError::Storage {
                    path: config.storage.clone(),
                    source,
                })?,
        );
    let mut bound = Vec::new();
    for l in &config.listeners {
        let listener = TcpListener::bind(l.address)
            .await
            .map_err(|source| StartError::Bind {
                address: l.address,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            address: l.address,
            source,
        })?;
        bound.push((listener, addr));
    }
    let (stop, _) = broadcast::channel::<()>(1);
    let mut tasks = Vec::new();
    let mut listeners = Vec::new();
    for ((l, acceptor), (listener, addr)) in config.listeners.iter().zip(built).zip(bound) {
        let mut rx = stop.subscribe();
        let shutdown = async move {
            let _ = rx.recv().await;
        };
        let registry = registry.clone();
        let access = if l.write { "read-write" } else { "read-only" };
        tasks.push(match acceptor {
            Built::Http => {
                tracing::warn!(
                    "PLAIN HTTP on {addr} ({access}): no transport security, no authentication; DEVELOPMENT ONLY"
                );
                tokio::spawn(serve(listener, PlainAcceptor::new(l.write), registry, shutdown))
            }
            Built::Tls(a) => {
                let auth = if l.client_ca.is_empty() {
                    "no client certificates"
                } else {
                    "client certificates required"
                };
                if l.write && l.client_ca.is_empty() {
                    tracing::warn!(
                        "TLS on {addr} is read-write without client certificates: anyone who \
                         can reach it may push, delete and retag; set `client_ca` or \
                         `access = \"read-only\"`"
                    );
                } else {
                    tracing::info!("TLS on {addr} ({access}, {auth})");
                }
                tokio::spawn(serve(listener, a, registry, shutdown))
            }
            Built::RaTls(a) => {
                let names: Vec<&str> = config.realms.iter().map(|r| r.name.as_str()).collect();
                tracing::info!("RA-TLS on {addr} (read-only; realms: {})", names.join(", "));
                tokio::spawn(serve(listener, a, registry, shutdown))
            }
        });
        listeners.push((addr, l.mode, l.write));
    }
    Ok(Running {
        registry,
        listeners,
        stop,
        tasks,
    })
}
