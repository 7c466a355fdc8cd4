//! The HES link client (`atoll_hes_link::HesLink`) against a transport
//! whose answers are fuzzer bytes.
//!
//! Input: a mode byte, three bytes naming eight client calls (three bits
//! each: realm key, platform token with a 32- or 48-byte challenge, extend,
//! read slot, boot complete, VHUK, CPAK public key), then the answer
//! stream. Mode bit 0: the stream is a sequence of payloads (see
//! `atoll_fuzz::messages`) the transport frames as valid responses to the
//! request just sent (so the fuzzer works on the responses, not on CRCs and
//! ids); otherwise the stream is raw bytes.
//!
//! Properties: no panic; every frame the client sends is a valid request
//! frame; a reassembled platform token is within `TOKEN_MAX`; after a
//! fault that loses the stream position, every later call is refused as
//! desynchronized.
#![no_main]

use atoll_hes_link::{HesLink, LinkError, Transport};
use ipc_schema::hes::{
    check_frame, encode_frame, EccCurve, FrameKind, HesHashAlgo, VhukId, MAX_FRAME, TOKEN_MAX,
};
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct Eof;

impl core::fmt::Display for Eof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("end of fuzz input")
    }
}

struct FuzzTransport<'a> {
    framed: bool,
    stream: &'a [u8],
    pending: Vec<u8>,
    last_id: u32,
}

impl FuzzTransport<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.stream.len() < n {
            return None;
        }
        let (head, tail) = self.stream.split_at(n);
        self.stream = tail;
        Some(head)
    }
}

impl Transport for FuzzTransport<'_> {
    type Error = Eof;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Eof> {
        let (header, _) =
            check_frame(buf, FrameKind::Request).expect("the client sent an invalid frame");
        self.last_id = header.request_id();
        self.pending.clear();
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Eof> {
        if !self.framed {
            let bytes = self.take(buf.len()).ok_or(Eof)?;
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        if self.pending.is_empty() {
            let len = self.take(2).ok_or(Eof)?;
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            let len = len.min(self.stream.len());
            let payload = self.take(len).ok_or(Eof)?.to_vec();
            let mut frame = [0u8; MAX_FRAME];
            self.pending =
                match encode_frame(FrameKind::Response, self.last_id, &payload, &mut frame) {
                    Ok(n) => frame[..n].to_vec(),
                    Err(_) => payload,
                };
        }
        if self.pending.len() < buf.len() {
            return Err(Eof);
        }
        buf.copy_from_slice(&self.pending[..buf.len()]);
        self.pending.drain(..buf.len());
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let ops = u32::from_le_bytes([data[1], data[2], data[3], 0]);
    let mut link = HesLink::new(FuzzTransport {
        framed: data[0] & 1 != 0,
        stream: &data[4..],
        pending: Vec::new(),
        last_id: 0,
    });
    let mut desynchronized = false;
    for i in 0..8 {
        let op = (ops >> (3 * i)) & 7;
        let result: Result<(), LinkError<Eof>> = match op {
            0 => link
                .realm_key(EccCurve::P384, HesHashAlgo::Sha256)
                .map(drop),
            1 | 2 => link
                .platform_token(&[0x5c; 64][..if op == 1 { 32 } else { 48 }])
                .map(|token| assert!(token.len() <= TOKEN_MAX)),
            3 => link.extend(0, atoll_fuzz::fixtures::record("BL2", 0xaa), false),
            4 => link.read_slot(1).map(drop),
            5 => link.boot_complete(),
            6 => link
                .vhuk(if i % 2 == 0 { VhukId::A } else { VhukId::M })
                .map(drop),
            _ => link.cpak_public_key().map(drop),
        };
        if desynchronized {
            assert!(
                matches!(result, Err(LinkError::Desynchronized)),
                "a call after a lost stream position was not refused"
            );
        }
        if matches!(
            result,
            Err(LinkError::Transport(_) | LinkError::Frame(_) | LinkError::IdMismatch { .. })
        ) {
            desynchronized = true;
        }
    }
});
