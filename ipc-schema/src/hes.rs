//! The HES link protocol: framed, versioned, bounded messages between the
//! root monitor / RMM side and the HES, with request ids.
//!
//! The link is a plain byte stream (a Unix socket in simulation, a UART
//! bridged to TCP on QEMU), so every message travels in a [`FrameHeader`]
//! that lets the receiver check, before it decodes a single payload byte,
//! that the bytes are meant for it (magic, version, direction), that they
//! fit its buffer (length bound) and that they arrived intact (CRC-32).
//!
//! ```text
//! offset size field
//!  0      4   magic        "AHES"
//!  4      1   version      PROTOCOL_VERSION (1)
//!  5      1   kind         1 request, 2 response
//!  6      2   reserved     zero
//!  8      4   request_id   little-endian; a response echoes its request's id
//! 12      4   payload_len  little-endian, <= MAX_PAYLOAD
//! 16      4   crc32        little-endian CRC-32 (ISO-HDLC) of bytes 0..16 and the payload
//! 20      n   payload      postcard-encoded HesRequest / HesResponse
//! ```
//!
//! Payloads are [`HesRequest`] and [`HesResponse`], postcard-encoded, each
//! with a compile-time size bound no larger than [`MAX_PAYLOAD`]. Platform
//! tokens are longer than one frame and travel in chunks (offset, remaining),
//! as `RMM_ATTEST_GET_PLAT_TOKEN` hands them to the RMM.
//!
//! Only encoding lives here (header layout, CRC, framing helpers); what the
//! HES does with a request is `hes-mcu`'s business, how a client retries is
//! `hes-link`'s.

use core::fmt;

use postcard::experimental::max_size::MaxSize;
use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::assert_layout;
use crate::wire::{varint_len, BoundedBytes, Bytes};

/// First four bytes of every frame: lets either side notice at once that it
/// is talking to something that is not an HES link (a console, a stale peer).
pub const MAGIC: [u8; 4] = *b"AHES";
/// The one protocol version this crate speaks. A peer with another version
/// is refused rather than guessed at.
pub const PROTOCOL_VERSION: u8 = 1;
/// Bytes of [`FrameHeader`].
pub const HEADER_LEN: usize = 20;
/// Largest payload either side accepts. Chosen so every message below fits
/// (checked at compile time) while a receiver's buffer stays small enough
/// for the HES's SRAM.
pub const MAX_PAYLOAD: usize = 1024;
/// Largest frame on the wire: a receiver never needs a bigger buffer.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_PAYLOAD;
/// Number of measured-boot slots the HES keeps.
pub const MEASUREMENT_SLOTS: usize = 16;
/// Longest measurement or slot value (a SHA-512 digest).
pub const MEASUREMENT_MAX: usize = 64;
/// Longest signer id (hash of the signing key) a slot records.
pub const SIGNER_ID_MAX: usize = 64;
/// Longest version string a slot records.
pub const VERSION_MAX: usize = 32;
/// Longest component type ("BL2", "RMM", ...) a slot records.
pub const COMPONENT_TYPE_MAX: usize = 32;
/// Longest platform-token challenge (a SHA-512 digest of the RAK claim).
pub const CHALLENGE_MAX: usize = 64;
/// Bytes of token carried by one [`TokenChunk`].
pub const TOKEN_CHUNK_MAX: usize = 768;
/// Longest platform token the HES produces and a client reassembles; a
/// client refuses an announced length above this before buffering anything.
pub const TOKEN_MAX: usize = 8192;
/// Bytes of a P-384 private scalar.
pub const P384_SCALAR_LEN: usize = 48;
/// Bytes of a SEC1 uncompressed P-384 point (`0x04 || x || y`).
pub const P384_POINT_LEN: usize = 97;
/// Bytes of a VHUK.
pub const VHUK_LEN: usize = 32;

/// Which way a frame travels, so a response can never be replayed to the
/// HES as a request (or the other way round).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Client to HES.
    Request = 1,
    /// HES to client.
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

