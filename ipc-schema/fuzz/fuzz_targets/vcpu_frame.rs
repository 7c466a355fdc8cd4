//! The simulated-vCPU frame decoder (`FrameHeader::parse`, `check_frame`,
//! `decode_request`, `decode_response`) from arbitrary bytes.
//!
//! Properties: no panic; whatever decodes was a checked frame, re-encodes
//! into a frame (within `MAX_FRAME`) that decodes to the same sequence
//! number and message.
#![no_main]

use ipc_schema::simvcpu::{
    check_frame, decode_request, decode_response, encode_message, FrameHeader, FrameKind,
    HEADER_LEN, MAX_FRAME, MAX_PAYLOAD,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for kind in [FrameKind::Request, FrameKind::Response] {
        if let Ok(h) = FrameHeader::parse(data, kind) {
            assert!(h.payload_len() <= MAX_PAYLOAD);
        }
        if let Ok((h, payload)) = check_frame(data, kind) {
            assert_eq!(data.len(), HEADER_LEN + h.payload_len());
            assert_eq!(payload.len(), h.payload_len());
        }
    }
    let mut out = [0u8; MAX_FRAME];
    if let Ok((seq, req)) = decode_request(data) {
        assert!(check_frame(data, FrameKind::Request).is_ok());
        let n = encode_message(FrameKind::Request, seq, &req, &mut out).expect("re-encodes");
        assert_eq!(decode_request(&out[..n]), Ok((seq, req)));
    }
    if let Ok((seq, resp)) = decode_response(data) {
        assert!(check_frame(data, FrameKind::Response).is_ok());
        let n = encode_message(FrameKind::Response, seq, &resp, &mut out).expect("re-encodes");
        assert_eq!(decode_response(&out[..n]), Ok((seq, resp)));
    }
});
