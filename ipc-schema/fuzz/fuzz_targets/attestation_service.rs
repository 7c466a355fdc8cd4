//! `AttestationService::handle_bytes` driven with arbitrary bytes: a whole
//! conversation per input, with up to three leases of arbitrary kind and
//! size (writable ones included). With the descriptor's flag set, the
//! service is first provisioned as boot does (the HES's RAK and the
//! platform token it signed for the binding), so `Init` and `Continue`
//! reach token encoding and signing; a `Fixture` lease holds that platform
//! token.
//!
//! Properties: no panic; every answer fits `RESPONSE_MAX` and decodes;
//! bytes that are not exactly one request are answered `Malformed`; a
//! `Continue` never reports more bytes written than it was given room for.
#![no_main]

use atoll_attestation::AttestationService;
use ipc_schema::service::attestation::{
    AttestationError, AttestationRequest, AttestationResponse, REQUEST_MAX, RESPONSE_MAX,
};
use ipc_schema::service::Lease;
use ipc_schema::wire::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((spec, rest)) = atoll_fuzz::lease_header(data) else {
        return;
    };
    let (rak, token) = atoll_fuzz::fixtures::rak_and_platform_token();
    let mut bufs = spec.buffers(token);
    let mut svc = AttestationService::new(2);
    if spec.flag {
        let r = svc.handle(
            &AttestationRequest::ProvisionRak {
                scalar: Bytes(*rak),
            },
            &mut [],
        );
        assert!(matches!(r, AttestationResponse::RakBinding { .. }), "{r:?}");
        let mut lease = [ipc_schema::service::LeaseMem::Read(token)];
        let r = svc.handle(
            &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
            &mut lease,
        );
        assert_eq!(r, AttestationResponse::Ok);
    }
    let mut resp = [0u8; RESPONSE_MAX];
    for msg in atoll_fuzz::messages(rest) {
        let mut leases = atoll_fuzz::lease_mems(&mut bufs);
        let n = svc.handle_bytes(msg, &mut leases, &mut resp);
        assert!(n > 0, "answer does not fit RESPONSE_MAX");
        let answer = match postcard::take_from_bytes::<AttestationResponse>(&resp[..n]) {
            Ok((a, [])) => a,
            other => panic!("undecodable answer: {other:?}"),
        };
        let request = match postcard::take_from_bytes::<AttestationRequest>(msg) {
            Ok((r, [])) if msg.len() <= REQUEST_MAX => Some(r),
            _ => None,
        };
        match (request, answer) {
            (None, a) => assert_eq!(a, AttestationResponse::Error(AttestationError::Malformed)),
            (
                Some(AttestationRequest::Continue { size, .. }),
                AttestationResponse::Progress { written, .. },
            ) => assert!(written <= u32::from(size), "wrote {written} into {size}"),
            _ => {}
        }
    }
});
