extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use atoll_metadata::{sign, RealmId, Version};
use hkdf::Hkdf;
use ipc_schema::islet::sealing_flags as f;
use ipc_schema::service::keys::{METADATA_LEN, RESPONSE_MAX};
use ipc_schema::service::{HashAlgo, Lease};
use p384::ecdsa::SigningKey;
use proptest::prelude::*;
use sha2::Sha256;

use super::*;
use crate::app::{application_key, image_key, storage_key, AppKeyError};
use crate::derive::{DerivedKey, REALM_SEALING_SALT};

const VHUK_A: [u8; 32] = [0xA1; 32];
const VHUK_M: [u8; 32] = [0x3E; 32];
const R1: RealmHandle = RealmHandle(0x8000_0000);
const R2: RealmHandle = RealmHandle(0x8000_1000);

fn vendor(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 48]).unwrap()
}

fn fields(id: &str, rim: [u8; 32], svn: u64) -> Metadata {
    Metadata {
        realm_id: RealmId::new(id).unwrap(),
        rim: Rim::new(HashAlgo::Sha256, &rim).unwrap(),
        svn,
        version: Version {
            major: 1,
            minor: 0,
            patch: 0,
        },
    }
}

/// A block for realm id `id` with RIM `[rim; 32]`, SVN 5, signed by `vendor(seed)`.
fn block(seed: u8, id: &str, rim: u8) -> [u8; BLOCK_LEN] {
    sign(&fields(id, [rim; 32], 5), &vendor(seed))
}

fn rim(v: u8) -> Bytes<64> {
    let mut r = [0u8; 64];
    r[..32].fill(v);
    Bytes(r)
}

fn provisioned() -> KeysService {
    let mut s = KeysService::new(8);
    let r = s.handle(KeysRequest::Provision {
        vhuk_a: Bytes(VHUK_A),
        vhuk_m: Bytes(VHUK_M),
    });
    assert_eq!(r, KeysResponse::Ok);
    s
}

fn set(s: &mut KeysService, realm: RealmHandle, block: &[u8]) -> KeysResponse {
    s.handle_ref(
        &KeysRequest::SetMetadata {
            realm,
            block: Lease(0),
        },
        &mut [LeaseMem::Read(block)],
    )
}

