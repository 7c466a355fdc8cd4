//! The simulated-realm vCPU protocol: how a realm running as a host process
//! reaches its vCPU inside the simulator (`atoll-sim`).
//!
//! In simulation a realm's code is an ordinary host process. It cannot
//! execute `smc` or touch realm memory itself, so it asks the simulator to
//! do it on REC 0's vCPU, where each request becomes exactly the trap a
//! realm on hardware would take (an SMC checked against the REC's state, a
//! load or store translated through the realm's stage 2). The process sees
//! what a realm would see: registers after the SMC, the loaded value, or a
//! synchronous external abort.
//!
//! The transport is a byte stream (a Unix socket). Every message travels in
//! a [`FrameHeader`], so the receiver can check, before it decodes a single
//! payload byte, that the bytes are meant for it (magic, version, kind) and
//! that they fit its buffer (length bound). There is no checksum: the
//! transport is a local socket, reliable and ordered.
//!
//! ```text
//! offset size field
//!  0      4   magic        "AVCP"
//!  4      1   version      PROTOCOL_VERSION (1)
//!  5      1   kind         1 request, 2 response
//!  6      2   reserved     zero
//!  8      4   seq          little-endian; a response echoes its request's
//! 12      4   payload_len  little-endian, <= MAX_PAYLOAD
//! 16      n   payload      postcard-encoded VcpuRequest / VcpuResponse
//! ```
//!
//! The realm process sends one request and waits for its response; the
//! simulator answers every request, in order. Bulk reads and writes move at
//! most [`CHUNK_MAX`] bytes (one granule) per request.
//!
//! The module also fixes the host-call ABI the simulator's host implements
//! ([`host_call`]), since realm programs and the simulator must agree on it.

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::assert_layout;
use crate::smccc::SmcRegs;
use crate::wire::BoundedBytes;

/// First four bytes of every frame: a peer that is not a vCPU endpoint (or
/// a stale socket of something else) is noticed at once.
pub const MAGIC: [u8; 4] = *b"AVCP";
/// The one protocol version this crate speaks; another is refused, not
/// guessed at.
pub const PROTOCOL_VERSION: u8 = 1;
/// Bytes of [`FrameHeader`].
pub const HEADER_LEN: usize = 16;
/// Most bytes one [`VcpuRequest::Read`] or [`VcpuRequest::Write`] moves: a
/// granule, the unit every RSI buffer comes in.
pub const CHUNK_MAX: usize = crate::GRANULE_SIZE;
/// Largest payload either side accepts: every message fits (checked at
/// compile time below), and a receiver's buffer is a fixed, small size.
pub const MAX_PAYLOAD: usize = CHUNK_MAX + 64;
/// Largest frame on the wire: a receiver never needs a bigger buffer.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// RAM regions reported in [`VcpuInfo`].
pub const MAX_RAM_REGIONS: usize = 8;

/// Which way a frame travels, so an answer can never be mistaken for a
/// request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Realm process to simulator.
    Request = 1,
    /// Simulator to realm process.
    Response = 2,
}

impl FrameKind {
    /// From the header byte.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Request),
            2 => Some(Self::Response),
            _ => None,
        }
    }
}

/// The fixed header in front of every payload (layout in the module doc);
/// multi-byte fields are little-endian whatever the host's byte order.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout, Unaligned,
)]
#[repr(C)]
pub struct FrameHeader {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`PROTOCOL_VERSION`].
    pub version: u8,
    /// A [`FrameKind`].
    pub kind: u8,
    /// Zero; non-zero is refused so the bytes can get a meaning later.
    pub reserved: [u8; 2],
    /// Chosen by the realm process, echoed by the simulator: pairs a
    /// response with its request.
    pub seq: U32,
    /// Bytes of payload after the header, at most [`MAX_PAYLOAD`].
    pub payload_len: U32,
}
assert_layout!(FrameHeader, size = HEADER_LEN, {
    magic @ 0, version @ 4, kind @ 5, reserved @ 6, seq @ 8, payload_len @ 12,
});

/// Why a frame was refused. Checked in this order, each before anything is
/// decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum FrameError {
    /// Fewer bytes than the header, or than its `payload_len` says.
    Truncated,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// A protocol version other than [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// A kind byte that is not a [`FrameKind`] or not the one expected.
    BadKind,
    /// The reserved bytes are not zero.
    ReservedNotZero,
    /// `payload_len` above [`MAX_PAYLOAD`]; the payload is not read.
    TooLarge,
    /// More bytes than the header's `payload_len` says.
    TrailingBytes,
    /// The payload is not a valid postcard message of the expected type.
    Malformed,
    /// The message does not encode within [`MAX_PAYLOAD`] (sender side).
    Encode,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "frame truncated",
            Self::BadMagic => "bad frame magic",
            Self::UnsupportedVersion => "unsupported vCPU protocol version",
            Self::BadKind => "unexpected frame kind",
            Self::ReservedNotZero => "reserved header bytes not zero",
            Self::TooLarge => "payload length above the maximum",
            Self::TrailingBytes => "bytes after the payload",
            Self::Malformed => "payload could not be decoded",
            Self::Encode => "message does not fit a frame",
        })
    }
}

