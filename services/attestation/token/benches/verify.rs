//! Verifying a whole token (both signatures and the binding) against its
//! floor: two bare P-384 ECDSA verifications of the same two messages,
//! measured in the same run. Target: token verification at most 1.2x the
//! baseline. Also reports decode + verify, what a relying party pays per
//! token it receives.
//!
//! `cargo bench -p atoll-cca-token --bench verify`
//!
//! Besides criterion's figures, prints the token/baseline ratio from
//! interleaved rounds (baseline, token, baseline, ...), which is robust to
//! other load on the machine drifting between criterion's sequential runs.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::time::{Duration, Instant};

use atoll_cca_token::{decode, encode_collection, HashAlgo, PlatformKey, RealmClaims, SwComponent};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};

/// A token shaped like the reference's: 64-byte RIM/REMs, a platform token
/// with 13 software components (as in the TF-M vectors).
fn token(rak: &SigningKey, cpak: &SigningKey) -> Vec<u8> {
    let realm = RealmClaims::new(
        [7; 64],
        [8; 64],
        &p384::PublicKey::from(rak.verifying_key()),
        HashAlgo::Sha512,
        vec![9; 64],
        [vec![1; 64], vec![2; 64], vec![3; 64], vec![4; 64]],
    )
    .unwrap();
    let platform = atoll_cca_token::PlatformClaims {
        profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
        challenge: realm.binding_challenge(),
        implementation_id: [0x7f; 32],
        instance_id: [1; 33],
        config: vec![0xcf; 4],
        lifecycle: 0x3003,
        sw_components: (0..13)
            .map(|i| SwComponent {
                component_type: Some(format!("COMPONENT_{i}")),
                measurement: vec![i; 32],
                version: Some("1.0.0".into()),
                signer_id: vec![0x53; 32],
                algorithm: Some("sha-256".into()),
            })
            .collect(),
        verification_service: Some(
            "https://veraison.example/.well-known/veraison/verification".into(),
        ),
        hash_algo: "sha-256".into(),
        extra: vec![],
    };
    encode_collection(
        &platform.sign_with(cpak).unwrap(),
        &realm.sign_with(rak).unwrap(),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let rak = SigningKey::from_slice(&[0x11; 48]).unwrap();
    let cpak = SigningKey::from_slice(&[0x22; 48]).unwrap();
    let bytes = token(&rak, &cpak);
    let t = decode(&bytes).unwrap();
    let key = PlatformKey::from(*cpak.verifying_key());
    t.verify(&key).unwrap();

    // The baseline verifies the very same Sig_structures and signatures.
    let (p_msg, r_msg) = (
        t.platform.envelope.to_be_signed(),
        t.realm.envelope.to_be_signed(),
    );
    let p_sig = Signature::from_slice(t.platform.envelope.signature()).unwrap();
    let r_sig = Signature::from_slice(t.realm.envelope.signature()).unwrap();
    let (p_key, r_key): (VerifyingKey, VerifyingKey) =
        (*cpak.verifying_key(), *rak.verifying_key());

    let mut g = c.benchmark_group("cca_token_verify");
    g.bench_function("two_p384_verify_baseline", |b| {
        b.iter(|| {
            p_key.verify(black_box(&p_msg), &p_sig).unwrap();
            r_key.verify(black_box(&r_msg), &r_sig).unwrap();
        })
    });
    g.bench_function("token_verify", |b| {
        b.iter(|| black_box(&t).verify(&key).unwrap())
    });
    g.bench_function("token_decode_verify", |b| {
        b.iter(|| decode(black_box(&bytes)).unwrap().verify(&key).unwrap())
    });
    g.finish();

    // Interleaved ratio: alternate the two so drifting load hits both alike.
    let (mut base, mut tok) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..300 {
        let s = Instant::now();
        p_key.verify(black_box(&p_msg), &p_sig).unwrap();
        r_key.verify(black_box(&r_msg), &r_sig).unwrap();
        base += s.elapsed();
        let s = Instant::now();
        black_box(&t).verify(&key).unwrap();
        tok += s.elapsed();
    }
    println!(
        "interleaved (300 rounds): baseline {:.3} ms, token {:.3} ms, ratio {:.3}x (target <= 1.2x)",
        base.as_secs_f64() * 1e3 / 300.0,
        tok.as_secs_f64() * 1e3 / 300.0,
        tok.as_secs_f64() / base.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
