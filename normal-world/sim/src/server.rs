//! The guest program on REC 0: bridges a realm process, connected over a
//! Unix socket, to the vCPU.
//!
//! Each request from the process ([`VcpuRequest`]) becomes exactly what the
//! realm's CPU would do ([`RealmCpu::smc`], loads and stores), so the RMM
//! checks it against the REC's state and the realm's stage 2 as it would on
//! hardware; the result goes back as a [`VcpuResponse`].
//!
//! The program never blocks the host for long: while nobody is connected,
//! or the connected process is quiet, the vCPU executes WFI, which (with
//! WFI not trapped) exits to the host as an IRQ would. The host loop thus
//! keeps control, notices shutdown and handles exits, and the REC stays the
//! same REC across connections.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atoll_kernel::arch::host::RealmCpu;
use ipc_schema::simvcpu::{
    encode_message, FrameError, FrameHeader, FrameKind, VcpuError, VcpuInfo, VcpuRequest,
    VcpuResponse, CHUNK_MAX, HEADER_LEN, MAX_FRAME,
};
use ipc_schema::wire::BoundedBytes;

/// How long the vCPU waits for a connection or a request before letting
/// the host run (a WFI exit).
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What the guest program needs besides its vCPU.
pub struct ServerConfig {
    /// The bound socket.
    pub listener: UnixListener,
    /// The realm's description for `Hello`; `entry_gprs`/`pc` are filled
    /// from the vCPU's entry state.
    pub info: VcpuInfo,
    /// Stop after the first connection closes.
    pub once: bool,
    /// Set when the simulator shuts down.
    pub stop: Arc<AtomicBool>,
}

/// The guest program: accepts realm processes one after another (one at a
/// time; a second one waits in the listen queue) until `stop`, or until the
/// first disconnects when `once`.
pub fn serve(cpu: &mut RealmCpu, cfg: ServerConfig) {
    let mut info = cfg.info;
    let entry = cpu.entry_regs().clone();
    info.entry_gprs.copy_from_slice(&entry.gprs[..8]);
    info.pc = entry.pc;
    if cfg.listener.set_nonblocking(true).is_err() {
        return;
    }
    while !cfg.stop.load(Ordering::Relaxed) {
        match cfg.listener.accept() {
            Ok((stream, _)) => {
                // A failed connection only ends that connection. With
                // `once`, a connection that never sent a request (another
                // simulator probing whether the socket is live) does not
                // count as the realm process.
                let mut served = false;
                let _ = serve_connection(cpu, stream, &info, &cfg.stop, &mut served);
                if cfg.once && served {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(IDLE_POLL);
                cpu.wfi();
            }
            Err(_) => return,
        }
    }
}

/// Reads frames from a stream whose reads time out, keeping a partial
/// frame across timeouts so the vCPU can idle between bytes.
struct FrameReader {
    buf: Box<[u8; MAX_FRAME]>,
    filled: usize,
}

enum Poll {
    /// A complete frame of this many bytes sits at the start of the buffer.
    Frame(usize),
    /// Nothing complete yet.
    Idle,
    /// The peer closed the connection.
    Closed,
    /// The header was refused: the stream cannot be resynchronised.
    Refused(FrameError),
}

impl FrameReader {
    fn new() -> Self {
        Self {
            buf: Box::new([0; MAX_FRAME]),
            filled: 0,
        }
    }

    fn needed(&self) -> Result<usize, FrameError> {
        if self.filled < HEADER_LEN {
            return Ok(HEADER_LEN);
        }
        let h = FrameHeader::parse(&self.buf[..HEADER_LEN], FrameKind::Request)?;
        Ok(HEADER_LEN + h.payload_len())
    }

    fn poll(&mut self, stream: &mut UnixStream) -> io::Result<Poll> {
        loop {
            let need = match self.needed() {
                Ok(n) => n,
                Err(e) => return Ok(Poll::Refused(e)),
            };
            if self.filled >= HEADER_LEN && self.filled == need {
                self.filled = 0;
                return Ok(Poll::Frame(need));
            }
            match stream.read(&mut self.buf[self.filled..need]) {
                Ok(0) => return Ok(Poll::Closed),
                Ok(n) => self.filled += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(Poll::Idle)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn send(stream: &mut UnixStream, seq: u32, resp: &VcpuResponse) -> io::Result<()> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Response, seq, resp, &mut out)
        .map_err(|e| io::Error::new(ErrorKind::InvalidData, e.to_string()))?;
    stream.write_all(&out[..n])
}

fn serve_connection(
    cpu: &mut RealmCpu,
    mut stream: UnixStream,
    info: &VcpuInfo,
    stop: &AtomicBool,
    served: &mut bool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_POLL))?;
    let mut reader = FrameReader::new();
    loop {
        match reader.poll(&mut stream)? {
            Poll::Closed => return Ok(()),
            Poll::Idle => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                cpu.wfi();
            }
            Poll::Refused(e) => {
                // Answer once so the peer learns why, then hang up: after a
                // bad header the byte stream has no frame boundary left.
                send(&mut stream, 0, &VcpuResponse::Error(VcpuError::Frame(e)))?;
                return Ok(());
            }
            Poll::Frame(len) => {
                *served = true;
                let frame = &reader.buf[..len];
                let (seq, resp) = match ipc_schema::simvcpu::decode_request(frame) {
                    Ok((seq, _)) if stop.load(Ordering::Relaxed) => {
                        (seq, VcpuResponse::Error(VcpuError::Halted))
                    }
                    Ok((seq, req)) => (seq, execute(cpu, info, req)),
                    Err(e) => {
                        let seq = FrameHeader::parse(frame, FrameKind::Request)
                            .map(|h| h.seq())
                            .unwrap_or(0);
                        (seq, VcpuResponse::Error(VcpuError::Frame(e)))
                    }
                };
                send(&mut stream, seq, &resp)?;
                if resp == VcpuResponse::Error(VcpuError::Halted) {
                    return Ok(());
                }
            }
        }
    }
}

