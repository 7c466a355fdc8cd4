use super::*;
use ipc_schema::islet::METADATA_SIGNED_LEN;
use p384::elliptic_curve::ops::Reduce;

/// An edit of a decoded block.
type Edit = fn(&mut RealmMetadata);

fn key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 48]).unwrap()
}

fn fields() -> Metadata {
    Metadata {
        realm_id: RealmId::new("com.example.realm").unwrap(),
        rim: Rim::new(HashAlgo::Sha256, &[0xab; 32]).unwrap(),
        svn: 7,
        version: Version {
            major: 1,
            minor: 2,
            patch: 3,
        },
    }
}

fn block() -> [u8; BLOCK_LEN] {
    sign(&fields(), &key(0x11))
}

/// Re-signs a block after `edit`, so only the field checks can refuse it.
fn resigned(edit: impl FnOnce(&mut RealmMetadata)) -> [u8; BLOCK_LEN] {
    let k = key(0x11);
    let mut b = RealmMetadata::read_from_bytes(&block()).unwrap();
    edit(&mut b);
    let sig: Signature = k.sign(&b.as_bytes()[..METADATA_SIGNED_LEN]);
    b.signature.copy_from_slice(&sig.to_bytes());
    let mut out = [0u8; BLOCK_LEN];
    out.copy_from_slice(b.as_bytes());
    out
}

#[test]
fn sign_then_verify_gives_back_the_fields() {
    let b = block();
    let v = verify(&b, TrustAnchor::EmbeddedKeyOnly).unwrap();
    assert_eq!(v.metadata, fields());
    assert_eq!(v.trust, Trust::EmbeddedKeyOnly);
    assert_eq!(v.verifying_key, *key(0x11).verifying_key());
    assert_eq!(
        v.public_key,
        PublicKey::from_verifying_key(key(0x11).verifying_key())
    );
    assert!(v.low_s, "sign() normalises to low S");
}

#[test]
fn block_layout_is_the_documented_one() {
    let b = block();
    assert_eq!(b.len(), 432);
    assert_eq!(u64::from_le_bytes(b[0..8].try_into().unwrap()), 1);
    assert_eq!(&b[0x08..0x08 + 17], b"com.example.realm");
    assert!(b[0x08 + 17..0x88].iter().all(|&x| x == 0));
    assert_eq!(&b[0x88..0x88 + 32], &[0xab; 32]);
    assert!(b[0x88 + 32..0xC8].iter().all(|&x| x == 0));
    let u = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    assert_eq!(u(0xC8), 1, "SHA-256 is 1 in metadata encoding");
    assert_eq!((u(0xD0), u(0xD8), u(0xE0), u(0xE8)), (7, 1, 2, 3));
    let point = key(0x11).verifying_key().to_encoded_point(false);
    assert_eq!(&b[0xF0..0x150], &point.as_bytes()[1..]);
}

#[test]
fn signing_is_deterministic_and_key_dependent() {
    assert_eq!(block(), block());
    assert_ne!(block()[..], sign(&fields(), &key(0x22))[..]);
}

#[test]
fn sha512_rims_round_trip() {
    let mut f = fields();
    f.rim = Rim::new(HashAlgo::Sha512, &[0x5a; 64]).unwrap();
    let b = sign(&f, &key(0x11));
    assert_eq!(u64::from_le_bytes(b[0xC8..0xD0].try_into().unwrap()), 2);
    assert_eq!(
        verify(&b, TrustAnchor::EmbeddedKeyOnly).unwrap().metadata,
        f
    );
}

#[test]
fn flipping_any_signed_bit_is_detected() {
    let good = block();
    for at in 0..BLOCK_LEN {
        for bit in [0u8, 7] {
            let mut b = good;
            b[at] ^= 1 << bit;
            assert!(
                verify(&b, TrustAnchor::EmbeddedKeyOnly).is_err(),
                "flip of bit {bit} at byte {at:#x} accepted"
            );
        }
    }
}

