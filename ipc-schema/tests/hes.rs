//! The HES link protocol: every message survives encode/decode unchanged and
//! stays within its bound, frames round-trip, every corruption of a frame is
//! refused with the right error, and arbitrary bytes never make the frame
//! checker or a decoder panic.

use ipc_schema::hes::{
    check_frame, crc32, encode_frame, encode_message, BoundedStr, EccCurve, FrameError,
    FrameHeader, FrameKind, HesError, HesHashAlgo, HesRequest, HesResponse, MeasurementRecord,
    SlotState, TokenChunk, VhukId, HEADER_LEN, MAX_FRAME, MAX_PAYLOAD, REQUEST_MAX, RESPONSE_MAX,
    TOKEN_CHUNK_MAX,
};
use ipc_schema::wire::{BoundedBytes, Bytes};
use proptest::prelude::*;

fn bytes_up_to<const N: usize>() -> impl Strategy<Value = BoundedBytes<N>> {
    proptest::collection::vec(any::<u8>(), 0..=N).prop_map(|v| BoundedBytes::new(&v).unwrap())
}

fn str_up_to<const N: usize>() -> impl Strategy<Value = BoundedStr<N>> {
    // Multi-byte characters included: the bound is in bytes, not chars.
    proptest::string::string_regex(".{0,12}")
        .unwrap()
        .prop_filter("fits", |s| s.len() <= N)
        .prop_map(|s| BoundedStr::new(&s).unwrap())
}

fn hash_algo() -> impl Strategy<Value = HesHashAlgo> {
    prop_oneof![
        Just(HesHashAlgo::Sha256),
        Just(HesHashAlgo::Sha384),
        Just(HesHashAlgo::Sha512)
    ]
}

fn record() -> impl Strategy<Value = MeasurementRecord> {
    (
        hash_algo(),
        bytes_up_to::<64>(),
        bytes_up_to::<64>(),
        str_up_to::<32>(),
        str_up_to::<32>(),
    )
        .prop_map(|(algo, measurement, signer_id, version, component_type)| {
            MeasurementRecord {
                algo,
                measurement,
                signer_id,
                version,
                component_type,
            }
        })
}

fn request() -> impl Strategy<Value = HesRequest> {
    prop_oneof![
        hash_algo().prop_map(|hash_algo| HesRequest::GetRealmKey {
            curve: EccCurve::P384,
            hash_algo
        }),
        (bytes_up_to::<64>(), any::<u32>())
            .prop_map(|(challenge, offset)| HesRequest::GetPlatformToken { challenge, offset }),
        (any::<u8>(), record(), any::<bool>())
            .prop_map(|(slot, record, lock)| HesRequest::Extend { slot, record, lock }),
        any::<u8>().prop_map(|slot| HesRequest::ReadSlot { slot }),
        Just(HesRequest::BootComplete),
        prop_oneof![Just(VhukId::A), Just(VhukId::M)].prop_map(|id| HesRequest::GetVhuk { id }),
        Just(HesRequest::GetCpakPublicKey),
    ]
}

fn hes_error() -> impl Strategy<Value = HesError> {
    let frame = prop_oneof![
        Just(FrameError::Truncated),
        Just(FrameError::BadMagic),
        Just(FrameError::UnsupportedVersion),
        Just(FrameError::BadKind),
        Just(FrameError::ReservedNotZero),
        Just(FrameError::TooLarge),
        Just(FrameError::TrailingBytes),
        Just(FrameError::BadChecksum),
        Just(FrameError::Encode),
    ];
    prop_oneof![
        frame.prop_map(HesError::Frame),
        Just(HesError::Malformed),
        Just(HesError::BadSlot),
        Just(HesError::SlotEmpty),
        Just(HesError::SlotLocked),
        Just(HesError::BadMeasurementLength),
        Just(HesError::AlgoMismatch),
        Just(HesError::BadChallengeLength),
        Just(HesError::BadOffset),
        Just(HesError::NoBl2Measurement),
        Just(HesError::NoMeasurements),
        Just(HesError::TokenTooLarge),
        Just(HesError::Crypto),
    ]
}

