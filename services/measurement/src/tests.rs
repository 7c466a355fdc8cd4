//! Unit tests. Expected values are computed independently of the service:
//! descriptors and parameter pages are laid out by hand at the offsets the
//! specification gives, and hashed with `sha2` directly.

extern crate std;

use std::vec;
use std::vec::Vec;

use ipc_schema::service::measurement::{REQUEST_MAX, RESPONSE_MAX};
use ipc_schema::service::{Lease, LeaseMem};
use ipc_schema::wire::BoundedBytes;
use proptest::prelude::*;

use super::*;

const R: RealmHandle = RealmHandle(0x8000_0000);

fn sha256(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&Sha256::digest(data));
    out
}

fn sha512(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(&Sha512::digest(data));
    out
}

fn params(algo: HashAlgo) -> MeasuredRealmParams {
    MeasuredRealmParams {
        flags: 0b110,
        s2sz: 40,
        sve_vl: 3,
        num_bps: 5,
        num_wps: 7,
        pmu_num_ctrs: 9,
        hash_algo: algo.to_rmi(),
    }
}

/// The RmiRealmParams page, by hand.
fn realm_page_by_hand(p: &MeasuredRealmParams) -> Vec<u8> {
    let mut page = vec![0u8; 4096];
    page[0x00..0x08].copy_from_slice(&p.flags.to_le_bytes());
    page[0x08..0x10].copy_from_slice(&p.s2sz.to_le_bytes());
    page[0x10..0x18].copy_from_slice(&p.sve_vl.to_le_bytes());
    page[0x18..0x20].copy_from_slice(&p.num_bps.to_le_bytes());
    page[0x20..0x28].copy_from_slice(&p.num_wps.to_le_bytes());
    page[0x28..0x30].copy_from_slice(&p.pmu_num_ctrs.to_le_bytes());
    page[0x30] = p.hash_algo;
    page
}

fn header(ty: u8, rim: &[u8; 64]) -> Vec<u8> {
    let mut d = vec![0u8; 0x100];
    d[0] = ty;
    d[0x08..0x10].copy_from_slice(&0x100u64.to_le_bytes());
    d[0x10..0x50].copy_from_slice(rim);
    d
}

fn create(svc: &mut MeasurementService, realm: RealmHandle, algo: HashAlgo) {
    let resp = svc.handle(MeasurementRequest::RealmCreate {
        realm,
        algo,
        params: params(algo),
    });
    assert_eq!(resp, MeasurementResponse::Ok);
}

fn read(svc: &mut MeasurementService, realm: RealmHandle, index: u8) -> [u8; 64] {
    match svc.handle(MeasurementRequest::Read { realm, index }) {
        MeasurementResponse::Value(v) => v.0,
        other => panic!("read {index}: {other:?}"),
    }
}

fn page(seed: u8) -> Bytes<4096> {
    let mut p = [0u8; 4096];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    Bytes(p)
}

#[test]
fn realm_create_rim_is_hash_of_measured_fields_only() {
    for (algo, h) in [
        (HashAlgo::Sha256, sha256 as fn(&[u8]) -> [u8; 64]),
        (HashAlgo::Sha512, sha512),
    ] {
        let mut svc = MeasurementService::new(2);
        create(&mut svc, R, algo);
        assert_eq!(read(&mut svc, R, 0), h(&realm_page_by_hand(&params(algo))));
        for i in 1..=4 {
            assert_eq!(read(&mut svc, R, i), [0; 64], "REM{i} starts at zero");
        }
    }
}

#[test]
fn sha256_slots_are_zero_padded() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    let rim = read(&mut svc, R, 0);
    assert_ne!(rim[..32], [0; 32]);
    assert_eq!(rim[32..], [0; 32]);
}

