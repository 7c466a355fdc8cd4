//! Agent-protocol request frames (warden <-> realm agent) from arbitrary
//! bytes: decoding never panics, and anything that decodes re-encodes to
//! a frame that decodes to the same value.
#![no_main]

use ipc_schema::agent::{decode_request, encode_frame, AgentFrameKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_request(data) {
        let frame = encode_frame(AgentFrameKind::Request, &msg).expect("re-encode");
        assert_eq!(decode_request(&frame).expect("decode again"), msg);
    }
});