fn response() -> impl Strategy<Value = HesResponse> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|k| {
            let mut s = [0u8; 48];
            s[..32].copy_from_slice(&k);
            HesResponse::RealmKey(Bytes(s))
        }),
        (
            any::<[u32; 3]>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 0..=TOKEN_CHUNK_MAX)
        )
            .prop_map(|(n, digest, data)| HesResponse::PlatformToken(TokenChunk {
                total_len: n[0],
                offset: n[1],
                remaining: n[2],
                digest: Bytes(digest),
                data: BoundedBytes::new(&data).unwrap(),
            })),
        Just(HesResponse::Extended),
        (record(), any::<u32>(), any::<bool>()).prop_map(|(record, extend_count, locked)| {
            HesResponse::Slot(SlotState {
                record,
                extend_count,
                locked,
            })
        }),
        Just(HesResponse::BootCompleted),
        any::<[u8; 32]>().prop_map(|k| HesResponse::Vhuk(Bytes(k))),
        any::<[u8; 32]>().prop_map(|k| {
            let mut p = [0u8; 97];
            p[0] = 4;
            p[1..33].copy_from_slice(&k);
            HesResponse::CpakPublicKey(Bytes(p))
        }),
        hes_error().prop_map(HesResponse::Error),
    ]
}

proptest! {
    #[test]
    fn request_roundtrip_within_bound(req in request()) {
        let bytes = postcard::to_allocvec(&req).unwrap();
        prop_assert!(bytes.len() <= REQUEST_MAX);
        prop_assert_eq!(postcard::from_bytes::<HesRequest>(&bytes).unwrap(), req);
    }

    #[test]
    fn response_roundtrip_within_bound(resp in response()) {
        let bytes = postcard::to_allocvec(&resp).unwrap();
        prop_assert!(bytes.len() <= RESPONSE_MAX);
        prop_assert_eq!(postcard::from_bytes::<HesResponse>(&bytes).unwrap(), resp);
    }

    #[test]
    fn framed_request_roundtrip(req in request(), id in any::<u32>()) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Request, id, &req, &mut out).unwrap();
        let (header, payload) = check_frame(&out[..n], FrameKind::Request).unwrap();
        prop_assert_eq!(header.request_id(), id);
        prop_assert_eq!(header.payload_len(), n - HEADER_LEN);
        prop_assert_eq!(postcard::from_bytes::<HesRequest>(payload).unwrap(), req);
    }

    #[test]
    fn framed_response_roundtrip(resp in response(), id in any::<u32>()) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Response, id, &resp, &mut out).unwrap();
        let (header, payload) = check_frame(&out[..n], FrameKind::Response).unwrap();
        prop_assert_eq!(header.request_id(), id);
        prop_assert_eq!(postcard::from_bytes::<HesResponse>(payload).unwrap(), resp);
    }

    /// Any single changed byte anywhere in a frame is refused (CRC-32 detects
    /// every burst up to 32 bits; the header checks may trip first).
    #[test]
    fn any_corrupted_byte_is_refused(req in request(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Request, 7, &req, &mut out).unwrap();
        let i = pos.index(n);
        out[i] ^= flip;
        prop_assert!(check_frame(&out[..n], FrameKind::Request).is_err());
    }

    #[test]
    fn any_truncation_is_refused(req in request(), cut in any::<prop::sample::Index>()) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Request, 1, &req, &mut out).unwrap();
        let keep = cut.index(n);
        prop_assert_eq!(check_frame(&out[..keep], FrameKind::Request).unwrap_err(), FrameError::Truncated);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2 * MAX_FRAME)) {
        let _ = check_frame(&data, FrameKind::Request);
        let _ = check_frame(&data, FrameKind::Response);
        let _ = FrameHeader::parse(&data, FrameKind::Request);
        let _ = postcard::from_bytes::<HesRequest>(&data);
        let _ = postcard::from_bytes::<HesResponse>(&data);
    }

    /// A valid header in front of arbitrary payload bytes: the frame checks
    /// out, and the decoders must still refuse garbage without panicking.
    #[test]
    fn valid_frame_garbage_payload_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_frame(FrameKind::Request, 3, &payload, &mut out).unwrap();
        let (_, body) = check_frame(&out[..n], FrameKind::Request).unwrap();
        prop_assert_eq!(body, &payload[..]);
        let _ = postcard::from_bytes::<HesRequest>(body);
        let _ = postcard::from_bytes::<HesResponse>(body);
    }
}

