//! The application's keys, per DESIGN.md's layering:
//!
//! ```text
//! realm sealing key (RSI_ISLET_REALM_SEALING_KEY, realm-id bound, VHUK_A)
//!   -> application key = HKDF(realm sealing key, vendor key, root key)
//!        -> image key          (the sealed image partition)
//!        -> data key(app name) (the sealed data partition)
//! ```
//!
//! The vendor, not the binary, is in the derivation: an update signed by
//! the same vendor opens the same data; another vendor's application, or
//! the same application in another realm, cannot.

use std::path::Path;
use std::time::SystemTime;

use atoll_sealed_store::{AppKey, PartitionKey, VendorIdentity};
use x509_cert::Certificate;

use crate::disk::{Disk, VENDOR};
use crate::error::AppError;
use crate::realm::Realm;
use crate::trust::TrustBundle;

/// Label of the image partition.
pub const IMAGE_LABEL: &str = "image";
/// Label of the data partition.
pub const DATA_LABEL: &str = "data";

/// A vendor, as keys are bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vendor {
    /// The vendor certificate's SubjectPublicKeyInfo (DER).
    pub spki: Vec<u8>,
    /// The certifying root's SubjectPublicKeyInfo (DER).
    pub root_spki: Vec<u8>,
    /// The vendor certificate's subject, for messages.
    pub subject: String,
}

impl Vendor {
    /// Whether `other` is the same vendor as far as keys go: the same
    /// vendor key certified by the same root key.
    pub fn same_key(&self, other: &Vendor) -> bool {
        self.spki == other.spki && self.root_spki == other.root_spki
    }
}

/// The vendor recorded on a disk, with its chain re-verified against the
/// realm's trust bundle (`None`: nothing installed).
///
/// The chain is checked as of the latest `notBefore` in it (signatures,
/// CA constraints, the anchor), not against today's date: it was checked
/// against the date when it was installed, and it now only names the
/// vendor whose keys seal the disk. An installed application keeps running
/// after its vendor certificate expires, and a renewed certificate for the
/// same key can replace it.
pub fn stored_vendor(disk: &Disk, bundle: &TrustBundle) -> Result<Option<Vendor>, AppError> {
    let path = disk.path(VENDOR);
    let pem = match std::fs::read_to_string(&path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AppError::Storage(format!("{}: {e}", path.display()))),
    };
    let chain = Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| AppError::Storage(format!("{}: {e}", path.display())))?;
    let as_of = chain
        .iter()
        .map(|c| c.tbs_certificate.validity.not_before.to_system_time())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let root_index = atoll_signing::cert::verify_chain(&chain, &bundle.vendor_roots, as_of)
        .map_err(|e| {
            AppError::Verify(format!(
                "the vendor chain on the disk ({}) is not trusted by this realm: {e}",
                path.display()
            ))
        })?;
    crate::install::vendor_identity(&chain, &bundle.vendor_roots[root_index]).map(Some)
}

/// An application's storage keys.
pub struct AppKeys {
    image: PartitionKey,
    data: PartitionKey,
}

impl AppKeys {
    /// Derives the keys of application `name` from `vendor` and the realm
    /// sealing key.
    pub fn derive(realm: &dyn Realm, vendor: &Vendor, name: &str) -> Result<Self, AppError> {
        let sealing = realm.sealing_key()?;
        let app = AppKey::derive(
            &sealing,
            &VendorIdentity {
                vendor_spki: vendor.spki.clone(),
                root_spki: vendor.root_spki.clone(),
            },
            None,
        );
        Ok(Self {
            image: app.image_key(),
            data: app.data_key(name),
        })
    }

    /// Seals the directory `tree` as the image partition at `path`, if it
    /// fits the partition's `limit` (tar stream bytes, as unsealing counts).
    pub fn seal_image(&self, tree: &Path, path: &Path, limit: u64) -> Result<(), AppError> {
        seal(tree, path, &self.image, IMAGE_LABEL, limit)
    }

