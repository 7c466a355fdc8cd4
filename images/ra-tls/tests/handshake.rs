//! Full in-memory TLS handshakes in both directions: the realm as TLS server
//! (nonce in the SNI) and as TLS client (nonce as the acceptable-CA name),
//! with good tokens and with each way a token can be wrong.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use atoll_cca_token::appraise::{
    ComponentReference, PlatformReference, RealmReference, ReferenceValues, TrustAnchor,
    TrustAnchors,
};
use atoll_cca_token::{
    encode_collection, EncodeError, HashAlgo, PlatformClaims, PlatformKey, RealmClaims, SwComponent,
};
use atoll_ra_tls::rustls::{
    self,
    client::ResolvesClientCert,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
    ClientConnection, RootCertStore, ServerConnection, SignatureScheme,
};
use atoll_ra_tls::{
    nonce_from_ca_hints, nonce_from_server_name, provider, AttestedClientVerifier,
    AttestedServerVerifier, Attester, AttestingClientResolver, AttestingServerResolver,
    CcaVerifier, CertOptions, Error, EvidenceForm, EvidenceOid, KeyAlgorithm, TlsKey,
    VerifiedRealm, NONCE_LEN,
};
use p384::ecdsa::SigningKey;

const IMPLEMENTATION_ID: [u8; 32] = [0xaa; 32];
const GOOD_RIM: [u8; 32] = [0x33; 32];

fn instance_id() -> [u8; 33] {
    let mut id = [0xbb; 33];
    id[0] = 1;
    id
}

fn cpak() -> SigningKey {
    SigningKey::from_slice(&[0x22; 48]).unwrap()
}

fn component() -> SwComponent {
    SwComponent {
        component_type: Some("BL2".into()),
        measurement: vec![1; 32],
        version: Some("1.0".into()),
        signer_id: vec![2; 32],
        algorithm: Some("sha-256".into()),
    }
}

/// Signs tokens as a platform and RMM would, with test keys.
struct TestAttester {
    cpak: SigningKey,
    rak: SigningKey,
    rim: Vec<u8>,
    issued: Mutex<usize>,
}

impl TestAttester {
    fn good() -> Self {
        TestAttester {
            cpak: cpak(),
            rak: SigningKey::from_slice(&[0x11; 48]).unwrap(),
            rim: GOOD_RIM.to_vec(),
            issued: Mutex::new(0),
        }
    }
}

impl Attester for TestAttester {
    type Error = EncodeError;

    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, EncodeError> {
        *self.issued.lock().unwrap() += 1;
        let realm = RealmClaims::new(
            *challenge,
            [0; 64],
            &p384::PublicKey::from(self.rak.verifying_key()),
            HashAlgo::Sha256,
            self.rim.clone(),
            [vec![0; 32], vec![0; 32], vec![0; 32], vec![0; 32]],
        )?;
        let platform = PlatformClaims {
            profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
            challenge: realm.binding_challenge(),
            implementation_id: IMPLEMENTATION_ID,
            instance_id: instance_id(),
            config: vec![0xcf],
            lifecycle: 0x3000,
            sw_components: vec![component()],
            verification_service: None,
            hash_algo: "sha-256".into(),
            extra: vec![],
        };
        encode_collection(
            &platform.sign_with(&self.cpak)?,
            &realm.sign_with(&self.rak)?,
        )
    }
}

fn verifier() -> Arc<CcaVerifier> {
    let anchors = TrustAnchors(vec![TrustAnchor {
        instance_id: Some(instance_id().to_vec()),
        implementation_id: None,
        key: PlatformKey::from(*cpak().verifying_key()),
    }]);
    let c = component();
    let refs = ReferenceValues {
        platform: vec![PlatformReference {
            implementation_id: IMPLEMENTATION_ID.to_vec(),
            config: vec![0xcf],
            sw_components: vec![ComponentReference {
                component_type: c.component_type,
                measurement: c.measurement,
                signer_id: c.signer_id,
                version: None,
                algorithm: None,
            }],
        }],
        realm: vec![RealmReference {
            rim: GOOD_RIM.to_vec(),
            rems: None,
            personalization_value: None,
            rak_hash_algo: HashAlgo::Sha256,
            measurement_hash_algo: Some(HashAlgo::Sha256),
        }],
    };
    Arc::new(CcaVerifier::new(anchors, refs))
}

