//! Tokens we build: exact encoding, round trip, stepwise signing, and each
//! tampering caught by the right check.

mod common;

use atoll_cca_token::{
    decode, encode_collection, DecodeError, EncodeError, HashAlgo, PlatformKey, RakForm,
    RealmPublicKey, SignatureAlgorithm, TokenPart, UnsignedToken, Value, VerifyError,
};
use common::{fresh_p384, platform_claims, realm_claims};

fn claim_keys(payload: &[u8]) -> Vec<i128> {
    let v: Value = ciborium::de::from_reader(payload).unwrap();
    v.as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| i128::from(k.as_integer().unwrap()))
        .collect()
}

#[test]
fn realm_claims_in_reference_order_and_encoding() {
    let rak = fresh_p384();
    let claims = realm_claims(&rak, HashAlgo::Sha256);
    let payload = claims.encode().unwrap();
    assert_eq!(
        claim_keys(&payload),
        vec![10, 44235, 44237, 44236, 44240, 265, 44238, 44239]
    );
    // Map of 8, then claim 10 as a 64-byte bstr: a8 0a 58 40 ...
    assert_eq!(&payload[..4], &[0xa8, 0x0a, 0x58, 0x40]);
    // RAK is a 108-byte COSE_Key bstr {1:2, -1:2, -2:x, -3:y}.
    // (after claim 10 comes 19 accb 5840 <64 bytes> for the RPV)
    let cose_key_at = 4 + 64 + 3 + 2 + 64;
    assert_eq!(
        &payload[cose_key_at..cose_key_at + 5],
        &[0x19, 0xac, 0xcd, 0x58, 0x6b]
    );
    assert_eq!(
        &payload[cose_key_at + 5..cose_key_at + 12],
        &[0xa4, 0x01, 0x02, 0x20, 0x02, 0x21, 0x58]
    );

    let token = claims.sign_with(&rak).unwrap();
    // Tag 18, array of 4, protected {1: -35} as bstr, empty unprotected map.
    assert_eq!(
        &token[..8],
        &[0xd2, 0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0]
    );
    // Deterministic: same claims, same key, same bytes.
    assert_eq!(token, claims.sign_with(&rak).unwrap());
}

#[test]
fn platform_claims_in_reference_order() {
    let rak = fresh_p384();
    let p = platform_claims(&realm_claims(&rak, HashAlgo::Sha256));
    let payload = p.encode().unwrap();
    assert_eq!(
        claim_keys(&payload),
        vec![265, 10, 2396, 256, 2401, 2395, 2399, 2400, 2402]
    );
    let v: Value = ciborium::de::from_reader(payload.as_slice()).unwrap();
    let comps = v.as_map().unwrap()[6].1.as_array().unwrap();
    let keys = |c: &Value| -> Vec<i128> {
        c.as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_integer().unwrap().into())
            .collect()
    };
    assert_eq!(keys(&comps[0]), vec![1, 2, 4, 5, 6]);
    assert_eq!(keys(&comps[1]), vec![2, 5]);
}

#[test]
fn collection_is_tag_399_platform_first() {
    let out = encode_collection(b"P", b"R").unwrap();
    assert_eq!(
        out,
        vec![0xd9, 0x01, 0x8f, 0xa2, 0x19, 0xac, 0xca, 0x41, b'P', 0x19, 0xac, 0xd1, 0x41, b'R']
    );
}

fn build(
    algo: HashAlgo,
) -> (
    Vec<u8>,
    PlatformKey,
    atoll_cca_token::RealmClaims,
    atoll_cca_token::PlatformClaims,
) {
    let rak = fresh_p384();
    let cpak = fresh_p384();
    let realm = realm_claims(&rak, algo);
    let platform = platform_claims(&realm);
    let token = encode_collection(
        &platform.sign_with(&cpak).unwrap(),
        &realm.sign_with(&rak).unwrap(),
    )
    .unwrap();
    (
        token,
        PlatformKey::from(*cpak.verifying_key()),
        realm,
        platform,
    )
}

