//! The HES link frame parser and checker (`FrameHeader::parse`,
//! `check_frame`) from arbitrary bytes, for both directions.
//!
//! Properties: no panic; a frame that passes `check_frame` also passes
//! `FrameHeader::parse`, its payload is exactly `payload_len` bytes after
//! the header, and framing that payload again gives the same bytes (one
//! valid frame per header and payload); a header `parse` accepts never
//! announces more than `MAX_PAYLOAD`. Payloads of valid frames go through
//! the message round trip.
#![no_main]

use ipc_schema::hes::{
    check_frame, encode_frame, FrameHeader, FrameKind, HesRequest, HesResponse, HEADER_LEN,
    MAX_FRAME, MAX_PAYLOAD,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [FrameKind::Request, FrameKind::Response] {
        let header = FrameHeader::parse(data, kind);
        if let Ok(h) = &header {
            assert!(h.payload_len() <= MAX_PAYLOAD);
        }
        if let Ok((h, payload)) = check_frame(data, kind) {
            assert_eq!(header.as_ref(), Ok(&h));
            assert_eq!(payload.len(), h.payload_len());
            assert_eq!(data.len(), HEADER_LEN + payload.len());
            let mut out = [0u8; MAX_FRAME];
            let n = encode_frame(kind, h.request_id(), payload, &mut out)
                .expect("a checked frame's payload fits a frame");
            assert_eq!(&out[..n], data, "re-framing changed the bytes");
            match kind {
                FrameKind::Request => {
                    let _ = atoll_fuzz::postcard_round_trip::<HesRequest>(payload);
                }
                FrameKind::Response => {
                    let _ = atoll_fuzz::postcard_round_trip::<HesResponse>(payload);
                }
            }
        }
    }
});