/// Moves records between the two ends until both finish or one fails.
fn drive(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    fn pump(
        from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
        to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    ) -> Result<bool, rustls::Error> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let moved = !buf.is_empty();
        let mut rd = &buf[..];
        while !rd.is_empty() {
            to.read_tls(&mut rd).unwrap();
            to.process_new_packets()?;
        }
        Ok(moved)
    }
    for _ in 0..32 {
        let a = pump(client, server)?;
        let b = pump(server, client)?;
        if !a && !b {
            break;
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    // Application data both ways.
    client.writer().write_all(b"ping").unwrap();
    pump(client, server)?;
    let mut got = [0u8; 4];
    server.reader().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    server.writer().write_all(b"pong").unwrap();
    pump(server, client)?;
    client.reader().read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");
    Ok(())
}

/// Produces the realm's certified key for a nonce (the tampering hook).
type CertFn = dyn Fn(&[u8; NONCE_LEN]) -> Arc<CertifiedKey> + Send + Sync;

struct FnServerResolver(Box<CertFn>);
impl std::fmt::Debug for FnServerResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnServerResolver")
    }
}
impl ResolvesServerCert for FnServerResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some((self.0)(&nonce_from_server_name(hello.server_name()?)?))
    }
}

struct FnClientResolver(Box<CertFn>);
impl std::fmt::Debug for FnClientResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClientResolver")
    }
}
impl ResolvesClientCert for FnClientResolver {
    fn resolve(&self, hints: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some((self.0)(&nonce_from_ca_hints(hints)?))
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// Realm as TLS server, verifier as client.
fn realm_server(
    server_cfg: rustls::ServerConfig,
) -> (
    Result<(), rustls::Error>,
    Option<Result<VerifiedRealm, Error>>,
) {
    let v = Arc::new(AttestedServerVerifier::new(verifier()));
    let mut client = ClientConnection::new(Arc::new(v.client_config()), v.server_name()).unwrap();
    let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
    let r = drive(&mut client, &mut server);
    (r, v.outcome())
}

fn tampered_server(f: Box<CertFn>) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FnServerResolver(f)))
}

/// The relying party's own (ordinary) server identity and the roots the
/// realm client trusts it with.
fn verifier_identity() -> (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    RootCertStore,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["verifier.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (
        vec![leaf.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        roots,
    )
}

/// Realm as TLS client, verifier as server.
fn realm_client(
    make: impl FnOnce(RootCertStore) -> rustls::ClientConfig,
) -> (
    Result<(), rustls::Error>,
    Option<Result<VerifiedRealm, Error>>,
) {
    let (chain, key, roots) = verifier_identity();
    let v = Arc::new(AttestedClientVerifier::new(verifier()));
    let mut server = ServerConnection::new(Arc::new(v.server_config(chain, key).unwrap())).unwrap();
    let name = ServerName::try_from("verifier.example").unwrap();
    let mut client = ClientConnection::new(Arc::new(make(roots)), name).unwrap();
    let r = drive(&mut client, &mut server);
    (r, v.outcome())
}

fn tampered_client(f: Box<CertFn>) -> impl FnOnce(RootCertStore) -> rustls::ClientConfig {
    move |roots| {
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(FnClientResolver(f)))
    }
}

fn certified(cert: atoll_ra_tls::AttestedCert) -> Arc<CertifiedKey> {
    Arc::new(cert.certified_key(&provider()).unwrap())
}