#[test]
fn round_trip_and_verify() {
    for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
        let (token, cpak, realm, platform) = build(algo);
        let t = decode(&token).unwrap();
        assert_eq!(t.realm.claims, realm);
        assert_eq!(t.platform.claims, platform);
        t.verify(&cpak).unwrap();
        // Re-encoding the decoded claims gives the signed payload byte for byte.
        assert_eq!(t.realm.claims.encode().unwrap(), t.realm.envelope.payload());
        assert_eq!(
            t.platform.claims.encode().unwrap(),
            t.platform.envelope.payload()
        );
    }
}

#[test]
fn round_trip_raw_rak_sha512_binding_and_extra_claims() {
    let rak = fresh_p384();
    let cpak = fresh_p384();
    let mut realm = realm_claims(&rak, HashAlgo::Sha512);
    realm.rak = RealmPublicKey::new(
        &p384::PublicKey::from(rak.verifying_key()),
        RakForm::RawPoint,
    )
    .unwrap();
    realm.rak_hash_algo = HashAlgo::Sha512;
    realm.profile = None;
    realm.extra = vec![(44243, Value::Integer(1.into()))];
    let mut platform = platform_claims(&realm);
    platform.verification_service = None;
    platform.extra = vec![(-70000, Value::Text("x".into()))];
    let token = encode_collection(
        &platform.sign_with(&cpak).unwrap(),
        &realm.sign_with(&rak).unwrap(),
    )
    .unwrap();
    let t = decode(&token).unwrap();
    assert_eq!(t.realm.claims, realm);
    assert_eq!(t.platform.claims, platform);
    assert_eq!(t.platform.claims.challenge.len(), 64);
    t.verify(&PlatformKey::from(*cpak.verifying_key())).unwrap();
}

#[test]
fn es256_platform_token() {
    let rak = fresh_p384();
    let cpak = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let platform = platform_claims(&realm);
    let token = encode_collection(
        &platform.sign(&cpak).unwrap(),
        &realm.sign_with(&rak).unwrap(),
    )
    .unwrap();
    let t = decode(&token).unwrap();
    assert_eq!(t.platform.envelope.algorithm(), SignatureAlgorithm::Es256);
    t.verify(&PlatformKey::from(*cpak.verifying_key())).unwrap();
}

#[test]
fn stepwise_signing_equals_one_shot() {
    let rak = fresh_p384();
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let unsigned = realm.unsigned_token().unwrap();
    let tbs = unsigned.to_be_signed();
    // The Sig_structure: ["Signature1", h'a1013822', h'', payload].
    assert_eq!(&tbs[..17], b"\x84\x6aSignature1\x44\xa1\x01\x38\x22");
    let sig: p384::ecdsa::Signature = ecdsa::signature::Signer::sign(&rak, &tbs);
    let stepwise = unsigned.assemble(&sig.to_bytes()).unwrap();
    assert_eq!(stepwise, realm.sign_with(&rak).unwrap());
}

#[test]
fn encoder_refuses_bad_inputs() {
    let rak = fresh_p384();
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    assert_eq!(
        realm.unsigned_token().unwrap().assemble(&[0; 64]),
        Err(EncodeError::SignatureLength {
            alg: "ES384",
            expected: 96,
            found: 64
        })
    );
    assert_eq!(
        realm.sign_with(&fresh_p384()),
        Err(EncodeError::RakMismatch)
    );
    let p256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    assert!(matches!(
        UnsignedToken::new(vec![0xa0], SignatureAlgorithm::Es384).sign(&p256),
        Err(EncodeError::SignerAlgorithm { .. })
    ));
}

