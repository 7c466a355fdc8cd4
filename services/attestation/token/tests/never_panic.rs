//! The decoder never panics: random bytes, mutated vectors, and mutated
//! inner tokens re-wrapped in a valid collection (so mutations reach the
//! claim parsers, not just the outer CBOR). Runs PROPTEST_CASES cases
//! (default 256 per property).

mod common;

use atoll_cca_token::{
    decode, decode_platform_token, decode_realm_token, encode_collection, PlatformKey,
};
use proptest::prelude::*;

const VECTORS: [&str; 6] = [
    "cca-token-01.cbor",
    "cca-token-02.cbor",
    "draft-ffm-00.cbor",
    "cmw-tag907.cbor",
    "trustee.cbor",
    "bug-33-repro.cbor",
];

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        let n = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % n] ^= b,
            Mutation::Set(i, b) if !bytes.is_empty() => bytes[i % n] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Remove(i) if !bytes.is_empty() => {
                bytes.remove(i % n);
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
            _ => {}
        }
    }
}

/// Decodes and, when that succeeds, runs every check: none may panic.
fn exercise(bytes: &[u8]) {
    if let Ok(t) = decode(bytes) {
        let key = PlatformKey::from(*common::fresh_p384().verifying_key());
        let _ = t.verification(&key);
        let _ = t.to_json();
        let _ = t.realm.claims.encode();
        let _ = t.platform.claims.encode();
    }
}

/// The platform and realm COSE_Sign1 bytes of a vector.
fn inner(name: &str) -> (Vec<u8>, Vec<u8>) {
    let t: ciborium::Value =
        ciborium::de::from_reader(common::read_vector(name).as_slice()).unwrap();
    let ciborium::Value::Tag(_, m) = t else {
        panic!()
    };
    let unwrap = |v: &ciborium::Value| match v {
        ciborium::Value::Bytes(b) => b.clone(),
        ciborium::Value::Array(a) => a[1].as_bytes().unwrap().clone(),
        _ => panic!(),
    };
    let m = m.as_map().unwrap();
    (unwrap(&m[0].1), unwrap(&m[1].1))
}

proptest! {
    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        exercise(&bytes);
        let _ = decode_realm_token(&bytes);
        let _ = decode_platform_token(&bytes);
    }

    #[test]
    fn random_bytes_after_a_tag_399_header(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut t = vec![0xd9, 0x01, 0x8f];
        t.extend(bytes);
        exercise(&t);
    }

    #[test]
    fn mutated_vectors(v in 0..VECTORS.len(), muts in proptest::collection::vec(mutation(), 1..8)) {
        let mut bytes = common::read_vector(VECTORS[v]);
        apply(&mut bytes, &muts);
        exercise(&bytes);
    }

    #[test]
    fn mutated_inner_tokens(
        v in 0..VECTORS.len(),
        realm_side in any::<bool>(),
        muts in proptest::collection::vec(mutation(), 1..8),
    ) {
        let (mut p, mut r) = inner(VECTORS[v]);
        apply(if realm_side { &mut r } else { &mut p }, &muts);
        exercise(&encode_collection(&p, &r).unwrap());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for opener in [0x81u8, 0xa1, 0xc6] {
        let mut t = vec![0xd9, 0x01, 0x8f];
        t.extend(std::iter::repeat_n(opener, 100_000));
        assert!(decode(&t).is_err());
    }
}

#[test]
fn huge_declared_lengths_are_errors() {
    // A bstr / array / map claiming 2^64-1 entries with no bytes behind it.
    for header in [0x5bu8, 0x9b, 0xbb] {
        let mut t = vec![0xd9, 0x01, 0x8f, header];
        t.extend([0xff; 8]);
        assert!(decode(&t).is_err());
    }
}
