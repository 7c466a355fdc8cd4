//! The sealed-data envelope: what [`crate::Sdk::seal`] produces and
//! [`crate::Sdk::unseal`] accepts.
//!
//! ```text
//! offset size field
//!  0      4   magic      "ASLD"
//!  4      1   version    1
//!  5      3   reserved   zero
//!  8      8   flags      little-endian sealing-key flags (RSI_ISLET_REALM_SEALING_KEY x1)
//! 16      8   svn        little-endian SVN the key was derived with (x2)
//! 24     12   nonce      random, per envelope
//! 36      n   ciphertext AES-256-GCM of the data
//! 36+n   16   tag        GCM tag over the ciphertext and bytes 0..24 as associated data
//! ```
//!
//! The header says how to re-derive the key (flags, svn), so unsealing
//! needs nothing but the envelope and the same realm; binding the header
//! as associated data means an attacker who rewrites the flags or SVN
//! (to steer the realm to another key) makes the tag fail.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

/// First four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"ASLD";
/// The envelope version this crate writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = 36;
/// Bytes of the associated data (magic, version, reserved, flags, svn).
const AAD_LEN: usize = 24;
/// Bytes of the GCM tag.
pub const TAG_LEN: usize = 16;
/// Bytes an envelope adds to the data.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Why an envelope was refused or could not be made.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than a header and a tag.
    #[error("sealed data truncated")]
    Truncated,
    /// Not an Atoll sealed envelope.
    #[error("not a sealed envelope (bad magic)")]
    BadMagic,
    /// Written by a version this crate does not read.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// Reserved header bytes set.
    #[error("reserved envelope bytes are not zero")]
    ReservedNotZero,
    /// The tag does not match: wrong key (another realm, vendor or SVN),
    /// or the envelope was modified.
    #[error("sealed data failed authentication (wrong realm or key, or modified)")]
    Authentication,
    /// No randomness for the nonce.
    #[error("no random nonce available")]
    Random,
}

/// The header fields of an envelope.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sealing-key flags.
    pub flags: u64,
    /// SVN the key was derived with.
    pub svn: u64,
    /// The GCM nonce.
    pub nonce: [u8; 12],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = VERSION;
        h[8..16].copy_from_slice(&self.flags.to_le_bytes());
        h[16..24].copy_from_slice(&self.svn.to_le_bytes());
        h[24..36].copy_from_slice(&self.nonce);
        h
    }

    /// Parses and checks an envelope's header (not its tag).
    pub fn parse(sealed: &[u8]) -> Result<Self, EnvelopeError> {
        if sealed.len() < OVERHEAD {
            return Err(EnvelopeError::Truncated);
        }
        if sealed[..4] != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        if sealed[4] != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(sealed[4]));
        }
        if sealed[5..8] != [0; 3] {
            return Err(EnvelopeError::ReservedNotZero);
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&sealed[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&sealed[24..36]);
        Ok(Self {
            flags: word(8),
            svn: word(16),
            nonce,
        })
    }
}

/// Seals `data` under `key` with a fresh random nonce; `flags` and `svn`
/// are recorded (and authenticated) so the key can be re-derived.
pub fn seal_with_key(
    key: &[u8; 32],
    flags: u64,
    svn: u64,
    data: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; 12];
    getrandom::getrandom(&mut nonce).map_err(|_| EnvelopeError::Random)?;
    seal_with_nonce(key, flags, svn, nonce, data)
}

/// [`seal_with_key`] with a caller-chosen nonce: for known-answer tests
/// only; reusing a nonce under one key breaks GCM.
pub fn seal_with_nonce(
    key: &[u8; 32],
    flags: u64,
    svn: u64,
    nonce: [u8; 12],
    data: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let header = Header { flags, svn, nonce }.encode();
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: data,
                aad: &header[..AAD_LEN],
            },
        )
        .map_err(|_| EnvelopeError::Authentication)?;
    let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens an envelope with `key` (derived with the header's flags and SVN).
pub fn unseal_with_key(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let header = Header::parse(sealed)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key));
    cipher
        .decrypt(
            Nonce::from_slice(&header.nonce),
            Payload {
                msg: &sealed[HEADER_LEN..],
                aad: &sealed[..AAD_LEN],
            },
        )
        .map_err(|_| EnvelopeError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [0x42; 32];

    #[test]
    fn round_trip_and_layout() {
        let data = b"the realm's secret";
        let sealed = seal_with_nonce(&KEY, 0b0110, 7, [9; 12], data).unwrap();
        assert_eq!(sealed.len(), data.len() + OVERHEAD);
        assert_eq!(&sealed[..4], b"ASLD");
        assert_eq!(sealed[4], 1);
        assert_eq!(sealed[8..16], 0b0110u64.to_le_bytes());
        assert_eq!(sealed[16..24], 7u64.to_le_bytes());
        assert_eq!(sealed[24..36], [9; 12]);
        assert_ne!(&sealed[36..36 + data.len()], data);
        assert_eq!(unseal_with_key(&KEY, &sealed).unwrap(), data);
        let h = Header::parse(&sealed).unwrap();
        assert_eq!((h.flags, h.svn, h.nonce), (0b0110, 7, [9; 12]));
    }

    #[test]
    fn random_nonces_differ() {
        let a = seal_with_key(&KEY, 0, 0, b"x").unwrap();
        let b = seal_with_key(&KEY, 0, 0, b"x").unwrap();
        assert_ne!(a[24..36], b[24..36]);
        assert_eq!(unseal_with_key(&KEY, &a).unwrap(), b"x");
        assert_eq!(unseal_with_key(&KEY, &b).unwrap(), b"x");
    }

    #[test]
    fn every_modified_byte_is_refused() {
        let sealed = seal_with_nonce(&KEY, 2, 1, [3; 12], b"data!").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let err = unseal_with_key(&KEY, &bad).unwrap_err();
            let expected = match i {
                0..=3 => EnvelopeError::BadMagic,
                4 => EnvelopeError::UnsupportedVersion(0),
                5..=7 => EnvelopeError::ReservedNotZero,
                // flags, svn, nonce, ciphertext, tag: all authenticated.
                _ => EnvelopeError::Authentication,
            };
            assert_eq!(err, expected, "byte {i}");
        }
    }

    #[test]
    fn wrong_key_truncation_and_empty_data() {
        let sealed = seal_with_key(&KEY, 0, 0, b"").unwrap();
        assert_eq!(sealed.len(), OVERHEAD);
        assert_eq!(unseal_with_key(&KEY, &sealed).unwrap(), b"");
        assert_eq!(
            unseal_with_key(&[0x43; 32], &sealed),
            Err(EnvelopeError::Authentication)
        );
        assert_eq!(
            unseal_with_key(&KEY, &sealed[..OVERHEAD - 1]),
            Err(EnvelopeError::Truncated)
        );
    }
}
