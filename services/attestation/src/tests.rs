use alloc::vec;
use alloc::vec::Vec;

use atoll_cca_token::{CcaToken, PlatformClaims, PlatformKey, SwComponent, PLATFORM_PROFILE_1_0};
use ipc_schema::service::attestation::RESPONSE_MAX;
use ipc_schema::service::RealmHandle;
use p384::ecdsa::SigningKey;
use proptest::prelude::*;
use rand_core::OsRng;

use super::*;

const REC: RecHandle = RecHandle(0x9000);

fn platform_token(cpak: &SigningKey, challenge: &[u8]) -> Vec<u8> {
    let claims = PlatformClaims {
        profile: PLATFORM_PROFILE_1_0.into(),
        challenge: challenge.to_vec(),
        implementation_id: [7; 32],
        instance_id: [1; 33],
        config: vec![0xcf],
        lifecycle: 0x3000,
        sw_components: vec![SwComponent {
            component_type: Some("BL2".into()),
            measurement: vec![0xaa; 32],
            version: Some("1.0.0".into()),
            signer_id: vec![0xbb; 32],
            algorithm: Some("sha-256".into()),
        }],
        verification_service: Some("https://veraison.example".into()),
        hash_algo: "sha-256".into(),
        extra: vec![],
    };
    claims.sign_with(cpak).unwrap()
}

/// A provisioned service and the CPAK whose platform token it holds.
fn provisioned() -> (AttestationService, SigningKey) {
    let mut svc = AttestationService::new(4);
    let rak = SigningKey::random(&mut OsRng);
    let cpak = SigningKey::random(&mut OsRng);
    let challenge = match svc.handle(
        &AttestationRequest::ProvisionRak {
            scalar: Bytes(rak.to_bytes().into()),
        },
        &mut [],
    ) {
        AttestationResponse::RakBinding { challenge } => challenge,
        other => panic!("{other:?}"),
    };
    let token = platform_token(&cpak, challenge.as_slice());
    let r = svc.handle(
        &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
        &mut [LeaseMem::Read(&token)],
    );
    assert_eq!(r, AttestationResponse::Ok);
    (svc, cpak)
}

fn input(algo: HashAlgo) -> RealmClaimsInput {
    RealmClaimsInput {
        hash_algo: algo,
        rpv: Bytes([0x11; 64]),
        rim: Bytes([0x22; 64]),
        rems: [
            Bytes([1; 64]),
            Bytes([2; 64]),
            Bytes([3; 64]),
            Bytes([4; 64]),
        ],
    }
}

fn init(
    svc: &mut AttestationService,
    rec: RecHandle,
    challenge: [u8; 64],
    algo: HashAlgo,
) -> AttestationResponse {
    svc.handle(
        &AttestationRequest::Init {
            rec,
            realm: RealmHandle(1),
            challenge: Bytes(challenge),
            claims: input(algo),
        },
        &mut [],
    )
}

fn cont(
    svc: &mut AttestationService,
    rec: RecHandle,
    buf: &mut [u8],
    offset: u16,
    size: u16,
) -> AttestationResponse {
    svc.handle(
        &AttestationRequest::Continue {
            rec,
            buffer: Lease(0),
            offset,
            size,
        },
        &mut [LeaseMem::Write(buf)],
    )
}