#[test]
fn tampering_is_caught_by_the_right_check() {
    let rak = fresh_p384();
    let cpak = fresh_p384();
    let key = PlatformKey::from(*cpak.verifying_key());
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let platform = platform_claims(&realm);
    let p_tok = platform.sign_with(&cpak).unwrap();

    // A realm token signed by another RAK (which it names): signature fine, binding broken.
    let other_rak = fresh_p384();
    let other = realm_claims(&other_rak, HashAlgo::Sha256);
    let t =
        decode(&encode_collection(&p_tok, &other.sign_with(&other_rak).unwrap()).unwrap()).unwrap();
    let v = t.verification(&key);
    assert_eq!((v.platform_signature, v.realm_signature), (Ok(()), Ok(())));
    assert_eq!(v.binding, Err(VerifyError::Binding { alg: "sha-256" }));

    // A realm token naming our RAK but signed by another key.
    let forged = realm
        .unsigned_token()
        .unwrap()
        .sign_with(&other_rak)
        .unwrap();
    let t = decode(&encode_collection(&p_tok, &forged).unwrap()).unwrap();
    assert_eq!(t.realm.verify(), Err(VerifyError::RealmSignature));
    assert_eq!(t.verify_binding(), Ok(()));

    // A flipped bit in the platform signature.
    let mut bad = p_tok.clone();
    *bad.last_mut().unwrap() ^= 1;
    let t = decode(&encode_collection(&bad, &realm.sign_with(&rak).unwrap()).unwrap()).unwrap();
    assert_eq!(t.platform.verify(&key), Err(VerifyError::PlatformSignature));
    assert_eq!(t.realm.verify(), Ok(()));

    // A realm token signed ES256 is refused even if its signature were fine.
    let p256 = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let es256 = UnsignedToken::new(realm.encode().unwrap(), SignatureAlgorithm::Es256)
        .sign(&p256)
        .unwrap();
    let t = decode(&encode_collection(&p_tok, &es256).unwrap()).unwrap();
    assert_eq!(
        t.realm.verify(),
        Err(VerifyError::RealmAlgorithm { alg: "ES256" })
    );
}

/// A claims map as ciborium holds it.
type ClaimMap = Vec<(Value, Value)>;

// ---- typed decode errors -------------------------------------------------

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).unwrap();
    out
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

/// A valid pair of tokens, to break one piece at a time.
fn parts() -> (
    Vec<u8>,
    Vec<u8>,
    atoll_cca_token::RealmClaims,
    p384::ecdsa::SigningKey,
) {
    let rak = fresh_p384();
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let p = platform_claims(&realm).sign_with(&fresh_p384()).unwrap();
    (p, realm.sign_with(&rak).unwrap(), realm, rak)
}

/// A realm token whose claims map is `f(valid claims map)`.
fn realm_with(f: impl FnOnce(&mut ClaimMap)) -> Result<atoll_cca_token::CcaToken, DecodeError> {
    let (p, _, realm, rak) = parts();
    let Value::Map(mut m) = realm.to_value() else {
        unreachable!()
    };
    f(&mut m);
    let r = UnsignedToken::new(cbor(&Value::Map(m)), SignatureAlgorithm::Es384)
        .sign_with(&rak)
        .unwrap();
    decode(&encode_collection(&p, &r).unwrap())
}