/// The fixed header in front of every payload (layout in the module doc).
/// All multi-byte fields are little-endian whatever the host's byte order.
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
    /// Zero; a non-zero value is refused so the bytes can get a meaning later.
    pub reserved: [u8; 2],
    /// Chosen by the client, echoed by the HES: pairs a response with its
    /// request and exposes a stale or replayed answer.
    pub request_id: U32,
    /// Bytes of payload after the header, at most [`MAX_PAYLOAD`].
    pub payload_len: U32,
    /// CRC-32 over the header's first 16 bytes and the payload: the UART
    /// path has no integrity of its own.
    pub crc32: U32,
}
assert_layout!(FrameHeader, size = HEADER_LEN, {
    magic @ 0, version @ 4, kind @ 5, reserved @ 6, request_id @ 8, payload_len @ 12, crc32 @ 16,
});

/// Why a frame was refused. Checked in this order, each before anything is
/// decoded, so a receiver never acts on bytes it has not validated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum FrameError {
    /// Fewer bytes than the header, or than the header's `payload_len` says.
    Truncated,
    /// The first four bytes are not [`MAGIC`].
    BadMagic,
    /// A protocol version other than [`PROTOCOL_VERSION`].
    UnsupportedVersion,
    /// A kind byte that is not a [`FrameKind`] or not the one expected here.
    BadKind,
    /// The reserved bytes are not zero.
    ReservedNotZero,
    /// `payload_len` above [`MAX_PAYLOAD`]; the payload is not read.
    TooLarge,
    /// More bytes than the header's `payload_len` says.
    TrailingBytes,
    /// The CRC does not match: corrupted in transit.
    BadChecksum,
    /// The output buffer cannot hold the frame, or the message does not
    /// encode within [`MAX_PAYLOAD`] (a sender-side error).
    Encode,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "frame truncated",
            Self::BadMagic => "bad frame magic",
            Self::UnsupportedVersion => "unsupported protocol version",
            Self::BadKind => "unexpected frame kind",
            Self::ReservedNotZero => "reserved header bytes not zero",
            Self::TooLarge => "payload length above the maximum",
            Self::TrailingBytes => "bytes after the payload",
            Self::BadChecksum => "frame checksum mismatch",
            Self::Encode => "message does not fit a frame",
        })
    }
}

/// CRC-32/ISO-HDLC (the zlib/Ethernet CRC): reflected polynomial 0xEDB88320,
/// initial value and final xor 0xFFFF_FFFF. `crc32(b"123456789") == 0xCBF43926`.
pub const fn crc32(data: &[u8]) -> u32 {
    crc32_finish(crc32_update(CRC32_INIT, data))
}

const CRC32_INIT: u32 = 0xFFFF_FFFF;

const fn crc32_finish(state: u32) -> u32 {
    !state
}

const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

const fn crc32_update(mut state: u32, data: &[u8]) -> u32 {
    let mut i = 0;
    while i < data.len() {
        state = CRC32_TABLE[((state ^ data[i] as u32) & 0xFF) as usize] ^ (state >> 8);
        i += 1;
    }
    state
}

/// The CRC a frame with this header prefix and payload must carry.
fn frame_crc(header: &FrameHeader, payload: &[u8]) -> u32 {
    let covered = &header.as_bytes()[..16];
    crc32_finish(crc32_update(crc32_update(CRC32_INIT, covered), payload))
}

impl FrameHeader {
    /// Validates a header on its own: enough bytes, magic, version, kind
    /// (must be `expected`), reserved bytes and the length bound. A stream
    /// receiver calls this on the first [`HEADER_LEN`] bytes to learn how
    /// much more to read, and refuses an oversized frame without reading it.
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

    /// The request id.
    pub fn request_id(&self) -> u32 {
        self.request_id.get()
    }
}

/// Validates a whole frame (header as in [`FrameHeader::parse`], then exact
/// length, then CRC) and returns its header and payload. Nothing in the
/// payload has been interpreted yet.
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
    if frame_crc(&header, body) != header.crc32.get() {
        return Err(FrameError::BadChecksum);
    }
    Ok((header, body))
}