#[test]
fn full_sequence_matches_hand_built_descriptors() {
    let algo = HashAlgo::Sha256;
    let mut svc = MeasurementService::new(4);
    create(&mut svc, R, algo);
    let mut rim = sha256(&realm_page_by_hand(&params(algo)));

    // RIPAS over two 4 KiB entries.
    for base in [0x4000_0000u64, 0x4000_1000] {
        let resp = svc.handle(MeasurementRequest::Ripas {
            realm: R,
            base,
            top: base + 0x1000,
        });
        assert_eq!(resp, MeasurementResponse::Ok);
        let mut d = header(2, &rim);
        d[0x50..0x58].copy_from_slice(&base.to_le_bytes());
        d[0x58..0x60].copy_from_slice(&(base + 0x1000).to_le_bytes());
        rim = sha256(&d);
    }

    // A measured page.
    let p = page(7);
    let resp = svc.handle_ref(
        &MeasurementRequest::Data {
            realm: R,
            ipa: 0x4000_0000,
            flags: 1,
            content: Some(Lease(0)),
            copy_to: None,
        },
        &mut [LeaseMem::Read(&p.0)],
    );
    assert_eq!(resp, MeasurementResponse::Ok);
    let mut d = header(0, &rim);
    d[0x50..0x58].copy_from_slice(&0x4000_0000u64.to_le_bytes());
    d[0x58..0x60].copy_from_slice(&1u64.to_le_bytes());
    d[0x60..0xA0].copy_from_slice(&sha256(&p.0));
    rim = sha256(&d);
    assert_eq!(read(&mut svc, R, 0), rim);

    // An unmeasured page: ipa and flags still count, content is zero.
    let resp = svc.handle(MeasurementRequest::Data {
        realm: R,
        ipa: 0x4000_1000,
        flags: 0,
        content: None,
        copy_to: None,
    });
    assert_eq!(resp, MeasurementResponse::Ok);
    let mut d = header(0, &rim);
    d[0x50..0x58].copy_from_slice(&0x4000_1000u64.to_le_bytes());
    rim = sha256(&d);
    assert_eq!(read(&mut svc, R, 0), rim);

    // A runnable REC.
    let rec = MeasuredRecParams {
        flags: 1,
        pc: 0x4000_0000,
        gprs: [1, 2, 3, 4, 5, 6, 7, 8],
    };
    assert_eq!(
        svc.handle(MeasurementRequest::Rec {
            realm: R,
            params: rec
        }),
        MeasurementResponse::Ok
    );
    let mut rp = vec![0u8; 4096];
    rp[0..8].copy_from_slice(&1u64.to_le_bytes());
    rp[0x200..0x208].copy_from_slice(&0x4000_0000u64.to_le_bytes());
    for (i, g) in rec.gprs.iter().enumerate() {
        rp[0x300 + 8 * i..0x308 + 8 * i].copy_from_slice(&g.to_le_bytes());
    }
    let mut d = header(1, &rim);
    d[0x50..0x90].copy_from_slice(&sha256(&rp));
    rim = sha256(&d);
    assert_eq!(read(&mut svc, R, 0), rim);

    // A non-runnable REC leaves the RIM alone.
    let idle = MeasuredRecParams { flags: 0, ..rec };
    assert_eq!(
        svc.handle(MeasurementRequest::Rec {
            realm: R,
            params: idle
        }),
        MeasurementResponse::Ok
    );
    assert_eq!(read(&mut svc, R, 0), rim);
}

#[test]
fn sha512_data_descriptor() {
    let algo = HashAlgo::Sha512;
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, algo);
    let rim0 = sha512(&realm_page_by_hand(&params(algo)));
    let p = page(1);
    svc.handle_ref(
        &MeasurementRequest::Data {
            realm: R,
            ipa: 0x1000,
            flags: 1,
            content: Some(Lease(0)),
            copy_to: None,
        },
        &mut [LeaseMem::Read(&p.0)],
    );
    let mut d = header(0, &rim0);
    d[0x50..0x58].copy_from_slice(&0x1000u64.to_le_bytes());
    d[0x58..0x60].copy_from_slice(&1u64.to_le_bytes());
    d[0x60..0xA0].copy_from_slice(&sha512(&p.0));
    assert_eq!(read(&mut svc, R, 0), sha512(&d));
}

#[test]
fn extend_rem_by_hand() {
    for (algo, h, len) in [
        (HashAlgo::Sha256, sha256 as fn(&[u8]) -> [u8; 64], 32),
        (HashAlgo::Sha512, sha512, 64),
    ] {
        let mut svc = MeasurementService::new(1);
        create(&mut svc, R, algo);
        let rim = read(&mut svc, R, 0);
        let mut expected = [[0u8; 64]; 5];
        for (round, index) in [1u8, 4, 1, 2, 3].into_iter().enumerate() {
            let data: Vec<u8> = (0..(round * 13 + 1) as u8).collect();
            let resp = svc.handle(MeasurementRequest::Extend {
                realm: R,
                index,
                data: BoundedBytes::new(&data).unwrap(),
            });
            assert_eq!(resp, MeasurementResponse::Ok);
            let slot = &mut expected[usize::from(index)];
            let mut input = slot[..len].to_vec();
            input.extend_from_slice(&data);
            *slot = h(&input);
        }
        for i in 1..=4u8 {
            assert_eq!(read(&mut svc, R, i), expected[usize::from(i)], "REM{i}");
        }
        assert_eq!(read(&mut svc, R, 0), rim, "extend never touches the RIM");
    }
}