#[test]
fn collection_errors() {
    let (p, r, _, _) = parts();
    let tag = |t: u64, m: Vec<(Value, Value)>| cbor(&Value::Tag(t, Box::new(Value::Map(m))));
    let pe = (Value::Integer(44234.into()), Value::Bytes(p.clone()));
    let re = (Value::Integer(44241.into()), Value::Bytes(r.clone()));

    assert!(matches!(
        decode(&[]),
        Err(DecodeError::Cbor {
            part: TokenPart::Collection,
            ..
        })
    ));
    assert!(matches!(
        decode(&tag(400, vec![pe.clone(), re.clone()])),
        Err(DecodeError::UnexpectedTag { .. })
    ));
    assert!(matches!(
        decode(&cbor(&Value::Map(vec![pe.clone(), re.clone()]))),
        Err(DecodeError::UnexpectedTag { .. })
    ));
    assert!(matches!(
        decode(&cbor(&Value::Tag(399, Box::new(Value::Array(vec![]))))),
        Err(DecodeError::WrongType { .. })
    ));
    assert_eq!(
        decode(&tag(399, vec![pe.clone()])).unwrap_err(),
        DecodeError::MissingEntry {
            key: 44241,
            name: "realm token"
        }
    );
    assert_eq!(
        decode(&tag(399, vec![pe.clone(), pe.clone(), re.clone()])).unwrap_err(),
        DecodeError::DuplicateEntry { key: 44234 }
    );
    assert!(matches!(
        decode(&tag(
            399,
            vec![pe.clone(), re.clone(), (int(1), Value::Bytes(vec![]))]
        )),
        Err(DecodeError::UnexpectedEntry { .. })
    ));
    // Order within the map does not matter to the decoder.
    decode(&tag(399, vec![re.clone(), pe.clone()])).unwrap();
    // Trailing bytes.
    let mut t = encode_collection(&p, &r).unwrap();
    t.push(0);
    assert_eq!(
        decode(&t).unwrap_err(),
        DecodeError::TrailingBytes {
            part: TokenPart::Collection
        }
    );
    // Tag 907 with a bare bstr, or the wrong content format.
    assert!(matches!(
        decode(&tag(907, vec![pe.clone(), re.clone()])),
        Err(DecodeError::ContentFormat {
            key: 44234,
            found: None
        })
    ));
    let wrapped = |cf: i64, b: &[u8]| Value::Array(vec![int(cf), Value::Bytes(b.to_vec())]);
    let t907 = tag(
        907,
        vec![
            (Value::Integer(44234.into()), wrapped(263, &p)),
            (Value::Integer(44241.into()), wrapped(264, &r)),
        ],
    );
    assert_eq!(
        decode(&t907).unwrap_err(),
        DecodeError::ContentFormat {
            key: 44241,
            found: Some(264)
        }
    );
    // Tag 399 with a wrapped entry.
    assert!(matches!(
        decode(&tag(
            399,
            vec![(Value::Integer(44234.into()), wrapped(263, &p)), re]
        )),
        Err(DecodeError::WrongType { .. })
    ));
}

#[test]
fn envelope_errors() {
    let (p, r, _, _) = parts();
    // Not a COSE_Sign1.
    assert!(matches!(
        decode(&encode_collection(&p, &[0xa0]).unwrap()),
        Err(DecodeError::Cose {
            part: TokenPart::Realm,
            ..
        })
    ));
    // Detached payload: [h'a1013822', {}, nil, sig].
    let mut v: Value = ciborium::de::from_reader(r.as_slice()).unwrap();
    if let Value::Tag(_, inner) = &mut v {
        if let Value::Array(a) = inner.as_mut() {
            a[2] = Value::Null;
        }
    }
    assert_eq!(
        decode(&encode_collection(&p, &cbor(&v)).unwrap()).unwrap_err(),
        DecodeError::DetachedPayload {
            part: TokenPart::Realm
        }
    );
    // Unsupported algorithm (ES512 = -36).
    let mut v: Value = ciborium::de::from_reader(p.as_slice()).unwrap();
    if let Value::Tag(_, inner) = &mut v {
        if let Value::Array(a) = inner.as_mut() {
            a[0] = Value::Bytes(cbor(&Value::Map(vec![(int(1), int(-36))])));
        }
    }
    assert_eq!(
        decode(&encode_collection(&cbor(&v), &r).unwrap()).unwrap_err(),
        DecodeError::UnsupportedAlgorithm {
            part: TokenPart::Platform,
            alg: "-36".into()
        }
    );
    // Untagged COSE_Sign1 is accepted.
    let untagged: Value = match ciborium::de::from_reader(r.as_slice()).unwrap() {
        Value::Tag(18, inner) => *inner,
        _ => unreachable!(),
    };
    decode(&encode_collection(&p, &cbor(&untagged)).unwrap()).unwrap();
}