fn get(s: &mut KeysService, realm: RealmHandle) -> Result<[u8; BLOCK_LEN], KeysError> {
    let mut out = [0u8; BLOCK_LEN];
    match s.handle_ref(
        &KeysRequest::GetMetadata {
            realm,
            out: Lease(0),
        },
        &mut [LeaseMem::Write(&mut out)],
    ) {
        KeysResponse::Ok => Ok(out),
        KeysResponse::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

fn seal(
    s: &mut KeysService,
    realm: RealmHandle,
    flags: u64,
    svn: u64,
    rim_v: u8,
) -> Result<[u8; 32], KeysError> {
    match s.handle(KeysRequest::SealingKey {
        realm,
        flags,
        svn,
        algo: HashAlgo::Sha256,
        rim: rim(rim_v),
    }) {
        KeysResponse::SealingKey(k) => Ok(k.0),
        KeysResponse::Error(e) => Err(e),
        other => panic!("unexpected {other:?}"),
    }
}

/// A provisioned service where `realm` has `block(seed, id, rim)`.
fn with_metadata(realm: RealmHandle, seed: u8, id: &str, rim_v: u8) -> KeysService {
    let mut s = provisioned();
    assert_eq!(
        set(&mut s, realm, &block(seed, id, rim_v)),
        KeysResponse::Ok
    );
    s
}

#[test]
fn metadata_is_stored_and_returned_verbatim() {
    let b = block(1, "realm-a", 0x11);
    let mut s = provisioned();
    assert_eq!(set(&mut s, R1, &b), KeysResponse::Ok);
    assert_eq!(s.realm_count(), 1);
    assert_eq!(get(&mut s, R1).unwrap(), b);
    assert_eq!(get(&mut s, R2), Err(KeysError::NoMetadata));
}

#[test]
fn metadata_can_be_set_only_once() {
    let first = block(1, "realm-a", 0x11);
    let mut s = provisioned();
    assert_eq!(set(&mut s, R1, &first), KeysResponse::Ok);
    for second in [first, block(2, "realm-b", 0x22)] {
        assert_eq!(
            set(&mut s, R1, &second),
            KeysResponse::Error(KeysError::MetadataExists)
        );
    }
    assert_eq!(get(&mut s, R1).unwrap(), first);
}

#[test]
fn a_bad_block_is_refused_and_nothing_is_stored() {
    let good = block(1, "realm-a", 0x11);
    let mut tampered = good;
    tampered[0xD0] ^= 1; // svn
    let mut bad_point = good;
    bad_point[0xF0 + 95] ^= 1;
    let mut bad_version = good;
    bad_version[0] = 2;
    let mut bad_id = good;
    bad_id[0x08] = 0xff;
    let mut bad_algo = good;
    bad_algo[0xC8] = 9;
    let mut bad_rim = good;
    bad_rim[0x88 + 40] = 1;
    let cases = [
        (&tampered[..], MetadataFault::Signature),
        (&bad_point[..], MetadataFault::PublicKey),
        (&bad_version[..], MetadataFault::FmtVersion),
        (&bad_id[..], MetadataFault::RealmId),
        (&bad_algo[..], MetadataFault::HashAlgo),
        (&bad_rim[..], MetadataFault::Rim),
    ];
    let mut s = provisioned();
    for (b, fault) in cases {
        assert_eq!(
            set(&mut s, R1, b),
            KeysResponse::Error(KeysError::InvalidMetadata(fault))
        );
        assert_eq!(s.realm_count(), 0);
        assert_eq!(get(&mut s, R1), Err(KeysError::NoMetadata));
        // Without stored metadata, activation is not constrained...
        assert_eq!(
            s.handle(KeysRequest::CheckActivation {
                realm: R1,
                algo: HashAlgo::Sha256,
                rim: rim(0x99)
            }),
            KeysResponse::Ok
        );
    }
    // ...and a good block can still be set afterwards.
    assert_eq!(set(&mut s, R1, &good), KeysResponse::Ok);
}

#[test]
fn leases_of_the_wrong_shape_are_malformed() {
    let b = block(1, "realm-a", 0x11);
    let mut s = provisioned();
    let req = KeysRequest::SetMetadata {
        realm: R1,
        block: Lease(1),
    };
    assert_eq!(
        s.handle_ref(&req, &mut [LeaseMem::Read(&b)]),
        KeysResponse::Error(KeysError::Malformed),
        "missing lease"
    );
    let mut page = vec![0u8; 4096];
    page[..BLOCK_LEN].copy_from_slice(&b);
    for len in [0, BLOCK_LEN - 1, BLOCK_LEN + 1, 4096] {
        assert_eq!(
            set(&mut s, R1, &page[..len]),
            KeysResponse::Error(KeysError::Malformed),
            "{len}"
        );
    }
    assert_eq!(set(&mut s, R1, &b), KeysResponse::Ok);
    // GetMetadata needs a writable lease of exactly the block size.
    let mut small = [0u8; BLOCK_LEN - 1];
    let ro = [0u8; BLOCK_LEN];
    let get_req = KeysRequest::GetMetadata {
        realm: R1,
        out: Lease(0),
    };
    for leases in [
        &mut [LeaseMem::Read(&ro)][..],
        &mut [LeaseMem::Write(&mut small)][..],
        &mut [][..],
    ] {
        assert_eq!(
            s.handle_ref(&get_req, leases),
            KeysResponse::Error(KeysError::Malformed)
        );
    }
    assert_eq!(METADATA_LEN, BLOCK_LEN);
}

#[test]
fn activation_needs_the_metadata_rim_and_algorithm() {
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    let check = |s: &mut KeysService, realm, algo, rim| {
        s.handle(KeysRequest::CheckActivation { realm, algo, rim })
    };
    assert_eq!(
        check(&mut s, R1, HashAlgo::Sha256, rim(0x11)),
        KeysResponse::Ok
    );
    assert_eq!(
        check(&mut s, R1, HashAlgo::Sha256, rim(0x12)),
        KeysResponse::Error(KeysError::RimMismatch)
    );
    let mut r512 = [0x11u8; 64];
    r512[32..].fill(0);
    assert_eq!(
        check(&mut s, R1, HashAlgo::Sha512, Bytes(r512)),
        KeysResponse::Error(KeysError::AlgoMismatch)
    );
    // A SHA-256 RIM with non-zero padding is a caller bug.
    let mut padded = rim(0x11);
    padded.0[63] = 1;
    assert_eq!(
        check(&mut s, R1, HashAlgo::Sha256, padded),
        KeysResponse::Error(KeysError::Malformed)
    );
    // Realms without metadata are not constrained.
    assert_eq!(
        check(&mut s, R2, HashAlgo::Sha512, Bytes([7; 64])),
        KeysResponse::Ok
    );
}

#[test]
fn same_realm_and_vendor_give_the_same_key_across_restarts() {
    for flags in [0, f::RIM, f::REALM_ID, f::SVN, f::KEY_M, f::MASK] {
        let k1 = seal(
            &mut with_metadata(R1, 1, "realm-a", 0x11),
            R1,
            flags,
            5,
            0x11,
        )
        .unwrap();
        // A new instance (reboot): same VHUKs and block, another RD address.
        let k2 = seal(
            &mut with_metadata(R2, 1, "realm-a", 0x11),
            R2,
            flags,
            5,
            0x11,
        )
        .unwrap();
        assert_eq!(k1, k2, "flags {flags:#x}");
    }
}

#[test]
fn keys_differ_by_vendor_realm_id_rim_vhuk_and_svn() {
    let key = |seed, id, rim_v, flags, svn| {
        seal(
            &mut with_metadata(R1, seed, id, rim_v),
            R1,
            flags,
            svn,
            rim_v,
        )
        .unwrap()
    };
    let base = key(1, "realm-a", 0x11, f::REALM_ID | f::RIM | f::SVN, 5);
    let all = f::REALM_ID | f::RIM | f::SVN;
    assert_ne!(base, key(2, "realm-a", 0x11, all, 5), "vendor key");
    assert_ne!(base, key(1, "realm-b", 0x11, all, 5), "realm id");
    assert_ne!(base, key(1, "realm-a", 0x12, all, 5), "RIM");
    assert_ne!(base, key(1, "realm-a", 0x11, all | f::KEY_M, 5), "VHUK_M");
    assert_ne!(base, key(1, "realm-a", 0x11, all, 4), "SVN");
    // The vendor key is part of the identity even with no flags at all.
    assert_ne!(key(1, "realm-a", 0x11, 0, 5), key(2, "realm-a", 0x11, 0, 5));
    // VHUK_M vs VHUK_A with nothing else mixed in.
    assert_ne!(
        key(1, "realm-a", 0x11, 0, 5),
        key(1, "realm-a", 0x11, f::KEY_M, 5)
    );
}

#[test]
fn signer_bound_keys_survive_updates() {
    // A new realm image (another RIM) with new metadata from the same
    // vendor keeps its key unless the RIM flag is asked for; the realm id
    // is only mixed in with its flag; the SVN is ignored without its flag.
    let key = |id, rim_v, flags, svn| {
        seal(&mut with_metadata(R1, 1, id, rim_v), R1, flags, svn, rim_v).unwrap()
    };
    assert_eq!(key("realm-a", 0x11, 0, 5), key("realm-a", 0x22, 0, 5));
    assert_eq!(key("realm-a", 0x11, 0, 5), key("realm-b", 0x11, 0, 5));
    assert_eq!(key("realm-a", 0x11, 0, 5), key("realm-a", 0x11, 0, 0));
    assert_ne!(
        key("realm-a", 0x11, f::RIM, 5),
        key("realm-a", 0x22, f::RIM, 5)
    );
}

#[test]
fn svn_above_the_metadata_is_refused() {
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    for svn in 0..=5 {
        assert!(seal(&mut s, R1, f::SVN, svn, 0x11).is_ok());
    }
    for svn in [6, u64::MAX] {
        assert_eq!(
            seal(&mut s, R1, f::SVN, svn, 0x11),
            Err(KeysError::SvnTooHigh)
        );
    }
    // Without the SVN flag the SVN is not used, so not checked.
    assert!(seal(&mut s, R1, 0, 6, 0x11).is_ok());
}

#[test]
fn undefined_flags_are_refused() {
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    for flags in [1 << 4, 1 << 63, f::MASK | 1 << 5, u64::MAX] {
        assert_eq!(
            seal(&mut s, R1, flags, 0, 0x11),
            Err(KeysError::UndefinedFlags)
        );
    }
}

#[test]
fn without_metadata_the_rim_is_always_mixed_in() {
    let mut s = provisioned();
    let k = seal(&mut s, R1, 0, 0, 0x11).unwrap();
    assert_eq!(k, seal(&mut s, R1, f::RIM, 0, 0x11).unwrap());
    assert_eq!(
        k,
        seal(&mut s, R2, 0, 0, 0x11).unwrap(),
        "the handle is not identity"
    );
    assert_ne!(k, seal(&mut s, R1, 0, 0, 0x12).unwrap());
    assert_ne!(k, seal(&mut s, R1, f::KEY_M, 0, 0x11).unwrap());
    // Nothing to take a realm id or an SVN bound from.
    assert_eq!(
        seal(&mut s, R1, f::REALM_ID, 0, 0x11),
        Err(KeysError::NoMetadata)
    );
    assert_eq!(
        seal(&mut s, R1, f::SVN, 0, 0x11),
        Err(KeysError::NoMetadata)
    );
    // And a realm with metadata never gets the no-metadata key.
    let mut m = with_metadata(R1, 1, "realm-a", 0x11);
    assert_ne!(k, seal(&mut m, R1, f::RIM, 0, 0x11).unwrap());
}

#[test]
fn sealing_checks_the_rim_form_and_algorithm() {
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    let mut bad = rim(0x11);
    bad.0[40] = 1;
    let req = |algo, rim| KeysRequest::SealingKey {
        realm: R1,
        flags: 0,
        svn: 0,
        algo,
        rim,
    };
    assert_eq!(
        s.handle(req(HashAlgo::Sha256, bad)),
        KeysResponse::Error(KeysError::Malformed)
    );
    assert_eq!(
        s.handle(req(HashAlgo::Sha512, Bytes([1; 64]))),
        KeysResponse::Error(KeysError::AlgoMismatch)
    );
}

#[test]
fn provisioning_rules() {
    let mut s = KeysService::new(4);
    assert!(!s.is_provisioned());
    assert_eq!(seal(&mut s, R1, 0, 0, 0x11), Err(KeysError::NotProvisioned));
    for (a, m) in [([0; 32], VHUK_M), (VHUK_A, [0; 32])] {
        assert_eq!(
            s.handle(KeysRequest::Provision {
                vhuk_a: Bytes(a),
                vhuk_m: Bytes(m)
            }),
            KeysResponse::Error(KeysError::ZeroKey)
        );
        assert!(!s.is_provisioned());
    }
    let p = KeysRequest::Provision {
        vhuk_a: Bytes(VHUK_A),
        vhuk_m: Bytes(VHUK_M),
    };
    assert_eq!(s.handle(p.clone()), KeysResponse::Ok);
    let before = seal(&mut s, R1, 0, 0, 0x11).unwrap();
    let swap = KeysRequest::Provision {
        vhuk_a: Bytes([9; 32]),
        vhuk_m: Bytes([9; 32]),
    };
    assert_eq!(
        s.handle(swap),
        KeysResponse::Error(KeysError::AlreadyProvisioned)
    );
    assert_eq!(
        s.handle(p),
        KeysResponse::Error(KeysError::AlreadyProvisioned)
    );
    assert_eq!(seal(&mut s, R1, 0, 0, 0x11).unwrap(), before);
    // Another platform (other VHUKs) gets other keys.
    let mut other = KeysService::new(4);
    other.handle(KeysRequest::Provision {
        vhuk_a: Bytes([9; 32]),
        vhuk_m: Bytes(VHUK_M),
    });
    assert_ne!(seal(&mut other, R1, 0, 0, 0x11).unwrap(), before);
}

#[test]
fn destroy_forgets_the_realm() {
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    let with_md = seal(&mut s, R1, 0, 0, 0x11).unwrap();
    assert_eq!(
        s.handle(KeysRequest::Destroy { realm: R1 }),
        KeysResponse::Ok
    );
    assert_eq!(s.realm_count(), 0);
    assert_eq!(get(&mut s, R1), Err(KeysError::NoMetadata));
    assert_ne!(seal(&mut s, R1, 0, 0, 0x11).unwrap(), with_md);
    // Unknown realms: nothing to do, not an error.
    assert_eq!(
        s.handle(KeysRequest::Destroy { realm: R2 }),
        KeysResponse::Ok
    );
    // A new realm at the same address can get its own metadata.
    assert_eq!(
        set(&mut s, R1, &block(2, "realm-b", 0x22)),
        KeysResponse::Ok
    );
}

#[test]
fn the_table_has_a_fixed_size() {
    let mut s = KeysService::new(2);
    let b = block(1, "realm-a", 0x11);
    assert_eq!(set(&mut s, R1, &b), KeysResponse::Ok);
    assert_eq!(set(&mut s, R2, &b), KeysResponse::Ok);
    assert_eq!(
        set(&mut s, RealmHandle(3), &b),
        KeysResponse::Error(KeysError::NoSpace)
    );
    s.handle(KeysRequest::Destroy { realm: R1 });
    assert_eq!(set(&mut s, RealmHandle(3), &b), KeysResponse::Ok);
}

/// The documented encoding, rebuilt by hand from the module docs: if the
/// code and the documentation ever disagree, this fails.
#[test]
fn derivation_matches_the_documented_encoding() {
    fn field(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        out.extend_from_slice(value);
    }
    fn hkdf(ikm: &[u8], info: &[u8]) -> [u8; 32] {
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"atoll/keys/realm-sealing-key/v1"), ikm)
            .expand(info, &mut okm)
            .unwrap();
        okm
    }
    assert_eq!(REALM_SEALING_SALT, b"atoll/keys/realm-sealing-key/v1");
    let vendor_raw = atoll_metadata::PublicKey::from_verifying_key(vendor(1).verifying_key()).0;

    // Everything: VHUK_M, vendor key, realm id, RIM, SVN 3.
    let mut info = Vec::new();
    field(&mut info, 0x01, &f::MASK.to_le_bytes());
    field(&mut info, 0x02, &vendor_raw);
    field(&mut info, 0x03, b"realm-a");
    field(&mut info, 0x04, &[1]);
    field(&mut info, 0x05, &[0x11; 32]);
    field(&mut info, 0x06, &3u64.to_le_bytes());
    let mut s = with_metadata(R1, 1, "realm-a", 0x11);
    assert_eq!(
        seal(&mut s, R1, f::MASK, 3, 0x11).unwrap(),
        hkdf(&VHUK_M, &info)
    );

    // Nothing but the vendor key, on VHUK_A.
    let mut info = Vec::new();
    field(&mut info, 0x01, &0u64.to_le_bytes());
    field(&mut info, 0x02, &vendor_raw);
    assert_eq!(seal(&mut s, R1, 0, 3, 0x11).unwrap(), hkdf(&VHUK_A, &info));

    // No metadata: the RIM bit is forced into the flags field.
    let mut info = Vec::new();
    field(&mut info, 0x01, &f::RIM.to_le_bytes());
    field(&mut info, 0x04, &[1]);
    field(&mut info, 0x05, &[0x22; 32]);
    assert_eq!(seal(&mut s, R2, 0, 0, 0x22).unwrap(), hkdf(&VHUK_A, &info));
}