#[test]
fn extend_with_empty_data_still_rehashes() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    svc.handle(MeasurementRequest::Extend {
        realm: R,
        index: 2,
        data: BoundedBytes::new(&[]).unwrap(),
    });
    assert_eq!(read(&mut svc, R, 2), sha256(&[0u8; 32]));
}

#[test]
fn extend_bad_index() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    for index in [0u8, 5, 255] {
        let resp = svc.handle(MeasurementRequest::Extend {
            realm: R,
            index,
            data: BoundedBytes::new(&[1]).unwrap(),
        });
        assert_eq!(resp, MeasurementResponse::Error(MeasurementError::BadIndex));
    }
}

#[test]
fn read_bad_index() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    for index in [5u8, 200] {
        assert_eq!(
            svc.handle(MeasurementRequest::Read { realm: R, index }),
            MeasurementResponse::Error(MeasurementError::BadIndex)
        );
    }
}

#[test]
fn unknown_realm_everywhere() {
    let mut svc = MeasurementService::new(2);
    create(&mut svc, R, HashAlgo::Sha256);
    let other = RealmHandle(1);
    let reqs = [
        MeasurementRequest::Data {
            realm: other,
            ipa: 0,
            flags: 0,
            content: None,
            copy_to: None,
        },
        MeasurementRequest::Rec {
            realm: other,
            params: MeasuredRecParams {
                flags: 1,
                pc: 0,
                gprs: [0; 8],
            },
        },
        MeasurementRequest::Ripas {
            realm: other,
            base: 0,
            top: 0x1000,
        },
        MeasurementRequest::Extend {
            realm: other,
            index: 1,
            data: BoundedBytes::new(&[]).unwrap(),
        },
        MeasurementRequest::Read {
            realm: other,
            index: 0,
        },
        MeasurementRequest::Destroy { realm: other },
    ];
    for req in reqs {
        assert_eq!(
            svc.handle(req.clone()),
            MeasurementResponse::Error(MeasurementError::UnknownRealm),
            "{req:?}"
        );
    }
}

#[test]
fn realm_exists_and_no_space() {
    let mut svc = MeasurementService::new(2);
    create(&mut svc, RealmHandle(3), HashAlgo::Sha256);
    let again = MeasurementRequest::RealmCreate {
        realm: RealmHandle(3),
        algo: HashAlgo::Sha512,
        params: params(HashAlgo::Sha512),
    };
    assert_eq!(
        svc.handle(again),
        MeasurementResponse::Error(MeasurementError::RealmExists)
    );
    create(&mut svc, RealmHandle(1), HashAlgo::Sha512);
    let third = MeasurementRequest::RealmCreate {
        realm: RealmHandle(2),
        algo: HashAlgo::Sha256,
        params: params(HashAlgo::Sha256),
    };
    assert_eq!(
        svc.handle(third.clone()),
        MeasurementResponse::Error(MeasurementError::NoSpace)
    );
    assert_eq!(svc.realm_count(), 2);
    // Destroy frees a place, and the others are untouched.
    let rim1 = read(&mut svc, RealmHandle(1), 0);
    assert_eq!(
        svc.handle(MeasurementRequest::Destroy {
            realm: RealmHandle(3)
        }),
        MeasurementResponse::Ok
    );
    assert_eq!(svc.handle(third), MeasurementResponse::Ok);
    assert_eq!(read(&mut svc, RealmHandle(1), 0), rim1);
    assert_eq!(svc.algo(RealmHandle(1)), Some(HashAlgo::Sha512));
    assert_eq!(svc.algo(RealmHandle(3)), None);
}

#[test]
fn zero_capacity_refuses_everything() {
    let mut svc = MeasurementService::new(0);
    let req = MeasurementRequest::RealmCreate {
        realm: R,
        algo: HashAlgo::Sha256,
        params: params(HashAlgo::Sha256),
    };
    assert_eq!(
        svc.handle(req),
        MeasurementResponse::Error(MeasurementError::NoSpace)
    );
}

