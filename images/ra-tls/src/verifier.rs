//! The relying party's side: token checks, the challenge binding, the
//! handshake signature, and a pluggable appraisal.

use std::fmt;
use std::sync::{Arc, Mutex};

use atoll_cca_token::appraise::{appraise, ReferenceValues, Status, TrustAnchors, Verdict};
use atoll_cca_token::{CcaToken, Value};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::{
    fresh_nonce, nonce_to_ca_hint, nonce_to_server_name, realm_challenge, Error, NONCE_LEN,
    OID_ISLET_CCA_TOKEN, OID_TCG_DICE_CMW,
};

/// Decides whether a verified token describes a realm the relying party
/// accepts. Called after the signatures, the binding and the challenge
/// have been checked.
pub trait Appraiser: Send + Sync + fmt::Debug {
    /// `Ok(())` to accept, `Err(reason)` to reject.
    fn appraise(&self, token: &CcaToken) -> Result<(), String>;
}

/// The default appraiser: atoll-cca-token's `appraise` against trust
/// anchors and reference values. Accepts an `affirming` verdict, and a
/// `warning` one (some reference values absent) only if asked to.
#[derive(Clone, Debug)]
pub struct ReferenceAppraiser {
    anchors: TrustAnchors,
    refs: ReferenceValues,
    accept_warning: bool,
}

impl ReferenceAppraiser {
    /// Accepts only tokens every check affirms.
    pub fn new(anchors: TrustAnchors, refs: ReferenceValues) -> Self {
        ReferenceAppraiser {
            anchors,
            refs,
            accept_warning: false,
        }
    }

    /// Also accepts a `warning` verdict (nothing failed, but some reference
    /// values were not available).
    pub fn accepting_warnings(mut self) -> Self {
        self.accept_warning = true;
        self
    }
}

