//! Keys service messages survive encode/decode unchanged, stay within their
//! declared bounds, and arbitrary bytes never make a decoder panic.

use ipc_schema::service::keys::{
    KeysError, KeysRequest, KeysResponse, MetadataFault, KEY_LEN, METADATA_LEN, REQUEST_MAX,
    RESPONSE_MAX,
};
use ipc_schema::service::{HashAlgo, Lease, RealmHandle};
use ipc_schema::wire::Bytes;
use proptest::prelude::*;

fn algo() -> impl Strategy<Value = HashAlgo> {
    prop_oneof![Just(HashAlgo::Sha256), Just(HashAlgo::Sha512)]
}

fn realm() -> impl Strategy<Value = RealmHandle> {
    any::<u64>().prop_map(RealmHandle)
}

fn key() -> impl Strategy<Value = Bytes<KEY_LEN>> {
    any::<[u8; KEY_LEN]>().prop_map(Bytes)
}

fn rim() -> impl Strategy<Value = Bytes<64>> {
    (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
        let mut v = [0u8; 64];
        v[..32].copy_from_slice(&a);
        v[32..].copy_from_slice(&b);
        Bytes(v)
    })
}

fn request() -> impl Strategy<Value = KeysRequest> {
    prop_oneof![
        (key(), key()).prop_map(|(vhuk_a, vhuk_m)| KeysRequest::Provision { vhuk_a, vhuk_m }),
        (realm(), any::<u8>()).prop_map(|(realm, l)| KeysRequest::SetMetadata {
            realm,
            block: Lease(l)
        }),
        (realm(), algo(), rim()).prop_map(|(realm, algo, rim)| KeysRequest::CheckActivation {
            realm,
            algo,
            rim
        }),
        (realm(), any::<u8>()).prop_map(|(realm, l)| KeysRequest::GetMetadata {
            realm,
            out: Lease(l)
        }),
        (realm(), any::<u64>(), any::<u64>(), algo(), rim()).prop_map(
            |(realm, flags, svn, algo, rim)| KeysRequest::SealingKey {
                realm,
                flags,
                svn,
                algo,
                rim
            }
        ),
        realm().prop_map(|realm| KeysRequest::Destroy { realm }),
    ]
}

fn fault() -> impl Strategy<Value = MetadataFault> {
    prop_oneof![
        Just(MetadataFault::Length),
        Just(MetadataFault::FmtVersion),
        Just(MetadataFault::RealmId),
        Just(MetadataFault::HashAlgo),
        Just(MetadataFault::Rim),
        Just(MetadataFault::PublicKey),
        Just(MetadataFault::Signature),
    ]
}

fn error() -> impl Strategy<Value = KeysError> {
    prop_oneof![
        Just(KeysError::Malformed),
        Just(KeysError::NotProvisioned),
        Just(KeysError::AlreadyProvisioned),
        Just(KeysError::ZeroKey),
        fault().prop_map(KeysError::InvalidMetadata),
        Just(KeysError::MetadataExists),
        Just(KeysError::NoMetadata),
        Just(KeysError::NoSpace),
        Just(KeysError::RimMismatch),
        Just(KeysError::AlgoMismatch),
        Just(KeysError::UndefinedFlags),
        Just(KeysError::SvnTooHigh),
    ]
}

fn response() -> impl Strategy<Value = KeysResponse> {
    prop_oneof![
        Just(KeysResponse::Ok),
        key().prop_map(KeysResponse::SealingKey),
        error().prop_map(KeysResponse::Error),
    ]
}

#[test]
fn bounds_are_small_and_the_block_travels_by_lease() {
    assert_eq!(METADATA_LEN, 432);
    // Provision (two keys) is the largest request; no request carries a block.
    const { assert!(REQUEST_MAX < 100) };
    const { assert!(RESPONSE_MAX < 40) };
}

/// A hand-built `Provision` whose first key is `len` bytes long.
fn provision_wire(len: usize) -> Vec<u8> {
    let mut wire = vec![0u8, len as u8];
    wire.extend(std::iter::repeat_n(7u8, len));
    wire.push(KEY_LEN as u8);
    wire.extend([7u8; KEY_LEN]);
    wire
}

#[test]
fn hand_built_provision_decodes_at_the_right_length() {
    // The control for `keys_of_another_length_are_refused`: the same bytes
    // with a 32-byte key are a valid request.
    assert_eq!(
        postcard::from_bytes::<KeysRequest>(&provision_wire(KEY_LEN)).unwrap(),
        KeysRequest::Provision {
            vhuk_a: Bytes([7; KEY_LEN]),
            vhuk_m: Bytes([7; KEY_LEN])
        }
    );
}

proptest! {
    #[test]
    fn requests_round_trip_within_bound(req in request()) {
        let bytes = postcard::to_allocvec(&req).unwrap();
        prop_assert!(bytes.len() <= REQUEST_MAX);
        prop_assert_eq!(postcard::from_bytes::<KeysRequest>(&bytes).unwrap(), req);
    }

    #[test]
    fn responses_round_trip_within_bound(resp in response()) {
        let bytes = postcard::to_allocvec(&resp).unwrap();
        prop_assert!(bytes.len() <= RESPONSE_MAX);
        prop_assert_eq!(postcard::from_bytes::<KeysResponse>(&bytes).unwrap(), resp);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = postcard::from_bytes::<KeysRequest>(&bytes);
        let _ = postcard::from_bytes::<KeysResponse>(&bytes);
    }

    #[test]
    fn truncated_requests_are_refused(req in request(), cut in any::<prop::sample::Index>()) {
        let bytes = postcard::to_allocvec(&req).unwrap();
        let cut = cut.index(bytes.len());
        prop_assert!(postcard::from_bytes::<KeysRequest>(&bytes[..cut]).is_err());
    }

    #[test]
    fn keys_of_another_length_are_refused(len in (0usize..80).prop_filter("not 32", |l| *l != KEY_LEN)) {
        prop_assert!(postcard::from_bytes::<KeysRequest>(&provision_wire(len)).is_err());
    }
}