impl FrameHeader {
    /// Validates a header on its own: enough bytes, magic, version, kind
    /// (must be `expected`), reserved bytes and the length bound. A stream
    /// reader calls this on the first [`HEADER_LEN`] bytes to learn how much
    /// more to read, and refuses an oversized frame without reading it.
    pub fn parse(bytes: &[u8], expected: FrameKind) -> Result<Self, FrameError> {
        let (header, _) = Self::read_from_prefix(bytes).map_err(|_| FrameError::Truncated)?;
        if header.magic != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if header.version != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion);
        }
        if FrameKind::from_u8(header.kind) != Some(expected) {
            return Err(FrameError::BadKind);
        }
        if header.reserved != [0; 2] {
            return Err(FrameError::ReservedNotZero);
        }
        if header.payload_len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge);
        }
        Ok(header)
    }

    /// `payload_len` as a `usize`.
    pub fn payload_len(&self) -> usize {
        self.payload_len.get() as usize
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        self.seq.get()
    }
}

/// Validates a whole frame (header, then exact length) and returns its
/// header and payload, uninterpreted.
pub fn check_frame(frame: &[u8], expected: FrameKind) -> Result<(FrameHeader, &[u8]), FrameError> {
    let header = FrameHeader::parse(frame, expected)?;
    let body = &frame[HEADER_LEN..];
    let len = header.payload_len();
    if body.len() < len {
        return Err(FrameError::Truncated);
    }
    if body.len() > len {
        return Err(FrameError::TrailingBytes);
    }
    Ok((header, body))
}

/// Encodes `msg` with postcard straight into the payload area of `out` and
/// frames it; returns the frame's length. Both sides build frames only this
/// way, so nobody hand-assembles bytes.
pub fn encode_message<T: Serialize>(
    kind: FrameKind,
    seq: u32,
    msg: &T,
    out: &mut [u8; MAX_FRAME],
) -> Result<usize, FrameError> {
    let len = postcard::to_slice(msg, &mut out[HEADER_LEN..])
        .map_err(|_| FrameError::Encode)?
        .len();
    let header = FrameHeader {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        kind: kind as u8,
        reserved: [0; 2],
        seq: U32::new(seq),
        // `out` holds at most MAX_PAYLOAD payload bytes, far below u32::MAX.
        payload_len: U32::new(len as u32),
    };
    out[..HEADER_LEN].copy_from_slice(header.as_bytes());
    Ok(HEADER_LEN + len)
}

/// Checks a request frame and decodes its payload.
pub fn decode_request(frame: &[u8]) -> Result<(u32, VcpuRequest), FrameError> {
    let (header, body) = check_frame(frame, FrameKind::Request)?;
    let req = postcard::from_bytes(body).map_err(|_| FrameError::Malformed)?;
    Ok((header.seq(), req))
}

/// Checks a response frame and decodes its payload.
pub fn decode_response(frame: &[u8]) -> Result<(u32, VcpuResponse), FrameError> {
    let (header, body) = check_frame(frame, FrameKind::Response)?;
    let resp = postcard::from_bytes(body).map_err(|_| FrameError::Malformed)?;
    Ok((header.seq(), resp))
}

/// Width of a single load or store. An enum rather than a number, so a
/// size the architecture cannot do does not even decode.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum AccessSize {
    /// One byte (`ldrb`/`strb`).
    B1,
    /// Two bytes.
    B2,
    /// Four bytes.
    B4,
    /// Eight bytes.
    B8,
}

impl AccessSize {
    /// Bytes accessed.
    pub const fn bytes(self) -> u8 {
        match self {
            Self::B1 => 1,
            Self::B2 => 2,
            Self::B4 => 4,
            Self::B8 => 8,
        }
    }

    /// From a byte count (1, 2, 4 or 8).
    pub const fn from_bytes(n: u8) -> Option<Self> {
        match n {
            1 => Some(Self::B1),
            2 => Some(Self::B2),
            4 => Some(Self::B4),
            8 => Some(Self::B8),
            _ => None,
        }
    }
}

