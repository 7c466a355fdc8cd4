//! Realm metadata blocks: build, sign, parse and verify the 432-byte Samsung
//! Islet realm metadata block ([`ipc_schema::islet::RealmMetadata`]).
//!
//! A realm vendor signs a block naming the realm (realm id, version, SVN)
//! and the RIM it must have; the host hands it to the RMM with
//! `RMI_ISLET_REALM_SET_METADATA`, the RMM refuses to activate a realm whose
//! RIM differs, and derives the realm's sealing keys from the vendor key and
//! realm id inside it. That is what lets an updated realm from the same
//! vendor keep its sealed data.
//!
//! The same code runs on both sides: normal-world tools sign and check
//! blocks (`atoll metadata`), and the RMM's keys service verifies them, so
//! the core is `no_std` without allocation; the `std` feature adds YAML
//! realm configurations and PEM keys for the tools (modules `config` and
//! `pem`).
//!
//! # Rules this crate enforces (on building and on parsing)
//!
//! * `fmt_version` is [`METADATA_FMT_VERSION`] (1).
//! * `realm_id` is 1..=[`REALM_ID_MAX`] bytes of printable ASCII
//!   (0x20..=0x7E), NUL-padded, with nothing but NULs after the first NUL.
//!   At most 127 bytes so the field is always NUL-terminated for C readers.
//! * `hash_algo` is 1 (SHA-256) or 2 (SHA-512), and the RIM is exactly that
//!   algorithm's digest, zero-padded to 64 bytes: non-zero padding is refused.
//! * `public_key` is a raw `x || y` P-384 point that is on the curve.
//! * `signature` is a raw `r || s` ECDSA P-384/SHA-384 signature over bytes
//!   `0..0x150` with `0 < r, s < n`.
//!
//! # High-S signatures
//!
//! ECDSA signatures are malleable: `(r, n - s)` verifies whenever `(r, s)`
//! does. [`sign`] always produces the low-S form, but [`verify`] accepts
//! both, because blocks signed by other tools (OpenSSL does not normalise)
//! must keep working, and nothing in Atoll uses the signature bytes as an
//! identity: sealing keys come from the vendor key and realm id, never the
//! signature. [`VerifiedMetadata::low_s`] reports which form was seen, for
//! callers that want to be strict.
//!
//! # Trust
//!
//! The upstream tool only checks a block against the key inside it, which
//! proves integrity, not origin: anyone can sign a block with their own key.
//! [`verify`] takes a [`TrustAnchor`]: [`TrustAnchor::EmbeddedKeyOnly`]
//! (upstream behaviour; the keys service uses it because sealing keys are
//! bound to the embedded key, so a forged block only ever opens the forger's
//! own data) or [`TrustAnchor::VendorKey`] (the embedded key must also be
//! the expected vendor key). The result says which was checked
//! ([`VerifiedMetadata::trust`]).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

use ipc_schema::islet::{
    metadata_hash_algo, RealmMetadata, METADATA_FMT_VERSION, METADATA_SIGNED_LEN,
};
use ipc_schema::service::HashAlgo;
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

#[cfg(feature = "std")]
pub mod config;
#[cfg(feature = "std")]
pub mod pem;

/// Size of an encoded metadata block.
pub const BLOCK_LEN: usize = core::mem::size_of::<RealmMetadata>();
/// Size of the `realm_id` field.
pub const REALM_ID_FIELD_LEN: usize = 128;
/// Longest realm id: one byte of the field is kept for the terminating NUL.
pub const REALM_ID_MAX: usize = REALM_ID_FIELD_LEN - 1;
/// Size of the RIM field (SHA-256 RIMs are zero-padded to it).
pub const RIM_FIELD_LEN: usize = 64;
/// Size of a raw `x || y` P-384 public key.
pub const PUBLIC_KEY_LEN: usize = 96;
/// Size of a raw `r || s` P-384 signature.
pub const SIGNATURE_LEN: usize = 96;

