//! The HES link client used by the root monitor and the RMM.
//!
//! [`HesLink`] speaks the protocol of [`ipc_schema::hes`] over any byte
//! stream that can write and read exactly (a [`Transport`]): a UART on
//! hardware, a Unix socket or TCP in simulation (feature `std`), a fake in
//! tests. It numbers requests, checks that every answer is a well-formed
//! response frame (magic, version, kind, length bound, CRC) to *this*
//! request before decoding it, and reassembles chunked platform tokens.
//!
//! What it must not do: trust anything the other end sends. Every fault is a
//! typed [`LinkError`]; a fault that leaves the stream at an unknown
//! position (a bad header, a wrong id, a transport error) also marks the
//! link desynchronized, so no later answer is ever paired with the wrong
//! request: the caller reconnects.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(feature = "std")]
mod stream;

use alloc::vec::Vec;

use ipc_schema::hes::{
    check_frame, encode_message, EccCurve, FrameError, FrameHeader, FrameKind, HesError,
    HesHashAlgo, HesRequest, HesResponse, MeasurementRecord, SlotState, VhukId, CHALLENGE_MAX,
    HEADER_LEN, MAX_FRAME, P384_POINT_LEN, P384_SCALAR_LEN, TOKEN_MAX, VHUK_LEN,
};
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[cfg(feature = "std")]
pub use stream::{StreamTransport, DEFAULT_TIMEOUT};

/// A byte stream to the HES. Both calls block until the whole buffer has
/// moved or fail: the link has no use for partial transfers.
pub trait Transport {
    /// What the stream reports when it fails.
    type Error: core::fmt::Debug + core::fmt::Display;
    /// Sends all of `buf`.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error>;
    /// Fills all of `buf`.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Self::Error>;
}

/// How a chunked platform token transfer went wrong.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenFault {
    /// The announced length is above [`TOKEN_MAX`].
    #[error("announced token length above the maximum")]
    TooLarge,
    /// A chunk starts elsewhere than asked.
    #[error("chunk offset differs from the one requested")]
    OffsetMismatch,
    /// A chunk announces another total length or digest than the first:
    /// the token changed mid-transfer.
    #[error("token changed during the transfer")]
    Changed,
    /// A chunk carries no bytes while more remain (would never finish).
    #[error("empty chunk before the end of the token")]
    EmptyChunk,
    /// A chunk runs past the announced length, or `remaining` disagrees
    /// with the bytes received.
    #[error("chunk length disagrees with the announced total")]
    LengthMismatch,
    /// The reassembled token does not hash to the announced digest.
    #[error("reassembled token does not match its digest")]
    DigestMismatch,
}

/// Why a call to the HES failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError<E: core::fmt::Debug + core::fmt::Display> {
    /// The transport failed; the stream position is unknown.
    #[error("HES transport failed: {0}")]
    Transport(E),
    /// The answer is not a valid response frame.
    #[error("HES response frame refused: {0}")]
    Frame(FrameError),
    /// The answer carries another request's id (stale or replayed).
    #[error("HES response id {got} does not answer request {expected}")]
    IdMismatch {
        /// The id sent.
        expected: u32,
        /// The id received.
        got: u32,
    },
    /// The frame was fine but its payload is not one response.
    #[error("HES response could not be decoded")]
    Decode,
    /// The request could not be encoded (an argument above its bound).
    #[error("request does not fit the protocol's bounds")]
    Encode,
    /// The HES refused the request.
    #[error("HES refused the request: {0}")]
    Hes(HesError),
    /// The HES answered with a response for another kind of request.
    #[error("HES answered with an unexpected response kind")]
    UnexpectedResponse,
    /// A platform token transfer was inconsistent.
    #[error("platform token transfer: {0}")]
    Token(TokenFault),
    /// An earlier fault left the stream at an unknown position; reconnect.
    #[error("HES link desynchronized by an earlier fault; reconnect")]
    Desynchronized,
}

/// Result of a link call.
pub type LinkResult<T, E> = Result<T, LinkError<E>>;

/// The client. Not `Sync`: one request at a time per stream, as the
/// protocol has no pipelining.
pub struct HesLink<T: Transport> {
    transport: T,
    next_id: u32,
    desynchronized: bool,
}

impl<T: Transport> HesLink<T> {
    /// A client over `transport`; the first request gets id 1.
    pub fn new(transport: T) -> Self {
        Self {
            transport,
            next_id: 1,
            desynchronized: false,
        }
    }

    /// The transport back, e.g. to close it.
    pub fn into_inner(self) -> T {
        self.transport
    }

