//! `Hes::handle_frame` (the HES firmware's link server) driven with
//! arbitrary bytes: a whole conversation per input.
//!
//! Input: a mode byte, then messages (see `atoll_fuzz::messages`). Mode
//! bit 0: each message is a payload the harness frames as a valid request
//! (so the fuzzer works on the requests, not on CRCs); otherwise each
//! message is a raw frame. Bit 1: the HES starts with BL2 and the RMM
//! measured (keys and tokens can be derived); otherwise straight out of
//! reset.
//!
//! Properties: no panic; every frame gets exactly one answer, which is a
//! valid response frame holding one `HesResponse`; the answer to a frame
//! that passed `check_frame` carries its request id.
#![no_main]

use atoll_fuzz::fixtures;
use ipc_schema::hes::{check_frame, encode_frame, FrameKind, HesResponse, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut hes = if mode & 2 != 0 {
        fixtures::hes()
    } else {
        fixtures::hes_unmeasured()
    };
    let mut framed = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    for (i, msg) in atoll_fuzz::messages(rest).enumerate() {
        let frame = if mode & 1 != 0 {
            match encode_frame(FrameKind::Request, i as u32 + 1, msg, &mut framed) {
                Ok(n) => &framed[..n],
                Err(_) => msg,
            }
        } else {
            msg
        };
        let n = hes.handle_frame(frame, &mut out);
        assert!(n > 0, "no answer");
        let (header, payload) =
            check_frame(&out[..n], FrameKind::Response).expect("answer is a valid frame");
        match postcard::take_from_bytes::<HesResponse>(payload) {
            Ok((_, [])) => {}
            other => panic!("undecodable answer: {other:?}"),
        }
        if let Ok((request, _)) = check_frame(frame, FrameKind::Request) {
            assert_eq!(header.request_id(), request.request_id());
        }
    }
});
