//! The provisioning file: the HES's device secrets at rest.
//!
//! Created on first start from the OS RNG with mode 0600, written to a
//! temporary file, synced, then linked into place (an atomic create that,
//! unlike a rename, never replaces a file another instance made meanwhile)
//! and the directory synced. Loaded on later starts only if it is a regular
//! file with no group or other permissions and exactly the blob's size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use atoll_hes_mcu::secrets::{BLOB_LEN, SECRET_LEN};
use atoll_hes_mcu::{DeviceSecrets, ProvisionError};
use rand_core::{OsRng, RngCore};

/// Why the provisioning file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionFileError {
    /// Reading, writing or syncing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// The path is a symlink or not a regular file.
    #[error("{0}: not a regular file (symlinks are refused)")]
    NotAFile(PathBuf),
    /// Group or other may access the file: the secrets may have leaked.
    #[error("{path}: mode {mode:04o} gives group/other access; the device secrets must be private (chmod 600), or delete the file to provision new secrets")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Wrong size: not a provisioning file, or truncated.
    #[error("{path}: {size} bytes, a provisioning file has {BLOB_LEN}")]
    Size {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// The contents are not a valid blob.
    #[error("{path}: {source}")]
    Blob {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: ProvisionError,
    },
    /// The OS RNG failed.
    #[error("OS random number generator: {0}")]
    Rng(rand_core::Error),
}

/// Whether the secrets were just made or already there.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A new file was written.
    Created,
    /// An existing file was loaded.
    Loaded,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ProvisionFileError + '_ {
    move |source| ProvisionFileError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the secrets at `path`, or provisions new ones there if there is no
/// file yet.
pub fn load_or_create(path: &Path) -> Result<(DeviceSecrets, Origin), ProvisionFileError> {
    match load(path) {
        Err(ProvisionFileError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            match create(path) {
                Ok(s) => Ok((s, Origin::Created)),
                // Another instance won the race: use its secrets.
                Err(ProvisionFileError::Io { source, .. })
                    if source.kind() == ErrorKind::AlreadyExists =>
                {
                    load(path).map(|s| (s, Origin::Loaded))
                }
                Err(e) => Err(e),
            }
        }
        other => other.map(|s| (s, Origin::Loaded)),
    }
}

/// Loads and checks an existing provisioning file.
pub fn load(path: &Path) -> Result<DeviceSecrets, ProvisionFileError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    if !meta.file_type().is_file() {
        return Err(ProvisionFileError::NotAFile(path.to_owned()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ProvisionFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.size() != BLOB_LEN as u64 {
        return Err(ProvisionFileError::Size {
            path: path.to_owned(),
            size: meta.size(),
        });
    }
    let mut blob = [0u8; BLOB_LEN];
    // O_NOFOLLOW is implied by the symlink check above for all practical
    // purposes; a swap in between would still hit the size and blob checks.
    let mut file = File::open(path).map_err(io_err(path))?;
    file.read_exact(&mut blob).map_err(io_err(path))?;
    let secrets = DeviceSecrets::from_blob(&blob);
    blob.fill(0);
    secrets.map_err(|source| ProvisionFileError::Blob {
        path: path.to_owned(),
        source,
    })
}

/// Provisions fresh secrets at `path`; fails with `AlreadyExists` if a file
/// is there.
pub fn create(path: &Path) -> Result<DeviceSecrets, ProvisionFileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err(&dir))?;

    let mut huk = [0u8; SECRET_LEN];
    let mut guk = [0u8; SECRET_LEN];
    OsRng
        .try_fill_bytes(&mut huk)
        .and_then(|()| OsRng.try_fill_bytes(&mut guk))
        .map_err(ProvisionFileError::Rng)?;
    let secrets = DeviceSecrets::new(huk, guk).map_err(|source| ProvisionFileError::Blob {
        path: path.to_owned(),
        source,
    })?;
    huk.fill(0);
    guk.fill(0);

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut blob = secrets.to_blob();
    let written = write_synced(&tmp, &blob);
    blob.fill(0);
    written?;
    let linked = fs::hard_link(&tmp, path).map_err(io_err(path));
    let _ = fs::remove_file(&tmp);
    linked?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;
    Ok(secrets)
}

fn write_synced(tmp: &Path, blob: &[u8]) -> Result<(), ProvisionFileError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(io_err(tmp))?;
    let result = f.write_all(blob).and_then(|()| f.sync_all());
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result.map_err(io_err(tmp))
}
