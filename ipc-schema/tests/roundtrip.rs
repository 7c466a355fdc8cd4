//! Every service message survives encode/decode unchanged, stays within its
//! declared bound, and arbitrary bytes never make a decoder panic.

use ipc_schema::service::measurement::{
    MeasuredRealmParams, MeasuredRecParams, MeasurementError, MeasurementRequest,
    MeasurementResponse, REQUEST_MAX, RESPONSE_MAX,
};
use ipc_schema::service::{HashAlgo, Lease, RealmHandle};
use ipc_schema::wire::{BoundedBytes, Bytes};
use proptest::prelude::*;

fn algo() -> impl Strategy<Value = HashAlgo> {
    prop_oneof![Just(HashAlgo::Sha256), Just(HashAlgo::Sha512)]
}

fn realm() -> impl Strategy<Value = RealmHandle> {
    any::<u64>().prop_map(RealmHandle)
}

fn lease() -> impl Strategy<Value = Option<Lease>> {
    proptest::option::of(any::<u8>().prop_map(Lease))
}

fn request() -> impl Strategy<Value = MeasurementRequest> {
    let realm_params = (any::<[u64; 6]>(), any::<u8>()).prop_map(|(v, h)| MeasuredRealmParams {
        flags: v[0],
        s2sz: v[1],
        sve_vl: v[2],
        num_bps: v[3],
        num_wps: v[4],
        pmu_num_ctrs: v[5],
        hash_algo: h,
    });
    prop_oneof![
        (realm(), algo(), realm_params).prop_map(|(realm, algo, params)| {
            MeasurementRequest::RealmCreate {
                realm,
                algo,
                params,
            }
        }),
        (realm(), any::<u64>(), any::<u64>(), lease(), lease()).prop_map(
            |(realm, ipa, flags, content, copy_to)| {
                MeasurementRequest::Data {
                    realm,
                    ipa,
                    flags,
                    content,
                    copy_to,
                }
            }
        ),
        (realm(), any::<u64>(), any::<u64>(), any::<[u64; 8]>()).prop_map(
            |(realm, flags, pc, gprs)| {
                MeasurementRequest::Rec {
                    realm,
                    params: MeasuredRecParams { flags, pc, gprs },
                }
            }
        ),
        (realm(), any::<u64>(), any::<u64>())
            .prop_map(|(realm, base, top)| MeasurementRequest::Ripas { realm, base, top }),
        (
            realm(),
            any::<u8>(),
            proptest::collection::vec(any::<u8>(), 0..=64)
        )
            .prop_map(|(realm, index, data)| {
                MeasurementRequest::Extend {
                    realm,
                    index,
                    data: BoundedBytes::new(&data).unwrap(),
                }
            }),
        (realm(), any::<u8>()).prop_map(|(realm, index)| MeasurementRequest::Read { realm, index }),
        realm().prop_map(|realm| MeasurementRequest::Destroy { realm }),
    ]
}

fn response() -> impl Strategy<Value = MeasurementResponse> {
    prop_oneof![
        Just(MeasurementResponse::Ok),
        any::<[u8; 32]>().prop_map(|h| {
            let mut v = [0u8; 64];
            v[..32].copy_from_slice(&h);
            MeasurementResponse::Value(Bytes(v))
        }),
        prop_oneof![
            Just(MeasurementError::UnknownRealm),
            Just(MeasurementError::RealmExists),
            Just(MeasurementError::BadIndex),
            Just(MeasurementError::NoSpace),
            Just(MeasurementError::Malformed),
            Just(MeasurementError::AlgoMismatch),
        ]
        .prop_map(MeasurementResponse::Error),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip_within_bound(req in request()) {
        let bytes = postcard::to_allocvec(&req).unwrap();
        prop_assert!(bytes.len() <= REQUEST_MAX);
        prop_assert_eq!(postcard::from_bytes::<MeasurementRequest>(&bytes).unwrap(), req);
    }

    #[test]
    fn responses_round_trip_within_bound(resp in response()) {
        let bytes = postcard::to_allocvec(&resp).unwrap();
        prop_assert!(bytes.len() <= RESPONSE_MAX);
        prop_assert_eq!(postcard::from_bytes::<MeasurementResponse>(&bytes).unwrap(), resp);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = postcard::from_bytes::<MeasurementRequest>(&bytes);
        let _ = postcard::from_bytes::<MeasurementResponse>(&bytes);
    }

    #[test]
    fn bounded_bytes_refuse_more_than_their_bound(data in proptest::collection::vec(any::<u8>(), 65..200)) {
        prop_assert!(BoundedBytes::<64>::new(&data).is_err());
        // A longer string on the wire is refused by the decoder too.
        let wire = postcard::to_allocvec(&serde_bytes_like(&data)).unwrap();
        prop_assert!(postcard::from_bytes::<BoundedBytes<64>>(&wire).is_err());
        prop_assert!(postcard::from_bytes::<Bytes<64>>(&wire).is_err());
    }
}

/// Encodes `data` as a postcard byte string (length + bytes).
fn serde_bytes_like(data: &[u8]) -> BytesOf<'_> {
    BytesOf(data)
}

struct BytesOf<'a>(&'a [u8]);

impl serde::Serialize for BytesOf<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}