#[test]
fn sha512_realms_mix_the_full_rim() {
    let mut md = fields("realm-512", [0; 32], 1);
    md.rim = Rim::new(HashAlgo::Sha512, &[0x44; 64]).unwrap();
    let b = sign(&md, &vendor(1));
    let mut s = provisioned();
    assert_eq!(set(&mut s, R1, &b), KeysResponse::Ok);
    let seal512 = |s: &mut KeysService, last: u8| {
        let mut r = [0x44u8; 64];
        r[63] = last;
        s.handle(KeysRequest::SealingKey {
            realm: R1,
            flags: f::RIM,
            svn: 0,
            algo: HashAlgo::Sha512,
            rim: Bytes(r),
        })
    };
    let (a, b) = (seal512(&mut s, 0x44), seal512(&mut s, 0x45));
    assert!(matches!(a, KeysResponse::SealingKey(_)));
    assert!(matches!(b, KeysResponse::SealingKey(_)));
    assert_ne!(a, b, "bytes 32..64 of a SHA-512 RIM matter");
}

#[test]
fn handle_bytes_answers_malformed_input_with_a_typed_error() {
    let mut s = provisioned();
    let mut resp = [0u8; RESPONSE_MAX];
    let malformed = postcard::to_allocvec(&KeysResponse::Error(KeysError::Malformed)).unwrap();
    let good = postcard::to_allocvec(&KeysRequest::Destroy { realm: R1 }).unwrap();
    let mut trailing = good.clone();
    trailing.push(0);
    for bad in [
        &[][..],
        &[0xff][..],
        &good[..good.len() - 1],
        &trailing[..],
        &[0u8; 200][..],
    ] {
        let n = s.handle_bytes(bad, &mut [], &mut resp);
        assert_eq!(&resp[..n], &malformed[..], "{bad:?}");
    }
    let n = s.handle_bytes(&good, &mut [], &mut resp);
    assert_eq!(
        postcard::from_bytes::<KeysResponse>(&resp[..n]).unwrap(),
        KeysResponse::Ok
    );
    // A response buffer too small for the answer.
    assert_eq!(s.handle_bytes(&good, &mut [], &mut []), 0);
    // A sealing key travels through the byte interface too.
    let req = postcard::to_allocvec(&KeysRequest::SealingKey {
        realm: R1,
        flags: 0,
        svn: 0,
        algo: HashAlgo::Sha256,
        rim: rim(0x11),
    })
    .unwrap();
    let n = s.handle_bytes(&req, &mut [], &mut resp);
    assert_eq!(
        postcard::from_bytes::<KeysResponse>(&resp[..n]).unwrap(),
        KeysResponse::SealingKey(Bytes(seal(&mut s, R1, 0, 0, 0x11).unwrap()))
    );
}

