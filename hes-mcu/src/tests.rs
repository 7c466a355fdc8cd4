//! The HES core end to end: key derivations, the platform token and the
//! frame handler.

use ciborium::Value;
use ipc_schema::hes::{
    encode_frame, BoundedStr, FrameError, MeasurementRecord, COMPONENT_TYPE_MAX, MAX_PAYLOAD,
    MEASUREMENT_SLOTS, SIGNER_ID_MAX, VERSION_MAX,
};
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};
use proptest::prelude::*;

use super::*;

fn identity() -> PlatformIdentity {
    PlatformIdentity {
        implementation_id: [0xAA; 32],
        platform_config: BoundedBytes::new(&[1, 0, 0, 0]).unwrap(),
        lifecycle: token::LIFECYCLE_SECURED,
        verification_service: BoundedStr::new("https://verifier.example/cca").unwrap(),
    }
}

fn hes_with(huk: u8, guk: u8) -> Hes {
    Hes::new(
        DeviceSecrets::new([huk; 32], [guk; 32]).unwrap(),
        identity(),
    )
}

fn record(kind: &str, m: u8, signer: u8, version: &str) -> MeasurementRecord {
    MeasurementRecord {
        algo: HesHashAlgo::Sha256,
        measurement: BoundedBytes::new(&[m; 32]).unwrap(),
        signer_id: BoundedBytes::new(&[signer; 32]).unwrap(),
        version: BoundedStr::new(version).unwrap(),
        component_type: BoundedStr::new(kind).unwrap(),
    }
}

/// A boot chain: BL2, BL31, RMM with the given image digests, signed by 0x51
/// (BL2, BL31) and 0x52 (RMM).
fn boot(hes: &mut Hes, bl2: u8, bl31: u8, rmm: u8) {
    for (slot, rec) in [
        (0, record("BL2", bl2, 0x51, "1.0.0")),
        (1, record("BL31", bl31, 0x51, "2.12.0")),
        (2, record("RMM", rmm, 0x52, "0.6.0")),
    ] {
        assert_eq!(
            hes.handle(&HesRequest::Extend {
                slot,
                record: rec,
                lock: false
            }),
            HesResponse::Extended
        );
    }
}

fn booted(huk: u8, guk: u8, images: (u8, u8, u8)) -> Hes {
    let mut hes = hes_with(huk, guk);
    boot(&mut hes, images.0, images.1, images.2);
    hes
}

fn rak(hes: &Hes, algo: HesHashAlgo) -> [u8; 48] {
    hes.realm_key(EccCurve::P384, algo)
        .unwrap()
        .to_bytes()
        .into()
}

const IMAGES: (u8, u8, u8) = (1, 2, 3);

#[test]
fn derivations_are_deterministic() {
    let a = booted(1, 2, IMAGES);
    let b = booted(1, 2, IMAGES);
    assert_eq!(a.cpak_public_key(), b.cpak_public_key());
    assert_eq!(rak(&a, HesHashAlgo::Sha256), rak(&b, HesHashAlgo::Sha256));
    assert_eq!(a.vhuk(VhukId::A), b.vhuk(VhukId::A));
    assert_eq!(a.vhuk(VhukId::M), b.vhuk(VhukId::M));
}

#[test]
fn derivations_are_distinct_per_input() {
    let base = booted(1, 2, IMAGES);
    let other_huk = booted(9, 2, IMAGES);
    let other_guk = booted(1, 9, IMAGES);
    let other_bl2 = booted(1, 2, (7, 2, 3));
    let other_rmm = booted(1, 2, (1, 2, 7));

    // CPAK: GUK and BL2 only.
    assert_eq!(base.cpak_public_key(), other_huk.cpak_public_key());
    assert_ne!(base.cpak_public_key(), other_guk.cpak_public_key());
    assert_ne!(base.cpak_public_key(), other_bl2.cpak_public_key());
    assert_eq!(base.cpak_public_key(), other_rmm.cpak_public_key());
    assert_ne!(base.instance_id(), other_guk.instance_id());

    // RAK: HUK, every measurement, and the binding hash.
    let r = rak(&base, HesHashAlgo::Sha256);
    assert_ne!(r, rak(&other_huk, HesHashAlgo::Sha256));
    assert_eq!(r, rak(&other_guk, HesHashAlgo::Sha256));
    assert_ne!(r, rak(&other_rmm, HesHashAlgo::Sha256));
    assert_ne!(r, rak(&base, HesHashAlgo::Sha512));

    // VHUKs: HUK-bound, distinct from each other.
    let va = base.vhuk(VhukId::A).unwrap();
    let vm = base.vhuk(VhukId::M).unwrap();
    assert_ne!(va, vm);
    assert_ne!(va, other_huk.vhuk(VhukId::A).unwrap());
    assert_ne!(vm, other_huk.vhuk(VhukId::M).unwrap());
    assert_eq!(va, other_guk.vhuk(VhukId::A).unwrap());
    // No key equals any other key's bytes.
    assert_ne!(&r[..32], &va[..]);
    assert_ne!(&r[..32], &vm[..]);
}