/// Why a block, or the fields for one, were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The block is not exactly [`BLOCK_LEN`] bytes.
    #[error("metadata block is {len} bytes, expected {BLOCK_LEN}")]
    Length {
        /// The length seen.
        len: usize,
    },
    /// `fmt_version` is not 1.
    #[error("unsupported metadata format version {0} (expected {METADATA_FMT_VERSION})")]
    FmtVersion(u64),
    /// The realm id is empty.
    #[error("realm id is empty")]
    RealmIdEmpty,
    /// The realm id is longer than [`REALM_ID_MAX`].
    #[error("realm id is {len} bytes, at most {REALM_ID_MAX} allowed")]
    RealmIdTooLong {
        /// Its length.
        len: usize,
    },
    /// The realm id holds a byte that is not printable ASCII.
    #[error("realm id byte {at} (0x{byte:02x}) is not printable ASCII")]
    RealmIdNotAscii {
        /// Offset of the byte.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// Something other than NUL follows the realm id's terminating NUL.
    #[error("realm id field has non-NUL bytes after the terminating NUL")]
    RealmIdPadding,
    /// `hash_algo` is neither 1 (SHA-256) nor 2 (SHA-512).
    #[error("unknown hash algorithm {0} (1 = SHA-256, 2 = SHA-512)")]
    HashAlgo(u64),
    /// The RIM's length does not match the hash algorithm.
    #[error("RIM is {len} bytes, {algo} needs {expected}")]
    RimLength {
        /// Length given.
        len: usize,
        /// Digest length of the algorithm.
        expected: usize,
        /// The algorithm's name.
        algo: &'static str,
    },
    /// The RIM field has non-zero bytes beyond the digest.
    #[error("RIM field has non-zero bytes after the {digest_len}-byte digest")]
    RimPadding {
        /// Digest length of the algorithm.
        digest_len: usize,
    },
    /// The embedded public key is not a point on P-384.
    #[error("embedded public key is not a valid P-384 point")]
    PublicKey,
    /// The signature's `r` or `s` is zero or not below the group order.
    #[error("signature is not a valid P-384 (r, s) pair")]
    SignatureEncoding,
    /// The signature does not verify with the embedded key: the block was
    /// altered or signed by another key.
    #[error("signature does not verify against the embedded public key")]
    BadSignature,
    /// The block is validly signed, but by a key other than the trusted
    /// vendor key.
    #[error("block is signed by a key other than the trusted vendor key")]
    UntrustedKey,
}

/// The block's hash algorithm encoding (metadata uses 1/2, not RMI's 0/1).
pub const fn hash_algo_to_metadata(algo: HashAlgo) -> u64 {
    match algo {
        HashAlgo::Sha256 => metadata_hash_algo::SHA_256,
        HashAlgo::Sha512 => metadata_hash_algo::SHA_512,
    }
}

/// Decodes the block's hash algorithm encoding.
pub const fn hash_algo_from_metadata(v: u64) -> Option<HashAlgo> {
    match v {
        metadata_hash_algo::SHA_256 => Some(HashAlgo::Sha256),
        metadata_hash_algo::SHA_512 => Some(HashAlgo::Sha512),
        _ => None,
    }
}

/// A validated realm id: 1..=127 bytes of printable ASCII.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RealmId {
    len: u8,
    field: [u8; REALM_ID_FIELD_LEN],
}

impl RealmId {
    /// Validates `id` (see the crate rules).
    pub fn new(id: &str) -> Result<Self, MetadataError> {
        Self::from_bytes(id.as_bytes())
    }

    /// Validates raw id bytes (no padding).
    pub fn from_bytes(id: &[u8]) -> Result<Self, MetadataError> {
        if id.is_empty() {
            return Err(MetadataError::RealmIdEmpty);
        }
        if id.len() > REALM_ID_MAX {
            return Err(MetadataError::RealmIdTooLong { len: id.len() });
        }
        if let Some(at) = id.iter().position(|b| !(0x20..=0x7e).contains(b)) {
            return Err(MetadataError::RealmIdNotAscii { at, byte: id[at] });
        }
        let mut field = [0u8; REALM_ID_FIELD_LEN];
        field[..id.len()].copy_from_slice(id);
        Ok(Self {
            len: id.len() as u8,
            field,
        })
    }

    /// Parses the NUL-padded field of a block.
    pub fn from_field(field: &[u8; REALM_ID_FIELD_LEN]) -> Result<Self, MetadataError> {
        let len = field
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(REALM_ID_FIELD_LEN);
        if field[len..].iter().any(|&b| b != 0) {
            return Err(MetadataError::RealmIdPadding);
        }
        Self::from_bytes(&field[..len])
    }

