//! Typed errors for every way a token can be malformed or fail to verify.
//!
//! Each variant names the part of the token it concerns ([`TokenPart`]) so a
//! relying party can tell a broken platform token (a firmware or HES issue)
//! from a broken realm token (an RMM issue) without parsing messages.

use alloc::string::String;
use core::fmt;

/// Which layer of the token an error concerns.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TokenPart {
    /// The tag-399 / tag-907 collection around the two tokens.
    Collection,
    /// The platform token (signed by the CPAK).
    Platform,
    /// The realm token (signed by the RAK).
    Realm,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenPart::Collection => "token collection",
            TokenPart::Platform => "platform token",
            TokenPart::Realm => "realm token",
        })
    }
}

/// Why bytes could not be decoded as a CCA token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not well-formed CBOR (or nest too deeply).
    #[error("{part}: malformed CBOR: {detail}")]
    Cbor {
        /// Where.
        part: TokenPart,
        /// The CBOR library's description.
        detail: String,
    },
    /// A complete CBOR item was followed by more bytes.
    #[error("{part}: trailing bytes after the CBOR item")]
    TrailingBytes {
        /// Where.
        part: TokenPart,
    },
    /// The top level is not tagged 399 (RMM 1.0 collection) or 907 (CMW collection).
    #[error("token collection: expected CBOR tag 399 or 907, found {found}")]
    UnexpectedTag {
        /// The tag found, or `None` if the item was untagged.
        found: TagFound,
    },
    /// A CBOR item had the wrong major type.
    #[error("{part}: {what} must be {expected}")]
    WrongType {
        /// Where.
        part: TokenPart,
        /// Which item.
        what: &'static str,
        /// What it should have been.
        expected: &'static str,
    },
    /// The collection holds an entry other than 44234 (platform) and 44241 (realm).
    #[error("token collection: unexpected entry {key}")]
    UnexpectedEntry {
        /// The entry's key, as CBOR diagnostic text.
        key: String,
    },
    /// The collection lacks the platform or realm token.
    #[error("token collection: missing entry {key} ({name})")]
    MissingEntry {
        /// The missing key.
        key: u64,
        /// What it holds.
        name: &'static str,
    },
    /// An entry appears twice in the collection.
    #[error("token collection: duplicate entry {key}")]
    DuplicateEntry {
        /// The repeated key.
        key: u64,
    },
    /// A tag-907 entry is not `[263, bstr]`.
    #[error("token collection: entry {key} must be [263, bstr] (content format {found:?})")]
    ContentFormat {
        /// The entry.
        key: u64,
        /// The content format found, if the array had an integer first.
        found: Option<i128>,
    },
    /// The COSE_Sign1 structure is malformed.
    #[error("{part}: malformed COSE_Sign1: {detail}")]
    Cose {
        /// Where.
        part: TokenPart,
        /// coset's description.
        detail: String,
    },
    /// The COSE_Sign1 has a detached (nil) payload; CCA tokens carry their claims.
    #[error("{part}: COSE_Sign1 payload is detached")]
    DetachedPayload {
        /// Where.
        part: TokenPart,
    },
    /// The protected header names no algorithm, or one other than ES256/ES384.
    #[error("{part}: unsupported or missing signature algorithm {alg}")]
    UnsupportedAlgorithm {
        /// Where.
        part: TokenPart,
        /// The algorithm label as text (`none` if absent).
        alg: String,
    },
    /// A claim key is not an integer.
    #[error("{part}: claim key is not an integer")]
    ClaimKeyNotInteger {
        /// Where.
        part: TokenPart,
    },
    /// The same claim appears twice.
    #[error("{part}: claim {key} appears twice")]
    DuplicateClaim {
        /// Where.
        part: TokenPart,
        /// The claim key.
        key: i64,
    },
    /// A mandatory claim is absent.
    #[error("{part}: missing claim {key} ({name})")]
    MissingClaim {
        /// Where.
        part: TokenPart,
        /// The claim key.
        key: i64,
        /// The claim's name.
        name: &'static str,
    },
    /// A claim has the wrong CBOR type.
    #[error("{part}: claim {key} ({name}) must be {expected}")]
    ClaimType {
        /// Where.
        part: TokenPart,
        /// The claim key.
        key: i64,
        /// The claim's name.
        name: &'static str,
        /// The expected type.
        expected: &'static str,
    },
    /// A byte-string claim has the wrong length.
    #[error("{part}: claim {key} ({name}) is {found} bytes, expected {expected}")]
    ClaimLength {
        /// Where.
        part: TokenPart,
        /// The claim key.
        key: i64,
        /// The claim's name.
        name: &'static str,
        /// The allowed length(s), as text.
        expected: &'static str,
        /// The length found.
        found: usize,
    },
    /// A hash algorithm claim names an algorithm this crate does not know.
    #[error("{part}: claim {key} names unknown hash algorithm {name:?}")]
    UnknownHashAlgorithm {
        /// Where.
        part: TokenPart,
        /// The claim key.
        key: i64,
        /// The name found.
        name: String,
    },
    /// The realm public key claim is neither a P-384 COSE_Key nor a 97-byte SEC1 point.
    #[error("realm token: claim 44237 (realm public key): {reason}")]
    InvalidRak {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The REM claim does not hold exactly four byte strings.
    #[error(
        "realm token: claim 44239 (REMs) must be an array of 4 byte strings, found {found} entries"
    )]
    RemCount {
        /// Entries found.
        found: usize,
    },
    /// A software component entry is malformed.
    #[error("platform token: software component {index}: {reason}")]
    SwComponent {
        /// The component's position.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The tag found where 399 or 907 was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagFound(pub Option<u64>);

impl fmt::Display for TagFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(t) => write!(f, "tag {t}"),
            None => f.write_str("an untagged item"),
        }
    }
}