/// What a realm process asks of its vCPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum VcpuRequest {
    /// Describe the vCPU and the realm's memory ([`VcpuResponse::Hello`]);
    /// sent first, so the process knows which IPAs it may use for buffers.
    Hello,
    /// Execute `smc #0` with x0..x17.
    Smc {
        /// x0..x17 before the call.
        regs: SmcRegs,
    },
    /// A single load.
    Load {
        /// Realm IPA.
        ipa: u64,
        /// Width.
        size: AccessSize,
    },
    /// A single store of the low `size` bytes of `value`.
    Store {
        /// Realm IPA.
        ipa: u64,
        /// Width.
        size: AccessSize,
        /// Value (low bytes stored).
        value: u64,
    },
    /// Read `len` (at most [`CHUNK_MAX`]) bytes of realm memory.
    Read {
        /// Realm IPA of the first byte.
        ipa: u64,
        /// Bytes wanted; the simulator refuses more than [`CHUNK_MAX`].
        len: u32,
    },
    /// Write bytes into realm memory.
    Write {
        /// Realm IPA of the first byte.
        ipa: u64,
        /// The bytes.
        data: BoundedBytes<CHUNK_MAX>,
    },
}

/// A RAM region of the realm (protected IPA space, RIPAS RAM at creation).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub struct MemRegion {
    /// First IPA.
    pub base: u64,
    /// Bytes; zero marks an unused slot.
    pub size: u64,
}

/// What the simulator tells a realm process about its vCPU: the REC's
/// entry state and the realm's memory, as a boot loader would pass them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct VcpuInfo {
    /// MPIDR of the REC.
    pub mpidr: u64,
    /// Entry point the REC was created with.
    pub pc: u64,
    /// x0..x7 the REC was created with.
    pub entry_gprs: [u64; 8],
    /// Realm IPA width in bits.
    pub ipa_width: u8,
    /// RAM regions; slots with size zero are unused.
    pub ram: [MemRegion; MAX_RAM_REGIONS],
}

impl VcpuInfo {
    /// The RAM regions in use.
    pub fn ram_regions(&self) -> impl Iterator<Item = &MemRegion> {
        self.ram.iter().filter(|r| r.size != 0)
    }
}

/// Why the simulator refused a request without running it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum VcpuError {
    /// The request frame was refused.
    Frame(FrameError),
    /// A `Read` longer than [`CHUNK_MAX`].
    TooLong,
    /// The realm's vCPU is gone (the realm powered off or the simulator is
    /// shutting down).
    Halted,
}

impl fmt::Display for VcpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "request refused: {e}"),
            Self::TooLong => write!(f, "read longer than {CHUNK_MAX} bytes"),
            Self::Halted => f.write_str("the realm vCPU has halted"),
        }
    }
}

/// The simulator's answer; the variant matches the request's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum VcpuResponse {
    /// To [`VcpuRequest::Hello`].
    Hello(VcpuInfo),
    /// To [`VcpuRequest::Smc`]: x0..x17 after the call.
    Smc {
        /// x0..x17 after the call.
        regs: SmcRegs,
    },
    /// To [`VcpuRequest::Load`].
    Loaded {
        /// The value, zero-extended.
        value: u64,
    },
    /// To [`VcpuRequest::Store`].
    Stored,
    /// To [`VcpuRequest::Read`].
    Data(BoundedBytes<CHUNK_MAX>),
    /// To [`VcpuRequest::Write`].
    Written,
    /// The access took a synchronous external abort (RIPAS EMPTY, outside
    /// the IPA space, unaligned, or injected by the host); for a bulk
    /// access, some bytes before the faulting one may have been moved.
    Sea,
    /// Refused.
    Error(VcpuError),
}

/// Upper bound of an encoded [`VcpuRequest`].
pub const REQUEST_MAX: usize = VcpuRequest::POSTCARD_MAX_SIZE;
/// Upper bound of an encoded [`VcpuResponse`].
pub const RESPONSE_MAX: usize = VcpuResponse::POSTCARD_MAX_SIZE;

const _: () = {
    assert!(REQUEST_MAX <= MAX_PAYLOAD);
    assert!(RESPONSE_MAX <= MAX_PAYLOAD);
    assert!(MAX_PAYLOAD <= u32::MAX as usize);
};

/// The host-call ABI the simulator's host implements (`RSI_HOST_CALL`
/// immediates and their registers in `RsiHostCall::gprs`).
pub mod host_call {
    /// Console output: `gprs[0]` is the byte count (at most
    /// [`CONSOLE_MAX`]), `gprs[1..]` carry the bytes, little-endian, eight
    /// per register. The host prints them and answers `gprs[0]` = bytes
    /// written.
    pub const CONSOLE_WRITE: u16 = 0x0C01;
    /// Bytes one [`CONSOLE_WRITE`] carries: 30 registers of 8 bytes.
    pub const CONSOLE_MAX: usize = 30 * 8;
    /// What the host answers in `gprs[0]` for an immediate it does not
    /// implement (SMCCC's `NOT_SUPPORTED`, -1).
    pub const UNKNOWN: u64 = u64::MAX;
}