proptest! {
    #[test]
    fn handle_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..128),
        lease in proptest::collection::vec(any::<u8>(), 0..500),
    ) {
        let mut s = with_metadata(R1, 1, "realm-a", 0x11);
        let mut resp = [0u8; RESPONSE_MAX];
        let mut w = lease.clone();
        let n = s.handle_bytes(&bytes, &mut [LeaseMem::Read(&lease), LeaseMem::Write(&mut w)], &mut resp);
        prop_assert!(n > 0);
        prop_assert!(postcard::from_bytes::<KeysResponse>(&resp[..n]).is_ok());
    }

    #[test]
    fn random_blocks_are_refused(block in proptest::collection::vec(any::<u8>(), BLOCK_LEN..=BLOCK_LEN)) {
        let mut s = provisioned();
        prop_assert!(matches!(set(&mut s, R1, &block), KeysResponse::Error(KeysError::InvalidMetadata(_))));
        prop_assert_eq!(s.realm_count(), 0);
    }

    #[test]
    fn arbitrary_sealing_requests_never_panic(flags in any::<u64>(), svn in any::<u64>(), r in any::<[u8; 32]>()) {
        let mut s = with_metadata(R1, 1, "realm-a", 0x11);
        let mut padded = [0u8; 64];
        padded[..32].copy_from_slice(&r);
        let resp = s.handle(KeysRequest::SealingKey { realm: R1, flags, svn, algo: HashAlgo::Sha256, rim: Bytes(padded) });
        let ok = flags & !f::MASK == 0 && (flags & f::SVN == 0 || svn <= 5);
        prop_assert_eq!(matches!(resp, KeysResponse::SealingKey(_)), ok);
    }
}

