//! Signing of OCI images for Atoll's application deployment.
//!
//! A CA (whose root certificate is baked into the measured realm image)
//! certifies vendors; a vendor signs the *digest of an OCI manifest*. The
//! signature is a separate OCI artifact that refers to the signed manifest
//! through `subject`, as Notation does, so the image bytes (and therefore its
//! digest) are never touched and a registry finds the signature through the
//! referrers API.
//!
//! * [`keys`]: P-384 keys, PKCS#8 / SPKI PEM.
//! * [`cert`]: the X.509 chain root CA -> vendor: building and path
//!   validation (dates, CA constraints, key usage, signatures).
//! * [`artifact`]: the signature artifact (artifact manifest, empty config,
//!   one DSSE envelope layer) built from and checked against in-memory bytes.
//! * [`layout`]: writing and reading the artifact as an OCI image layout
//!   directory, ready to push.
//!
//! Everything is ECDSA P-384 with SHA-384; digests of OCI content are
//! SHA-256, as registries expect.

pub mod artifact;
pub mod cert;
pub mod keys;
pub mod layout;

pub use artifact::{
    Blob, SignatureArtifact, SignedPayload, SignedSubject, Verified, ARTIFACT_TYPE,
    ENVELOPE_MEDIA_TYPE, PAYLOAD_TYPE,
};
pub use cert::{ChainError, ValidityPeriod};
pub use keys::KeyError;

/// Why signing failed or a signature does not verify.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// A key could not be read or written.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The certificate chain is not valid against the trusted roots.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Building or encoding a certificate failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The private key is not the one certified by the certificate.
    #[error("the private key does not match the certificate {subject}")]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
    },
    /// The signature artifact is malformed (manifest, config, layer).
    #[error("signature artifact: {0}")]
    Artifact(String),
    /// A blob the artifact manifest names is missing.
    #[error("blob {digest} is missing")]
    BlobMissing {
        /// Its digest.
        digest: String,
    },
    /// A blob does not hash to the digest (or size) its descriptor gives.
    #[error(
        "blob {digest} does not match its descriptor (content hashes to {actual}, {size} bytes)"
    )]
    BlobMismatch {
        /// The descriptor's digest.
        digest: String,
        /// The content's digest.
        actual: String,
        /// The content's size.
        size: u64,
    },
    /// The signature envelope is malformed.
    #[error("signature envelope: {0}")]
    Envelope(String),
    /// The signature over the payload does not verify with the vendor key.
    #[error("the signature does not verify with the vendor certificate's key ({subject})")]
    BadSignature {
        /// The vendor certificate's subject.
        subject: String,
    },
    /// The signature is valid but for another manifest.
    #[error("the signature is for manifest {signed}, not {actual}")]
    DigestMismatch {
        /// The digest in the signed payload.
        signed: String,
        /// The digest of the manifest being verified.
        actual: String,
    },
    /// The signed payload names another size or media type than the manifest.
    #[error("the signed payload does not describe this manifest: {0}")]
    PayloadMismatch(String),
    /// The manifest being signed or verified is not an OCI manifest or index.
    #[error("not an OCI manifest: {0}")]
    Manifest(String),
    /// Reading or writing files of an OCI layout.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// `sha256:<hex>` of some bytes, the OCI digest form.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests;
