//! Round trips and the failures a verifier must catch.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use p384::ecdsa::SigningKey;
use x509_cert::Certificate;

use crate::cert::{self, ChainError, ValidityPeriod};
use crate::{keys, layout, SignatureArtifact, SigningError};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
const DAY: Duration = Duration::from_secs(86_400);

struct Pki {
    root_key: SigningKey,
    root: Certificate,
    vendor_key: SigningKey,
    vendor: Certificate,
}

fn pki_with(root_validity: ValidityPeriod, vendor_validity: ValidityPeriod) -> Pki {
    let root_key = keys::generate();
    let root = cert::create_root(&root_key, "Atoll Root CA", root_validity).unwrap();
    let vendor_key = keys::generate();
    let vendor = cert::issue_vendor(
        &root_key,
        &root,
        vendor_key.verifying_key(),
        "Vendor, Inc.",
        vendor_validity,
    )
    .unwrap();
    Pki {
        root_key,
        root,
        vendor_key,
        vendor,
    }
}

fn pki() -> Pki {
    pki_with(
        ValidityPeriod::days_from_now(3650),
        ValidityPeriod::days_from_now(365),
    )
}

fn sign(p: &Pki, manifest: &[u8]) -> SignatureArtifact {
    let mut ann = BTreeMap::new();
    ann.insert("com.atoll.app".to_string(), "hello".to_string());
    SignatureArtifact::sign(
        manifest,
        &p.vendor_key,
        &[p.vendor.clone(), p.root.clone()],
        ann,
    )
    .unwrap()
}

/// Serialises and re-parses, as a registry round trip would.
fn reparse(a: &SignatureArtifact) -> SignatureArtifact {
    SignatureArtifact::parse(&a.manifest, |d| {
        a.blobs()
            .iter()
            .find(|b| b.descriptor.digest() == d.digest())
            .map(|b| b.data.clone())
    })
    .unwrap()
}

#[test]
fn round_trip() {
    let p = pki();
    let a = reparse(&sign(&p, MANIFEST));
    let v = a
        .verify(MANIFEST, std::slice::from_ref(&p.root), SystemTime::now())
        .unwrap();
    assert_eq!(v.subject.digest, crate::sha256_digest(MANIFEST));
    assert_eq!(v.vendor(), "CN=Vendor\\, Inc.");
    assert_eq!(v.annotations["com.atoll.app"], "hello");
    assert_eq!(v.root_index, 0);
    // The artifact manifest has the OCI 1.1 shape.
    let j: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(j["artifactType"], crate::ARTIFACT_TYPE);
    assert_eq!(
        j["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(j["subject"]["digest"], crate::sha256_digest(MANIFEST));
    assert_eq!(j["layers"][0]["mediaType"], crate::ENVELOPE_MEDIA_TYPE);
}

#[test]
fn chain_without_root_and_pem_round_trip() {
    let p = pki();
    let pem = cert::to_pem(&[p.vendor.clone(), p.root.clone()]).unwrap();
    let chain = cert::from_pem(&pem).unwrap();
    assert_eq!(chain, vec![p.vendor.clone(), p.root.clone()]);
    let a = SignatureArtifact::sign(MANIFEST, &p.vendor_key, &chain[..1], BTreeMap::new()).unwrap();
    a.verify(MANIFEST, &[p.root], SystemTime::now()).unwrap();
    let key_pem = keys::signing_key_to_pem(&p.vendor_key).unwrap();
    assert_eq!(keys::signing_key_from_pem(&key_pem).unwrap(), p.vendor_key);
}

#[test]
fn layout_round_trip() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    layout::write(dir.path(), &sign(&p, MANIFEST)).unwrap();
    let a = layout::read(dir.path()).unwrap();
    a.verify(MANIFEST, &[p.root], SystemTime::now()).unwrap();
}

#[test]
fn tampered_manifest() {
    let p = pki();
    let a = sign(&p, MANIFEST);
    let mut other = MANIFEST.to_vec();
    other.insert(1, b' ');
    let e = a.verify(&other, &[p.root], SystemTime::now()).unwrap_err();
    assert!(matches!(e, SigningError::DigestMismatch { .. }), "{e}");
}

#[test]
fn tampered_envelope_blob() {
    let p = pki();
    let a = sign(&p, MANIFEST);
    let e = SignatureArtifact::parse(&a.manifest, |d| {
        let mut data = a
            .blobs()
            .iter()
            .find(|b| b.descriptor.digest() == d.digest())
            .map(|b| b.data.clone())?;
        let last = data.len() - 1;
        data[last] ^= 1;
        Some(data)
    })
    .unwrap_err();
    assert!(matches!(e, SigningError::BlobMismatch { .. }), "{e}");
}

#[test]
fn signature_over_another_digest() {
    let p = pki();
    let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    // A valid signature of `other`, presented as the signature of MANIFEST
    // (its subject rewritten too): the signed digest gives it away.
    let a = sign(&p, other);
    let e = a
        .verify(MANIFEST, &[p.root], SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, SigningError::DigestMismatch { .. }), "{e}");
}