impl Appraiser for ReferenceAppraiser {
    fn appraise(&self, token: &CcaToken) -> Result<(), String> {
        let a = appraise(token, &self.anchors, &self.refs);
        match a.verdict() {
            Verdict::Affirming => Ok(()),
            Verdict::Warning if self.accept_warning => Ok(()),
            v => Err(format!(
                "{v:?}: {}",
                a.checks()
                    .iter()
                    .filter(|(_, c)| c.status != Status::Pass)
                    .map(|(name, c)| format!("{name}: {}", c.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
}

/// Which extension the token came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EvidenceOid {
    /// 1.3.3.3.7.
    Islet,
    /// 2.23.133.5.4.9.
    TcgDiceCmw,
}

/// A realm whose certificate passed every check.
#[derive(Clone, Debug)]
pub struct VerifiedRealm {
    /// The decoded, verified token.
    pub token: CcaToken,
    /// The certificate's DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// Where the token was found.
    pub evidence: EvidenceOid,
}

/// The checks of an attested certificate, independent of rustls.
#[derive(Debug)]
pub struct CcaVerifier {
    anchors: TrustAnchors,
    appraiser: Arc<dyn Appraiser>,
    provider: Arc<CryptoProvider>,
}

impl CcaVerifier {
    /// Verifies platform signatures with `anchors` and appraises with
    /// [`ReferenceAppraiser`] over the same anchors and `refs`.
    pub fn new(anchors: TrustAnchors, refs: ReferenceValues) -> Self {
        let appraiser = Arc::new(ReferenceAppraiser::new(anchors.clone(), refs));
        Self::with_appraiser(anchors, appraiser)
    }

    /// Verifies platform signatures with `anchors`, then asks `appraiser`.
    pub fn with_appraiser(anchors: TrustAnchors, appraiser: Arc<dyn Appraiser>) -> Self {
        CcaVerifier {
            anchors,
            appraiser,
            provider: crate::provider(),
        }
    }

    /// All checks of `cert_der` for a connection that sent `nonce`: the
    /// token is present (either OID), decodes, its platform signature
    /// verifies with a trust anchor, its realm signature and binding hold,
    /// its realm challenge is `SHA-512(nonce || SPKI)`, and the appraiser
    /// accepts it.
    pub fn verify_certificate(
        &self,
        cert_der: &[u8],
        nonce: &[u8],
    ) -> Result<VerifiedRealm, Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
            .map_err(|e| Error::BadCertificate(e.to_string()))?;
        let spki_der = cert.tbs_certificate.subject_pki.raw.to_vec();
        let islet = oid_string(OID_ISLET_CCA_TOKEN);
        let cmw = oid_string(OID_TCG_DICE_CMW);
        let find = |oid: &str| {
            cert.extensions()
                .iter()
                .find(|e| e.oid.to_id_string() == oid)
                .map(|e| e.value)
        };
        let (token_bytes, evidence) = match (find(&islet), find(&cmw)) {
            (Some(v), _) => (v.to_vec(), EvidenceOid::Islet),
            (None, Some(v)) => (unwrap_cmw(v)?, EvidenceOid::TcgDiceCmw),
            (None, None) => return Err(Error::NoEvidence),
        };
        let token = atoll_cca_token::decode(&token_bytes)?;
        let p = &token.platform.claims;
        let mut last = None;
        let mut any = false;
        for anchor in self.anchors.matching(&p.instance_id, &p.implementation_id) {
            any = true;
            match token.platform.verify(&anchor.key) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if !any {
            return Err(Error::NoTrustAnchor {
                instance_id: p.instance_id.iter().map(|b| format!("{b:02x}")).collect(),
            });
        }
        if let Some(e) = last {
            return Err(Error::PlatformSignature(e));
        }
        token.realm.verify().map_err(Error::RealmToken)?;
        token.verify_binding().map_err(Error::RealmToken)?;
        if token.realm.claims.challenge != realm_challenge(nonce, &spki_der) {
            return Err(Error::ChallengeMismatch);
        }
        self.appraiser
            .appraise(&token)
            .map_err(|reason| Error::Rejected { reason })?;
        Ok(VerifiedRealm {
            token,
            spki_der,
            evidence,
        })
    }

    fn verify_tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn oid_string(oid: &[u64]) -> String {
    oid.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// The CCA token inside a TCG DICE CMW extension: a CBOR-tagged CMW (the
/// tag-399/907 token itself, or `#6.n(bstr)`), or the array form
/// `[type, bstr]`.
fn unwrap_cmw(value: &[u8]) -> Result<Vec<u8>, Error> {
    let v: Value =
        ciborium::from_reader(value).map_err(|e| Error::BadEvidence(format!("CBOR: {e}")))?;
    match v {
        Value::Tag(
            atoll_cca_token::decode::TAG_CCA_TOKEN | atoll_cca_token::decode::TAG_CMW_COLLECTION,
            _,
        ) => Ok(value.to_vec()),
        Value::Tag(_, inner) => match *inner {
            Value::Bytes(b) => Ok(b),
            _ => Err(Error::BadEvidence("CBOR tag around a non-bstr".into())),
        },
        Value::Array(items) => match items.as_slice() {
            [Value::Integer(_) | Value::Text(_), Value::Bytes(b), ..] => Ok(b.clone()),
            _ => Err(Error::BadEvidence("CMW array is not [type, bstr]".into())),
        },
        _ => Err(Error::BadEvidence("not a CMW".into())),
    }
}

fn record(slot: &Mutex<Option<Result<VerifiedRealm, Error>>>, r: &Result<VerifiedRealm, Error>) {
    if let Ok(mut s) = slot.lock() {
        *s = Some(r.clone());
    }
}

/// Verifies a realm acting as TLS server, for one connection: holds a
/// fresh nonce, which goes to the server as the SNI
/// ([`AttestedServerVerifier::server_name`]).
#[derive(Debug)]
pub struct AttestedServerVerifier {
    core: Arc<CcaVerifier>,
    nonce: [u8; NONCE_LEN],
    outcome: Mutex<Option<Result<VerifiedRealm, Error>>>,
}

impl AttestedServerVerifier {
    /// A verifier with a fresh nonce.
    pub fn new(core: Arc<CcaVerifier>) -> Self {
        Self::with_nonce(core, fresh_nonce())
    }

    /// A verifier with the caller's nonce (which must be fresh).
    pub fn with_nonce(core: Arc<CcaVerifier>, nonce: [u8; NONCE_LEN]) -> Self {
        AttestedServerVerifier {
            core,
            nonce,
            outcome: Mutex::new(None),
        }
    }

    /// The nonce this verifier sends.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The server name to connect with: carries the nonce in the SNI.
    pub fn server_name(&self) -> ServerName<'static> {
        ServerName::try_from(nonce_to_server_name(&self.nonce))
            .expect("hex labels form a valid DNS name")
    }

    /// The result of the certificate checks, once the handshake got there.
    pub fn outcome(&self) -> Option<Result<VerifiedRealm, Error>> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    /// A client configuration for one connection to an attested realm.
    /// rustls requires its `dangerous()` door for a custom server verifier;
    /// this verifier replaces WebPKI chain building with the checks above.
    pub fn client_config(self: &Arc<Self>) -> rustls::ClientConfig {
        rustls::ClientConfig::builder_with_provider(self.core.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(self.clone())
            .with_no_client_auth()
    }
}

impl ServerCertVerifier for AttestedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r = if server_name.to_str() != nonce_to_server_name(&self.nonce) {
            Err(Error::ServerNameMismatch)
        } else {
            self.core.verify_certificate(end_entity, &self.nonce)
        };
        record(&self.outcome, &r);
        r.map(|_| ServerCertVerified::assertion())
            .map_err(Into::into)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.schemes()
    }
}

/// Verifies a realm acting as TLS client, for one connection: holds a
/// fresh nonce, sent base64-encoded as the only acceptable-CA name of the
/// CertificateRequest. Client authentication is mandatory.
#[derive(Debug)]
pub struct AttestedClientVerifier {
    core: Arc<CcaVerifier>,
    nonce: [u8; NONCE_LEN],
    hints: Vec<DistinguishedName>,
    outcome: Mutex<Option<Result<VerifiedRealm, Error>>>,
}

impl AttestedClientVerifier {
    /// A verifier with a fresh nonce.
    pub fn new(core: Arc<CcaVerifier>) -> Self {
        Self::with_nonce(core, fresh_nonce())
    }

    /// A verifier with the caller's nonce (which must be fresh).
    pub fn with_nonce(core: Arc<CcaVerifier>, nonce: [u8; NONCE_LEN]) -> Self {
        AttestedClientVerifier {
            core,
            nonce,
            hints: vec![DistinguishedName::from(nonce_to_ca_hint(&nonce))],
            outcome: Mutex::new(None),
        }
    }

    /// The nonce this verifier sends.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The result of the certificate checks, once the handshake got there.
    pub fn outcome(&self) -> Option<Result<VerifiedRealm, Error>> {
        self.outcome.lock().ok().and_then(|o| o.clone())
    }

    /// A server configuration for one connection from an attested realm,
    /// presenting `cert_chain`/`key` as the server's own identity.
    pub fn server_config(
        self: &Arc<Self>,
        cert_chain: Vec<CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<rustls::ServerConfig, rustls::Error> {
        rustls::ServerConfig::builder_with_provider(self.core.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(self.clone())
            .with_single_cert(cert_chain, key)
    }
}

impl ClientCertVerifier for AttestedClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self.core.verify_certificate(end_entity, &self.nonce);
        record(&self.outcome, &r);
        r.map(|_| ClientCertVerified::assertion())
            .map_err(Into::into)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.schemes()
    }
}