    /// Ids increase and skip 0, which the HES uses for answers to frames
    /// whose header it could not read.
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        id
    }

    /// Sends one request and returns the HES's answer as it came, including
    /// [`HesResponse::Error`]. The typed helpers below are usually better.
    pub fn call(&mut self, request: &HesRequest) -> LinkResult<HesResponse, T::Error> {
        if self.desynchronized {
            return Err(LinkError::Desynchronized);
        }
        let id = self.take_id();
        let mut buf = [0u8; MAX_FRAME];
        let len = encode_message(FrameKind::Request, id, request, &mut buf)
            .map_err(|_| LinkError::Encode)?;
        let result = self.exchange(id, &mut buf, len);
        if let Err(LinkError::Transport(_) | LinkError::Frame(_) | LinkError::IdMismatch { .. }) =
            &result
        {
            self.desynchronized = true;
        }
        result
    }

    fn exchange(
        &mut self,
        id: u32,
        buf: &mut [u8; MAX_FRAME],
        len: usize,
    ) -> LinkResult<HesResponse, T::Error> {
        self.transport
            .write_all(&buf[..len])
            .map_err(LinkError::Transport)?;
        // Header first: its length field is checked against the bound
        // before a single payload byte is read.
        let (head, body) = buf.split_at_mut(HEADER_LEN);
        self.transport
            .read_exact(head)
            .map_err(LinkError::Transport)?;
        let header = FrameHeader::parse(head, FrameKind::Response).map_err(LinkError::Frame)?;
        let payload_len = header.payload_len();
        self.transport
            .read_exact(&mut body[..payload_len])
            .map_err(LinkError::Transport)?;
        let (header, payload) = check_frame(&buf[..HEADER_LEN + payload_len], FrameKind::Response)
            .map_err(LinkError::Frame)?;
        if header.request_id() != id {
            return Err(LinkError::IdMismatch {
                expected: id,
                got: header.request_id(),
            });
        }
        match postcard::take_from_bytes::<HesResponse>(payload) {
            Ok((response, [])) => Ok(response),
            Ok(_) | Err(_) => Err(LinkError::Decode),
        }
    }

    /// [`Self::call`], with an error answer turned into [`LinkError::Hes`].
    fn call_ok(&mut self, request: &HesRequest) -> LinkResult<HesResponse, T::Error> {
        match self.call(request)? {
            HesResponse::Error(e) => Err(LinkError::Hes(e)),
            other => Ok(other),
        }
    }

    /// `RMM_ATTEST_GET_REALM_KEY`: the RAK's raw private scalar (big-endian),
    /// wiped when dropped.
    pub fn realm_key(
        &mut self,
        curve: EccCurve,
        hash_algo: HesHashAlgo,
    ) -> LinkResult<Zeroizing<[u8; P384_SCALAR_LEN]>, T::Error> {
        match self.call_ok(&HesRequest::GetRealmKey { curve, hash_algo })? {
            HesResponse::RealmKey(k) => Ok(Zeroizing::new(k.0)),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }

    /// `RMM_ATTEST_GET_PLAT_TOKEN`: the whole platform token for
    /// `challenge`, reassembled from its chunks and checked against the
    /// digest the HES announced.
    pub fn platform_token(&mut self, challenge: &[u8]) -> LinkResult<Vec<u8>, T::Error> {
        let challenge = BoundedBytes::<CHALLENGE_MAX>::new(challenge)
            .map_err(|_| LinkError::Hes(HesError::BadChallengeLength))?;
        let fault = |f| Err(LinkError::Token(f));
        let mut token = Vec::new();
        let mut announced = None;
        loop {
            // token.len() <= TOKEN_MAX, which fits a u32.
            let offset = token.len() as u32;
            let chunk = match self.call_ok(&HesRequest::GetPlatformToken {
                challenge: challenge.clone(),
                offset,
            })? {
                HesResponse::PlatformToken(c) => c,
                _ => return Err(LinkError::UnexpectedResponse),
            };
            let total = chunk.total_len as usize;
            match announced {
                None => {
                    if total > TOKEN_MAX {
                        return fault(TokenFault::TooLarge);
                    }
                    token.reserve_exact(total);
                    announced = Some((chunk.total_len, chunk.digest.clone()));
                }
                Some((t, ref d)) if t != chunk.total_len || *d != chunk.digest => {
                    return fault(TokenFault::Changed)
                }
                Some(_) => {}
            }
            if chunk.offset != offset {
                return fault(TokenFault::OffsetMismatch);
            }
            let data = chunk.data.as_slice();
            let end = token.len() + data.len();
            if end > total || chunk.remaining as usize != total - end {
                return fault(TokenFault::LengthMismatch);
            }
            if data.is_empty() && chunk.remaining != 0 {
                return fault(TokenFault::EmptyChunk);
            }
            token.extend_from_slice(data);
            if chunk.remaining == 0 {
                if Sha256::digest(&token).as_slice() != chunk.digest.0 {
                    return fault(TokenFault::DigestMismatch);
                }
                return Ok(token);
            }
        }
    }

    /// Measured boot: extends `slot` with `record`, locking it if `lock`.
    pub fn extend(
        &mut self,
        slot: u8,
        record: MeasurementRecord,
        lock: bool,
    ) -> LinkResult<(), T::Error> {
        match self.call_ok(&HesRequest::Extend { slot, record, lock })? {
            HesResponse::Extended => Ok(()),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }

    /// Measured boot: reads `slot`.
    pub fn read_slot(&mut self, slot: u8) -> LinkResult<SlotState, T::Error> {
        match self.call_ok(&HesRequest::ReadSlot { slot })? {
            HesResponse::Slot(s) => Ok(s),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }

    /// Tells the HES boot is complete: every slot locks.
    pub fn boot_complete(&mut self) -> LinkResult<(), T::Error> {
        match self.call_ok(&HesRequest::BootComplete)? {
            HesResponse::BootCompleted => Ok(()),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }

    /// `RMM_ISLET_GET_VHUK`: VHUK_A or VHUK_M, wiped when dropped.
    pub fn vhuk(&mut self, id: VhukId) -> LinkResult<Zeroizing<[u8; VHUK_LEN]>, T::Error> {
        match self.call_ok(&HesRequest::GetVhuk { id })? {
            HesResponse::Vhuk(k) => Ok(Zeroizing::new(k.0)),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }

    /// The CPAK public key, SEC1 uncompressed.
    pub fn cpak_public_key(&mut self) -> LinkResult<[u8; P384_POINT_LEN], T::Error> {
        match self.call_ok(&HesRequest::GetCpakPublicKey)? {
            HesResponse::CpakPublicKey(k) => Ok(k.0),
            _ => Err(LinkError::UnexpectedResponse),
        }
    }
}

#[cfg(test)]
mod tests;