fn realm_key(v: u8) -> DerivedKey {
    DerivedKey([v; 32])
}

#[test]
fn application_keys_follow_the_vendor() {
    let rk = realm_key(1);
    let a = application_key(&rk, b"vendor-1", None).unwrap();
    assert_eq!(a, application_key(&rk, b"vendor-1", None).unwrap());
    assert_ne!(a, application_key(&rk, b"vendor-2", None).unwrap());
    assert_ne!(
        a,
        application_key(&realm_key(2), b"vendor-1", None).unwrap()
    );
    let pinned = application_key(&rk, b"vendor-1", Some(b"cfg-hash-1")).unwrap();
    assert_ne!(a, pinned);
    assert_ne!(
        pinned,
        application_key(&rk, b"vendor-1", Some(b"cfg-hash-2")).unwrap()
    );
    // Length prefixes keep field boundaries: moving bytes between the
    // vendor identity and the config hash changes the key.
    assert_ne!(
        application_key(&rk, b"vendor-1c", Some(b"fg")).unwrap(),
        application_key(&rk, b"vendor-1", Some(b"cfg")).unwrap()
    );
    assert_eq!(
        application_key(&rk, b"", None),
        Err(AppKeyError::Empty("vendor identity"))
    );
    assert_eq!(
        application_key(&rk, b"v", Some(b"")),
        Err(AppKeyError::Empty("config hash"))
    );
    let huge = vec![0u8; 70_000];
    assert_eq!(
        application_key(&rk, &huge, None),
        Err(AppKeyError::TooLong("vendor identity"))
    );
}