    /// The id without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.field[..usize::from(self.len)]
    }

    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        // Only printable ASCII is ever stored, which is valid UTF-8.
        core::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The NUL-padded field as it sits in a block.
    pub fn field(&self) -> &[u8; REALM_ID_FIELD_LEN] {
        &self.field
    }
}

impl fmt::Debug for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for RealmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A RIM with its algorithm: exactly one digest, kept zero-padded to 64
/// bytes as in the block and in the measurement service's slots.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rim {
    algo: HashAlgo,
    padded: [u8; RIM_FIELD_LEN],
}

impl Rim {
    /// A RIM of `algo` from either the bare digest (`digest_len` bytes) or
    /// its zero-padded 64-byte slot form. Anything else is refused: a RIM
    /// of the wrong length would never match the realm's real one.
    pub fn new(algo: HashAlgo, rim: &[u8]) -> Result<Self, MetadataError> {
        let digest_len = algo.digest_len();
        let mut padded = [0u8; RIM_FIELD_LEN];
        if rim.len() == digest_len {
            padded[..digest_len].copy_from_slice(rim);
        } else if rim.len() == RIM_FIELD_LEN {
            if rim[digest_len..].iter().any(|&b| b != 0) {
                return Err(MetadataError::RimPadding { digest_len });
            }
            padded.copy_from_slice(rim);
        } else {
            return Err(MetadataError::RimLength {
                len: rim.len(),
                expected: digest_len,
                algo: algo.name(),
            });
        }
        Ok(Self { algo, padded })
    }

    /// The hash algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The digest without padding.
    pub fn digest(&self) -> &[u8] {
        &self.padded[..self.algo.digest_len()]
    }

    /// The zero-padded 64-byte form.
    pub fn padded(&self) -> &[u8; RIM_FIELD_LEN] {
        &self.padded
    }
}

impl fmt::Debug for Rim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.algo.name())?;
        for b in self.digest() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A realm's version, as the vendor numbers its releases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The vendor-chosen content of a block: everything but the key and the
/// signature. Every field is valid by construction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Metadata {
    /// Realm id.
    pub realm_id: RealmId,
    /// Expected RIM and its hash algorithm.
    pub rim: Rim,
    /// Security version number: the highest SVN the realm may derive
    /// sealing keys for.
    pub svn: u64,
    /// Release version (informational).
    pub version: Version,
}

impl Metadata {
    /// The unsigned block with `public_key` filled in and a zero signature.
    pub fn to_unsigned_block(&self, public_key: &PublicKey) -> RealmMetadata {
        let mut b = RealmMetadata::new_zeroed();
        b.fmt_version = METADATA_FMT_VERSION;
        b.realm_id = *self.realm_id.field();
        b.rim = *self.rim.padded();
        b.hash_algo = hash_algo_to_metadata(self.rim.algo());
        b.svn = self.svn;
        b.version_major = self.version.major;
        b.version_minor = self.version.minor;
        b.version_patch = self.version.patch;
        b.public_key = public_key.0;
        b
    }

    /// Validates the fields of a decoded block (everything but the key and
    /// the signature).
    pub fn from_block(b: &RealmMetadata) -> Result<Self, MetadataError> {
        if b.fmt_version != METADATA_FMT_VERSION {
            return Err(MetadataError::FmtVersion(b.fmt_version));
        }
        let realm_id = RealmId::from_field(&b.realm_id)?;
        let algo =
            hash_algo_from_metadata(b.hash_algo).ok_or(MetadataError::HashAlgo(b.hash_algo))?;
        let rim = Rim::new(algo, &b.rim)?;
        Ok(Self {
            realm_id,
            rim,
            svn: b.svn,
            version: Version {
                major: b.version_major,
                minor: b.version_minor,
                patch: b.version_patch,
            },
        })
    }
}

