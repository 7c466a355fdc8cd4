//! P-384 keys in PEM, as vendors keep them.
//!
//! Private keys: PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` writes)
//! or SEC1 (`BEGIN EC PRIVATE KEY`, what `openssl ecparam -genkey` writes).
//! Public keys: SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`); a private key is
//! accepted where a public key is wanted and its public half used.

use p384::ecdsa::{SigningKey, VerifyingKey};
use p384::elliptic_curve::zeroize::Zeroizing;
use p384::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use p384::SecretKey;

/// Why a PEM key could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// No PEM label this module understands.
    #[error("not a PEM P-384 key (expected BEGIN PRIVATE KEY, BEGIN EC PRIVATE KEY or BEGIN PUBLIC KEY)")]
    UnknownLabel,
    /// Encrypted PKCS#8 is not supported.
    #[error("encrypted private keys are not supported; decrypt it first (openssl pkey -in KEY -out PLAIN)")]
    Encrypted,
    /// The right label, but not a P-384 key (another curve, or corrupt).
    #[error("{what} is not a valid P-384 key: {detail}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
}

fn label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = text[start..].find("-----")? + start;
    Some(&text[start..end])
}

/// Reads a P-384 private key (PKCS#8 or SEC1 PEM).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, PemError> {
    let secret = match label(text) {
        Some("PRIVATE KEY") => SecretKey::from_pkcs8_pem(text).map_err(|e| PemError::Invalid {
            what: "PKCS#8 private key",
            detail: e.to_string(),
        })?,
        Some("EC PRIVATE KEY") => {
            SecretKey::from_sec1_pem(text).map_err(|e| PemError::Invalid {
                what: "SEC1 private key",
                detail: e.to_string(),
            })?
        }
        Some("ENCRYPTED PRIVATE KEY") => return Err(PemError::Encrypted),
        _ => return Err(PemError::UnknownLabel),
    };
    Ok(SigningKey::from(secret))
}

/// Reads a P-384 public key (SPKI PEM), or the public half of a private key.
pub fn verifying_key_from_pem(text: &str) -> Result<VerifyingKey, PemError> {
    match label(text) {
        Some("PUBLIC KEY") => {
            VerifyingKey::from_public_key_pem(text).map_err(|e| PemError::Invalid {
                what: "public key",
                detail: e.to_string(),
            })
        }
        _ => signing_key_from_pem(text).map(|k| *k.verifying_key()),
    }
}

/// A private key as PKCS#8 PEM (zeroized when dropped).
pub fn signing_key_to_pem(key: &SigningKey) -> Result<Zeroizing<String>, PemError> {
    key.to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| PemError::Invalid {
            what: "private key",
            detail: e.to_string(),
        })
}

/// A public key as SPKI PEM.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String, PemError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| PemError::Invalid {
            what: "public key",
            detail: e.to_string(),
        })
}
