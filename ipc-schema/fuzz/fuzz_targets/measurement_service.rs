//! `MeasurementService::handle_bytes` driven with arbitrary bytes: a whole
//! conversation per input (see `atoll_fuzz::messages`), with up to three
//! leases of arbitrary kind and size (`atoll_fuzz::LeaseSpec`).
//!
//! Properties: no panic; every request gets an answer that fits
//! `RESPONSE_MAX` and decodes; bytes that are not exactly one request are
//! answered `Malformed`; the service never tracks more realms than allowed.
#![no_main]

use atoll_measurement::MeasurementService;
use ipc_schema::service::measurement::{
    MeasurementError, MeasurementRequest, MeasurementResponse, REQUEST_MAX, RESPONSE_MAX,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((spec, rest)) = atoll_fuzz::lease_header(data) else {
        return;
    };
    let mut bufs = spec.buffers(&[]);
    let mut svc = MeasurementService::new(2);
    let mut resp = [0u8; RESPONSE_MAX];
    for msg in atoll_fuzz::messages(rest) {
        let mut leases = atoll_fuzz::lease_mems(&mut bufs);
        let n = svc.handle_bytes(msg, &mut leases, &mut resp);
        assert!(n > 0, "answer does not fit RESPONSE_MAX");
        let answer = match postcard::take_from_bytes::<MeasurementResponse>(&resp[..n]) {
            Ok((a, [])) => a,
            other => panic!("undecodable answer: {other:?}"),
        };
        let valid = msg.len() <= REQUEST_MAX
            && matches!(
                postcard::take_from_bytes::<MeasurementRequest>(msg),
                Ok((_, []))
            );
        if !valid {
            assert_eq!(
                answer,
                MeasurementResponse::Error(MeasurementError::Malformed)
            );
        }
        assert!(svc.realm_count() <= svc.max_realms());
    }
});