/// A raw `x || y` P-384 public key as stored in a block.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// The raw form of `key`.
    pub fn from_verifying_key(key: &VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let mut raw = [0u8; PUBLIC_KEY_LEN];
        // An uncompressed SEC1 point is 0x04 || x || y.
        raw.copy_from_slice(&point.as_bytes()[1..]);
        Self(raw)
    }

    /// The key as a curve point, refusing anything not on P-384.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, MetadataError> {
        let mut sec1 = [0u8; 1 + PUBLIC_KEY_LEN];
        sec1[0] = 0x04;
        sec1[1..].copy_from_slice(&self.0);
        VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| MetadataError::PublicKey)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// A block decoded and its fields validated, signature not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedMetadata {
    /// The validated fields.
    pub metadata: Metadata,
    /// The embedded key, raw (not yet checked to be on the curve).
    pub public_key: PublicKey,
    /// The raw signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Decodes a block and validates its format and fields. Does not check the
/// key or the signature: use [`verify`] before trusting anything in it.
pub fn parse(bytes: &[u8]) -> Result<ParsedMetadata, MetadataError> {
    let block = RealmMetadata::read_from_bytes(bytes)
        .map_err(|_| MetadataError::Length { len: bytes.len() })?;
    Ok(ParsedMetadata {
        metadata: Metadata::from_block(&block)?,
        public_key: PublicKey(block.public_key),
        signature: block.signature,
    })
}

/// Builds and signs a block: ECDSA P-384/SHA-384 over bytes `0..0x150`,
/// deterministic (RFC 6979) and normalised to low S, so the same inputs
/// always give the same block.
pub fn sign(metadata: &Metadata, key: &SigningKey) -> [u8; BLOCK_LEN] {
    let public_key = PublicKey::from_verifying_key(key.verifying_key());
    let mut block = metadata.to_unsigned_block(&public_key);
    let sig: Signature = key.sign(&block.as_bytes()[..METADATA_SIGNED_LEN]);
    let sig = sig.normalize_s().unwrap_or(sig);
    block.signature.copy_from_slice(&sig.to_bytes());
    let mut out = [0u8; BLOCK_LEN];
    out.copy_from_slice(block.as_bytes());
    out
}

/// What a block's key is checked against.
#[derive(Clone, Copy, Debug)]
pub enum TrustAnchor<'a> {
    /// Only that the block is signed by the key it carries (upstream
    /// behaviour): proves integrity, not who the vendor is.
    EmbeddedKeyOnly,
    /// The embedded key must also be this vendor key.
    VendorKey(&'a VerifyingKey),
}

/// Which trust check a verified block passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Signed by its embedded key; the key itself was not checked.
    EmbeddedKeyOnly,
    /// Signed by its embedded key, which is the trusted vendor key.
    VendorKey,
}

/// A block that passed [`verify`].
#[derive(Clone, Debug)]
pub struct VerifiedMetadata {
    /// The validated fields.
    pub metadata: Metadata,
    /// The vendor key that signed it, raw.
    pub public_key: PublicKey,
    /// The same key as a curve point.
    pub verifying_key: VerifyingKey,
    /// What the key was checked against.
    pub trust: Trust,
    /// Whether the signature was in low-S form (see the crate docs).
    pub low_s: bool,
}

/// Verifies a block: length and format, every field, that the embedded key
/// is a P-384 point, the signature over bytes `0..0x150` against that key,
/// and, with [`TrustAnchor::VendorKey`], that the key is the vendor's.
pub fn verify(bytes: &[u8], anchor: TrustAnchor<'_>) -> Result<VerifiedMetadata, MetadataError> {
    let parsed = parse(bytes)?;
    let verifying_key = parsed.public_key.to_verifying_key()?;
    let sig =
        Signature::from_slice(&parsed.signature).map_err(|_| MetadataError::SignatureEncoding)?;
    verifying_key
        .verify(&bytes[..METADATA_SIGNED_LEN], &sig)
        .map_err(|_| MetadataError::BadSignature)?;
    let trust = match anchor {
        TrustAnchor::EmbeddedKeyOnly => Trust::EmbeddedKeyOnly,
        TrustAnchor::VendorKey(vendor) if *vendor == verifying_key => Trust::VendorKey,
        TrustAnchor::VendorKey(_) => return Err(MetadataError::UntrustedKey),
    };
    Ok(VerifiedMetadata {
        metadata: parsed.metadata,
        public_key: parsed.public_key,
        verifying_key,
        trust,
        low_s: sig.normalize_s().is_none(),
    })
}

#[cfg(test)]
mod tests;