#[test]
fn valid_edits_of_each_field_break_the_signature() {
    let good = block();
    // Each edit leaves the field valid, so only the signature can catch it.
    let edits: [(&str, Edit); 8] = [
        ("realm_id", |b| b.realm_id[0] = b'C'),
        ("rim", |b| b.rim[31] ^= 1),
        ("hash_algo", |b| {
            b.hash_algo = 2;
            b.rim[32..].fill(0x01);
        }),
        ("svn", |b| b.svn += 1),
        ("major", |b| b.version_major += 1),
        ("minor", |b| b.version_minor += 1),
        ("patch", |b| b.version_patch += 1),
        ("public_key", |b| {
            let other = PublicKey::from_verifying_key(key(0x33).verifying_key());
            b.public_key = other.0;
        }),
    ];
    for (name, edit) in edits {
        let mut b = RealmMetadata::read_from_bytes(&good).unwrap();
        edit(&mut b);
        assert_eq!(
            verify(b.as_bytes(), TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
            MetadataError::BadSignature,
            "{name}"
        );
    }
}

#[test]
fn field_rules_are_checked_even_when_signed() {
    let cases: [(Edit, MetadataError); 9] = [
        (|b| b.fmt_version = 2, MetadataError::FmtVersion(2)),
        (|b| b.fmt_version = 0, MetadataError::FmtVersion(0)),
        (|b| b.realm_id = [0; 128], MetadataError::RealmIdEmpty),
        (
            |b| b.realm_id = [b'a'; 128],
            MetadataError::RealmIdTooLong { len: 128 },
        ),
        (
            |b| b.realm_id[3] = 0xc3,
            MetadataError::RealmIdNotAscii { at: 3, byte: 0xc3 },
        ),
        (
            |b| b.realm_id[0] = b'\n',
            MetadataError::RealmIdNotAscii { at: 0, byte: b'\n' },
        ),
        (|b| b.realm_id[100] = b'x', MetadataError::RealmIdPadding),
        (|b| b.hash_algo = 0, MetadataError::HashAlgo(0)),
        (
            |b| b.rim[40] = 1,
            MetadataError::RimPadding { digest_len: 32 },
        ),
    ];
    for (edit, want) in cases {
        let b = resigned(edit);
        assert_eq!(parse(&b).unwrap_err(), want);
        assert_eq!(verify(&b, TrustAnchor::EmbeddedKeyOnly).unwrap_err(), want);
    }
    assert_eq!(
        parse(&resigned(|b| b.hash_algo = 3)).unwrap_err(),
        MetadataError::HashAlgo(3)
    );
}

#[test]
fn truncated_and_oversized_blocks_are_refused() {
    let b = block();
    for len in [0, 1, 431] {
        assert_eq!(
            verify(&b[..len], TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
            MetadataError::Length { len }
        );
    }
    let mut long = b.to_vec();
    long.push(0);
    assert_eq!(
        verify(&long, TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
        MetadataError::Length { len: 433 }
    );
    let mut page = vec![0u8; 4096];
    page[..BLOCK_LEN].copy_from_slice(&b);
    assert_eq!(
        parse(&page).unwrap_err(),
        MetadataError::Length { len: 4096 }
    );
}

#[test]
fn a_point_off_the_curve_is_refused() {
    // Valid x, y + 1: off the curve. Re-signing cannot help.
    let b = resigned(|b| b.public_key[95] ^= 1);
    assert_eq!(
        verify(&b, TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
        MetadataError::PublicKey
    );
    for bad in [[0u8; 96], [0xff; 96]] {
        let mut m = RealmMetadata::read_from_bytes(&block()).unwrap();
        m.public_key = bad;
        assert_eq!(
            verify(m.as_bytes(), TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
            MetadataError::PublicKey
        );
    }
}

#[test]
fn out_of_range_signature_scalars_are_refused() {
    let order = hex_n();
    for (r, s) in [
        ([0u8; 48], [1u8; 48]),
        ([1u8; 48], [0u8; 48]),
        (order, [1u8; 48]),
        ([1u8; 48], order),
        ([0xff; 48], [1u8; 48]),
    ] {
        let mut m = RealmMetadata::read_from_bytes(&block()).unwrap();
        m.signature[..48].copy_from_slice(&r);
        m.signature[48..].copy_from_slice(&s);
        assert_eq!(
            verify(m.as_bytes(), TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
            MetadataError::SignatureEncoding
        );
    }
}

/// The P-384 group order, big-endian.
fn hex_n() -> [u8; 48] {
    let n = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
    let mut out = [0u8; 48];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&n[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn high_s_signatures_are_accepted_and_reported() {
    let b = block();
    let m = RealmMetadata::read_from_bytes(&b).unwrap();
    let sig = Signature::from_slice(&m.signature).unwrap();
    let neg_s = -*sig.s();
    let high = Signature::from_scalars(sig.r().to_bytes(), neg_s.to_bytes()).unwrap();
    assert_ne!(high, sig);
    let mut m2 = m.clone();
    m2.signature.copy_from_slice(&high.to_bytes());
    let v = verify(m2.as_bytes(), TrustAnchor::EmbeddedKeyOnly).unwrap();
    assert!(!v.low_s);
    assert_eq!(v.metadata, fields());
    // And a random other s is still refused.
    let other = p384::Scalar::reduce_bytes(&[0x42; 48].into());
    let bad = Signature::from_scalars(sig.r().to_bytes(), other.to_bytes()).unwrap();
    m2.signature.copy_from_slice(&bad.to_bytes());
    assert_eq!(
        verify(m2.as_bytes(), TrustAnchor::EmbeddedKeyOnly).unwrap_err(),
        MetadataError::BadSignature
    );
}

#[test]
fn vendor_key_anchor() {
    let b = block();
    let vendor = *key(0x11).verifying_key();
    let v = verify(&b, TrustAnchor::VendorKey(&vendor)).unwrap();
    assert_eq!(v.trust, Trust::VendorKey);
    let other = *key(0x22).verifying_key();
    assert_eq!(
        verify(&b, TrustAnchor::VendorKey(&other)).unwrap_err(),
        MetadataError::UntrustedKey
    );
    // A block signed by someone else with their own key is internally
    // consistent: only the anchor tells it apart.
    let forged = sign(&fields(), &key(0x22));
    assert!(verify(&forged, TrustAnchor::EmbeddedKeyOnly).is_ok());
    assert_eq!(
        verify(&forged, TrustAnchor::VendorKey(&vendor)).unwrap_err(),
        MetadataError::UntrustedKey
    );
}

#[test]
fn realm_id_rules() {
    assert_eq!(RealmId::new("").unwrap_err(), MetadataError::RealmIdEmpty);
    let max = "a".repeat(REALM_ID_MAX);
    assert_eq!(RealmId::new(&max).unwrap().as_str(), max);
    assert_eq!(
        RealmId::new(&"a".repeat(128)).unwrap_err(),
        MetadataError::RealmIdTooLong { len: 128 }
    );
    assert_eq!(
        RealmId::new("réalm").unwrap_err(),
        MetadataError::RealmIdNotAscii { at: 1, byte: 0xc3 }
    );
    assert_eq!(
        RealmId::new("a\0b").unwrap_err(),
        MetadataError::RealmIdNotAscii { at: 1, byte: 0 }
    );
    let id = RealmId::new("x y~").unwrap();
    assert_eq!(RealmId::from_field(id.field()).unwrap(), id);
    let mut f = fields();
    f.realm_id = RealmId::new(&max).unwrap();
    let b = sign(&f, &key(0x11));
    assert_eq!(b[0x08 + 127], 0, "always NUL-terminated");
    assert_eq!(
        verify(&b, TrustAnchor::EmbeddedKeyOnly).unwrap().metadata,
        f
    );
}

#[test]
fn rim_length_must_fit_the_algorithm() {
    assert_eq!(
        Rim::new(HashAlgo::Sha256, &[1; 48]).unwrap_err(),
        MetadataError::RimLength {
            len: 48,
            expected: 32,
            algo: "sha-256"
        }
    );
    assert_eq!(
        Rim::new(HashAlgo::Sha512, &[1; 32]).unwrap_err(),
        MetadataError::RimLength {
            len: 32,
            expected: 64,
            algo: "sha-512"
        }
    );
    assert_eq!(
        Rim::new(HashAlgo::Sha256, &[1; 64]).unwrap_err(),
        MetadataError::RimPadding { digest_len: 32 }
    );
    let mut slot = [0u8; 64];
    slot[..32].fill(7);
    let r = Rim::new(HashAlgo::Sha256, &slot).unwrap();
    assert_eq!(r.digest(), &[7; 32]);
    assert_eq!(r, Rim::new(HashAlgo::Sha256, &[7; 32]).unwrap());
}

#[test]
fn hash_algo_encodings() {
    for a in [HashAlgo::Sha256, HashAlgo::Sha512] {
        assert_eq!(hash_algo_from_metadata(hash_algo_to_metadata(a)), Some(a));
    }
    assert_eq!(hash_algo_from_metadata(0), None);
}

#[cfg(feature = "std")]
mod with_std {
    use super::*;
    use crate::config::{ConfigError, RealmConfig};
    use crate::pem;

    const YAML: &str = "realm_id: com.example.realm\nversion: \"1.2.3\"\nsvn: 7\nhash_algo: sha-256\nrim: abababababababababababababababababababababababababababababababab\n";

    #[test]
    fn yaml_config_gives_the_fields() {
        let c = RealmConfig::from_yaml(YAML).unwrap();
        assert_eq!(c.to_metadata(None).unwrap(), fields());
        let map = YAML.replace("\"1.2.3\"", "{major: 1, minor: 2, patch: 3}");
        let c = RealmConfig::from_yaml(&map).unwrap();
        assert_eq!(c.to_metadata(None).unwrap(), fields());
    }

    #[test]
    fn yaml_config_errors() {
        assert!(matches!(
            RealmConfig::from_yaml(&YAML.replace("svn:", "svm:")),
            Err(ConfigError::Yaml(_))
        ));
        for v in [
            "\"1.2\"",
            "\"1.2.3.4\"",
            "\"1.x.3\"",
            "\"+1.2.3\"",
            "1.2",
            "{major: 1, minor: 2}",
        ] {
            let c = RealmConfig::from_yaml(&YAML.replace("\"1.2.3\"", v)).unwrap();
            assert!(
                matches!(c.to_metadata(None), Err(ConfigError::Version(_))),
                "{v}"
            );
        }
        let c = RealmConfig::from_yaml(&YAML.replace("sha-256", "md5")).unwrap();
        assert!(matches!(c.to_metadata(None), Err(ConfigError::HashAlgo(_))));
        let c = RealmConfig::from_yaml(&YAML.replace("sha-256", "sha-512")).unwrap();
        assert!(matches!(
            c.to_metadata(None),
            Err(ConfigError::Field(MetadataError::RimLength { .. }))
        ));
        let c = RealmConfig::from_yaml(&YAML.replace("rim: ab", "rim: zz")).unwrap();
        assert!(matches!(c.to_metadata(None), Err(ConfigError::RimHex(_))));
        let c = RealmConfig::from_yaml(&YAML.replace("com.example.realm", "\"é\"")).unwrap();
        assert!(matches!(
            c.to_metadata(None),
            Err(ConfigError::Field(MetadataError::RealmIdNotAscii { .. }))
        ));
        // RIM from both places, or from neither.
        let c = RealmConfig::from_yaml(YAML).unwrap();
        assert!(matches!(
            c.to_metadata(Some((HashAlgo::Sha256, &[1; 32]))),
            Err(ConfigError::RimConflict)
        ));
        let no_rim: String = YAML
            .lines()
            .filter(|l| !l.starts_with("rim"))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = RealmConfig::from_yaml(&no_rim).unwrap();
        assert!(matches!(c.to_metadata(None), Err(ConfigError::MissingRim)));
        assert!(matches!(
            c.to_metadata(Some((HashAlgo::Sha512, &[1; 64]))),
            Err(ConfigError::AlgoConflict { .. })
        ));
        let m = c.to_metadata(Some((HashAlgo::Sha256, &[1; 32]))).unwrap();
        assert_eq!(m.rim.digest(), &[1; 32]);
    }

    #[test]
    fn pem_keys_round_trip_in_both_private_formats() {
        let k = key(0x11);
        let pkcs8 = pem::signing_key_to_pem(&k).unwrap();
        assert!(pkcs8.contains("BEGIN PRIVATE KEY"));
        assert_eq!(pem::signing_key_from_pem(&pkcs8).unwrap(), k);
        let sec1 = p384::SecretKey::from(&k)
            .to_sec1_pem(p384::pkcs8::LineEnding::LF)
            .unwrap();
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"));
        assert_eq!(pem::signing_key_from_pem(&sec1).unwrap(), k);
        let public = pem::verifying_key_to_pem(k.verifying_key()).unwrap();
        assert_eq!(
            pem::verifying_key_from_pem(&public).unwrap(),
            *k.verifying_key()
        );
        assert_eq!(
            pem::verifying_key_from_pem(&pkcs8).unwrap(),
            *k.verifying_key()
        );
        assert!(matches!(
            pem::signing_key_from_pem(&public),
            Err(pem::PemError::UnknownLabel)
        ));
        assert!(matches!(
            pem::signing_key_from_pem("hello"),
            Err(pem::PemError::UnknownLabel)
        ));
        let broken = pkcs8.replace(&pkcs8[40..60], "AAAAAAAAAAAAAAAAAAAA");
        assert!(matches!(
            pem::signing_key_from_pem(&broken),
            Err(pem::PemError::Invalid { .. })
        ));
    }
}