#[test]
fn vhuk_a_survives_a_signed_update_vhuk_m_does_not() {
    let before = booted(1, 2, IMAGES);
    // Every image changed, same signers: a signed update.
    let updated = booted(1, 2, (4, 5, 6));
    assert_eq!(before.vhuk(VhukId::A), updated.vhuk(VhukId::A));
    assert_ne!(before.vhuk(VhukId::M), updated.vhuk(VhukId::M));
    assert_ne!(
        rak(&before, HesHashAlgo::Sha256),
        rak(&updated, HesHashAlgo::Sha256)
    );

    // Same image, another signer: VHUK_A changes.
    let mut resigned = hes_with(1, 2);
    boot(&mut resigned, 1, 2, 3);
    resigned
        .slots
        .extend(3, &record("APP", 1, 0x99, "1"), false)
        .unwrap();
    let mut same = hes_with(1, 2);
    boot(&mut same, 1, 2, 3);
    same.slots
        .extend(3, &record("APP", 1, 0x98, "1"), false)
        .unwrap();
    assert_ne!(resigned.vhuk(VhukId::A), same.vhuk(VhukId::A));
}

#[test]
fn keys_need_measurements() {
    let mut hes = hes_with(1, 2);
    assert_eq!(
        hes.handle(&HesRequest::GetCpakPublicKey),
        HesResponse::Error(HesError::NoBl2Measurement)
    );
    assert_eq!(
        hes.handle(&HesRequest::GetVhuk { id: VhukId::A }),
        HesResponse::Error(HesError::NoMeasurements)
    );
    assert_eq!(
        hes.handle(&HesRequest::GetRealmKey {
            curve: EccCurve::P384,
            hash_algo: HesHashAlgo::Sha256
        }),
        HesResponse::Error(HesError::NoMeasurements)
    );
    // Slot 1 alone: VHUKs and RAK exist, the CPAK still needs BL2.
    hes.slots
        .extend(1, &record("BL31", 1, 1, "1"), false)
        .unwrap();
    assert!(matches!(
        hes.handle(&HesRequest::GetVhuk { id: VhukId::M }),
        HesResponse::Vhuk(_)
    ));
    assert_eq!(
        hes.handle(&HesRequest::GetPlatformToken {
            challenge: BoundedBytes::new(&[0; 32]).unwrap(),
            offset: 0
        }),
        HesResponse::Error(HesError::NoBl2Measurement)
    );
}

#[test]
fn realm_key_response_is_the_derived_scalar() {
    let mut hes = booted(1, 2, IMAGES);
    let HesResponse::RealmKey(key) = hes.handle(&HesRequest::GetRealmKey {
        curve: EccCurve::P384,
        hash_algo: HesHashAlgo::Sha384,
    }) else {
        panic!("no key")
    };
    assert_eq!(key.0, rak(&hes, HesHashAlgo::Sha384));
    assert!(p384::SecretKey::from_slice(&key.0).is_ok());
}

fn verifying_key(hes: &Hes) -> VerifyingKey {
    VerifyingKey::from_sec1_bytes(&hes.cpak_public_key().unwrap()).unwrap()
}

fn verify(token: &[u8], vk: &VerifyingKey) -> Vec<(Value, Value)> {
    let (sign1, claims) = token::open(token);
    assert_eq!(
        sign1.protected.header.alg,
        Some(coset::RegisteredLabelWithPrivate::Assigned(
            coset::iana::Algorithm::ES384
        ))
    );
    // The protected header is exactly {1: -35}.
    assert_eq!(
        sign1.protected.original_data.as_deref(),
        Some(&[0xA1, 0x01, 0x38, 0x22][..])
    );
    assert!(sign1.unprotected.is_empty());
    assert_eq!(sign1.signature.len(), 96);
    sign1
        .verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| ())?;
            vk.verify(tbs, &sig).map_err(|_| ())
        })
        .expect("signature verifies with the CPAK");
    claims
}

fn int_of(v: &Value) -> i128 {
    v.as_integer().unwrap().into()
}

