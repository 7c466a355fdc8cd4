//! `KeysService::handle_bytes` driven with arbitrary bytes: a whole
//! conversation per input, with up to three leases of arbitrary kind and
//! size. With the descriptor's flag set, the service is first provisioned
//! with the HES's VHUKs, so sealing keys can be derived; a `Fixture` lease
//! holds a validly signed metadata block, so `SetMetadata` can succeed.
//!
//! Properties: no panic; every answer fits `RESPONSE_MAX` and decodes;
//! bytes that are not exactly one request are answered `Malformed`.
#![no_main]

use atoll_keys::KeysService;
use ipc_schema::service::keys::{KeysError, KeysRequest, KeysResponse, REQUEST_MAX, RESPONSE_MAX};
use ipc_schema::wire::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((spec, rest)) = atoll_fuzz::lease_header(data) else {
        return;
    };
    let mut bufs = spec.buffers(atoll_fuzz::fixtures::metadata_block());
    let mut svc = KeysService::new(2);
    if spec.flag {
        let (a, m) = atoll_fuzz::fixtures::vhuks();
        let r = svc.handle(KeysRequest::Provision {
            vhuk_a: Bytes(a),
            vhuk_m: Bytes(m),
        });
        assert_eq!(r, KeysResponse::Ok);
    }
    let mut resp = [0u8; RESPONSE_MAX];
    for msg in atoll_fuzz::messages(rest) {
        let mut leases = atoll_fuzz::lease_mems(&mut bufs);
        let n = svc.handle_bytes(msg, &mut leases, &mut resp);
        assert!(n > 0, "answer does not fit RESPONSE_MAX");
        let answer = match postcard::take_from_bytes::<KeysResponse>(&resp[..n]) {
            Ok((a, [])) => a,
            other => panic!("undecodable answer: {other:?}"),
        };
        let valid = msg.len() <= REQUEST_MAX
            && matches!(postcard::take_from_bytes::<KeysRequest>(msg), Ok((_, [])));
        if !valid {
            assert_eq!(answer, KeysResponse::Error(KeysError::Malformed));
        }
    }
});
