//! The layer below the realm sealing key, for the app-manager inside a
//! realm (DESIGN.md, "Trust and keys"):
//!
//! ```text
//! realm sealing key (RSI_ISLET_REALM_SEALING_KEY)
//!  ├── image key    = HKDF(realm key, app name)                 -- image partition
//!  └── application key = HKDF(realm key, vendor identity [, config hash])
//!       └── storage key = HKDF(application key, storage name)   -- e.g. "data"
//! ```
//!
//! All are HKDF-SHA256 with the encoding of [`crate::derive`] (fixed salt,
//! `info` = tagged, `u16`-LE-length-prefixed fields):
//!
//! | key | salt | info fields |
//! |---|---|---|
//! | application | [`APPLICATION_SALT`] | 0x01 vendor identity; 0x02 config hash (only if given) |
//! | storage | [`STORAGE_SALT`] | 0x01 storage name |
//! | image | [`IMAGE_SALT`] | 0x01 application name |
//!
//! The vendor identity is the vendor's public key in a canonical encoding
//! (e.g. SEC1 uncompressed): not the CA's signature over it, as upstream
//! does, because a signature is malleable and is re-issued when the CA
//! re-signs, and either would lose the vendor's data. Mixing in the image
//! config hash binds the data to one exact image (for realms sealing with
//! the measurement-bound flags); leaving it out lets an update signed by the
//! same vendor keep its data. The image partition key sits under the realm
//! key, not the application key, because the partition is opened before the
//! image (and so its vendor) has been fetched and verified.

use crate::derive::{DerivedKey, Info};

/// Salt of the application key derivation.
pub const APPLICATION_SALT: &[u8] = b"atoll/app-manager/application-key/v1";
/// Salt of storage key derivations.
pub const STORAGE_SALT: &[u8] = b"atoll/app-manager/storage-key/v1";
/// Salt of the image partition key derivation.
pub const IMAGE_SALT: &[u8] = b"atoll/app-manager/image-key/v1";

/// Why an application-level key was not derived.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppKeyError {
    /// An input is empty: an empty vendor identity or name would let
    /// unrelated applications share a key.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// An input is longer than the encoding's 65535-byte field limit.
    #[error("{0} is longer than 65535 bytes")]
    TooLong(&'static str),
}

fn check(what: &'static str, value: &[u8]) -> Result<(), AppKeyError> {
    if value.is_empty() {
        return Err(AppKeyError::Empty(what));
    }
    if value.len() > usize::from(u16::MAX) {
        return Err(AppKeyError::TooLong(what));
    }
    Ok(())
}

/// The application key: what an application's data is ultimately sealed
/// to. Same realm key and vendor identity (and config hash, if used) give
/// the same key on every boot and after updates.
pub fn application_key(
    realm_key: &DerivedKey,
    vendor_identity: &[u8],
    config_hash: Option<&[u8]>,
) -> Result<DerivedKey, AppKeyError> {
    check("vendor identity", vendor_identity)?;
    let mut info = Info::new();
    info.field(0x01, vendor_identity);
    if let Some(hash) = config_hash {
        check("config hash", hash)?;
        info.field(0x02, hash);
    }
    info.try_derive(&realm_key.0, APPLICATION_SALT)
        .ok_or(AppKeyError::TooLong("inputs"))
}

/// A storage key below an application key, one per purpose (`"data"` for
/// the data partition, or a file name for sealed files).
pub fn storage_key(app_key: &DerivedKey, name: &[u8]) -> Result<DerivedKey, AppKeyError> {
    check("storage name", name)?;
    let mut info = Info::new();
    info.field(0x01, name);
    info.try_derive(&app_key.0, STORAGE_SALT)
        .ok_or(AppKeyError::TooLong("storage name"))
}

/// The key of an application's image partition, below the realm key.
pub fn image_key(realm_key: &DerivedKey, app_name: &[u8]) -> Result<DerivedKey, AppKeyError> {
    check("application name", app_name)?;
    let mut info = Info::new();
    info.field(0x01, app_name);
    info.try_derive(&realm_key.0, IMAGE_SALT)
        .ok_or(AppKeyError::TooLong("application name"))
}
