//! The client against a fake transport: an in-process HES for the good
//! paths, and scripted or tampered answers for every fault.

use alloc::collections::VecDeque;
use alloc::vec;

use atoll_hes_mcu::{DeviceSecrets, Hes, PlatformIdentity};
use ipc_schema::hes::{encode_frame, BoundedStr, TokenChunk, MAX_PAYLOAD, TOKEN_CHUNK_MAX};
use ipc_schema::wire::Bytes;
use proptest::prelude::*;

use super::*;

#[derive(Debug, PartialEq, Eq)]
struct Eof;

impl core::fmt::Display for Eof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("end of stream")
    }
}

/// Answers each written frame with whatever `respond` makes of it; reads
/// past the answer fail like a closed stream.
struct Fake<F> {
    respond: F,
    pending: VecDeque<u8>,
    written: Vec<Vec<u8>>,
}

impl<F: FnMut(&[u8]) -> Vec<u8>> Transport for Fake<F> {
    type Error = Eof;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Eof> {
        self.written.push(buf.to_vec());
        let answer = (self.respond)(buf);
        self.pending.extend(answer);
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Eof> {
        if self.pending.len() < buf.len() {
            return Err(Eof);
        }
        for b in buf.iter_mut() {
            *b = self.pending.pop_front().ok_or(Eof)?;
        }
        Ok(())
    }
}

fn fake<F: FnMut(&[u8]) -> Vec<u8>>(respond: F) -> HesLink<Fake<F>> {
    HesLink::new(Fake {
        respond,
        pending: VecDeque::new(),
        written: Vec::new(),
    })
}

fn identity() -> PlatformIdentity {
    PlatformIdentity {
        implementation_id: [3; 32],
        platform_config: BoundedBytes::new(&[0; 4]).unwrap(),
        lifecycle: 0x3000,
        verification_service: BoundedStr::new("https://v.example").unwrap(),
    }
}

fn new_hes() -> Hes {
    Hes::new(DeviceSecrets::new([1; 32], [2; 32]).unwrap(), identity())
}

fn record(kind: &str, m: u8) -> MeasurementRecord {
    MeasurementRecord {
        algo: HesHashAlgo::Sha256,
        measurement: BoundedBytes::new(&[m; 32]).unwrap(),
        signer_id: BoundedBytes::new(&[0x51; 32]).unwrap(),
        version: BoundedStr::new("1.0").unwrap(),
        component_type: BoundedStr::new(kind).unwrap(),
    }
}

/// The real HES core behind the fake stream.
fn in_process(mut hes: Hes) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |frame| {
        let mut out = [0u8; MAX_FRAME];
        let n = hes.handle_frame(frame, &mut out);
        out[..n].to_vec()
    }
}

/// A response frame for `id` carrying `resp`.
fn response_frame(id: u32, resp: &HesResponse) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_message(FrameKind::Response, id, resp, &mut out).unwrap();
    out[..n].to_vec()
}

fn request_of(frame: &[u8]) -> (u32, HesRequest) {
    let (h, p) = check_frame(frame, FrameKind::Request).unwrap();
    (h.request_id(), postcard::from_bytes(p).unwrap())
}

/// Answers every request with `resp`, correctly framed.
fn always(resp: HesResponse) -> impl FnMut(&[u8]) -> Vec<u8> {
    move |frame| response_frame(request_of(frame).0, &resp)
}

#[test]
fn talks_to_the_hes_core() {
    let mut link = fake(in_process(new_hes()));
    for (slot, kind) in [
        (0u8, "BL2"),
        (1, "BL31"),
        (2, "RMM"),
        (3, "A"),
        (4, "B"),
        (5, "C"),
        (6, "D"),
    ] {
        link.extend(slot, record(kind, slot), false).unwrap();
    }
    assert_eq!(link.read_slot(2).unwrap().record, record("RMM", 2));
    let va = link.vhuk(VhukId::A).unwrap();
    let vm = link.vhuk(VhukId::M).unwrap();
    assert_ne!(*va, *vm);
    let rak = link.realm_key(EccCurve::P384, HesHashAlgo::Sha256).unwrap();

    // The same core, asked directly, gives the same answers.
    let mut reference = new_hes();
    for (slot, kind) in [
        (0u8, "BL2"),
        (1, "BL31"),
        (2, "RMM"),
        (3, "A"),
        (4, "B"),
        (5, "C"),
        (6, "D"),
    ] {
        reference.handle(&HesRequest::Extend {
            slot,
            record: record(kind, slot),
            lock: false,
        });
    }
    assert_eq!(*va, reference.vhuk(VhukId::A).unwrap());
    assert_eq!(
        *rak,
        <[u8; 48]>::from(
            reference
                .realm_key(EccCurve::P384, HesHashAlgo::Sha256)
                .unwrap()
                .to_bytes()
        )
    );
    assert_eq!(
        link.cpak_public_key().unwrap(),
        reference.cpak_public_key().unwrap()
    );
    let token = link.platform_token(&[9; 32]).unwrap();
    assert!(token.len() > TOKEN_CHUNK_MAX, "spans several chunks");
    assert_eq!(token, reference.platform_token(&[9; 32]).unwrap());

    link.boot_complete().unwrap();
    assert!(matches!(
        link.extend(9, record("X", 9), false),
        Err(LinkError::Hes(HesError::SlotLocked))
    ));

    // Request ids increase by one from 1.
    let ids: Vec<u32> = link
        .into_inner()
        .written
        .iter()
        .map(|f| request_of(f).0)
        .collect();
    let expected: Vec<u32> = (1..=ids.len() as u32).collect();
    assert_eq!(ids, expected);
}