#[test]
fn storage_and_image_keys() {
    let rk = realm_key(1);
    let app = application_key(&rk, b"vendor-1", None).unwrap();
    let data = storage_key(&app, b"data").unwrap();
    assert_eq!(data, storage_key(&app, b"data").unwrap());
    assert_ne!(data, storage_key(&app, b"logs").unwrap());
    assert_ne!(data, app);
    let other_app = application_key(&rk, b"vendor-2", None).unwrap();
    assert_ne!(data, storage_key(&other_app, b"data").unwrap());
    let img = image_key(&rk, b"payments").unwrap();
    assert_ne!(img, image_key(&rk, b"other").unwrap());
    // Same label, different layer and salt: never the same key.
    assert_ne!(img, storage_key(&DerivedKey(rk.0), b"payments").unwrap());
    assert_eq!(
        storage_key(&app, b""),
        Err(AppKeyError::Empty("storage name"))
    );
    // The documented salts and encoding.
    let mut okm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"atoll/app-manager/storage-key/v1"), &app.0)
        .expand(&[&[0x01, 4, 0][..], b"data"].concat(), &mut okm)
        .unwrap();
    assert_eq!(data.0, okm);
    Hkdf::<Sha256>::new(Some(b"atoll/app-manager/application-key/v1"), &rk.0)
        .expand(&[&[0x01, 8, 0][..], b"vendor-1"].concat(), &mut okm)
        .unwrap();
    assert_eq!(app.0, okm);
    assert_eq!(std::format!("{data:?}"), "DerivedKey(..)");
}