#[test]
fn platform_token_verifies_and_carries_the_claims_in_order() {
    let mut hes = booted(1, 2, IMAGES);
    let vk = verifying_key(&hes);
    let challenge = [0x5C; 48];
    let token = hes.platform_token(&challenge).unwrap().to_vec();
    assert_eq!(token[0], 0xD2, "COSE_Sign1 tag 18");
    let claims = verify(&token, &vk);

    let keys: Vec<i128> = claims.iter().map(|(k, _)| int_of(k)).collect();
    assert_eq!(keys, [265, 10, 2396, 256, 2401, 2395, 2399, 2400, 2402]);
    let val = |k: i128| &claims.iter().find(|(key, _)| int_of(key) == k).unwrap().1;
    assert_eq!(val(265).as_text(), Some(token::PROFILE));
    assert_eq!(val(10).as_bytes().unwrap(), &challenge);
    assert_eq!(val(2396).as_bytes().unwrap(), &[0xAA; 32]);
    let iid = val(256).as_bytes().unwrap();
    assert_eq!(iid[0], 0x01);
    assert_eq!(
        &iid[1..],
        Sha256::digest(hes.cpak_public_key().unwrap()).as_slice()
    );
    assert_eq!(val(2401).as_bytes().unwrap(), &[1, 0, 0, 0]);
    assert_eq!(int_of(val(2395)), 0x3000);
    assert_eq!(val(2400).as_text(), Some("https://verifier.example/cca"));
    assert_eq!(val(2402).as_text(), Some("sha-256"));

    let comps = val(2399).as_array().unwrap();
    assert_eq!(comps.len(), 3);
    let expected = [
        ("BL2", 1u8, 0x51u8, "1.0.0"),
        ("BL31", 2, 0x51, "2.12.0"),
        ("RMM", 3, 0x52, "0.6.0"),
    ];
    for (c, (kind, m, signer, version)) in comps.iter().zip(expected) {
        let m_entries = c.as_map().unwrap();
        let ks: Vec<i128> = m_entries.iter().map(|(k, _)| int_of(k)).collect();
        assert_eq!(ks, [1, 2, 4, 5, 6]);
        assert_eq!(m_entries[0].1.as_text(), Some(kind));
        assert_eq!(m_entries[1].1.as_bytes().unwrap(), &[m; 32]);
        assert_eq!(m_entries[2].1.as_text(), Some(version));
        assert_eq!(m_entries[3].1.as_bytes().unwrap(), &[signer; 32]);
        assert_eq!(m_entries[4].1.as_text(), Some("sha-256"));
    }

    // Another HES's key does not verify it.
    let stranger = booted(1, 3, IMAGES);
    let (sign1, _) = token::open(&token);
    let other = verifying_key(&stranger);
    assert!(sign1
        .verify_signature(b"", |sig, tbs| {
            let sig = Signature::from_slice(sig).map_err(|_| ())?;
            other.verify(tbs, &sig).map_err(|_| ())
        })
        .is_err());
}

/// Reassembles the token through the request interface, chunk by chunk.
fn fetch_chunks(hes: &mut Hes, challenge: &[u8]) -> (Vec<u8>, usize) {
    let challenge = BoundedBytes::new(challenge).unwrap();
    let mut token = Vec::new();
    let mut chunks = 0;
    loop {
        let HesResponse::PlatformToken(chunk) = hes.handle(&HesRequest::GetPlatformToken {
            challenge: challenge.clone(),
            offset: token.len() as u32,
        }) else {
            panic!("no chunk")
        };
        assert_eq!(chunk.offset as usize, token.len());
        token.extend_from_slice(chunk.data.as_slice());
        chunks += 1;
        assert_eq!(
            chunk.remaining as usize,
            chunk.total_len as usize - token.len()
        );
        if chunk.remaining == 0 {
            assert_eq!(chunk.digest.0, <[u8; 32]>::from(Sha256::digest(&token)));
            return (token, chunks);
        }
    }
}

#[test]
fn token_chunks_reassemble_to_the_token() {
    let mut hes = booted(1, 2, IMAGES);
    for slot in 3..8 {
        hes.slots
            .extend(slot, &record("APP", slot, 0x60, "1.2.3"), false)
            .unwrap();
    }
    let whole = hes.platform_token(&[1; 32]).unwrap().to_vec();
    let (token, chunks) = fetch_chunks(&mut hes, &[1; 32]);
    assert_eq!(token, whole);
    assert_eq!(chunks, whole.len().div_ceil(TOKEN_CHUNK_MAX));
    assert!(chunks > 1, "an eight-component token spans several frames");
}