/// The ways a realm's certificate can be wrong, each as a tampering hook.
/// A failure case: its name, its tampering hook, and the expected error.
type BadCase = (&'static str, fn() -> Box<CertFn>, fn(&Error) -> bool);

fn bad_cases() -> Vec<BadCase> {
    vec![
        (
            "token bound to another nonce (replay)",
            || {
                Box::new(|_nonce| {
                    let key = TlsKey::generate(KeyAlgorithm::P384).unwrap();
                    let token = TestAttester::good()
                        .attest(&key.challenge(&[0x5a; NONCE_LEN]))
                        .unwrap();
                    certified(key.certify(&token, EvidenceForm::Islet).unwrap())
                })
            },
            |e| *e == Error::ChallengeMismatch,
        ),
        (
            "token for another key",
            || {
                Box::new(|nonce| {
                    let other = TlsKey::generate(KeyAlgorithm::P384).unwrap();
                    let token = TestAttester::good()
                        .attest(&other.challenge(nonce))
                        .unwrap();
                    let key = TlsKey::generate(KeyAlgorithm::P384).unwrap();
                    certified(key.certify(&token, EvidenceForm::Islet).unwrap())
                })
            },
            |e| *e == Error::ChallengeMismatch,
        ),
        (
            "bad platform signature",
            || {
                Box::new(|nonce| {
                    let a = TestAttester {
                        cpak: SigningKey::from_slice(&[0x66; 48]).unwrap(),
                        ..TestAttester::good()
                    };
                    certified(
                        atoll_ra_tls::AttestedCert::generate(&a, nonce, &CertOptions::default())
                            .unwrap(),
                    )
                })
            },
            |e| matches!(e, Error::PlatformSignature(_)),
        ),
        (
            "RIM not in the reference values",
            || {
                Box::new(|nonce| {
                    let a = TestAttester {
                        rim: vec![0x99; 32],
                        ..TestAttester::good()
                    };
                    certified(
                        atoll_ra_tls::AttestedCert::generate(&a, nonce, &CertOptions::default())
                            .unwrap(),
                    )
                })
            },
            |e| matches!(e, Error::Rejected { reason } if reason.contains("not among the reference values")),
        ),
        (
            "no token extension",
            || {
                Box::new(|_nonce| {
                    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
                    let cert = rcgen::CertificateParams::new(vec!["atoll-realm".to_string()])
                        .unwrap()
                        .self_signed(&key)
                        .unwrap();
                    Arc::new(
                        CertifiedKey::from_der(
                            vec![cert.der().clone()],
                            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
                            &provider(),
                        )
                        .unwrap(),
                    )
                })
            },
            |e| *e == Error::NoEvidence,
        ),
        (
            "handshake signed by a key other than the certificate's",
            || {
                Box::new(|nonce| {
                    let cert = atoll_ra_tls::AttestedCert::generate(
                        &TestAttester::good(),
                        nonce,
                        &CertOptions::default(),
                    )
                    .unwrap();
                    let other =
                        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
                    let signer = provider()
                        .key_provider
                        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                            other.serialize_der(),
                        )))
                        .unwrap();
                    Arc::new(CertifiedKey::new(vec![cert.cert], signer))
                })
            },
            // The certificate itself passes (outcome Ok); the handshake
            // signature fails, which `check_bad` checks by name.
            |_| false,
        ),
    ]
}

fn expect_good(
    (r, outcome): (
        Result<(), rustls::Error>,
        Option<Result<VerifiedRealm, Error>>,
    ),
    evidence: EvidenceOid,
) {
    r.unwrap();
    let realm = outcome.expect("the verifier ran").unwrap();
    assert_eq!(realm.evidence, evidence);
    assert_eq!(realm.token.realm.claims.rim, GOOD_RIM);
}

#[test]
fn realm_as_server_good_token() {
    let attester = Arc::new(TestAttester::good());
    let cfg = AttestingServerResolver::new(attester.clone(), CertOptions::default())
        .server_config()
        .unwrap();
    expect_good(realm_server(cfg), EvidenceOid::Islet);
    assert_eq!(*attester.issued.lock().unwrap(), 1);
}

