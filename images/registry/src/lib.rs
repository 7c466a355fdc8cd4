//! `atoll-registry`: an OCI Distribution v1.1 registry server with
//! content-addressed, crash-safe on-disk storage.
//!
//! The listener is generic over an [`Acceptor`], which turns an accepted TCP
//! connection into the byte stream HTTP is spoken on: [`PlainAcceptor`] for
//! plain HTTP (development only); a TLS or RA-TLS acceptor (e.g. a
//! `tokio_rustls::TlsAcceptor` wrapper) implements the same trait. Each
//! accepted connection carries an [`Access`]: what it may read and write;
//! [`tls`] has the TLS and RA-TLS acceptors and [`config`] the file that
//! sets them up; [`start`] serves a whole [`config::Config`].

pub mod access;
pub mod config;
mod run;
pub mod server;
pub mod storage;
pub mod tls;

pub use access::Access;
pub use run::{start, Running, StartError};
pub use server::{Registry, UploadLimits};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to finish its TLS handshake: a client that opens a
/// connection and sends nothing must not hold a task forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send a request's headers, the first one and
/// each next one on a kept-alive connection: idle or trickling connections
/// are closed instead of holding a file descriptor forever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections one listener serves at once. Further clients wait in the
/// kernel's accept queue; without a bound, idle connections could use up
/// the process's file descriptors and lock out every listener.
pub const MAX_CONNECTIONS: usize = 256;

/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Turns an accepted TCP connection into the stream HTTP runs over.
pub trait Acceptor: Send + Sync + 'static {
    /// The stream type (the TCP stream itself, or a TLS stream over it).
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Performs any handshake and decides what the connection may do.
    /// Runs on the connection's own task.
    fn accept(
        &self,
        tcp: TcpStream,
    ) -> impl Future<Output = io::Result<(Self::Stream, Access)>> + Send;
}

/// Plain HTTP: no transport security. For development only.
#[derive(Clone, Copy, Debug)]
pub struct PlainAcceptor {
    write: bool,
}

impl PlainAcceptor {
    /// A plain listener; `write` allows pushes and deletes.
    pub fn new(write: bool) -> Self {
        Self { write }
    }
}

impl Default for PlainAcceptor {
    /// Read-write, like the quick development mode.
    fn default() -> Self {
        Self::new(true)
    }
}

impl Acceptor for PlainAcceptor {
    type Stream = TcpStream;
    async fn accept(&self, tcp: TcpStream) -> io::Result<(TcpStream, Access)> {
        let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok((
            tcp,
            Access {
                write: self.write,
                repositories: None,
                who: format!("http client {peer}"),
            },
        ))
    }
}

/// Serves `registry` on `listener` until `shutdown` completes. Each
/// connection (handshake included) runs on its own task; a refused or
/// timed-out handshake is logged with its reason, and every request is
/// checked against the connection's [`Access`] before the registry sees it.
pub async fn serve<A: Acceptor>(
    listener: TcpListener,
    acceptor: A,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let acceptor = Arc::new(acceptor);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    http.http2().timer(TokioTimer::new());
    let http = Arc::new(http);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.map_err(io::Error::other)?,
            () = &mut shutdown => return Ok(()),
        };
        let (tcp, peer): (TcpStream, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let registry = registry.clone();
        let http = http.clone();
        tokio::spawn(async move {
            // Held until the connection ends, handshake failures included.
            let _slot = slot;
            let (stream, access) =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::warn!("handshake with {peer} refused: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(
                        "handshake with {peer} refused: not finished within {HANDSHAKE_TIMEOUT:?}"
                    );
                        return;
                    }
                };
            let access = Arc::new(access);
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let registry = registry.clone();
                    let access = access.clone();
                    async move {
                        let uri = req.uri();
                        if let Some(denied) = access.check(req.method(), uri.path(), uri.query()) {
                            return Ok::<_, std::convert::Infallible>(denied);
                        }
                        Ok(registry.handle(req).await)
                    }
                });
            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