#[test]
fn forged_payload_fails_signature() {
    let p = pki();
    let a = sign(&p, MANIFEST);
    let mut env: serde_json::Value = serde_json::from_slice(&a.envelope.data).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(env["payload"].as_str().unwrap()).unwrap()).unwrap();
    payload["annotations"]["com.atoll.app"] = "evil".into();
    env["payload"] = b64.encode(serde_json::to_vec(&payload).unwrap()).into();
    let mut forged = a.clone();
    forged.envelope.data = serde_json::to_vec(&env).unwrap();
    let e = forged
        .verify(MANIFEST, &[p.root], SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, SigningError::BadSignature { .. }), "{e}");
}

#[test]
fn wrong_root() {
    let p = pki();
    let a = sign(&p, MANIFEST);
    let other_key = keys::generate();
    let other =
        cert::create_root(&other_key, "Other Root", ValidityPeriod::days_from_now(10)).unwrap();
    let e = a.verify(MANIFEST, &[other], SystemTime::now()).unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::UntrustedIssuer { .. })),
        "{e}"
    );
}

#[test]
fn vendor_not_signed_by_root() {
    // Same name as the trusted root, another key.
    let p = pki();
    let impostor = pki();
    let a = sign(&impostor, MANIFEST);
    let e = a
        .verify(MANIFEST, &[p.root], SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::BadSignature { .. })),
        "{e}"
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let p = pki();
    let a = sign(&p, MANIFEST);
    let roots = [p.root.clone()];
    let e = a
        .verify(MANIFEST, &roots, SystemTime::now() + 400 * DAY)
        .unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::Expired { .. })),
        "{e}"
    );
    let e = a
        .verify(MANIFEST, &roots, SystemTime::now() - 2 * DAY)
        .unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::NotYetValid { .. })),
        "{e}"
    );
    // An expired root fails too, even with a valid vendor certificate.
    let now = SystemTime::now();
    let p = pki_with(
        ValidityPeriod {
            not_before: now - 10 * DAY,
            not_after: now - DAY,
        },
        ValidityPeriod::days_from_now(10),
    );
    let a = sign(&p, MANIFEST);
    let e = a.verify(MANIFEST, &[p.root], now).unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::Expired { .. })),
        "{e}"
    );
}

#[test]
fn vendor_cert_cannot_issue() {
    // A "sub-vendor" certified by the vendor certificate (not a CA).
    let p = pki();
    let sub_key = keys::generate();
    let sub = cert::issue_vendor(
        &p.vendor_key,
        &p.vendor,
        sub_key.verifying_key(),
        "Sub",
        ValidityPeriod::days_from_now(10),
    )
    .unwrap();
    let a = SignatureArtifact::sign(
        MANIFEST,
        &sub_key,
        &[sub, p.vendor.clone(), p.root.clone()],
        BTreeMap::new(),
    )
    .unwrap();
    let e = a
        .verify(MANIFEST, &[p.root], SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::NotCa { .. })),
        "{e}"
    );
}

#[test]
fn root_cannot_sign_images_directly() {
    let p = pki();
    let a = SignatureArtifact::sign(
        MANIFEST,
        &p.root_key,
        std::slice::from_ref(&p.root),
        BTreeMap::new(),
    )
    .unwrap();
    let e = a
        .verify(MANIFEST, &[p.root], SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(e, SigningError::Chain(ChainError::NotSigningCert { .. })),
        "{e}"
    );
}

#[test]
fn key_must_match_certificate() {
    let p = pki();
    let e =
        SignatureArtifact::sign(MANIFEST, &p.root_key, &[p.vendor], BTreeMap::new()).unwrap_err();
    assert!(matches!(e, SigningError::KeyMismatch { .. }), "{e}");
    let other = keys::generate();
    let e = cert::issue_vendor(
        &other,
        &p.root,
        other.verifying_key(),
        "x",
        ValidityPeriod::days_from_now(1),
    )
    .unwrap_err();
    assert!(matches!(e, SigningError::KeyMismatch { .. }), "{e}");
}

#[test]
fn extensions_are_set() {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::der::Decode;
    use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
    let p = pki();
    let ext = |c: &Certificate, oid| {
        c.tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == oid)
            .cloned()
            .unwrap()
    };
    let bc = ext(&p.root, BasicConstraints::OID);
    assert!(bc.critical);
    assert!(
        BasicConstraints::from_der(bc.extn_value.as_bytes())
            .unwrap()
            .ca
    );
    let ku = ext(&p.vendor, KeyUsage::OID);
    assert!(KeyUsage::from_der(ku.extn_value.as_bytes())
        .unwrap()
        .digital_signature());
    ext(&p.vendor, SubjectKeyIdentifier::OID);
    ext(&p.root, SubjectKeyIdentifier::OID);
}