#[test]
fn realm_as_server_tcg_dice_cmw_only_p256() {
    let opts = CertOptions {
        form: EvidenceForm::TcgDiceCmw,
        key: KeyAlgorithm::P256,
    };
    let cfg = AttestingServerResolver::new(TestAttester::good(), opts)
        .server_config()
        .unwrap();
    expect_good(realm_server(cfg), EvidenceOid::TcgDiceCmw);
}

#[test]
fn realm_as_client_good_token() {
    let res = realm_client(|roots| {
        AttestingClientResolver::new(TestAttester::good(), CertOptions::default())
            .client_config(roots)
            .unwrap()
    });
    expect_good(res, EvidenceOid::Islet);
}

#[test]
fn realm_as_client_both_extensions() {
    let opts = CertOptions {
        form: EvidenceForm::Both,
        key: KeyAlgorithm::P384,
    };
    let res = realm_client(|roots| {
        AttestingClientResolver::new(TestAttester::good(), opts)
            .client_config(roots)
            .unwrap()
    });
    expect_good(res, EvidenceOid::Islet);
}

fn check_bad(
    name: &str,
    (r, outcome): (
        Result<(), rustls::Error>,
        Option<Result<VerifiedRealm, Error>>,
    ),
    want: fn(&Error) -> bool,
) {
    assert!(r.is_err(), "{name}: handshake succeeded");
    match outcome {
        Some(Err(e)) => assert!(want(&e), "{name}: wrong error {e:?}"),
        Some(Ok(_)) if name.starts_with("handshake signed") => {
            assert!(
                matches!(
                    r,
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::BadSignature
                    ))
                ),
                "{name}: {r:?}"
            );
        }
        other => panic!("{name}: verifier outcome {other:?}"),
    }
}

#[test]
fn realm_as_server_bad_tokens_fail() {
    for (name, hook, want) in bad_cases() {
        check_bad(name, realm_server(tampered_server(hook())), want);
    }
}

#[test]
fn realm_as_client_bad_tokens_fail() {
    for (name, hook, want) in bad_cases() {
        check_bad(name, realm_client(tampered_client(hook())), want);
    }
}

#[test]
fn replaying_a_whole_certificate_to_a_new_connection_fails() {
    // Connection 1 succeeds; its certificate and key are then presented to
    // connection 2, which sent a different nonce.
    let captured: Arc<Mutex<Option<Arc<CertifiedKey>>>> = Arc::default();
    let cap = captured.clone();
    let first = tampered_server(Box::new(move |nonce| {
        let k = certified(
            atoll_ra_tls::AttestedCert::generate(
                &TestAttester::good(),
                nonce,
                &CertOptions::default(),
            )
            .unwrap(),
        );
        *cap.lock().unwrap() = Some(k.clone());
        k
    }));
    realm_server(first).0.unwrap();
    let old = captured.lock().unwrap().clone().unwrap();
    let (r, outcome) = realm_server(tampered_server(Box::new(move |_| old.clone())));
    assert!(r.is_err());
    assert_eq!(outcome.unwrap().unwrap_err(), Error::ChallengeMismatch);
}

#[test]
fn server_name_not_carrying_the_nonce_is_refused() {
    let v = Arc::new(AttestedServerVerifier::new(verifier()));
    let cfg = AttestingServerResolver::new(TestAttester::good(), CertOptions::default())
        .server_config()
        .unwrap();
    // Another verifier's nonce in the SNI: the realm attests to that one.
    let other = AttestedServerVerifier::new(verifier());
    let mut client =
        ClientConnection::new(Arc::new(v.client_config()), other.server_name()).unwrap();
    let mut server = ServerConnection::new(Arc::new(cfg)).unwrap();
    assert!(drive(&mut client, &mut server).is_err());
    assert_eq!(v.outcome().unwrap().unwrap_err(), Error::ServerNameMismatch);
}
