//! The simulated-realm vCPU protocol: every message survives encode/decode
//! unchanged and stays within its bound, frames round-trip, each malformed
//! header is refused with the right error, and arbitrary bytes never make
//! the frame checker or a decoder panic.

use ipc_schema::simvcpu::{
    check_frame, decode_request, decode_response, encode_message, AccessSize, FrameError,
    FrameHeader, FrameKind, MemRegion, VcpuError, VcpuInfo, VcpuRequest, VcpuResponse, CHUNK_MAX,
    HEADER_LEN, MAX_FRAME, MAX_PAYLOAD, MAX_RAM_REGIONS, REQUEST_MAX, RESPONSE_MAX,
};
use ipc_schema::wire::BoundedBytes;
use proptest::prelude::*;

fn chunk() -> impl Strategy<Value = BoundedBytes<CHUNK_MAX>> {
    proptest::collection::vec(any::<u8>(), 0..=CHUNK_MAX)
        .prop_map(|v| BoundedBytes::new(&v).unwrap())
}

fn size() -> impl Strategy<Value = AccessSize> {
    prop_oneof![
        Just(AccessSize::B1),
        Just(AccessSize::B2),
        Just(AccessSize::B4),
        Just(AccessSize::B8)
    ]
}

fn request() -> impl Strategy<Value = VcpuRequest> {
    prop_oneof![
        Just(VcpuRequest::Hello),
        any::<[u64; 18]>().prop_map(|regs| VcpuRequest::Smc { regs }),
        (any::<u64>(), size()).prop_map(|(ipa, size)| VcpuRequest::Load { ipa, size }),
        (any::<u64>(), size(), any::<u64>()).prop_map(|(ipa, size, value)| VcpuRequest::Store {
            ipa,
            size,
            value
        }),
        (any::<u64>(), any::<u32>()).prop_map(|(ipa, len)| VcpuRequest::Read { ipa, len }),
        (any::<u64>(), chunk()).prop_map(|(ipa, data)| VcpuRequest::Write { ipa, data }),
    ]
}

fn frame_error() -> impl Strategy<Value = FrameError> {
    prop_oneof![
        Just(FrameError::Truncated),
        Just(FrameError::BadMagic),
        Just(FrameError::UnsupportedVersion),
        Just(FrameError::BadKind),
        Just(FrameError::ReservedNotZero),
        Just(FrameError::TooLarge),
        Just(FrameError::TrailingBytes),
        Just(FrameError::Malformed),
        Just(FrameError::Encode),
    ]
}

fn info() -> impl Strategy<Value = VcpuInfo> {
    (
        any::<[u64; 2]>(),
        any::<[u64; 8]>(),
        any::<u8>(),
        any::<[(u64, u64); MAX_RAM_REGIONS]>(),
    )
        .prop_map(|(x, entry_gprs, ipa_width, ram)| VcpuInfo {
            mpidr: x[0],
            pc: x[1],
            entry_gprs,
            ipa_width,
            ram: ram.map(|(base, size)| MemRegion { base, size }),
        })
}

fn response() -> impl Strategy<Value = VcpuResponse> {
    prop_oneof![
        info().prop_map(VcpuResponse::Hello),
        any::<[u64; 18]>().prop_map(|regs| VcpuResponse::Smc { regs }),
        any::<u64>().prop_map(|value| VcpuResponse::Loaded { value }),
        Just(VcpuResponse::Stored),
        chunk().prop_map(VcpuResponse::Data),
        Just(VcpuResponse::Written),
        Just(VcpuResponse::Sea),
        prop_oneof![
            frame_error().prop_map(VcpuError::Frame),
            Just(VcpuError::TooLong),
            Just(VcpuError::Halted),
        ]
        .prop_map(VcpuResponse::Error),
    ]
}

