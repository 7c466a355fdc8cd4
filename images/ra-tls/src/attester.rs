//! The realm's side: a fresh key, a token bound to it, a certificate
//! carrying the token, and rustls resolvers that do this per connection.

use std::fmt;
use std::sync::Arc;

use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::{
    nonce_from_ca_hints, nonce_from_server_name, realm_challenge, AttestError, OID_ISLET_CCA_TOKEN,
    OID_TCG_DICE_CMW,
};

/// Obtains a CCA token for a realm challenge. The realm SDK implements it
/// over RSI; tests implement it with tokens signed by test keys.
pub trait Attester: Send + Sync {
    /// The attester's error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A CCA token (tag-399 or tag-907 collection) whose realm challenge
    /// claim is `challenge`.
    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, Self::Error>;
}

impl<A: Attester + ?Sized> Attester for Arc<A> {
    type Error = A::Error;
    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, Self::Error> {
        (**self).attest(challenge)
    }
}

/// Which extension(s) carry the token.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum EvidenceForm {
    /// Islet's 1.3.3.3.7 with the raw token.
    #[default]
    Islet,
    /// The TCG DICE conceptual message wrapper 2.23.133.5.4.9, holding the
    /// token as a CBOR-tagged CMW (the tag-399/907 token itself).
    TcgDiceCmw,
    /// Both extensions.
    Both,
}

/// The TLS key's curve.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256.
    P256,
    /// ECDSA P-384 with SHA-384.
    #[default]
    P384,
}

/// How the attested certificate is made.
#[derive(Clone, Debug, Default)]
pub struct CertOptions {
    /// The evidence extension(s).
    pub form: EvidenceForm,
    /// The TLS key's curve.
    pub key: KeyAlgorithm,
}

/// A freshly generated TLS key, not yet certified.
pub struct TlsKey {
    key: KeyPair,
}

impl fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsKey").finish_non_exhaustive()
    }
}

impl TlsKey {
    /// Generates a key on `alg`'s curve.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, AttestError> {
        let sig = match alg {
            KeyAlgorithm::P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        };
        Ok(TlsKey {
            key: KeyPair::generate_for(sig)?,
        })
    }

    /// The DER SubjectPublicKeyInfo (what the challenge hashes).
    pub fn spki_der(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    /// The realm challenge for this key and `nonce`.
    pub fn challenge(&self, nonce: &[u8]) -> [u8; 64] {
        realm_challenge(nonce, &self.spki_der())
    }

    /// A self-signed certificate for this key carrying `token` in the
    /// extension(s) `form` names.
    pub fn certify(self, token: &[u8], form: EvidenceForm) -> Result<AttestedCert, AttestError> {
        let mut params = CertificateParams::new(vec!["atoll-realm".to_string()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Atoll CCA realm");
        if matches!(form, EvidenceForm::Islet | EvidenceForm::Both) {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_ISLET_CCA_TOKEN,
                    token.to_vec(),
                ));
        }
        if matches!(form, EvidenceForm::TcgDiceCmw | EvidenceForm::Both) {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    OID_TCG_DICE_CMW,
                    token.to_vec(),
                ));
        }
        let cert = params.self_signed(&self.key)?;
        Ok(AttestedCert {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(self.key.serialize_der()),
        })
    }
}

/// A self-signed certificate carrying a CCA token, with its private key.
pub struct AttestedCert {
    /// The certificate.
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl fmt::Debug for AttestedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestedCert")
            .field("cert_len", &self.cert.len())
            .finish_non_exhaustive()
    }
}

impl AttestedCert {
    /// Generates a fresh key, attests `SHA-512(nonce || SPKI)` through
    /// `attester` and certifies the key with the token.
    pub fn generate<A: Attester + ?Sized>(
        attester: &A,
        nonce: &[u8],
        opts: &CertOptions,
    ) -> Result<Self, AttestError> {
        let key = TlsKey::generate(opts.key)?;
        let token = attester
            .attest(&key.challenge(nonce))
            .map_err(|e| AttestError::Attester(Box::new(e)))?;
        key.certify(&token, opts.form)
    }