/// Writes a frame carrying `payload` into `out` and returns its length.
/// Refuses a payload above [`MAX_PAYLOAD`] or an `out` too small.
pub fn encode_frame(
    kind: FrameKind,
    request_id: u32,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, FrameError> {
    let total = HEADER_LEN + payload.len();
    if payload.len() > MAX_PAYLOAD || out.len() < total {
        return Err(FrameError::Encode);
    }
    out[HEADER_LEN..total].copy_from_slice(payload);
    seal_header(kind, request_id, out, payload.len());
    Ok(total)
}

/// Encodes `msg` with postcard straight into the payload area of `out` and
/// frames it: the way both sides build frames, so nobody hand-builds bytes.
pub fn encode_message<T: Serialize>(
    kind: FrameKind,
    request_id: u32,
    msg: &T,
    out: &mut [u8; MAX_FRAME],
) -> Result<usize, FrameError> {
    let len = postcard::to_slice(msg, &mut out[HEADER_LEN..])
        .map_err(|_| FrameError::Encode)?
        .len();
    seal_header(kind, request_id, out, len);
    Ok(HEADER_LEN + len)
}

/// Fills in the header of a frame whose payload already sits at
/// `out[HEADER_LEN..HEADER_LEN + len]`.
fn seal_header(kind: FrameKind, request_id: u32, out: &mut [u8], len: usize) {
    let mut header = FrameHeader {
        magic: MAGIC,
        version: PROTOCOL_VERSION,
        kind: kind as u8,
        reserved: [0; 2],
        request_id: U32::new(request_id),
        // `len <= MAX_PAYLOAD` was checked by every caller.
        payload_len: U32::new(len as u32),
        crc32: U32::new(0),
    };
    header.crc32 = U32::new(frame_crc(&header, &out[HEADER_LEN..HEADER_LEN + len]));
    out[..HEADER_LEN].copy_from_slice(header.as_bytes());
}

/// A UTF-8 string of at most `N` bytes: travels as a postcard string and is
/// refused on decode if longer or not UTF-8, so a slot's text fields keep
/// their bound (and stay valid text claims in the platform token).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BoundedStr<const N: usize>(BoundedBytes<N>);

impl<const N: usize> BoundedStr<N> {
    /// Copies `s`, refusing more than `N` bytes.
    pub fn new(s: &str) -> Result<Self, crate::wire::TooLong> {
        BoundedBytes::new(s.as_bytes()).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ever built from a `&str`, so this cannot fail; an empty
        // string is the harmless answer if it ever did.
        core::str::from_utf8(self.0.as_slice()).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Debug for BoundedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Serialize for BoundedStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de, const N: usize> Deserialize<'de> for BoundedStr<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bounded<const N: usize>;
        impl<const N: usize> Visitor<'_> for Bounded<N> {
            type Value = BoundedStr<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a string of at most {N} bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                BoundedStr::new(v).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_str(Bounded::<N>)
    }
}

impl<const N: usize> MaxSize for BoundedStr<N> {
    const POSTCARD_MAX_SIZE: usize = N + varint_len(N);
}

/// A hash algorithm the HES knows: for measured-boot slots and for the RAK
/// binding hash the RMM announces with the realm key request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum HesHashAlgo {
    /// SHA-256, 32-byte digests.
    Sha256,
    /// SHA-384, 48-byte digests.
    Sha384,
    /// SHA-512, 64-byte digests.
    Sha512,
}

impl HesHashAlgo {
    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The name used in tokens ("sha-256", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }
}

/// An elliptic curve for the realm attestation key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum EccCurve {
    /// NIST P-384, the only curve RMM 1.0 uses (`ECC_CURVE_P384` = 0).
    P384,
}

impl EccCurve {
    /// From `RMM_ATTEST_GET_REALM_KEY`'s x3 (0 = P-384).
    pub const fn from_el3(v: u64) -> Option<Self> {
        match v {
            crate::el3::ECC_CURVE_P384 => Some(Self::P384),
            _ => None,
        }
    }
}

