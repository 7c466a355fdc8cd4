//! An application's disk: what the host stores for the realm.
//!
//! In simulation the disk is a directory the warden creates; on hardware it
//! would be a block device with the same files in a filesystem. Everything
//! secret or integrity-relevant is sealed; what is in the clear the host
//! could see anyway.
//!
//! | file | contents |
//! |---|---|
//! | `vendor.pem` | the vendor's certificate chain (public): needed to derive the keys before anything can be unsealed; re-verified against the realm's trust bundle on every start |
//! | `image.sealed` | sealed partition "image" (image key): the unpacked root file system under `rootfs/` and `meta.json` (what was installed: version, digests, OCI config) |
//! | `data.sealed` | sealed partition "data" (data key): the application's volumes |
//! | `label.json` | a copy of the installed version, digest and vendor for status reports without unsealing; checked against the sealed `meta.json` on start |
//!
//! Each file is replaced atomically (temp file, fsync, rename, fsync of the
//! directory). An install writes `vendor.pem`, then `image.sealed`, then
//! `label.json`; a crash in between leaves the previous installation
//! usable or (first install) nothing that claims to be installed.

use std::path::{Path, PathBuf};

use ipc_schema::agent::InstalledApp;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Vendor chain file.
pub const VENDOR: &str = "vendor.pem";
/// Image partition.
pub const IMAGE: &str = "image.sealed";
/// Data partition.
pub const DATA: &str = "data.sealed";
/// Status label.
pub const LABEL: &str = "label.json";

/// The label's JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Installed version.
    pub version: String,
    /// Installed manifest digest.
    pub manifest_digest: String,
    /// Vendor certificate subject.
    pub vendor: String,
}

impl From<Label> for InstalledApp {
    fn from(l: Label) -> Self {
        InstalledApp {
            version: l.version,
            manifest_digest: l.manifest_digest,
            vendor: l.vendor,
        }
    }
}

/// An application's disk.
#[derive(Clone, Debug)]
pub struct Disk {
    dir: PathBuf,
}

impl Disk {
    /// The disk at `dir` (created by the warden).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// A file of the disk.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Checks that the disk exists and is a directory.
    pub fn check(&self) -> Result<(), AppError> {
        match std::fs::metadata(&self.dir) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(AppError::Storage(format!(
                "disk {} is not a directory",
                self.dir.display()
            ))),
            Err(e) => Err(AppError::Storage(format!(
                "disk {}: {e}",
                self.dir.display()
            ))),
        }
    }

    /// What the label says is installed (`None`: nothing is).
    pub fn installed_public(&self) -> Result<Option<InstalledApp>, AppError> {
        Ok(self.label()?.map(Into::into))
    }

    /// The label, if an installation completed.
    pub fn label(&self) -> Result<Option<Label>, AppError> {
        let path = self.path(LABEL);
        if !self.path(IMAGE).exists() {
            return Ok(None);
        }
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AppError::Storage(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AppError::Storage(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes `bytes` to the disk file `name` atomically.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), AppError> {
        write_atomic(&self.path(name), bytes)
    }
}

/// Replaces `path` with `bytes`: temp file in the same directory, fsync,
/// rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    atoll_atomic_file::write(path, bytes)
        .map_err(|e| AppError::Storage(format!("{}: {e}", path.display())))
}