#[test]
fn hes_errors_are_typed() {
    let mut link = fake(in_process(new_hes()));
    assert!(matches!(
        link.read_slot(0),
        Err(LinkError::Hes(HesError::SlotEmpty))
    ));
    assert!(matches!(
        link.read_slot(200),
        Err(LinkError::Hes(HesError::BadSlot))
    ));
    assert!(matches!(
        link.cpak_public_key(),
        Err(LinkError::Hes(HesError::NoBl2Measurement))
    ));
    assert!(matches!(
        link.platform_token(&[0; 65]),
        Err(LinkError::Hes(HesError::BadChallengeLength))
    ));
    assert!(matches!(
        link.platform_token(&[0; 20]),
        Err(LinkError::Hes(HesError::BadChallengeLength))
    ));
    // Refusals leave the link in step.
    link.extend(0, record("BL2", 1), false).unwrap();
}

fn assert_desynchronized<F: FnMut(&[u8]) -> Vec<u8>>(link: &mut HesLink<Fake<F>>) {
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Desynchronized)
    ));
}

#[test]
fn truncated_answer_is_a_transport_error() {
    let mut link = fake(|f| {
        let mut r = response_frame(request_of(f).0, &HesResponse::BootCompleted);
        r.pop();
        r
    });
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Transport(Eof))
    ));
    assert_desynchronized(&mut link);

    let mut link = fake(|_| vec![b'A', b'H']);
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Transport(Eof))
    ));
    let mut link = fake(|_| Vec::new());
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Transport(Eof))
    ));
}

#[test]
fn garbage_is_a_frame_error() {
    let mut link = fake(|_| vec![0x55; 64]);
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Frame(FrameError::BadMagic))
    ));
    assert_desynchronized(&mut link);
}

#[test]
fn oversized_answer_is_refused_before_its_payload_is_read() {
    let mut link = fake(|f| {
        let mut r = response_frame(request_of(f).0, &HesResponse::BootCompleted);
        r[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
        r.extend(core::iter::repeat_n(0, MAX_PAYLOAD + 1));
        r
    });
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::Frame(FrameError::TooLarge))
    ));
    let fake = link.into_inner();
    // Nothing past the header was consumed.
    assert!(fake.pending.len() > MAX_PAYLOAD);
}

#[test]
fn header_faults_are_frame_errors() {
    let cases: [(usize, u8, FrameError); 4] = [
        (4, 2, FrameError::UnsupportedVersion),
        (5, FrameKind::Request as u8, FrameError::BadKind),
        (6, 1, FrameError::ReservedNotZero),
        (20, 0xFF, FrameError::BadChecksum),
    ];
    for (at, value, expected) in cases {
        let mut link = fake(move |f| {
            let mut r = response_frame(request_of(f).0, &HesResponse::BootCompleted);
            r[at] = value;
            r
        });
        match link.boot_complete() {
            Err(LinkError::Frame(e)) => assert_eq!(e, expected),
            other => panic!("byte {at}: {other:?}"),
        }
        assert_desynchronized(&mut link);
    }
}

#[test]
fn another_requests_answer_is_refused() {
    let mut link = fake(|f| response_frame(request_of(f).0 + 1, &HesResponse::BootCompleted));
    assert!(matches!(
        link.boot_complete(),
        Err(LinkError::IdMismatch {
            expected: 1,
            got: 2
        })
    ));
    assert_desynchronized(&mut link);
}

#[test]
fn undecodable_or_wrong_payloads_are_typed() {
    let mut link = fake(|f| {
        let mut out = [0u8; MAX_FRAME];
        let n = encode_frame(FrameKind::Response, request_of(f).0, &[0xEE; 5], &mut out).unwrap();
        out[..n].to_vec()
    });
    assert!(matches!(link.boot_complete(), Err(LinkError::Decode)));
    // The frame was whole: the stream is still in step.
    assert!(matches!(link.boot_complete(), Err(LinkError::Decode)));

    let mut link = fake(always(HesResponse::Extended));
    assert!(matches!(
        link.vhuk(VhukId::A),
        Err(LinkError::UnexpectedResponse)
    ));
    assert!(matches!(
        link.cpak_public_key(),
        Err(LinkError::UnexpectedResponse)
    ));
    assert!(matches!(
        link.platform_token(&[0; 32]),
        Err(LinkError::UnexpectedResponse)
    ));
}