#[test]
fn largest_token_fits_its_bound() {
    let mut hes = hes_with(1, 2);
    let long = |n: usize| "x".repeat(n);
    for slot in 0..MEASUREMENT_SLOTS as u8 {
        let rec = MeasurementRecord {
            algo: HesHashAlgo::Sha512,
            measurement: BoundedBytes::new(&[slot; 64]).unwrap(),
            signer_id: BoundedBytes::new(&[slot; SIGNER_ID_MAX]).unwrap(),
            version: BoundedStr::new(&long(VERSION_MAX)).unwrap(),
            component_type: BoundedStr::new(&long(COMPONENT_TYPE_MAX)).unwrap(),
        };
        hes.slots.extend(slot, &rec, false).unwrap();
    }
    hes.identity.platform_config = BoundedBytes::new(&[7; 64]).unwrap();
    hes.identity.verification_service = BoundedStr::new(&long(128)).unwrap();
    let vk = verifying_key(&hes);
    let token = hes.platform_token(&[2; 64]).unwrap().to_vec();
    assert!(token.len() <= TOKEN_MAX, "{} bytes", token.len());
    let claims = verify(&token, &vk);
    assert_eq!(claims[6].1.as_array().unwrap().len(), MEASUREMENT_SLOTS);
    assert_eq!(fetch_chunks(&mut hes, &[2; 64]).0, token);
}

#[test]
fn token_requests_are_checked() {
    let mut hes = booted(1, 2, IMAGES);
    for len in [0, 1, 31, 33, 47, 63] {
        assert_eq!(
            hes.handle(&HesRequest::GetPlatformToken {
                challenge: BoundedBytes::new(&vec![0; len]).unwrap(),
                offset: 0
            }),
            HesResponse::Error(HesError::BadChallengeLength),
            "challenge of {len} bytes"
        );
    }
    let total = hes.platform_token(&[0; 32]).unwrap().len() as u32;
    for offset in [total, total + 1, u32::MAX] {
        assert_eq!(
            hes.handle(&HesRequest::GetPlatformToken {
                challenge: BoundedBytes::new(&[0; 32]).unwrap(),
                offset
            }),
            HesResponse::Error(HesError::BadOffset)
        );
    }
}

#[test]
fn a_new_measurement_gives_a_new_token() {
    let mut hes = booted(1, 2, IMAGES);
    let before = hes.platform_token(&[3; 32]).unwrap().to_vec();
    assert_eq!(hes.platform_token(&[3; 32]).unwrap(), before);
    hes.slots
        .extend(5, &record("APP", 9, 9, "1"), false)
        .unwrap();
    let after = hes.platform_token(&[3; 32]).unwrap().to_vec();
    assert_ne!(before, after);
    assert_eq!(
        verify(&after, &verifying_key(&hes))[6]
            .1
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn boot_complete_locks_every_slot() {
    let mut hes = booted(1, 2, IMAGES);
    let vhuk = hes.vhuk(VhukId::M);
    assert_eq!(
        hes.handle(&HesRequest::BootComplete),
        HesResponse::BootCompleted
    );
    assert_eq!(
        hes.handle(&HesRequest::Extend {
            slot: 9,
            record: record("EVIL", 6, 6, "6"),
            lock: false
        }),
        HesResponse::Error(HesError::SlotLocked)
    );
    let HesResponse::Slot(state) = hes.handle(&HesRequest::ReadSlot { slot: 2 }) else {
        panic!("no slot")
    };
    assert!(state.locked);
    assert_eq!(state.record, record("RMM", 3, 0x52, "0.6.0"));
    assert_eq!(hes.vhuk(VhukId::M), vhuk);
}

// ---- frame handler ----

fn request_frame(id: u32, req: &HesRequest) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Request, id, req, &mut out).unwrap();
    out[..n].to_vec()
}

fn answer(hes: &mut Hes, frame: &[u8]) -> (u32, HesResponse) {
    let mut out = [0u8; MAX_FRAME];
    let n = hes.handle_frame(frame, &mut out);
    let (header, payload) = check_frame(&out[..n], FrameKind::Response).expect("a valid frame");
    (header.request_id(), postcard::from_bytes(payload).unwrap())
}

fn frame_error(e: FrameError) -> HesResponse {
    HesResponse::Error(HesError::Frame(e))
}

#[test]
fn frame_handler_answers_a_good_frame() {
    let mut hes = booted(1, 2, IMAGES);
    let (id, resp) = answer(
        &mut hes,
        &request_frame(77, &HesRequest::GetVhuk { id: VhukId::A }),
    );
    assert_eq!(id, 77);
    assert_eq!(resp, HesResponse::Vhuk(Bytes(hes.vhuk(VhukId::A).unwrap())));
}