    /// Unseals the image partition at `path` into `dest` (created).
    pub fn unseal_image(&self, path: &Path, dest: &Path, limit: u64) -> Result<(), AppError> {
        atoll_sealed_store::unseal_dir(path, &self.image, IMAGE_LABEL, dest, &limits(limit))
            .map_err(|e| AppError::Storage(e.to_string()))
    }

    /// Seals the directory `tree` as the data partition at `path`, if it
    /// fits the partition's `limit`.
    pub fn seal_data(&self, tree: &Path, path: &Path, limit: u64) -> Result<(), AppError> {
        seal(tree, path, &self.data, DATA_LABEL, limit)
    }

    /// Unseals the data partition at `path` into `dest` (created).
    pub fn unseal_data(&self, path: &Path, dest: &Path, limit: u64) -> Result<(), AppError> {
        atoll_sealed_store::unseal_dir(path, &self.data, DATA_LABEL, dest, &limits(limit))
            .map_err(|e| AppError::Storage(e.to_string()))
    }
}

/// The same limits for sealing and unsealing a partition, so that whatever
/// was sealed can be unsealed.
fn limits(partition_bytes: u64) -> atoll_oci_unpack::Limits {
    atoll_oci_unpack::Limits {
        max_total_bytes: partition_bytes,
        ..Default::default()
    }
}

fn seal(
    tree: &Path,
    path: &Path,
    key: &PartitionKey,
    label: &str,
    limit: u64,
) -> Result<(), AppError> {
    atoll_sealed_store::seal_dir(tree, path, key, label, &limits(limit)).map_err(|e| match e {
        atoll_sealed_store::SealError::Unpack(u) => AppError::Storage(format!(
            "the {label} partition would not fit its limits (it could not be unsealed again): {u}"
        )),
        e => AppError::Storage(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_signing::cert::{create_root, issue_vendor, to_pem, ValidityPeriod};
    use std::time::Duration;
    use x509_cert::der::Encode;

    const DAY: Duration = Duration::from_secs(86_400);

    fn bundle_and_disk(
        vendor_validity: ValidityPeriod,
    ) -> (TrustBundle, tempfile::TempDir, Vec<u8>) {
        let now = SystemTime::now();
        let ca_key = atoll_signing::keys::generate();
        let root = create_root(
            &ca_key,
            "acme root",
            ValidityPeriod {
                not_before: now - 365 * DAY,
                not_after: now + 3650 * DAY,
            },
        )
        .unwrap();
        let vendor_key = atoll_signing::keys::generate();
        let cert = issue_vendor(
            &ca_key,
            &root,
            vendor_key.verifying_key(),
            "acme",
            vendor_validity,
        )
        .unwrap();
        let disk = tempfile::tempdir().unwrap();
        std::fs::write(
            disk.path().join(VENDOR),
            to_pem(std::slice::from_ref(&cert)).unwrap(),
        )
        .unwrap();
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        let bundle = TrustBundle {
            vendor_roots: vec![root],
            registry_roots: Vec::new(),
        };
        (bundle, disk, spki)
    }

    #[test]
    fn an_expired_vendor_certificate_still_names_the_installed_vendor() {
        let now = SystemTime::now();
        let (bundle, disk, spki) = bundle_and_disk(ValidityPeriod {
            not_before: now - 30 * DAY,
            not_after: now - DAY,
        });
        let vendor = stored_vendor(&Disk::new(disk.path()), &bundle)
            .unwrap()
            .unwrap();
        assert_eq!(vendor.spki, spki);
    }

    #[test]
    fn a_stored_chain_from_an_untrusted_root_is_refused() {
        let now = SystemTime::now();
        let validity = ValidityPeriod {
            not_before: now - DAY,
            not_after: now + DAY,
        };
        let (_, disk, _) = bundle_and_disk(validity);
        let (other_bundle, _, _) = bundle_and_disk(validity);
        let err = stored_vendor(&Disk::new(disk.path()), &other_bundle).unwrap_err();
        assert!(
            err.to_string().contains("not trusted by this realm"),
            "{err}"
        );
        // Nothing installed is not an error.
        let empty = tempfile::tempdir().unwrap();
        assert!(stored_vendor(&Disk::new(empty.path()), &other_bundle)
            .unwrap()
            .is_none());
    }
}