/// Runs CONTINUE the way a realm does, `chunk` bytes at a time.
fn collect(svc: &mut AttestationService, rec: RecHandle, chunk: u16) -> (Vec<u8>, usize) {
    let mut token = Vec::new();
    let mut calls = 0;
    loop {
        let mut granule = [0u8; 4096];
        let offset = 100u16.min(4096 - chunk);
        match cont(svc, rec, &mut granule, offset, chunk) {
            AttestationResponse::Progress { written, done } => {
                calls += 1;
                token.extend_from_slice(
                    &granule[usize::from(offset)..usize::from(offset) + written as usize],
                );
                if done {
                    return (token, calls);
                }
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn tokens_verify_and_carry_the_realm_claims() {
    for (algo, len) in [(HashAlgo::Sha256, 32), (HashAlgo::Sha512, 64)] {
        let (mut svc, cpak) = provisioned();
        let challenge = [0x5a; 64];
        let AttestationResponse::Initialised { token_len } = init(&mut svc, REC, challenge, algo)
        else {
            panic!("init")
        };
        let (token, calls) = collect(&mut svc, REC, 1000);
        assert_eq!(
            token.len(),
            token_len as usize,
            "INIT announced the exact size"
        );
        assert!(calls >= 2, "signing is a step of its own");
        let t = CcaToken::decode(&token).unwrap();
        t.verify(&PlatformKey::from(*cpak.verifying_key())).unwrap();
        assert_eq!(t.realm.claims.challenge, challenge);
        assert_eq!(t.realm.claims.personalization_value, [0x11; 64]);
        assert_eq!(t.realm.claims.rim, vec![0x22; len]);
        assert_eq!(t.realm.claims.rems[3], vec![4; len]);
        // The session is gone once the token is out.
        assert_eq!(
            cont(&mut svc, REC, &mut [0; 4096], 0, 64),
            AttestationResponse::Error(AttestationError::NoSession)
        );
    }
}

#[test]
fn the_first_continue_signs_and_hands_out_nothing() {
    let (mut svc, _) = provisioned();
    init(&mut svc, REC, [1; 64], HashAlgo::Sha256);
    let mut g = [0xEEu8; 4096];
    assert_eq!(
        cont(&mut svc, REC, &mut g, 0, 4096),
        AttestationResponse::Progress {
            written: 0,
            done: false
        }
    );
    assert!(
        g.iter().all(|&b| b == 0xEE),
        "nothing written while signing"
    );
}

#[test]
fn reinit_restarts_and_sessions_are_per_rec() {
    let (mut svc, cpak) = provisioned();
    init(&mut svc, REC, [1; 64], HashAlgo::Sha256);
    let _ = cont(&mut svc, REC, &mut [0; 4096], 0, 10);
    let _ = cont(&mut svc, REC, &mut [0; 4096], 0, 10);
    init(&mut svc, REC, [2; 64], HashAlgo::Sha256);
    let other = RecHandle(0xA000);
    init(&mut svc, other, [3; 64], HashAlgo::Sha256);
    let (a, _) = collect(&mut svc, REC, 4096);
    let (b, _) = collect(&mut svc, other, 7);
    let key = PlatformKey::from(*cpak.verifying_key());
    let a = CcaToken::decode(&a).unwrap();
    let b = CcaToken::decode(&b).unwrap();
    a.verify(&key).unwrap();
    b.verify(&key).unwrap();
    assert_eq!(a.realm.claims.challenge, [2; 64]);
    assert_eq!(b.realm.claims.challenge, [3; 64]);
}

#[test]
fn refusals() {
    let mut svc = AttestationService::new(1);
    // Not provisioned.
    assert_eq!(
        init(&mut svc, REC, [0; 64], HashAlgo::Sha256),
        AttestationResponse::Error(AttestationError::NotProvisioned)
    );
    assert_eq!(
        svc.handle(
            &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
            &mut [LeaseMem::Read(b"x")]
        ),
        AttestationResponse::Error(AttestationError::NotProvisioned)
    );
    // Not a scalar.
    for bad in [[0u8; 48], [0xff; 48]] {
        assert_eq!(
            svc.handle(
                &AttestationRequest::ProvisionRak { scalar: Bytes(bad) },
                &mut []
            ),
            AttestationResponse::Error(AttestationError::BadKey)
        );
    }
    let rak = SigningKey::random(&mut OsRng);
    let cpak = SigningKey::random(&mut OsRng);
    let AttestationResponse::RakBinding { challenge } = svc.handle(
        &AttestationRequest::ProvisionRak {
            scalar: Bytes(rak.to_bytes().into()),
        },
        &mut [],
    ) else {
        panic!()
    };
    assert_eq!(
        svc.handle(
            &AttestationRequest::ProvisionRak {
                scalar: Bytes(rak.to_bytes().into())
            },
            &mut []
        ),
        AttestationResponse::Error(AttestationError::AlreadyProvisioned)
    );
    // A platform token for another key, garbage, or no lease at all.
    let wrong = platform_token(&cpak, &[0u8; 32]);
    for leases in [
        &mut [LeaseMem::Read(&wrong)][..],
        &mut [LeaseMem::Read(&[0xa1, 0x00])][..],
        &mut [][..],
    ] {
        let r = svc.handle(
            &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
            leases,
        );
        assert!(
            matches!(
                r,
                AttestationResponse::Error(
                    AttestationError::BadPlatformToken | AttestationError::BadLease
                )
            ),
            "{r:?}"
        );
    }
    assert_eq!(
        init(&mut svc, REC, [0; 64], HashAlgo::Sha256),
        AttestationResponse::Error(AttestationError::NotProvisioned)
    );
    let good = platform_token(&cpak, challenge.as_slice());
    assert_eq!(
        svc.handle(
            &AttestationRequest::ProvisionPlatformToken { token: Lease(0) },
            &mut [LeaseMem::Read(&good)]
        ),
        AttestationResponse::Ok
    );
    // Continue without init; bad leases; no space for a second session.
    assert_eq!(
        cont(&mut svc, REC, &mut [0; 4096], 0, 1),
        AttestationResponse::Error(AttestationError::NoSession)
    );
    assert!(matches!(
        init(&mut svc, REC, [0; 64], HashAlgo::Sha256),
        AttestationResponse::Initialised { .. }
    ));
    assert_eq!(
        init(&mut svc, RecHandle(1), [0; 64], HashAlgo::Sha256),
        AttestationResponse::Error(AttestationError::NoSpace)
    );
    let ro = [0u8; 4096];
    let r = svc.handle(
        &AttestationRequest::Continue {
            rec: REC,
            buffer: Lease(0),
            offset: 0,
            size: 8,
        },
        &mut [LeaseMem::Read(&ro)],
    );
    assert_eq!(r, AttestationResponse::Error(AttestationError::BadLease));
    assert_eq!(
        cont(&mut svc, REC, &mut [0; 4096], 4000, 200),
        AttestationResponse::Error(AttestationError::BadLease)
    );
    assert_eq!(
        cont(&mut svc, REC, &mut [0; 100], 0, 8),
        AttestationResponse::Error(AttestationError::BadLease)
    );
    // Abort forgets.
    assert_eq!(
        svc.handle(&AttestationRequest::Abort { rec: REC }, &mut []),
        AttestationResponse::Ok
    );
    assert_eq!(
        cont(&mut svc, REC, &mut [0; 4096], 0, 8),
        AttestationResponse::Error(AttestationError::NoSession)
    );
}

proptest! {
    #[test]
    fn handle_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut svc = AttestationService::new(2);
        let mut out = [0u8; RESPONSE_MAX];
        let mut buf = [0u8; 4096];
        let n = svc.handle_bytes(&bytes, &mut [LeaseMem::Write(&mut buf)], &mut out);
        prop_assert!(n > 0);
        prop_assert!(postcard::from_bytes::<AttestationResponse>(&out[..n]).is_ok());
    }
}