/// Why a token could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The signature handed to `assemble` does not have the algorithm's length.
    #[error("signature is {found} bytes; {alg} needs {expected}")]
    SignatureLength {
        /// The algorithm.
        alg: &'static str,
        /// Its r||s length.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The signer produces a different algorithm than the token declares.
    #[error("token is {token} but the signer produces {signer}")]
    SignerAlgorithm {
        /// The token's algorithm.
        token: &'static str,
        /// The signer's.
        signer: &'static str,
    },
    /// The signing key is not the RAK named in claim 44237.
    #[error("signing key is not the realm public key in claim 44237")]
    RakMismatch,
    /// The caller's signer failed.
    #[error("signer failed: {0}")]
    Signer(String),
    /// The CBOR encoder failed (only on allocation-level failures).
    #[error("CBOR encoding failed: {0}")]
    Cbor(String),
}

/// Why a decoded token failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The platform token's signature does not verify with the CPAK.
    #[error("platform token: signature does not verify with the platform key")]
    PlatformSignature,
    /// The platform token's algorithm does not fit the key's curve.
    #[error("platform token: signed with {token_alg} but the platform key is {key_curve}")]
    PlatformKeyMismatch {
        /// The token's algorithm.
        token_alg: &'static str,
        /// The key's curve.
        key_curve: &'static str,
    },
    /// The realm token is not ES384 (the RAK is a P-384 key).
    #[error("realm token: signed with {alg}, but the RAK is P-384 (ES384)")]
    RealmAlgorithm {
        /// The algorithm found.
        alg: &'static str,
    },
    /// The realm token's signature does not verify with the RAK it carries.
    #[error("realm token: signature does not verify with the realm public key (claim 44237)")]
    RealmSignature,
    /// The platform challenge is not the hash of the RAK claim.
    #[error("RAK binding broken: platform challenge is not {alg}(realm public key claim)")]
    Binding {
        /// The hash algorithm named by claim 44240.
        alg: &'static str,
    },
}
