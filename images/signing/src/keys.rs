//! P-384 keys in PEM: PKCS#8 private keys (`BEGIN PRIVATE KEY`) and SPKI
//! public keys (`BEGIN PUBLIC KEY`).

use p384::ecdsa::{SigningKey, VerifyingKey};
use p384::elliptic_curve::zeroize::Zeroizing;
use p384::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

/// Why a PEM key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Encrypted PKCS#8 is not supported.
    #[error("encrypted private keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)")]
    Encrypted,
    /// Not a P-384 key of the expected kind.
    #[error("{what} is not a valid P-384 key: {detail}")]
    Invalid {
        /// What was being read or written.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
}

/// A fresh P-384 key from the OS random generator.
pub fn generate() -> SigningKey {
    SigningKey::random(&mut rand_core::OsRng)
}

/// Reads a P-384 private key (PKCS#8 PEM).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, KeyError> {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(KeyError::Encrypted);
    }
    SigningKey::from_pkcs8_pem(text).map_err(|e| KeyError::Invalid {
        what: "PKCS#8 private key",
        detail: e.to_string(),
    })
}

/// Reads a P-384 public key (SPKI PEM).
pub fn verifying_key_from_pem(text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_public_key_pem(text).map_err(|e| KeyError::Invalid {
        what: "public key",
        detail: e.to_string(),
    })
}

/// A private key as PKCS#8 PEM (zeroized when dropped).
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, KeyError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Invalid {
            what: "private key",
            detail: e.to_string(),
        })
}

/// A public key as SPKI PEM.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String, KeyError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Invalid {
            what: "public key",
            detail: e.to_string(),
        })
}
