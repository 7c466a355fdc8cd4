//! Serving the link protocol: one thread per connection, one HES shared
//! behind a mutex (held only while a frame is handled).

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use atoll_hes_mcu::Hes;
use ipc_schema::hes::{FrameHeader, FrameKind, HEADER_LEN, MAX_FRAME};
use tracing::{debug, info, warn};

/// Connections served at once; more are closed at accept, so a misbehaving
/// peer cannot exhaust threads.
pub const MAX_CONNECTIONS: usize = 32;

/// The HES as the server threads share it.
pub type SharedHes = Arc<Mutex<Hes>>;

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// The peer closed between frames.
    ByPeer,
    /// A header was refused: the error answer was sent and the connection
    /// closed, because where the next frame starts is unknown.
    AfterBadHeader,
}

/// Serves frames on one stream until the peer closes it, a header is
/// refused, or the stream fails. A frame with a good header but a bad body
/// (CRC, payload) is answered with an error and the connection goes on.
pub fn serve_stream(hes: &Mutex<Hes>, stream: &mut (impl Read + Write)) -> io::Result<Closed> {
    let mut frame = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    loop {
        match read_header(stream, &mut frame[..HEADER_LEN])? {
            HeaderRead::Eof => return Ok(Closed::ByPeer),
            HeaderRead::Partial(n) => {
                // A header cut short by the peer closing: answer it anyway
                // (the HES reports a truncated frame) and stop.
                respond(hes, &frame[..n], &mut out, stream)?;
                return Ok(Closed::ByPeer);
            }
            HeaderRead::Full => {}
        }
        match FrameHeader::parse(&frame[..HEADER_LEN], FrameKind::Request) {
            Ok(header) => {
                let len = HEADER_LEN + header.payload_len();
                let got = read_up_to(stream, &mut frame[HEADER_LEN..len])?;
                respond(hes, &frame[..HEADER_LEN + got], &mut out, stream)?;
                if HEADER_LEN + got < len {
                    return Ok(Closed::ByPeer);
                }
            }
            Err(e) => {
                debug!("refusing frame header: {e}");
                respond(hes, &frame[..HEADER_LEN], &mut out, stream)?;
                return Ok(Closed::AfterBadHeader);
            }
        }
    }
}

enum HeaderRead {
    Eof,
    Partial(usize),
    Full,
}

fn read_header(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<HeaderRead> {
    Ok(match read_up_to(stream, buf)? {
        0 => HeaderRead::Eof,
        n if n < buf.len() => HeaderRead::Partial(n),
        _ => HeaderRead::Full,
    })
}

/// Reads until `buf` is full or the peer closes; returns the bytes read.
fn read_up_to(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn respond(
    hes: &Mutex<Hes>,
    frame: &[u8],
    out: &mut [u8; MAX_FRAME],
    stream: &mut impl Write,
) -> io::Result<()> {
    // `Hes::handle_frame` never panics, so a poisoned lock can only come
    // from a bug elsewhere; the HES state is still consistent, keep serving.
    let n = hes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .handle_frame(frame, out);
    stream.write_all(&out[..n])?;
    stream.flush()
}

/// Runs `serve_stream` on a new thread, within [`MAX_CONNECTIONS`].
fn spawn_connection<S: Read + Write + Send + 'static>(
    hes: &SharedHes,
    active: &Arc<AtomicUsize>,
    mut stream: S,
    peer: String,
) {
    if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        active.fetch_sub(1, Ordering::SeqCst);
        warn!("{peer}: refused, {MAX_CONNECTIONS} connections already open");
        return;
    }
    let hes = Arc::clone(hes);
    let active = Arc::clone(active);
    let spawned = thread::Builder::new()
        .name(format!("hes {peer}"))
        .spawn(move || {
            match serve_stream(&hes, &mut stream) {
                Ok(how) => debug!("{peer}: closed ({how:?})"),
                Err(e) => debug!("{peer}: connection error: {e}"),
            }
            active.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        warn!("cannot start a connection thread: {e}");
    }
}

/// Accepts Unix-socket clients forever.
pub fn run_unix(listener: UnixListener, hes: SharedHes) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    for (n, conn) in listener.incoming().enumerate() {
        match conn {
            Ok(stream) => spawn_connection(&hes, &active, stream, format!("unix#{n}")),
            Err(e) => warn!("unix accept failed: {e}"),
        }
    }
    Ok(())
}

/// Accepts TCP clients forever.
pub fn run_tcp(listener: TcpListener, hes: SharedHes) -> io::Result<()> {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let peer = stream
                    .peer_addr()
                    .map_or_else(|_| "tcp".to_owned(), |a| a.to_string());
                let _ = stream.set_nodelay(true);
                info!("{peer}: connected");
                spawn_connection(&hes, &active, stream, peer);
            }
            Err(e) => warn!("tcp accept failed: {e}"),
        }
    }
    Ok(())
}