#[test]
fn realm_claim_errors() {
    let part = TokenPart::Realm;
    assert_eq!(
        realm_with(|m| m.retain(|(k, _)| *k != int(44238))).unwrap_err(),
        DecodeError::MissingClaim {
            part,
            key: 44238,
            name: "initial measurement"
        }
    );
    assert_eq!(
        realm_with(|m| m.push((int(10), Value::Bytes(vec![0; 64])))).unwrap_err(),
        DecodeError::DuplicateClaim { part, key: 10 }
    );
    assert_eq!(
        realm_with(|m| m.push((Value::Text("x".into()), int(1)))).unwrap_err(),
        DecodeError::ClaimKeyNotInteger { part }
    );
    assert!(matches!(
        realm_with(|m| m[0].1 = Value::Bytes(vec![0; 32])).unwrap_err(),
        DecodeError::ClaimLength {
            key: 10,
            found: 32,
            ..
        }
    ));
    assert!(matches!(
        realm_with(|m| m[1].1 = Value::Text("rpv".into())).unwrap_err(),
        DecodeError::ClaimType { key: 44235, .. }
    ));
    assert!(matches!(
        realm_with(|m| m[2].1 = Value::Bytes(vec![4; 97])).unwrap_err(),
        DecodeError::InvalidRak { .. }
    ));
    assert!(matches!(
        realm_with(|m| m[2].1 = Value::Bytes(vec![0xa0])).unwrap_err(),
        DecodeError::InvalidRak { .. }
    ));
    assert_eq!(
        realm_with(|m| m[3].1 = Value::Text("md5".into())).unwrap_err(),
        DecodeError::UnknownHashAlgorithm {
            part,
            key: 44236,
            name: "md5".into()
        }
    );
    assert_eq!(
        realm_with(|m| m[7].1 = Value::Array(vec![Value::Bytes(vec![]); 3])).unwrap_err(),
        DecodeError::RemCount { found: 3 }
    );
    // Trailing bytes after the claims map.
    let (p, _, realm, rak) = parts();
    let mut payload = realm.encode().unwrap();
    payload.push(0);
    let r = UnsignedToken::new(payload, SignatureAlgorithm::Es384)
        .sign_with(&rak)
        .unwrap();
    assert_eq!(
        decode(&encode_collection(&p, &r).unwrap()).unwrap_err(),
        DecodeError::TrailingBytes { part }
    );
}

#[test]
fn platform_claim_errors() {
    let rak = fresh_p384();
    let realm = realm_claims(&rak, HashAlgo::Sha256);
    let r = realm.sign_with(&rak).unwrap();
    let cpak = fresh_p384();
    let with = |f: &dyn Fn(&mut ClaimMap)| {
        let Value::Map(mut m) = platform_claims(&realm).to_value() else {
            unreachable!()
        };
        f(&mut m);
        let p = UnsignedToken::new(cbor(&Value::Map(m)), SignatureAlgorithm::Es384)
            .sign_with(&cpak)
            .unwrap();
        decode(&encode_collection(&p, &r).unwrap())
    };
    let part = TokenPart::Platform;
    assert!(matches!(
        with(&|m| m[3].1 = Value::Bytes(vec![1; 32])).unwrap_err(),
        DecodeError::ClaimLength { key: 256, .. }
    ));
    assert!(matches!(
        with(&|m| m[1].1 = Value::Bytes(vec![1; 20])).unwrap_err(),
        DecodeError::ClaimLength { key: 10, .. }
    ));
    assert!(matches!(
        with(&|m| m[5].1 = int(70000)).unwrap_err(),
        DecodeError::ClaimType { key: 2395, .. }
    ));
    assert_eq!(
        with(&|m| m.retain(|(k, _)| *k != int(2402))).unwrap_err(),
        DecodeError::MissingClaim {
            part,
            key: 2402,
            name: "hash algorithm"
        }
    );
    assert_eq!(
        with(&|m| m[6].1 = Value::Array(vec![Value::Map(vec![(int(2), Value::Bytes(vec![]))])]))
            .unwrap_err(),
        DecodeError::SwComponent {
            index: 0,
            reason: "missing signer id (key 5)"
        }
    );
    assert_eq!(
        with(&|m| m[6].1 = Value::Array(vec![Value::Map(vec![(int(9), int(0))])])).unwrap_err(),
        DecodeError::SwComponent {
            index: 0,
            reason: "unknown key (expected 1, 2, 4, 5 or 6)"
        }
    );
    assert!(matches!(
        with(&|m| m[6].1 = Value::Array(vec![int(1)])).unwrap_err(),
        DecodeError::SwComponent {
            index: 0,
            reason: "not a map"
        }
    ));
}
