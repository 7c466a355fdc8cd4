//! Key derivations: the realm sealing key (this service) and the layer
//! below it that the app-manager uses inside a realm ([`app`](crate::app)).
//!
//! Every derivation is HKDF-SHA256 with a fixed ASCII salt naming the
//! derivation and its version, and an `info` that is a sequence of fields
//!
//! ```text
//! field = tag: u8 || len: u16 little-endian || value: [u8; len]
//! ```
//!
//! in ascending tag order, absent fields omitted. Because every value is
//! length-prefixed and tagged, two different sets of inputs never produce
//! the same `info` (no `"ab" || "c"` vs `"a" || "bc"` confusion, and an
//! absent field differs from an empty one).
//!
//! # Realm sealing key
//!
//! * IKM: VHUK_A, or VHUK_M when flag bit 0 ([`sealing_flags::KEY_M`]) is set.
//! * salt: [`REALM_SEALING_SALT`].
//! * info fields:
//!
//! | tag | field | present when | value |
//! |---|---|---|---|
//! | 0x01 | flags | always | effective flags, u64 LE (the RIM bit forced on without metadata) |
//! | 0x02 | vendor key | the realm has metadata | raw `x \|\| y` P-384 key from the metadata, 96 bytes |
//! | 0x03 | realm id | flag bit 2 | the metadata's realm id, without NUL padding |
//! | 0x04 | hash algorithm | RIM mixed in | 1 byte: 1 SHA-256, 2 SHA-512 |
//! | 0x05 | RIM | RIM mixed in (flag bit 1, or no metadata) | the digest, 32 or 64 bytes |
//! | 0x06 | SVN | flag bit 3 | the requested SVN, u64 LE |
//!
//! * output: 32 bytes.
//!
//! The vendor key is always part of a realm-with-metadata's identity: that is
//! what makes a block forged with another key useless for opening the real
//! vendor's data, even though the RMM checks a block only against its own
//! key.

use atoll_metadata::{hash_algo_to_metadata, Metadata, PublicKey, Rim};
use core::fmt;
use hkdf::Hkdf;
use ipc_schema::islet::sealing_flags;
use sha2::Sha256;

/// Salt of the realm sealing key derivation.
pub const REALM_SEALING_SALT: &[u8] = b"atoll/keys/realm-sealing-key/v1";

/// Info tags of the realm sealing key derivation.
pub mod tag {
    /// Effective flags.
    pub const FLAGS: u8 = 0x01;
    /// Vendor public key.
    pub const VENDOR_KEY: u8 = 0x02;
    /// Realm id.
    pub const REALM_ID: u8 = 0x03;
    /// RIM hash algorithm.
    pub const HASH_ALGO: u8 = 0x04;
    /// RIM digest.
    pub const RIM: u8 = 0x05;
    /// SVN.
    pub const SVN: u8 = 0x06;
}

/// Size of every derived key.
pub const KEY_LEN: usize = 32;

/// A derived 32-byte key. `Debug` does not print it, so keys do not end up
/// in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct DerivedKey(pub [u8; KEY_LEN]);

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

/// The two VHUKs the HES provisions.
#[derive(Clone)]
pub struct Vhuks {
    /// Signer-bound.
    pub a: [u8; KEY_LEN],
    /// Measurement-bound.
    pub m: [u8; KEY_LEN],
}

impl fmt::Debug for Vhuks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vhuks(..)")
    }
}

/// Why a sealing key was not derived.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    /// Bits outside the four defined flags.
    #[error("undefined sealing flag bits {0:#x}")]
    UndefinedFlags(u64),
    /// The realm id or SVN flag without metadata to take them from.
    #[error("sealing flags need realm metadata, and the realm has none")]
    NoMetadata,
    /// The SVN asked for is above the metadata's.
    #[error("SVN {requested} is above the metadata's SVN {allowed}")]
    SvnTooHigh {
        /// Asked for.
        requested: u64,
        /// The metadata's.
        allowed: u64,
    },
    /// The realm's hash algorithm is not the metadata's.
    #[error("the realm's hash algorithm differs from its metadata's")]
    AlgoMismatch,
    /// An input did not fit the info encoding. Cannot happen with inputs
    /// of the types taken here (at most six fields, none over 127 bytes);
    /// an error rather than a panic or a weak key if that ever changes.
    #[error("sealing inputs do not fit the derivation encoding")]
    Encoding,
}

/// The realm's identity for sealing: its verified metadata.
#[derive(Clone, Copy, Debug)]
pub struct RealmIdentity<'a> {
    /// The vendor key that signed the metadata.
    pub vendor_key: &'a PublicKey,
    /// The metadata's fields.
    pub metadata: &'a Metadata,
}

