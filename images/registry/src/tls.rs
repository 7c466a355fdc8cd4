//! The TLS and RA-TLS acceptors.

use std::io;
use std::sync::Arc;

use atoll_cca_token::appraise::{appraise, Appraisal, ReferenceValues, Status, TrustAnchors};
use atoll_cca_token::CcaToken;
use atoll_ra_tls::{Appraiser, AttestedClientVerifier, CcaVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::access::Access;
use crate::config::{ConfigError, Listener, RealmPolicy};
use crate::Acceptor;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    atoll_ra_tls::provider()
}

fn chain(l: &Listener) -> Vec<CertificateDer<'static>> {
    l.cert_chain
        .iter()
        .cloned()
        .map(CertificateDer::from)
        .collect()
}

fn key(l: &Listener) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = l
        .key_pem
        .as_deref()
        .ok_or_else(|| ConfigError(format!("{}: no key", l.address)))?;
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| ConfigError(format!("{}: key: {e:?}", l.address)))
}

/// TLS with the registry's certificate; with a client CA, clients must
/// present a certificate from it.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    write: bool,
}

impl TlsAcceptor {
    /// Builds the acceptor of a `tls` listener.
    pub fn new(l: &Listener) -> Result<Self, ConfigError> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError(e.to_string()))?;
        let builder = if l.client_ca.is_empty() {
            builder.with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for der in &l.client_ca {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| ConfigError(format!("{}: client CA: {e}", l.address)))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| ConfigError(format!("{}: client CA: {e}", l.address)))?;
            builder.with_client_cert_verifier(verifier)
        };
        let config = builder
            .with_single_cert(chain(l), key(l)?)
            .map_err(|e| ConfigError(format!("{}: certificate and key: {e}", l.address)))?;
        Ok(Self {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            write: l.write,
        })
    }
}

impl Acceptor for TlsAcceptor {
    type Stream = TlsStream<TcpStream>;
    async fn accept(&self, tcp: TcpStream) -> io::Result<(Self::Stream, Access)> {
        let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let stream = self.inner.accept(tcp).await?;
        Ok((
            stream,
            Access {
                write: self.write,
                repositories: None,
                who: format!("tls client {peer}"),
            },
        ))
    }
}

/// Whether `a` passes for a policy entry: signatures, binding and the
/// realm reference values must pass; platform reference values must pass
/// when the entry has some.
fn passes(a: &Appraisal) -> bool {
    let checks = a.checks();
    checks[..4].iter().all(|(_, c)| c.status == Status::Pass)
        && a.realm_reference_values.status == Status::Pass
        && a.platform_reference_values.status != Status::Fail
}

/// The registry's appraisal: the token must match the trust anchors and
/// at least one realm of the policy.
#[derive(Debug)]
struct PolicyAppraiser {
    anchors: TrustAnchors,
    realms: Vec<(String, ReferenceValues)>,
}

impl PolicyAppraiser {
    fn matching(&self, token: &CcaToken) -> Vec<usize> {
        self.realms
            .iter()
            .enumerate()
            .filter(|(_, (_, refs))| passes(&appraise(token, &self.anchors, refs)))
            .map(|(i, _)| i)
            .collect()
    }
}

impl Appraiser for PolicyAppraiser {
    fn appraise(&self, token: &CcaToken) -> Result<(), String> {
        if !self.matching(token).is_empty() {
            return Ok(());
        }
        // Say why against the first entry: that is what an operator needs.
        let why = self
            .realms
            .first()
            .map(|(name, refs)| {
                let a = appraise(token, &self.anchors, refs);
                let failed: Vec<String> = a
                    .checks()
                    .iter()
                    .filter(|(_, c)| c.status == Status::Fail)
                    .map(|(n, c)| format!("{n}: {}", c.detail))
                    .collect();
                format!("not {name}: {}", failed.join("; "))
            })
            .unwrap_or_default();
        Err(format!("the realm matches no registry policy ({why})"))
    }
}

/// RA-TLS: every connection gets a fresh nonce; the client must present
/// an attested certificate whose token is bound to it and matches the
/// policy; the connection may then pull the repositories of the matched
/// realm entries.
#[derive(Clone)]
pub struct RaTlsAcceptor {
    core: Arc<CcaVerifier>,
    appraiser: Arc<PolicyAppraiser>,
    patterns: Vec<(String, Vec<String>)>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl RaTlsAcceptor {
    /// Builds the acceptor of an `ra-tls` listener.
    pub fn new(
        l: &Listener,
        anchors: &TrustAnchors,
        realms: &[RealmPolicy],
    ) -> Result<Self, ConfigError> {
        let key = Arc::new(key(l)?);
        // The certificate and key must go together: find out now, not at the
        // first realm's handshake.
        Arc::new(AttestedClientVerifier::new(Arc::new(
            CcaVerifier::with_appraiser(
                anchors.clone(),
                Arc::new(PolicyAppraiser {
                    anchors: anchors.clone(),
                    realms: Vec::new(),
                }),
            ),
        )))
        .server_config(chain(l), key.clone_key())
        .map_err(|e| ConfigError(format!("{}: certificate and key: {e}", l.address)))?;
        let appraiser = Arc::new(PolicyAppraiser {
            anchors: anchors.clone(),
            realms: realms
                .iter()
                .map(|r| (r.name.clone(), r.reference_values.clone()))
                .collect(),
        });
        Ok(Self {
            core: Arc::new(CcaVerifier::with_appraiser(
                anchors.clone(),
                appraiser.clone(),
            )),
            appraiser,
            patterns: realms
                .iter()
                .map(|r| (r.name.clone(), r.repositories.clone()))
                .collect(),
            chain: chain(l),
            key,
        })
    }
}

impl Acceptor for RaTlsAcceptor {
    type Stream = TlsStream<TcpStream>;
    async fn accept(&self, tcp: TcpStream) -> io::Result<(Self::Stream, Access)> {
        let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let verifier = Arc::new(AttestedClientVerifier::new(self.core.clone()));
        let config = verifier
            .server_config(self.chain.clone(), self.key.clone_key())
            .map_err(io::Error::other)?;
        let stream = match tokio_rustls::TlsAcceptor::from(Arc::new(config))
            .accept(tcp)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                // The verifier's typed outcome says more than the TLS alert.
                let why = match verifier.outcome() {
                    Some(Err(v)) => format!("attestation: {v}"),
                    _ => e.to_string(),
                };
                return Err(io::Error::other(format!("RA-TLS client {peer}: {why}")));
            }
        };
        let realm = match verifier.outcome() {
            Some(Ok(r)) => r,
            _ => return Err(io::Error::other("handshake completed without attestation")),
        };
        let matched = self.appraiser.matching(&realm.token);
        let names: Vec<&str> = matched
            .iter()
            .map(|&i| self.patterns[i].0.as_str())
            .collect();
        let repositories: Vec<String> = matched
            .iter()
            .flat_map(|&i| self.patterns[i].1.iter().cloned())
            .collect();
        tracing::info!(
            "RA-TLS client {peer}: realm RIM {} matches policy {names:?}",
            hex::encode(&realm.token.realm.claims.rim)
        );
        Ok((
            stream,
            Access {
                write: false,
                repositories: Some(repositories),
                who: format!("realm {} at {peer}", names.join("+")),
            },
        ))
    }
}