proptest! {
    #[test]
    fn request_roundtrip_within_bound(req in request(), seq in any::<u32>()) {
        let bytes = postcard::to_allocvec(&req).unwrap();
        prop_assert!(bytes.len() <= REQUEST_MAX);
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Request, seq, &req, &mut out).unwrap();
        prop_assert_eq!(n, HEADER_LEN + bytes.len());
        prop_assert_eq!(decode_request(&out[..n]).unwrap(), (seq, req));
        // A request is never accepted where a response is expected.
        prop_assert_eq!(decode_response(&out[..n]), Err(FrameError::BadKind));
    }

    #[test]
    fn response_roundtrip_within_bound(resp in response(), seq in any::<u32>()) {
        let bytes = postcard::to_allocvec(&resp).unwrap();
        prop_assert!(bytes.len() <= RESPONSE_MAX);
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Response, seq, &resp, &mut out).unwrap();
        prop_assert_eq!(decode_response(&out[..n]).unwrap(), (seq, resp));
        prop_assert_eq!(decode_request(&out[..n]), Err(FrameError::BadKind));
    }

    /// Cutting a frame short or adding bytes is refused, never misread.
    #[test]
    fn truncation_and_trailing_bytes_refused(req in request(), cut in any::<prop::sample::Index>()) {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_message(FrameKind::Request, 9, &req, &mut out).unwrap();
        let keep = cut.index(n);
        prop_assert_eq!(check_frame(&out[..keep], FrameKind::Request).unwrap_err(), FrameError::Truncated);
        let mut longer = out[..n].to_vec();
        longer.push(0);
        prop_assert_eq!(check_frame(&longer, FrameKind::Request).unwrap_err(), FrameError::TrailingBytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2 * MAX_FRAME)) {
        let _ = check_frame(&data, FrameKind::Request);
        let _ = FrameHeader::parse(&data, FrameKind::Response);
        let _ = decode_request(&data);
        let _ = decode_response(&data);
        let _ = postcard::from_bytes::<VcpuRequest>(&data);
        let _ = postcard::from_bytes::<VcpuResponse>(&data);
    }

    /// A valid header in front of arbitrary payload bytes: decoding either
    /// succeeds with a message that re-encodes within its bound or fails
    /// with `Malformed`.
    #[test]
    fn valid_header_garbage_payload(payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
        let mut frame = header_bytes(FrameKind::Request, payload.len() as u32).to_vec();
        frame.extend_from_slice(&payload);
        match decode_request(&frame) {
            Ok((seq, req)) => {
                prop_assert_eq!(seq, 7);
                prop_assert!(postcard::to_allocvec(&req).unwrap().len() <= REQUEST_MAX);
            }
            Err(e) => prop_assert_eq!(e, FrameError::Malformed),
        }
    }
}

fn header_bytes(kind: FrameKind, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(b"AVCP");
    h[4] = 1;
    h[5] = kind as u8;
    h[8..12].copy_from_slice(&7u32.to_le_bytes());
    h[12..16].copy_from_slice(&len.to_le_bytes());
    h
}

/// Each header check in its documented order.
#[test]
fn header_checks_in_order() {
    let good = header_bytes(FrameKind::Request, 0);
    assert!(FrameHeader::parse(&good, FrameKind::Request).is_ok());
    assert_eq!(
        FrameHeader::parse(&good[..HEADER_LEN - 1], FrameKind::Request),
        Err(FrameError::Truncated)
    );
    let mut h = good;
    h[0] = b'X';
    // Also wrong in every later field: the magic is reported first.
    h[4] = 2;
    h[5] = 9;
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request),
        Err(FrameError::BadMagic)
    );
    h[0] = b'A';
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request),
        Err(FrameError::UnsupportedVersion)
    );
    h[4] = 1;
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request),
        Err(FrameError::BadKind)
    );
    h[5] = 1;
    h[7] = 1;
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request),
        Err(FrameError::ReservedNotZero)
    );
    h[7] = 0;
    h[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request),
        Err(FrameError::TooLarge)
    );
    h[12..16].copy_from_slice(&(MAX_PAYLOAD as u32).to_le_bytes());
    assert_eq!(
        FrameHeader::parse(&h, FrameKind::Request)
            .unwrap()
            .payload_len(),
        MAX_PAYLOAD
    );
}

/// The chunk bound holds on the receiving side: a write one byte longer
/// than a granule does not decode, even inside a well-formed frame, while
/// the same hand-built encoding of a full granule does.
#[test]
fn oversized_write_refused_on_decode() {
    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn write_payload(len: usize) -> Vec<u8> {
        let mut p = vec![5u8]; // VcpuRequest::Write
        varint(0x1000, &mut p);
        varint(len as u64, &mut p);
        p.extend(std::iter::repeat_n(0xAA, len));
        p
    }
    let full = write_payload(CHUNK_MAX);
    assert_eq!(
        postcard::to_allocvec(&VcpuRequest::Write {
            ipa: 0x1000,
            data: BoundedBytes::new(&[0xAA; CHUNK_MAX]).unwrap(),
        })
        .unwrap(),
        full
    );
    assert!(postcard::from_bytes::<VcpuRequest>(&full).is_ok());
    let over = write_payload(CHUNK_MAX + 1);
    assert!(postcard::from_bytes::<VcpuRequest>(&over).is_err());
    let mut frame = header_bytes(FrameKind::Request, over.len() as u32).to_vec();
    frame.extend_from_slice(&over);
    assert_eq!(decode_request(&frame), Err(FrameError::Malformed));
}

#[test]
fn access_sizes() {
    for n in 0..=16u8 {
        match AccessSize::from_bytes(n) {
            Some(s) => assert_eq!(s.bytes(), n),
            None => assert!(!matches!(n, 1 | 2 | 4 | 8)),
        }
    }
}

#[test]
fn largest_response_fits_a_frame() {
    // The largest messages fit by construction (compile-time asserts); a
    // response with a full chunk uses most of the frame.
    let resp = VcpuResponse::Data(BoundedBytes::new(&[1; CHUNK_MAX]).unwrap());
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Response, 1, &resp, &mut out).unwrap();
    assert!(n <= MAX_FRAME);
    assert!(n > CHUNK_MAX);
}