/// Derives a realm sealing key as documented in the module docs, enforcing
/// `RSI_ISLET_REALM_SEALING_KEY`'s rules: only the four defined flags, an
/// SVN no higher than the metadata's, realm id and SVN only with metadata,
/// and the RIM always mixed in without metadata.
pub fn realm_sealing_key(
    vhuks: &Vhuks,
    flags: u64,
    svn: u64,
    rim: &Rim,
    identity: Option<RealmIdentity<'_>>,
) -> Result<DerivedKey, SealingError> {
    if flags & !sealing_flags::MASK != 0 {
        return Err(SealingError::UndefinedFlags(flags & !sealing_flags::MASK));
    }
    let mut effective = flags;
    if let Some(id) = identity {
        if id.metadata.rim.algo() != rim.algo() {
            return Err(SealingError::AlgoMismatch);
        }
        if flags & sealing_flags::SVN != 0 && svn > id.metadata.svn {
            return Err(SealingError::SvnTooHigh {
                requested: svn,
                allowed: id.metadata.svn,
            });
        }
    } else {
        if flags & (sealing_flags::REALM_ID | sealing_flags::SVN) != 0 {
            return Err(SealingError::NoMetadata);
        }
        // Without a vendor identity the binary itself is the identity.
        effective |= sealing_flags::RIM;
    }

    let ikm = if effective & sealing_flags::KEY_M != 0 {
        &vhuks.m
    } else {
        &vhuks.a
    };
    let flags_le = effective.to_le_bytes();
    let svn_le = svn.to_le_bytes();
    let algo = [hash_algo_to_metadata(rim.algo()) as u8];
    let with = |flag: u64| effective & flag != 0;

    let mut info = Info::new();
    info.field(tag::FLAGS, &flags_le);
    if let Some(id) = identity {
        info.field(tag::VENDOR_KEY, &id.vendor_key.0);
        if with(sealing_flags::REALM_ID) {
            info.field(tag::REALM_ID, id.metadata.realm_id.as_bytes());
        }
    }
    if with(sealing_flags::RIM) {
        info.field(tag::HASH_ALGO, &algo);
        info.field(tag::RIM, rim.digest());
    }
    if with(sealing_flags::SVN) {
        info.field(tag::SVN, &svn_le);
    }
    info.try_derive(ikm, REALM_SEALING_SALT)
        .ok_or(SealingError::Encoding)
}

/// Most fields any derivation here uses.
const MAX_FIELDS: usize = 6;

/// An HKDF `info` being assembled from tagged, length-prefixed fields,
/// without copying or allocating: the headers live here and the values are
/// borrowed, and HKDF reads them in order.
pub(crate) struct Info<'a> {
    headers: [[u8; 3]; MAX_FIELDS],
    values: [&'a [u8]; MAX_FIELDS],
    n: usize,
    /// A value longer than `u16::MAX`, or too many fields, was given: the
    /// encoding would be ambiguous, so [`Info::try_derive`] refuses.
    overflow: bool,
}

impl<'a> Info<'a> {
    pub(crate) fn new() -> Self {
        Self {
            headers: [[0; 3]; MAX_FIELDS],
            values: [&[]; MAX_FIELDS],
            n: 0,
            overflow: false,
        }
    }

    /// Appends `tag || len || value`.
    pub(crate) fn field(&mut self, tag: u8, value: &'a [u8]) {
        let (Ok(len), Some(h), Some(v)) = (
            u16::try_from(value.len()),
            self.headers.get_mut(self.n),
            self.values.get_mut(self.n),
        ) else {
            self.overflow = true;
            return;
        };
        let len = len.to_le_bytes();
        *h = [tag, len[0], len[1]];
        *v = value;
        self.n += 1;
    }

    /// HKDF-SHA256 to 32 bytes; `None` if a field did not fit the encoding.
    pub(crate) fn try_derive(&self, ikm: &[u8], salt: &[u8]) -> Option<DerivedKey> {
        if self.overflow {
            return None;
        }
        let mut parts: [&[u8]; 2 * MAX_FIELDS] = [&[]; 2 * MAX_FIELDS];
        for i in 0..self.n {
            parts[2 * i] = &self.headers[i];
            parts[2 * i + 1] = self.values[i];
        }
        let mut okm = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(Some(salt), ikm)
            .expand_multi_info(&parts[..2 * self.n], &mut okm)
            .ok()?;
        Some(DerivedKey(okm))
    }
}