#[test]
fn frame_handler_rejects_every_malformation() {
    let mut hes = booted(1, 2, IMAGES);
    let good = request_frame(5, &HesRequest::ReadSlot { slot: 0 });

    let mut cases: Vec<(&str, Vec<u8>, u32, HesResponse)> = Vec::new();
    cases.push(("empty", Vec::new(), 0, frame_error(FrameError::Truncated)));
    cases.push((
        "short header",
        good[..HEADER_LEN - 1].to_vec(),
        0,
        frame_error(FrameError::Truncated),
    ));
    let mut f = good.clone();
    f[1] = b'X';
    cases.push(("magic", f, 0, frame_error(FrameError::BadMagic)));
    let mut f = good.clone();
    f[4] = 0;
    cases.push(("version", f, 5, frame_error(FrameError::UnsupportedVersion)));
    let mut f = good.clone();
    f[5] = FrameKind::Response as u8;
    cases.push(("kind", f, 5, frame_error(FrameError::BadKind)));
    let mut f = good.clone();
    f[6] = 1;
    cases.push(("reserved", f, 5, frame_error(FrameError::ReservedNotZero)));
    let mut f = good.clone();
    f[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
    cases.push(("oversized", f, 5, frame_error(FrameError::TooLarge)));
    let mut f = good.clone();
    f[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("huge", f, 5, frame_error(FrameError::TooLarge)));
    cases.push((
        "truncated payload",
        good[..good.len() - 1].to_vec(),
        5,
        frame_error(FrameError::Truncated),
    ));
    let mut f = good.clone();
    f.push(0);
    cases.push(("trailing", f, 5, frame_error(FrameError::TrailingBytes)));
    let mut f = good.clone();
    let last = f.len() - 1;
    f[last] ^= 0x10;
    cases.push(("checksum", f, 5, frame_error(FrameError::BadChecksum)));

    // Framed correctly but the payload is not one request.
    let mut out = [0u8; MAX_FRAME];
    let n = encode_frame(FrameKind::Request, 6, &[0xFF, 0xFF, 0xFF], &mut out).unwrap();
    cases.push((
        "garbage payload",
        out[..n].to_vec(),
        6,
        HesResponse::Error(HesError::Malformed),
    ));
    let mut payload = postcard::to_allocvec(&HesRequest::BootComplete).unwrap();
    payload.push(0);
    let n = encode_frame(FrameKind::Request, 7, &payload, &mut out).unwrap();
    cases.push((
        "payload with trailing bytes",
        out[..n].to_vec(),
        7,
        HesResponse::Error(HesError::Malformed),
    ));
    let n = encode_frame(FrameKind::Request, 8, &[], &mut out).unwrap();
    cases.push((
        "empty payload",
        out[..n].to_vec(),
        8,
        HesResponse::Error(HesError::Malformed),
    ));
    // An out-of-range enum field inside an otherwise valid request.
    let mut payload = postcard::to_allocvec(&HesRequest::GetVhuk { id: VhukId::M }).unwrap();
    *payload.last_mut().unwrap() = 9;
    let n = encode_frame(FrameKind::Request, 9, &payload, &mut out).unwrap();
    cases.push((
        "bad enum value",
        out[..n].to_vec(),
        9,
        HesResponse::Error(HesError::Malformed),
    ));

    for (name, frame, id, expected) in cases {
        assert_eq!(answer(&mut hes, &frame), (id, expected), "{name}");
    }
    // None of that changed the state: slot 0 is as booted.
    let (_, resp) = answer(&mut hes, &good);
    let HesResponse::Slot(s) = resp else {
        panic!("no slot")
    };
    assert_eq!(s.record, record("BL2", 1, 0x51, "1.0.0"));
}

proptest! {
    /// Whatever arrives, the answer is one valid response frame.
    #[test]
    fn frame_handler_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2 * MAX_FRAME)) {
        let mut hes = booted(1, 2, IMAGES);
        let (_, resp) = answer(&mut hes, &data);
        prop_assert!(matches!(resp, HesResponse::Error(_)));
    }

    /// A valid frame around arbitrary payload bytes: decoded or refused,
    /// never a panic, always a valid frame back with the request's id.
    #[test]
    fn frame_handler_survives_any_payload(id in any::<u32>(), payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
        let mut hes = booted(1, 2, IMAGES);
        let mut out = [0u8; MAX_FRAME];
        let n = encode_frame(FrameKind::Request, id, &payload, &mut out).unwrap();
        let (got, _) = answer(&mut hes, &out[..n]);
        prop_assert_eq!(got, id);
    }
}
