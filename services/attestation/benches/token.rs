//! A whole realm token through the attestation service (INIT, then
//! CONTINUE until the last chunk) against one bare P-384 ECDSA signature
//! measured in the same run. Target: at most 1.3x.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use atoll_attestation::AttestationService;
use atoll_cca_token::{PlatformClaims, PLATFORM_PROFILE_1_0};
use criterion::{criterion_group, criterion_main, Criterion};
use ipc_schema::service::attestation::{
    AttestationRequest, AttestationResponse, RealmClaimsInput, RecHandle,
};
use ipc_schema::service::{HashAlgo, Lease, LeaseMem, RealmHandle};
use ipc_schema::wire::Bytes;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;

fn service() -> AttestationService {
    let mut svc = AttestationService::new(4);
    let rak = SigningKey::random(&mut OsRng);
    let cpak = SigningKey::random(&mut OsRng);
    let AttestationResponse::RakBinding { challenge } = svc.handle(
        &AttestationRequest::ProvisionRak {
            scalar: Bytes(rak.to_bytes().into()),
        },
        &mut [],
    ) else {
        panic!("provision")
    };
    let claims = PlatformClaims {
        profile: PLATFORM_PROFILE_1_0.into(),
        challenge: challenge.as_slice().to_vec(),
        implementation_id: [7; 32],
        instance_id: [1; 33],
        config: vec![0],
        lifecycle: 0x3000,
        sw_components: vec![],
        verification_service: None,
        hash_algo: "sha-256".into(),
        extra: vec![],
    };
    let token = claims.sign_with(&cpak).unwrap();
    svc.handle(
        &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
        &mut [LeaseMem::Read(&token)],
    );
    svc
}

fn token(c: &mut Criterion) {
    let mut g = c.benchmark_group("realm_token");
    let key = SigningKey::random(&mut OsRng);
    let msg = [0x42u8; 600];
    g.bench_function("p384_sign_baseline", |b| {
        b.iter(|| {
            let s: Signature = key.sign(black_box(&msg));
            black_box(s)
        })
    });
    let mut svc = service();
    let rec = RecHandle(1);
    let claims = RealmClaimsInput {
        hash_algo: HashAlgo::Sha256,
        rpv: Bytes([1; 64]),
        rim: Bytes([2; 64]),
        rems: [
            Bytes([3; 64]),
            Bytes([4; 64]),
            Bytes([5; 64]),
            Bytes([6; 64]),
        ],
    };
    let mut granule = vec![0u8; 4096];
    g.bench_function("whole_token", |b| {
        b.iter(|| {
            let init = AttestationRequest::Init {
                rec,
                realm: RealmHandle(1),
                challenge: Bytes([9; 64]),
                claims: claims.clone(),
            };
            svc.handle(&init, &mut []);
            loop {
                let req = AttestationRequest::Continue {
                    rec,
                    buffer: Lease(0),
                    offset: 0,
                    size: 4096,
                };
                match svc.handle(&req, &mut [LeaseMem::Write(&mut granule)]) {
                    AttestationResponse::Progress { done: true, .. } => break,
                    AttestationResponse::Progress { .. } => {}
                    other => panic!("{other:?}"),
                }
            }
            black_box(&granule);
        })
    });
    g.finish();
}

criterion_group!(benches, token);
criterion_main!(benches);