#[test]
fn mismatched_algo_is_refused() {
    let mut svc = MeasurementService::new(1);
    let req = MeasurementRequest::RealmCreate {
        realm: R,
        algo: HashAlgo::Sha512,
        params: params(HashAlgo::Sha256),
    };
    assert_eq!(
        svc.handle(req),
        MeasurementResponse::Error(MeasurementError::AlgoMismatch)
    );
    let mut bad = params(HashAlgo::Sha256);
    bad.hash_algo = 7;
    let req = MeasurementRequest::RealmCreate {
        realm: R,
        algo: HashAlgo::Sha256,
        params: bad,
    };
    assert_eq!(
        svc.handle(req),
        MeasurementResponse::Error(MeasurementError::AlgoMismatch)
    );
    assert_eq!(svc.realm_count(), 0);
}

#[test]
fn realms_are_independent() {
    let mut svc = MeasurementService::new(3);
    create(&mut svc, RealmHandle(10), HashAlgo::Sha256);
    create(&mut svc, RealmHandle(5), HashAlgo::Sha256);
    let before = read(&mut svc, RealmHandle(5), 0);
    svc.handle(MeasurementRequest::Ripas {
        realm: RealmHandle(10),
        base: 0,
        top: 0x1000,
    });
    assert_eq!(read(&mut svc, RealmHandle(5), 0), before);
    assert_ne!(read(&mut svc, RealmHandle(10), 0), before);
}

fn roundtrip(
    svc: &mut MeasurementService,
    req: &MeasurementRequest,
    leases: &mut [LeaseMem<'_>],
) -> MeasurementResponse {
    let bytes = postcard::to_allocvec(req).unwrap();
    let mut out = [0u8; RESPONSE_MAX];
    let n = svc.handle_bytes(&bytes, leases, &mut out);
    assert!(n > 0);
    postcard::from_bytes(&out[..n]).unwrap()
}

#[test]
fn handle_bytes_matches_handle() {
    let mut a = MeasurementService::new(1);
    let mut b = MeasurementService::new(1);
    let reqs = [
        MeasurementRequest::RealmCreate {
            realm: R,
            algo: HashAlgo::Sha256,
            params: params(HashAlgo::Sha256),
        },
        MeasurementRequest::Data {
            realm: R,
            ipa: 0x2000,
            flags: 1,
            content: Some(Lease(0)),
            copy_to: None,
        },
        MeasurementRequest::Extend {
            realm: R,
            index: 3,
            data: BoundedBytes::new(b"hello").unwrap(),
        },
        MeasurementRequest::Read { realm: R, index: 0 },
        MeasurementRequest::Read { realm: R, index: 3 },
        MeasurementRequest::Read { realm: R, index: 9 },
    ];
    let p = page(3);
    for req in reqs {
        assert_eq!(
            roundtrip(&mut a, &req, &mut [LeaseMem::Read(&p.0)]),
            b.handle_ref(&req, &mut [LeaseMem::Read(&p.0)])
        );
    }
}

#[test]
fn handle_bytes_rejects_garbage() {
    let mut svc = MeasurementService::new(1);
    let malformed =
        postcard::to_allocvec(&MeasurementResponse::Error(MeasurementError::Malformed)).unwrap();
    let mut out = [0u8; RESPONSE_MAX];

    let mut cases: Vec<Vec<u8>> = vec![vec![], vec![0xff], vec![3, 1]];
    // Oversized: a valid request followed by padding beyond REQUEST_MAX.
    let mut big = postcard::to_allocvec(&MeasurementRequest::Read { realm: R, index: 0 }).unwrap();
    big.resize(REQUEST_MAX + 1, 0);
    cases.push(big);
    // Trailing bytes after a valid request.
    let mut trailing =
        postcard::to_allocvec(&MeasurementRequest::Read { realm: R, index: 0 }).unwrap();
    trailing.push(0);
    cases.push(trailing);
    for case in cases {
        let n = svc.handle_bytes(&case, &mut [], &mut out);
        assert_eq!(&out[..n], &malformed[..], "{case:02x?}");
    }

    // A measured page whose lease is missing or not exactly one page.
    create(&mut svc, R, HashAlgo::Sha256);
    let data = postcard::to_allocvec(&MeasurementRequest::Data {
        realm: R,
        ipa: 0,
        flags: 1,
        content: Some(Lease(0)),
        copy_to: None,
    })
    .unwrap();
    let short = [0u8; 4095];
    let long = [0u8; 4097];
    let before = read(&mut svc, R, 0);
    let cases: [&mut [LeaseMem<'_>]; 3] = [
        &mut [],
        &mut [LeaseMem::Read(&short)],
        &mut [LeaseMem::Read(&long)],
    ];
    for leases in cases {
        let n = svc.handle_bytes(&data, leases, &mut out);
        assert_eq!(&out[..n], &malformed[..]);
    }
    assert_eq!(
        read(&mut svc, R, 0),
        before,
        "a refused request changes nothing"
    );
}

#[test]
fn handle_bytes_small_response_buffer() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    let req = postcard::to_allocvec(&MeasurementRequest::Read { realm: R, index: 0 }).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(svc.handle_bytes(&req, &mut [], &mut out), 0);
}

proptest! {
    #[test]
    fn handle_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        let mut svc = MeasurementService::new(2);
        create(&mut svc, R, HashAlgo::Sha512);
        let mut out = [0u8; RESPONSE_MAX];
        let n = svc.handle_bytes(&bytes, &mut [], &mut out);
        prop_assert!(n > 0);
        prop_assert!(postcard::from_bytes::<MeasurementResponse>(&out[..n]).is_ok());
    }
}

