//! Keys and sealed partitions for an application's storage.
//!
//! # Keys
//!
//! ```text
//! realm sealing key (from the RMM)
//!   -> AppKey     = HKDF-SHA256(ikm: realm sealing key,
//!                     info: "atoll app key v1" | len | vendor SPKI | len | root SPKI
//!                           [| "config" | config hash])
//!        -> image key      = HKDF(app key, "atoll image key v1")
//!        -> data key(name) = HKDF(app key, "atoll data key v1" | name)
//! ```
//!
//! The vendor is identified by its public key and the public key of the
//! root that certified it, not by a certificate: a renewed certificate for
//! the same key keeps the data; another vendor, another realm (another
//! sealing key) or, with a config hash, another build gets other keys.
//!
//! # Sealed partitions
//!
//! A partition file holds one stream (in practice a tar of a directory
//! tree) encrypted with AES-256-GCM in the STREAM construction, so
//! truncation, reordering, bit flips and appended bytes are all detected.
//! The byte layout is in the README. Files are written beside their final
//! name and renamed over it only on [`SealedWriter::commit`]: a crash or an
//! error leaves the previous partition as it was.
#![forbid(unsafe_code)]

mod stream;

use std::path::Path;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use stream::{SealedReader, SealedWriter, CHUNK_SIZE, HEADER_LEN, MAGIC};

/// Why a partition could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The file was sealed under another key (another realm, vendor,
    /// application or partition).
    #[error("the partition was sealed with another key")]
    WrongKey,
    /// The file is for another partition label.
    #[error("the partition is labelled {found:?}, not {expected:?}")]
    WrongLabel {
        /// Expected label.
        expected: String,
        /// Found label.
        found: String,
    },
    /// Not a sealed partition, or an unknown version.
    #[error("not a sealed partition: {0}")]
    BadHeader(String),
    /// A chunk failed authentication (tampering or corruption).
    #[error("the partition is corrupt or was tampered with (chunk {0} does not authenticate)")]
    Corrupt(u32),
    /// The file ends before its last chunk.
    #[error("the partition is truncated")]
    Truncated,
    /// Bytes follow the last chunk.
    #[error("the partition has bytes after its last chunk")]
    TrailingData,
    /// Unpacking the sealed tree failed.
    #[error(transparent)]
    Unpack(#[from] atoll_oci_unpack::UnpackError),
    /// File system errors.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

impl SealError {
    /// Recovers a `SealError` carried through an `io::Error`.
    pub fn from_io(e: std::io::Error, context: &str) -> Self {
        if e.get_ref().is_some_and(|i| i.is::<SealError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(s) = inner.downcast::<SealError>() {
                    return *s;
                }
            }
            return SealError::Io {
                context: context.into(),
                source: std::io::Error::other("lost error"),
            };
        }
        SealError::Io {
            context: context.into(),
            source: e,
        }
    }
}

/// A vendor as keys are bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorIdentity {
    /// The vendor certificate's SubjectPublicKeyInfo (DER).
    pub vendor_spki: Vec<u8>,
    /// The SubjectPublicKeyInfo of the root CA that certified it.
    pub root_spki: Vec<u8>,
}

/// A 256-bit key, wiped when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PartitionKey([u8; 32]);

impl PartitionKey {
    /// Wraps raw key bytes (tests, benchmarks).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for PartitionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PartitionKey(..)")
    }
}

fn expand(ikm: &[u8], salt: Option<&[u8]>, info: &[&[u8]]) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(salt, ikm);
    let mut out = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    hk.expand_multi_info(info, &mut out)
        .unwrap_or_else(|_| unreachable!("32-byte HKDF output"));
    out
}

fn len_prefixed(bytes: &[u8]) -> [u8; 4] {
    (bytes.len() as u32).to_be_bytes()
}

/// An application's key: the root of its storage keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AppKey([u8; 32]);

impl AppKey {
    /// Derives the application key from the realm sealing key and the
    /// vendor; with `config_hash`, the key is also bound to that build of
    /// the application (an update then cannot open the old data).
    pub fn derive(
        realm_sealing_key: &[u8; 32],
        vendor: &VendorIdentity,
        config_hash: Option<&[u8; 32]>,
    ) -> Self {
        let vlen = len_prefixed(&vendor.vendor_spki);
        let rlen = len_prefixed(&vendor.root_spki);
        let mut info: Vec<&[u8]> = vec![
            b"atoll app key v1",
            &vlen,
            &vendor.vendor_spki,
            &rlen,
            &vendor.root_spki,
        ];
        if let Some(h) = config_hash {
            info.push(b"config");
            info.push(h);
        }
        Self(expand(realm_sealing_key, None, &info))
    }

    /// The key of the image partition.
    pub fn image_key(&self) -> PartitionKey {
        PartitionKey(expand(&self.0, None, &[b"atoll image key v1"]))
    }

    /// The key of application `name`'s data partition.
    pub fn data_key(&self, name: &str) -> PartitionKey {
        PartitionKey(expand(
            &self.0,
            None,
            &[b"atoll data key v1", name.as_bytes()],
        ))
    }
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppKey(..)")
    }
}

/// Seals the directory tree `src` into the partition file `path`
/// (replacing it atomically), within `limits` as [`unseal_dir`] will apply
/// them: a tree that would not unseal again is refused and `path` keeps
/// its old content.
pub fn seal_dir(
    src: &Path,
    path: &Path,
    key: &PartitionKey,
    label: &str,
    limits: &atoll_oci_unpack::Limits,
) -> Result<(), SealError> {
    let mut writer = SealedWriter::create(path, key, label)?;
    atoll_oci_unpack::pack_dir(src, &mut writer, limits).map_err(from_unpack)?;
    writer.commit()
}

/// An I/O failure as the store reports its own; anything else as the
/// unpacker's error.
fn from_unpack(e: atoll_oci_unpack::UnpackError) -> SealError {
    match e {
        atoll_oci_unpack::UnpackError::Io { context, source } => {
            SealError::from_io(source, &context)
        }
        other => SealError::Unpack(other),
    }
}

/// Unseals the partition file `path` into the new directory `dest`, with
/// the unpacker's checks and `limits`; on any error `dest` is not created.
pub fn unseal_dir(
    path: &Path,
    key: &PartitionKey,
    label: &str,
    dest: &Path,
    limits: &atoll_oci_unpack::Limits,
) -> Result<(), SealError> {
    let reader = SealedReader::open(path, key, label)?;
    let slot = reader.error_slot();
    let result = atoll_oci_unpack::unpack_tar(
        std::io::BufReader::with_capacity(1 << 20, reader),
        dest,
        limits,
    );
    // The reader's own typed error wins over however the tar layer
    // wrapped it.
    if let Some(e) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
        let _ = std::fs::remove_dir_all(dest)
            .ok()
            .filter(|_| result.is_ok());
        return Err(e);
    }
    result.map(|_| ()).map_err(from_unpack)
}

#[cfg(test)]
mod tests;