    /// The private key (PKCS#8 DER).
    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The certificate and key as rustls' `CertifiedKey`.
    pub fn certified_key(&self, provider: &CryptoProvider) -> Result<CertifiedKey, AttestError> {
        Ok(CertifiedKey::from_der(
            vec![self.cert.clone()],
            self.private_key(),
            provider,
        )?)
    }
}

fn attested_key<A: Attester + ?Sized>(
    attester: &A,
    nonce: &[u8],
    opts: &CertOptions,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, AttestError> {
    Ok(Arc::new(
        AttestedCert::generate(attester, nonce, opts)?.certified_key(provider)?,
    ))
}

/// Realm as TLS server: per ClientHello, reads the nonce from the SNI and
/// presents a freshly attested certificate. Install with
/// `ServerConfig::builder().with_no_client_auth().with_cert_resolver(..)`,
/// or use [`AttestingServerResolver::server_config`].
pub struct AttestingServerResolver<A> {
    attester: A,
    opts: CertOptions,
    provider: Arc<CryptoProvider>,
}

impl<A> fmt::Debug for AttestingServerResolver<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestingServerResolver")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl<A: Attester + 'static> AttestingServerResolver<A> {
    /// A resolver attesting through `attester`.
    pub fn new(attester: A, opts: CertOptions) -> Self {
        AttestingServerResolver {
            attester,
            opts,
            provider: crate::provider(),
        }
    }

    /// Attests for the nonce in `server_name` (an SNI).
    pub fn resolve_name(&self, server_name: &str) -> Result<Arc<CertifiedKey>, AttestError> {
        let nonce = nonce_from_server_name(server_name).ok_or(AttestError::NoNonce("SNI"))?;
        attested_key(&self.attester, &nonce, &self.opts, &self.provider)
    }

    /// A rustls server configuration presenting attested certificates, no
    /// client authentication.
    pub fn server_config(self) -> Result<rustls::ServerConfig, AttestError> {
        let provider = self.provider.clone();
        Ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self)))
    }
}

impl<A: Attester + 'static> rustls::server::ResolvesServerCert for AttestingServerResolver<A> {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.resolve_name(client_hello.server_name()?).ok()
    }
}

/// Realm as TLS client: reads the nonce from the CertificateRequest's
/// acceptable-CA names and presents a freshly attested certificate.
pub struct AttestingClientResolver<A> {
    attester: A,
    opts: CertOptions,
    provider: Arc<CryptoProvider>,
}

impl<A> fmt::Debug for AttestingClientResolver<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttestingClientResolver")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl<A: Attester + 'static> AttestingClientResolver<A> {
    /// A resolver attesting through `attester`.
    pub fn new(attester: A, opts: CertOptions) -> Self {
        AttestingClientResolver {
            attester,
            opts,
            provider: crate::provider(),
        }
    }

    /// Attests for the nonce among `hints` (acceptable-CA names).
    pub fn resolve_hints(&self, hints: &[&[u8]]) -> Result<Arc<CertifiedKey>, AttestError> {
        let nonce = nonce_from_ca_hints(hints).ok_or(AttestError::NoNonce("CA names"))?;
        attested_key(&self.attester, &nonce, &self.opts, &self.provider)
    }

    /// A rustls client configuration that authenticates the server with
    /// `roots` (ordinary WebPKI) and answers client authentication with
    /// attested certificates.
    pub fn client_config(
        self,
        roots: rustls::RootCertStore,
    ) -> Result<rustls::ClientConfig, AttestError> {
        let provider = self.provider.clone();
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_cert_resolver(Arc::new(self)))
    }
}

impl<A: Attester + 'static> rustls::client::ResolvesClientCert for AttestingClientResolver<A> {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.resolve_hints(root_hint_subjects).ok()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