/// Which virtual hardware unique key (`RMM_ISLET_GET_VHUK` key id).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum VhukId {
    /// VHUK_A: bound to the signer ids of the booted components, so it
    /// survives an update signed by the same vendor.
    A,
    /// VHUK_M: bound to the measurements, so it changes with any update.
    M,
}

impl VhukId {
    /// From `RMM_ISLET_GET_VHUK`'s x1 (1 VHUK_A, 2 VHUK_M).
    pub const fn from_islet(v: u64) -> Option<Self> {
        match v {
            crate::islet::vhuk::A => Some(Self::A),
            crate::islet::vhuk::M => Some(Self::M),
            _ => None,
        }
    }
}

/// One measured-boot record: what a boot stage tells the HES about the
/// component it is about to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct MeasurementRecord {
    /// Hash algorithm of `measurement`; fixed per slot by its first extend.
    pub algo: HesHashAlgo,
    /// Digest of the component, exactly `algo.digest_len()` bytes.
    pub measurement: BoundedBytes<MEASUREMENT_MAX>,
    /// Hash of the key that signed the component: what VHUK_A binds to.
    pub signer_id: BoundedBytes<SIGNER_ID_MAX>,
    /// The component's version, reported in the platform token.
    pub version: BoundedStr<VERSION_MAX>,
    /// The component's type ("BL2", "BL31", "RMM", ...), reported in the token.
    pub component_type: BoundedStr<COMPONENT_TYPE_MAX>,
}

/// A request to the HES.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum HesRequest {
    /// `RMM_ATTEST_GET_REALM_KEY`: the delegated realm attestation key (RAK),
    /// derived from the boot measurements.
    GetRealmKey {
        /// The key's curve.
        curve: EccCurve,
        /// The hash the RMM will use to bind the RAK to the platform token;
        /// part of the derivation so each binding algorithm gets its own key.
        hash_algo: HesHashAlgo,
    },
    /// `RMM_ATTEST_GET_PLAT_TOKEN`: one chunk of the platform token signed
    /// for `challenge`. The first call uses offset 0; the client then asks
    /// for `offset + chunk length` until `remaining` is zero.
    GetPlatformToken {
        /// The challenge (hash of the RAK claim): 32, 48 or 64 bytes.
        challenge: BoundedBytes<CHALLENGE_MAX>,
        /// Byte offset of the chunk wanted.
        offset: u32,
    },
    /// Measured boot: extend slot `slot` with `record`.
    Extend {
        /// Slot index, below [`MEASUREMENT_SLOTS`].
        slot: u8,
        /// What was measured.
        record: MeasurementRecord,
        /// Lock the slot after this extend (no later extend is accepted).
        lock: bool,
    },
    /// Measured boot: read slot `slot`.
    ReadSlot {
        /// Slot index, below [`MEASUREMENT_SLOTS`].
        slot: u8,
    },
    /// The boot chain is done: lock every slot, so nothing running later can
    /// change the measurements the keys and the token are bound to.
    BootComplete,
    /// `RMM_ISLET_GET_VHUK`.
    GetVhuk {
        /// Which key.
        id: VhukId,
    },
    /// The CPAK public key, so a verifier's trust anchor can be provisioned.
    GetCpakPublicKey,
}

/// One slot as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct SlotState {
    /// The slot's current value: the first measurement, then
    /// `H(value || measurement)` for each later extend. `measurement` in
    /// this record is that value, the rest describes the latest extend.
    pub record: MeasurementRecord,
    /// Extends so far (at least 1).
    pub extend_count: u32,
    /// No further extend is accepted.
    pub locked: bool,
}

