//! The agent side of the warden <-> realm protocol (`ipc_schema::agent`):
//! a listener whose connections each carry one request at a time.
//!
//! Connections are served on their own threads, so a long install does not
//! keep the warden from asking for the status; the [`Manager`] serializes
//! what must not run concurrently.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipc_schema::agent::{
    decode_header, encode_frame, AgentErrorKind, AgentFrameKind, AgentRequest, AgentResponse,
    AGENT_HEADER_LEN,
};
use tracing::{info, warn};

use crate::manager::Manager;

/// How often the accept loop looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(100);

/// Reads one request frame; `Ok(None)` when the peer closed cleanly.
fn read_request(stream: &mut UnixStream) -> io::Result<Option<Result<AgentRequest, String>>> {
    let mut header = [0u8; AGENT_HEADER_LEN];
    match stream.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = match decode_header(&header, AgentFrameKind::Request) {
        Ok(len) => len,
        // The stream cannot be resynchronised after a bad header.
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
    };
    let mut frame = header.to_vec();
    frame.resize(AGENT_HEADER_LEN + len, 0);
    stream.read_exact(&mut frame[AGENT_HEADER_LEN..])?;
    Ok(Some(
        ipc_schema::agent::decode_request(&frame).map_err(|e| e.to_string()),
    ))
}

fn write_response(stream: &mut UnixStream, resp: &AgentResponse) -> io::Result<()> {
    let frame = match encode_frame(AgentFrameKind::Response, resp) {
        Ok(f) => f,
        Err(e) => encode_frame(
            AgentFrameKind::Response,
            &AgentResponse::Error {
                kind: AgentErrorKind::Internal,
                message: format!("response does not fit a frame: {e}"),
            },
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
    };
    stream.write_all(&frame)
}

fn serve_connection(mut stream: UnixStream, manager: Arc<Manager>, shutdown: Arc<AtomicBool>) {
    loop {
        let req = match read_request(&mut stream) {
            Ok(Some(Ok(req))) => req,
            Ok(Some(Err(e))) => {
                warn!("malformed agent request: {e}");
                let _ = write_response(
                    &mut stream,
                    &AgentResponse::Error {
                        kind: AgentErrorKind::BadRequest,
                        message: format!("malformed request: {e}"),
                    },
                );
                continue;
            }
            Ok(None) => return,
            Err(e) => {
                warn!("agent connection dropped: {e}");
                return;
            }
        };
        let is_shutdown = matches!(req, AgentRequest::Shutdown);
        let resp = manager.handle(req);
        if write_response(&mut stream, &resp).is_err() {
            return;
        }
        if is_shutdown {
            shutdown.store(true, Ordering::SeqCst);
            return;
        }
    }
}

/// Serves `listener` until a `Shutdown` request is answered or `shutdown`
/// is set (by a signal); then stops every application (sealing its data).
pub fn serve(listener: UnixListener, manager: Arc<Manager>, shutdown: Arc<AtomicBool>) {
    if let Err(e) = listener.set_nonblocking(true) {
        warn!("agent listener: {e}");
        return;
    }
    while !shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                let manager = manager.clone();
                let shutdown = shutdown.clone();
                std::thread::spawn(move || serve_connection(stream, manager, shutdown));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => {
                warn!("agent accept: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
    info!("shutting down: stopping applications");
    manager.stop_all();
}