#[test]
fn copy_and_measure_writes_what_it_hashes() {
    for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
        let mut a = MeasurementService::new(1);
        let mut b = MeasurementService::new(1);
        create(&mut a, R, algo);
        create(&mut b, R, algo);
        let src = page(9);
        let mut dst = [0xEEu8; 4096];
        let req = MeasurementRequest::Data {
            realm: R,
            ipa: 0x7000,
            flags: 1,
            content: Some(Lease(0)),
            copy_to: Some(Lease(1)),
        };
        let resp = a.handle_ref(
            &req,
            &mut [LeaseMem::Read(&src.0), LeaseMem::Write(&mut dst)],
        );
        assert_eq!(resp, MeasurementResponse::Ok);
        assert_eq!(dst, src.0, "the page was copied");
        // Same RIM as hashing the page in place.
        let in_place = MeasurementRequest::Data {
            realm: R,
            ipa: 0x7000,
            flags: 1,
            content: Some(Lease(0)),
            copy_to: None,
        };
        b.handle_ref(&in_place, &mut [LeaseMem::Read(&src.0)]);
        assert_eq!(read(&mut a, R, 0), read(&mut b, R, 0));
    }
}

#[test]
fn copy_and_measure_refuses_bad_leases() {
    let mut svc = MeasurementService::new(1);
    create(&mut svc, R, HashAlgo::Sha256);
    let before = read(&mut svc, R, 0);
    let src = page(1);
    let ro = page(2);
    let mut short = [0u8; 100];
    let copy = |from: u8, to: u8| MeasurementRequest::Data {
        realm: R,
        ipa: 0,
        flags: 1,
        content: Some(Lease(from)),
        copy_to: Some(Lease(to)),
    };
    let malformed = MeasurementResponse::Error(MeasurementError::Malformed);
    // Destination lent read-only.
    assert_eq!(
        svc.handle_ref(
            &copy(0, 1),
            &mut [LeaseMem::Read(&src.0), LeaseMem::Read(&ro.0)]
        ),
        malformed
    );
    // Same lease twice, missing lease, wrong size.
    let mut dst = [0u8; 4096];
    assert_eq!(
        svc.handle_ref(&copy(0, 0), &mut [LeaseMem::Write(&mut dst)]),
        malformed
    );
    assert_eq!(
        svc.handle_ref(
            &copy(0, 2),
            &mut [LeaseMem::Read(&src.0), LeaseMem::Write(&mut dst)]
        ),
        malformed
    );
    assert_eq!(
        svc.handle_ref(
            &copy(0, 1),
            &mut [LeaseMem::Read(&src.0), LeaseMem::Write(&mut short)]
        ),
        malformed
    );
    // A destination without a source.
    let no_source = MeasurementRequest::Data {
        realm: R,
        ipa: 0,
        flags: 1,
        content: None,
        copy_to: Some(Lease(0)),
    };
    assert_eq!(
        svc.handle_ref(&no_source, &mut [LeaseMem::Write(&mut dst)]),
        malformed
    );
    assert_eq!(
        read(&mut svc, R, 0),
        before,
        "refused requests change nothing"
    );
    assert_eq!(dst, [0u8; 4096], "nothing copied on refusal");
}
