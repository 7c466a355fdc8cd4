//! Test PKI: a TLS CA (rcgen), server and client certificates as PEM files,
//! and realms that mint real CCA tokens with test platform keys (as
//! images/ra-tls/tests/handshake.rs does), plus the Veraison JSON files the
//! registry's RA-TLS policy reads.

#![allow(dead_code)]

use std::path::Path;

use atoll_cca_token::{
    encode_collection, EncodeError, HashAlgo, PlatformClaims, PlatformKey, RealmClaims, SwComponent,
};
use atoll_ra_tls::rustls::{self, pki_types::CertificateDer, RootCertStore};
use atoll_ra_tls::{Attester, AttestingClientResolver, CertOptions};
use p384::ecdsa::SigningKey;
use serde_json::json;

pub const IMPLEMENTATION_ID: [u8; 32] = [0xaa; 32];

pub fn instance_id() -> [u8; 33] {
    let mut id = [0xbb; 33];
    id[0] = 1;
    id
}

/// The platform key (CPAK) the trust anchors name.
pub fn cpak() -> SigningKey {
    SigningKey::from_slice(&[0x22; 48]).expect("cpak")
}

/// A certificate authority.
pub struct Ca {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("ca");
        Ca { key, cert }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).expect("root");
        roots
    }

    /// A leaf certificate (chain PEM, key PEM) for these names.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf");
        (cert.pem() + &self.pem(), key.serialize_pem())
    }

    /// Writes `<stem>.pem` (chain) and `<stem>-key.pem` for 127.0.0.1.
    pub fn write_server(&self, dir: &Path, stem: &str) {
        let (chain, key) = self.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(dir.join(format!("{stem}.pem")), chain).expect("write");
        std::fs::write(dir.join(format!("{stem}-key.pem")), key).expect("write");
    }
}

/// Signs tokens as a platform and RMM would, with test keys, for a realm
/// whose initial measurement is `rim`.
pub struct TestRealm {
    pub cpak: SigningKey,
    pub rak: SigningKey,
    pub rim: Vec<u8>,
}

impl TestRealm {
    pub fn new(rim: [u8; 32]) -> TestRealm {
        TestRealm {
            cpak: cpak(),
            rak: SigningKey::from_slice(&[0x11; 48]).expect("rak"),
            rim: rim.to_vec(),
        }
    }
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

impl Attester for TestRealm {
    type Error = EncodeError;

    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, EncodeError> {
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

/// A rustls client configuration for a realm: its certificate carries a
/// fresh token for each connection's nonce; the registry is trusted
/// through `ca`.
pub fn realm_client(realm: TestRealm, ca: &Ca) -> rustls::ClientConfig {
    AttestingClientResolver::new(realm, CertOptions::default())
        .client_config(ca.roots())
        .expect("client config")
}

/// Trust anchors in the Veraison form `atoll token appraise` takes.
pub fn write_trust_anchors(path: &Path) {
    let anchors = json!([{
        "instance-id": hex::encode(instance_id()),
        "implementation-id": hex::encode(IMPLEMENTATION_ID),
        "pkey": PlatformKey::from(*cpak().verifying_key()).to_jwk(),
    }]);
    std::fs::write(path, serde_json::to_vec_pretty(&anchors).expect("json")).expect("write");
}

/// Reference values as `atoll measure --json` writes them (realm only).
pub fn write_reference_values(path: &Path, rim: [u8; 32]) {
    let refs = json!({
        "realm": [{
            "initial-measurement": hex::encode(rim),
            "rak-hash-algorithm": "sha-256",
            "hash-algorithm": "sha-256",
        }]
    });
    std::fs::write(path, serde_json::to_vec_pretty(&refs).expect("json")).expect("write");
}
