//! Transports over std byte streams: a Unix socket (simulation) or TCP (the
//! QEMU UART bridge, Islet's 127.0.0.1:5002).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{HesLink, Transport};

/// How long a connection helper lets one read or write block: a hung HES
/// must turn into an error, not a hung boot.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Any std stream as a [`Transport`].
#[derive(Debug)]
pub struct StreamTransport<S>(pub S);

impl<S: Read + Write> Transport for StreamTransport<S> {
    type Error = io::Error;

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)?;
        self.0.flush()
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact(buf)
    }
}

impl HesLink<StreamTransport<UnixStream>> {
    /// Connects to an HES listening on the Unix socket `path`, with
    /// [`DEFAULT_TIMEOUT`] on every read and write.
    pub fn connect_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        let s = UnixStream::connect(path)?;
        s.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        s.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Self::new(StreamTransport(s)))
    }
}

impl HesLink<StreamTransport<TcpStream>> {
    /// Connects to an HES over TCP, with [`DEFAULT_TIMEOUT`] on every read
    /// and write.
    pub fn connect_tcp(addr: impl ToSocketAddrs) -> io::Result<Self> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(DEFAULT_TIMEOUT))?;
        s.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Self::new(StreamTransport(s)))
    }
}