/// One chunk of a platform token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct TokenChunk {
    /// Length of the whole token, at most [`TOKEN_MAX`].
    pub total_len: u32,
    /// Where `data` starts in the token (the request's offset).
    pub offset: u32,
    /// Bytes left after this chunk; zero on the last one.
    pub remaining: u32,
    /// SHA-256 of the whole token: every chunk carries it, so a client
    /// notices a token that changed between chunks (a re-sign after a
    /// measurement) and checks its reassembly.
    pub digest: Bytes<32>,
    /// The bytes.
    pub data: BoundedBytes<TOKEN_CHUNK_MAX>,
}

/// Why the HES refused a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum HesError {
    /// The frame was refused before decoding.
    Frame(FrameError),
    /// The payload is not a valid postcard [`HesRequest`].
    Malformed,
    /// Slot index at or above [`MEASUREMENT_SLOTS`].
    BadSlot,
    /// The slot has never been extended.
    SlotEmpty,
    /// The slot (or, after boot-complete, every slot) is locked.
    SlotLocked,
    /// The measurement length is not the algorithm's digest length.
    BadMeasurementLength,
    /// The algorithm differs from the one the slot was first extended with.
    AlgoMismatch,
    /// The challenge is not 32, 48 or 64 bytes.
    BadChallengeLength,
    /// The chunk offset is beyond the token.
    BadOffset,
    /// Slot 0 (BL2) has not been measured, so the CPAK cannot be derived.
    NoBl2Measurement,
    /// No slot has been measured, so the RAK or a VHUK would be bound to
    /// nothing.
    NoMeasurements,
    /// The platform token would exceed [`TOKEN_MAX`].
    TokenTooLarge,
    /// Key derivation or signing failed (never expected; reported, not hidden).
    Crypto,
}

impl fmt::Display for HesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Frame(e) => write!(f, "frame refused: {e}"),
            Self::Malformed => f.write_str("request could not be decoded"),
            Self::BadSlot => f.write_str("slot index out of range"),
            Self::SlotEmpty => f.write_str("slot never extended"),
            Self::SlotLocked => f.write_str("slot locked"),
            Self::BadMeasurementLength => {
                f.write_str("measurement length does not match its algorithm")
            }
            Self::AlgoMismatch => f.write_str("hash algorithm differs from the slot's"),
            Self::BadChallengeLength => f.write_str("challenge must be 32, 48 or 64 bytes"),
            Self::BadOffset => f.write_str("token offset beyond the token"),
            Self::NoBl2Measurement => f.write_str("BL2 (slot 0) not measured yet"),
            Self::NoMeasurements => f.write_str("no boot measurements yet"),
            Self::TokenTooLarge => f.write_str("platform token too large"),
            Self::Crypto => f.write_str("key derivation or signing failed"),
        }
    }
}

/// The HES's answer; the variant matches the request's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum HesResponse {
    /// To [`HesRequest::GetRealmKey`]: the raw private scalar, big-endian.
    RealmKey(Bytes<P384_SCALAR_LEN>),
    /// To [`HesRequest::GetPlatformToken`].
    PlatformToken(TokenChunk),
    /// To [`HesRequest::Extend`].
    Extended,
    /// To [`HesRequest::ReadSlot`].
    Slot(SlotState),
    /// To [`HesRequest::BootComplete`].
    BootCompleted,
    /// To [`HesRequest::GetVhuk`].
    Vhuk(Bytes<VHUK_LEN>),
    /// To [`HesRequest::GetCpakPublicKey`]: SEC1 uncompressed point.
    CpakPublicKey(Bytes<P384_POINT_LEN>),
    /// Refused.
    Error(HesError),
}

/// Upper bound of an encoded [`HesRequest`].
pub const REQUEST_MAX: usize = HesRequest::POSTCARD_MAX_SIZE;
/// Upper bound of an encoded [`HesResponse`].
pub const RESPONSE_MAX: usize = HesResponse::POSTCARD_MAX_SIZE;

const _: () = {
    assert!(REQUEST_MAX <= MAX_PAYLOAD);
    assert!(RESPONSE_MAX <= MAX_PAYLOAD);
    assert!(MAX_PAYLOAD <= u32::MAX as usize);
    assert!(TOKEN_MAX <= u32::MAX as usize);
};