fn sample_frame() -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Request, 42, &HesRequest::BootComplete, &mut out).unwrap();
    out[..n].to_vec()
}

#[test]
fn crc32_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn header_checks_in_order() {
    let good = sample_frame();
    assert!(check_frame(&good, FrameKind::Request).is_ok());
    assert_eq!(
        check_frame(&good, FrameKind::Response).unwrap_err(),
        FrameError::BadKind
    );

    let mut f = good.clone();
    f[0] = b'X';
    f[4] = 9; // also a bad version: magic is reported first
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::BadMagic
    );

    let mut f = good.clone();
    f[4] = 2;
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::UnsupportedVersion
    );

    let mut f = good.clone();
    f[5] = 0;
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::BadKind
    );

    let mut f = good.clone();
    f[7] = 1;
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::ReservedNotZero
    );

    let mut f = good.clone();
    f[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::TooLarge
    );
    assert_eq!(
        FrameHeader::parse(&f[..HEADER_LEN], FrameKind::Request).unwrap_err(),
        FrameError::TooLarge
    );

    let mut f = good.clone();
    f.push(0);
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::TrailingBytes
    );

    let mut f = good.clone();
    *f.last_mut().unwrap() ^= 1;
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::BadChecksum
    );

    let mut f = good;
    f[16] ^= 0x80;
    assert_eq!(
        check_frame(&f, FrameKind::Request).unwrap_err(),
        FrameError::BadChecksum
    );
}

#[test]
fn encode_refuses_what_does_not_fit() {
    let mut out = [0u8; MAX_FRAME];
    assert_eq!(
        encode_frame(
            FrameKind::Request,
            0,
            &[0; MAX_PAYLOAD + 1],
            &mut [0; MAX_FRAME + 1]
        )
        .unwrap_err(),
        FrameError::Encode
    );
    assert_eq!(
        encode_frame(FrameKind::Request, 0, &[0; 8], &mut out[..HEADER_LEN + 7]).unwrap_err(),
        FrameError::Encode
    );
    assert_eq!(
        encode_frame(FrameKind::Request, 0, &[0; MAX_PAYLOAD], &mut out).unwrap(),
        MAX_FRAME
    );
}

#[test]
fn bounded_str_refuses_long_or_invalid_text() {
    assert!(BoundedStr::<4>::new("abcd").is_ok());
    assert!(BoundedStr::<4>::new("abcde").is_err());
    // "é" is two bytes: three of them do not fit in four.
    assert!(BoundedStr::<4>::new("ééé").is_err());

    let long = postcard::to_allocvec("abcde").unwrap();
    assert!(postcard::from_bytes::<BoundedStr<4>>(&long).is_err());
    let invalid = [2u8, 0xC3, 0x28];
    assert!(postcard::from_bytes::<BoundedStr<4>>(&invalid).is_err());
    let ok = postcard::to_allocvec("ab").unwrap();
    assert_eq!(
        postcard::from_bytes::<BoundedStr<4>>(&ok).unwrap().as_str(),
        "ab"
    );
}

#[test]
fn el3_and_islet_selectors_map() {
    assert_eq!(EccCurve::from_el3(0), Some(EccCurve::P384));
    assert_eq!(EccCurve::from_el3(1), None);
    assert_eq!(VhukId::from_islet(1), Some(VhukId::A));
    assert_eq!(VhukId::from_islet(2), Some(VhukId::M));
    assert_eq!(VhukId::from_islet(0), None);
    assert_eq!(VhukId::from_islet(3), None);
}
