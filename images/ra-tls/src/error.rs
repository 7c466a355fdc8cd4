//! Typed errors for both sides.

use atoll_cca_token::{DecodeError, VerifyError};

/// Why a peer's attested certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate is not parseable X.509.
    #[error("certificate is not valid X.509: {0}")]
    BadCertificate(String),
    /// Neither the Islet (1.3.3.3.7) nor the TCG DICE CMW (2.23.133.5.4.9)
    /// extension is present.
    #[error("certificate carries no attestation evidence extension")]
    NoEvidence,
    /// The evidence extension does not hold a CCA token in a known wrapping.
    #[error("evidence extension is malformed: {0}")]
    BadEvidence(String),
    /// The CCA token does not decode.
    #[error("CCA token does not decode: {0}")]
    Decode(#[from] DecodeError),
    /// No trust anchor applies to the token's platform.
    #[error("no trust anchor for the token's platform (instance id {instance_id})")]
    NoTrustAnchor {
        /// The platform instance id, hex.
        instance_id: String,
    },
    /// The platform token's signature does not verify with any applicable
    /// trust anchor.
    #[error("platform token signature: {0}")]
    PlatformSignature(VerifyError),
    /// The realm token's signature or its binding to the platform token fails.
    #[error("realm token: {0}")]
    RealmToken(VerifyError),
    /// The realm challenge is not SHA-512(nonce || SPKI) for the nonce this
    /// connection sent and the certificate's key: a replayed token, or a
    /// token for another key.
    #[error("realm challenge is not SHA-512(this connection's nonce || certificate SPKI)")]
    ChallengeMismatch,
    /// The appraiser refused the token.
    #[error("appraisal rejected the realm: {reason}")]
    Rejected {
        /// The appraiser's reason.
        reason: String,
    },
    /// The server name the client sent is not the one this verifier's nonce
    /// encodes.
    #[error("server name does not carry this verifier's nonce")]
    ServerNameMismatch,
    /// The TLS handshake signature does not verify with the certificate key.
    #[error("handshake signature: {0}")]
    HandshakeSignature(String),
}

impl From<Error> for rustls::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::HandshakeSignature(_) => {
                rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
            }
            other => rustls::Error::InvalidCertificate(rustls::CertificateError::Other(
                rustls::OtherError(std::sync::Arc::new(other)),
            )),
        }
    }
}

/// Why the attester side could not produce an attested certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// Key generation or certificate assembly failed.
    #[error("certificate generation: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The caller's [`Attester`](crate::Attester) failed.
    #[error("attestation: {0}")]
    Attester(Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused the key.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// No nonce arrived where the peer should have put it.
    #[error("no verifier nonce in the {0}")]
    NoNonce(&'static str),
}