/// A token server that hands out `token` in chunks of `size`, letting
/// `tamper` change each chunk (by call number) before it is sent.
fn token_server(
    token: Vec<u8>,
    size: usize,
    mut tamper: impl FnMut(usize, &mut TokenChunk),
) -> impl FnMut(&[u8]) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(&token).into();
    let mut call = 0;
    move |f| {
        let (id, req) = request_of(f);
        let HesRequest::GetPlatformToken { offset, .. } = req else {
            panic!("not a token request")
        };
        let start = (offset as usize).min(token.len());
        let end = token.len().min(start + size);
        let mut chunk = TokenChunk {
            total_len: token.len() as u32,
            offset,
            remaining: (token.len() - end) as u32,
            digest: Bytes(digest),
            data: BoundedBytes::new(&token[start..end]).unwrap(),
        };
        tamper(call, &mut chunk);
        call += 1;
        response_frame(id, &HesResponse::PlatformToken(chunk))
    }
}

fn sample_token() -> Vec<u8> {
    (0..2000u32).map(|i| (i * 7) as u8).collect()
}

#[test]
fn token_reassembles_from_small_chunks() {
    let mut link = fake(token_server(sample_token(), 100, |_, _| {}));
    assert_eq!(link.platform_token(&[0; 32]).unwrap(), sample_token());
}

#[test]
fn every_token_fault_is_typed() {
    type Tamper = fn(usize, &mut TokenChunk);
    let cases: [(&str, Tamper, TokenFault); 7] = [
        (
            "too large",
            |_, c| c.total_len = TOKEN_MAX as u32 + 1,
            TokenFault::TooLarge,
        ),
        (
            "offset",
            |n, c| {
                if n == 1 {
                    c.offset += 1
                }
            },
            TokenFault::OffsetMismatch,
        ),
        (
            "digest changed",
            |n, c| {
                if n == 2 {
                    c.digest.0[0] ^= 1
                }
            },
            TokenFault::Changed,
        ),
        (
            "length changed",
            |n, c| {
                if n == 1 {
                    c.total_len -= 1
                }
            },
            TokenFault::Changed,
        ),
        (
            "empty chunk",
            |n, c| {
                if n == 1 {
                    c.remaining += c.data.as_slice().len() as u32;
                    c.data = BoundedBytes::new(&[]).unwrap();
                }
            },
            TokenFault::EmptyChunk,
        ),
        (
            "remaining",
            |n, c| {
                if n == 0 {
                    c.remaining -= 1
                }
            },
            TokenFault::LengthMismatch,
        ),
        (
            "wrong bytes",
            |n, c| {
                if n == 3 {
                    let mut d = c.data.as_slice().to_vec();
                    d[0] ^= 1;
                    c.data = BoundedBytes::new(&d).unwrap();
                }
            },
            TokenFault::DigestMismatch,
        ),
    ];
    for (name, tamper, expected) in cases {
        let mut link = fake(token_server(sample_token(), 500, tamper));
        match link.platform_token(&[0; 32]) {
            Err(LinkError::Token(f)) => assert_eq!(f, expected, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // A chunk that runs past the announced total.
    let mut link = fake(token_server(sample_token(), 500, |n, c| {
        if n == 3 {
            c.total_len = 1999;
            c.remaining = 0;
        }
    }));
    assert!(matches!(
        link.platform_token(&[0; 32]),
        Err(LinkError::Token(TokenFault::Changed))
    ));
    let mut link = fake(token_server(sample_token(), 500, |_, c| {
        c.total_len = 400;
        c.remaining = 0;
    }));
    assert!(matches!(
        link.platform_token(&[0; 32]),
        Err(LinkError::Token(TokenFault::LengthMismatch))
    ));
}

#[test]
fn request_ids_wrap_past_zero() {
    let mut link = fake(always(HesResponse::BootCompleted));
    link.next_id = u32::MAX;
    link.boot_complete().unwrap();
    link.boot_complete().unwrap();
    let ids: Vec<u32> = link
        .into_inner()
        .written
        .iter()
        .map(|f| request_of(f).0)
        .collect();
    assert_eq!(ids, [u32::MAX, 1]);
}

proptest! {
    /// Whatever comes back, the client returns (never panics, never loops).
    #[test]
    fn arbitrary_answers_never_panic(answer in proptest::collection::vec(any::<u8>(), 0..2 * MAX_FRAME)) {
        let a = answer.clone();
        let mut link = fake(move |_| a.clone());
        let _ = link.platform_token(&[0; 32]);
        let mut link = fake(move |_| answer.clone());
        let _ = link.read_slot(0);
    }

    /// A well-framed answer with arbitrary payload: typed error or a value.
    #[test]
    fn arbitrary_payloads_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..=MAX_PAYLOAD)) {
        let mut link = fake(move |f| {
            let mut out = [0u8; MAX_FRAME];
            let n = encode_frame(FrameKind::Response, request_of(f).0, &payload, &mut out).unwrap();
            out[..n].to_vec()
        });
        let _ = link.platform_token(&[0; 48]);
    }
}
