//! Device secrets and the provisioning blob they are stored in.
//!
//! On silicon the HUK and GUK sit in fuses; here the host program keeps them
//! in a file. The blob format is this crate's, so the program that stores it
//! never interprets it:
//!
//! ```text
//! offset size
//!  0      8   magic "AHESPRV1"
//!  8     32   HUK  (hardware unique key: device-unique keys, RAK, VHUKs)
//! 40     32   GUK  (group unique key: the CPAK)
//! 72      4   CRC-32 (ISO-HDLC) of bytes 0..72, little-endian
//! ```

use ipc_schema::hes::crc32;
use zeroize::Zeroize;

/// Magic of a provisioning blob; the trailing digit is the format version.
pub const BLOB_MAGIC: [u8; 8] = *b"AHESPRV1";
/// Bytes of a provisioning blob.
pub const BLOB_LEN: usize = 76;
/// Bytes of each device secret.
pub const SECRET_LEN: usize = 32;

/// Why a provisioning blob was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// Not [`BLOB_LEN`] bytes.
    #[error("provisioning blob is {0} bytes, expected {BLOB_LEN}")]
    BadLength(usize),
    /// Does not start with [`BLOB_MAGIC`] (not a blob, or another version).
    #[error("provisioning blob has an unknown magic or format version")]
    BadMagic,
    /// The CRC does not match: the file is corrupted.
    #[error("provisioning blob checksum mismatch")]
    BadChecksum,
    /// A secret is all zeros: a blank device, never a provisioned one.
    #[error("provisioning blob holds an all-zero secret")]
    ZeroSecret,
}

/// The HES's root secrets. Wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceSecrets {
    huk: [u8; SECRET_LEN],
    guk: [u8; SECRET_LEN],
}

impl core::fmt::Debug for DeviceSecrets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print a secret, even in a debug log.
        f.write_str("DeviceSecrets(..)")
    }
}

impl Drop for DeviceSecrets {
    fn drop(&mut self) {
        self.huk.zeroize();
        self.guk.zeroize();
    }
}

impl DeviceSecrets {
    /// From the two secrets; refuses an all-zero one.
    pub fn new(huk: [u8; SECRET_LEN], guk: [u8; SECRET_LEN]) -> Result<Self, ProvisionError> {
        if huk == [0; SECRET_LEN] || guk == [0; SECRET_LEN] {
            return Err(ProvisionError::ZeroSecret);
        }
        Ok(Self { huk, guk })
    }

    /// Parses a provisioning blob, checking length, magic and CRC.
    pub fn from_blob(blob: &[u8]) -> Result<Self, ProvisionError> {
        let blob: &[u8; BLOB_LEN] = blob
            .try_into()
            .map_err(|_| ProvisionError::BadLength(blob.len()))?;
        if blob[..8] != BLOB_MAGIC {
            return Err(ProvisionError::BadMagic);
        }
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&blob[72..]);
        if crc32(&blob[..72]) != u32::from_le_bytes(crc) {
            return Err(ProvisionError::BadChecksum);
        }
        let mut huk = [0u8; SECRET_LEN];
        let mut guk = [0u8; SECRET_LEN];
        huk.copy_from_slice(&blob[8..40]);
        guk.copy_from_slice(&blob[40..72]);
        Self::new(huk, guk)
    }

    /// The blob to store. The caller must wipe it once written.
    pub fn to_blob(&self) -> [u8; BLOB_LEN] {
        let mut blob = [0u8; BLOB_LEN];
        blob[..8].copy_from_slice(&BLOB_MAGIC);
        blob[8..40].copy_from_slice(&self.huk);
        blob[40..72].copy_from_slice(&self.guk);
        let crc = crc32(&blob[..72]);
        blob[72..].copy_from_slice(&crc.to_le_bytes());
        blob
    }

    pub(crate) fn huk(&self) -> &[u8; SECRET_LEN] {
        &self.huk
    }

    pub(crate) fn guk(&self) -> &[u8; SECRET_LEN] {
        &self.guk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DeviceSecrets {
        DeviceSecrets::new([1; 32], [2; 32]).unwrap()
    }

    #[test]
    fn blob_roundtrip() {
        let blob = sample().to_blob();
        assert_eq!(DeviceSecrets::from_blob(&blob).unwrap(), sample());
    }

    #[test]
    fn blob_refuses_every_malformation() {
        let blob = sample().to_blob();
        assert_eq!(
            DeviceSecrets::from_blob(&blob[..75]),
            Err(ProvisionError::BadLength(75))
        );
        let mut longer = blob.to_vec();
        longer.push(0);
        assert_eq!(
            DeviceSecrets::from_blob(&longer),
            Err(ProvisionError::BadLength(77))
        );
        let mut bad = blob;
        bad[7] = b'2';
        assert_eq!(
            DeviceSecrets::from_blob(&bad),
            Err(ProvisionError::BadMagic)
        );
        for i in 8..BLOB_LEN {
            let mut bad = blob;
            bad[i] ^= 0x01;
            assert_eq!(
                DeviceSecrets::from_blob(&bad),
                Err(ProvisionError::BadChecksum),
                "byte {i}"
            );
        }
        let mut zero = [0u8; BLOB_LEN];
        zero[..8].copy_from_slice(&BLOB_MAGIC);
        let crc = crc32(&zero[..72]);
        zero[72..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            DeviceSecrets::from_blob(&zero),
            Err(ProvisionError::ZeroSecret)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        assert_eq!(format!("{:?}", sample()), "DeviceSecrets(..)");
    }
}
