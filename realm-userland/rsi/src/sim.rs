//! The simulation backend: a realm process talking to `atoll-sim` over the
//! vCPU socket (`ipc_schema::simvcpu`).
//!
//! Every SMC and every byte of realm memory goes through REC 0's vCPU in
//! the simulator, so the RMM checks it exactly as on hardware: an RSI
//! buffer the realm does not own is refused, an access to RIPAS EMPTY
//! memory is an SEA ([`SimError::Sea`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use ipc_schema::simvcpu::{
    decode_response, encode_message, AccessSize, FrameError, FrameHeader, FrameKind, VcpuError,
    VcpuInfo, VcpuRequest, VcpuResponse, CHUNK_MAX, HEADER_LEN, MAX_FRAME,
};
use ipc_schema::smccc::SmcRegs;
use ipc_schema::wire::BoundedBytes;

use crate::{RsiBackend, GRANULE_SIZE};

/// Why a simulator request failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The socket failed or closed.
    #[error("vCPU socket: {0}")]
    Io(#[from] std::io::Error),
    /// The simulator's answer was not a valid frame.
    #[error("bad response frame: {0}")]
    Frame(FrameError),
    /// The simulator refused the request.
    #[error("simulator refused the request: {0}")]
    Refused(VcpuError),
    /// The answer does not match the request (wrong kind or sequence).
    #[error("response does not match the request")]
    Mismatch,
    /// The access took a synchronous external abort.
    #[error("synchronous external abort accessing IPA {ipa:#x}")]
    Sea {
        /// The IPA accessed.
        ipa: u64,
    },
    /// The realm has no RAM region to lend a buffer granule from.
    #[error("the realm has no RAM for an RSI buffer")]
    NoRam,
    /// An access outside the buffer granule, or a size the architecture
    /// cannot do.
    #[error("invalid access: {0}")]
    InvalidAccess(&'static str),
}

/// A connection to the simulator's REC 0.
pub struct SimBackend {
    stream: UnixStream,
    seq: u32,
    info: VcpuInfo,
    buffer_ipa: u64,
    frame: Box<[u8; MAX_FRAME]>,
}

const G: u64 = GRANULE_SIZE as u64;

impl SimBackend {
    /// Connects to the simulator at `path` and asks for the vCPU's
    /// description. The RSI buffer granule defaults to the last granule of
    /// the realm's first RAM region ([`SimBackend::with_buffer_ipa`] picks
    /// another): high in RAM, away from an image loaded at its base.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, SimError> {
        let stream = UnixStream::connect(path)?;
        let mut backend = Self {
            stream,
            seq: 0,
            info: VcpuInfo {
                mpidr: 0,
                pc: 0,
                entry_gprs: [0; 8],
                ipa_width: 0,
                ram: Default::default(),
            },
            buffer_ipa: 0,
            frame: Box::new([0; MAX_FRAME]),
        };
        match backend.request(&VcpuRequest::Hello)? {
            VcpuResponse::Hello(info) => backend.info = info,
            _ => return Err(SimError::Mismatch),
        }
        let ram = backend.info.ram_regions().next().ok_or(SimError::NoRam)?;
        if ram.size < G {
            return Err(SimError::NoRam);
        }
        backend.buffer_ipa = (ram.base + ram.size - G) & !(G - 1);
        Ok(backend)
    }

    /// Uses the granule at `ipa` (must be 4 KiB aligned) for RSI buffers.
    pub fn with_buffer_ipa(mut self, ipa: u64) -> Result<Self, SimError> {
        if ipa % G != 0 {
            return Err(SimError::InvalidAccess("buffer IPA not 4 KiB aligned"));
        }
        self.buffer_ipa = ipa;
        Ok(self)
    }

    /// What the simulator said about the vCPU and the realm's memory.
    pub fn info(&self) -> &VcpuInfo {
        &self.info
    }

    /// Sends one request and waits for its answer.
    pub fn request(&mut self, req: &VcpuRequest) -> Result<VcpuResponse, SimError> {
        self.seq = self.seq.wrapping_add(1);
        let n = encode_message(FrameKind::Request, self.seq, req, &mut self.frame)
            .map_err(SimError::Frame)?;
        self.stream.write_all(&self.frame[..n])?;
        self.stream.read_exact(&mut self.frame[..HEADER_LEN])?;
        let header = FrameHeader::parse(&self.frame[..HEADER_LEN], FrameKind::Response)
            .map_err(SimError::Frame)?;
        let end = HEADER_LEN + header.payload_len();
        self.stream.read_exact(&mut self.frame[HEADER_LEN..end])?;
        let (seq, resp) = decode_response(&self.frame[..end]).map_err(SimError::Frame)?;
        if let VcpuResponse::Error(e) = resp {
            return Err(SimError::Refused(e));
        }
        if seq != self.seq {
            return Err(SimError::Mismatch);
        }
        Ok(resp)
    }

    /// A single load of `size` (1, 2, 4, 8) bytes.
    pub fn load(&mut self, ipa: u64, size: u8) -> Result<u64, SimError> {
        let size = AccessSize::from_bytes(size).ok_or(SimError::InvalidAccess("access size"))?;
        match self.request(&VcpuRequest::Load { ipa, size })? {
            VcpuResponse::Loaded { value } => Ok(value),
            VcpuResponse::Sea => Err(SimError::Sea { ipa }),
            _ => Err(SimError::Mismatch),
        }
    }

    /// A single store of the low `size` bytes of `value`.
    pub fn store(&mut self, ipa: u64, size: u8, value: u64) -> Result<(), SimError> {
        let size = AccessSize::from_bytes(size).ok_or(SimError::InvalidAccess("access size"))?;
        match self.request(&VcpuRequest::Store { ipa, size, value })? {
            VcpuResponse::Stored => Ok(()),
            VcpuResponse::Sea => Err(SimError::Sea { ipa }),
            _ => Err(SimError::Mismatch),
        }
    }

    /// Reads realm memory, in chunks of at most a granule.
    pub fn read(&mut self, ipa: u64, buf: &mut [u8]) -> Result<(), SimError> {
        for (i, chunk) in buf.chunks_mut(CHUNK_MAX).enumerate() {
            let at = ipa + (i * CHUNK_MAX) as u64;
            let req = VcpuRequest::Read {
                ipa: at,
                len: chunk.len() as u32,
            };
            match self.request(&req)? {
                VcpuResponse::Data(d) if d.as_slice().len() == chunk.len() => {
                    chunk.copy_from_slice(d.as_slice())
                }
                VcpuResponse::Sea => return Err(SimError::Sea { ipa: at }),
                _ => return Err(SimError::Mismatch),
            }
        }
        Ok(())
    }

    /// Writes realm memory, in chunks of at most a granule.
    pub fn write(&mut self, ipa: u64, data: &[u8]) -> Result<(), SimError> {
        for (i, chunk) in data.chunks(CHUNK_MAX).enumerate() {
            let at = ipa + (i * CHUNK_MAX) as u64;
            let data = BoundedBytes::new(chunk).map_err(|_| SimError::InvalidAccess("chunk"))?;
            match self.request(&VcpuRequest::Write { ipa: at, data })? {
                VcpuResponse::Written => {}
                VcpuResponse::Sea => return Err(SimError::Sea { ipa: at }),
                _ => return Err(SimError::Mismatch),
            }
        }
        Ok(())
    }

    fn buffer_range(&self, offset: usize, len: usize) -> Result<u64, SimError> {
        match offset.checked_add(len) {
            Some(end) if end <= GRANULE_SIZE => Ok(self.buffer_ipa + offset as u64),
            _ => Err(SimError::InvalidAccess("outside the buffer granule")),
        }
    }
}

impl RsiBackend for SimBackend {
    type Error = SimError;

    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, SimError> {
        match self.request(&VcpuRequest::Smc { regs })? {
            VcpuResponse::Smc { regs } => Ok(regs),
            _ => Err(SimError::Mismatch),
        }
    }

    fn buffer_ipa(&self) -> u64 {
        self.buffer_ipa
    }

    fn read_buffer(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), SimError> {
        let ipa = self.buffer_range(offset, buf.len())?;
        self.read(ipa, buf)
    }

    fn write_buffer(&mut self, offset: usize, data: &[u8]) -> Result<(), SimError> {
        let ipa = self.buffer_range(offset, data.len())?;
        self.write(ipa, data)
    }
}