/// Runs one request on the vCPU.
fn execute(cpu: &mut RealmCpu, info: &VcpuInfo, req: VcpuRequest) -> VcpuResponse {
    match req {
        VcpuRequest::Hello => VcpuResponse::Hello(info.clone()),
        VcpuRequest::Smc { regs } => VcpuResponse::Smc {
            regs: cpu.smc(regs),
        },
        VcpuRequest::Load { ipa, size } => match cpu.load(ipa, size.bytes()) {
            Ok(value) => VcpuResponse::Loaded { value },
            Err(_) => VcpuResponse::Sea,
        },
        VcpuRequest::Store { ipa, size, value } => match cpu.store(ipa, size.bytes(), value) {
            Ok(()) => VcpuResponse::Stored,
            Err(_) => VcpuResponse::Sea,
        },
        VcpuRequest::Read { ipa, len } => {
            let len = len as usize;
            if len > CHUNK_MAX {
                return VcpuResponse::Error(VcpuError::TooLong);
            }
            let mut buf = vec![0u8; len];
            match read_aligned(cpu, ipa, &mut buf) {
                Ok(()) => match BoundedBytes::new(&buf) {
                    Ok(data) => VcpuResponse::Data(data),
                    Err(_) => VcpuResponse::Error(VcpuError::TooLong),
                },
                Err(Sea) => VcpuResponse::Sea,
            }
        }
        VcpuRequest::Write { ipa, data } => match write_aligned(cpu, ipa, data.as_slice()) {
            Ok(()) => VcpuResponse::Written,
            Err(Sea) => VcpuResponse::Sea,
        },
    }
}

struct Sea;

/// The widest naturally aligned access at `ipa` that fits in `left` bytes:
/// what a `memcpy` does, so an unaligned buffer is not an alignment fault.
fn access_width(ipa: u64, left: usize) -> usize {
    [8usize, 4, 2, 1]
        .into_iter()
        .find(|&w| ipa % w as u64 == 0 && w <= left)
        .unwrap_or(1)
}

fn read_aligned(cpu: &mut RealmCpu, ipa: u64, buf: &mut [u8]) -> Result<(), Sea> {
    let mut done = 0;
    while done < buf.len() {
        let at = ipa.checked_add(done as u64).ok_or(Sea)?;
        let w = access_width(at, buf.len() - done);
        let v = cpu.load(at, w as u8).map_err(|_| Sea)?;
        buf[done..done + w].copy_from_slice(&v.to_le_bytes()[..w]);
        done += w;
    }
    Ok(())
}

fn write_aligned(cpu: &mut RealmCpu, ipa: u64, data: &[u8]) -> Result<(), Sea> {
    let mut done = 0;
    while done < data.len() {
        let at = ipa.checked_add(done as u64).ok_or(Sea)?;
        let w = access_width(at, data.len() - done);
        let mut v = [0u8; 8];
        v[..w].copy_from_slice(&data[done..done + w]);
        cpu.store(at, w as u8, u64::from_le_bytes(v))
            .map_err(|_| Sea)?;
        done += w;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::access_width;

    #[test]
    fn widths_are_aligned_and_fit() {
        assert_eq!(access_width(0x1000, 4096), 8);
        assert_eq!(access_width(0x1001, 4096), 1);
        assert_eq!(access_width(0x1002, 4096), 2);
        assert_eq!(access_width(0x1004, 4096), 4);
        assert_eq!(access_width(0x1000, 7), 4);
        assert_eq!(access_width(0x1000, 3), 2);
        assert_eq!(access_width(0x1000, 1), 1);
    }
}
