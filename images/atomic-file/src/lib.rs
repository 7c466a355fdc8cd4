//! Replacing a file so that a crash never leaves half of it.
//!
//! Every tool that keeps state on disk (the warden's `state.json`, keys
//! from `atoll sign` and `atoll metadata`, registry links and tags, the
//! app-manager's disk labels, OCI layouts) writes through [`write`] or
//! [`write_secret`]: the bytes go to a fresh temporary file in the same
//! directory, which is fsynced and renamed over the destination, and then
//! the directory is fsynced so the rename itself survives a power cut.
//! Readers see the old file or the whole new one; when any step fails the
//! temporary file is removed and the old file is untouched.
//! [`create_dir_all`] makes new directories durable the same way.

#![forbid(unsafe_code)]

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `path` with `bytes`; a new file gets mode 0666 less the umask.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, 0o666)
}

/// Replaces `path` with `bytes`, readable by its owner only (mode 0600
/// from the moment the temporary file exists): for private keys.
pub fn write_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, 0o600)
}

/// Fsyncs a directory, making the renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, fsyncing the parent of each
/// directory it creates, so that files later made durable inside them
/// stay reachable after a power cut.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.as_os_str().is_empty() && !cur.is_dir() {
        missing.push(cur);
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Made by someone else meanwhile: theirs to sync, but syncing
            // the parent again is harmless.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
        sync_dir(parent_dir(d))?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    let prefix = format!(".{}.", name.to_string_lossy());
    builder.prefix(&prefix).suffix(".tmp");
    builder.permissions(Permissions::from_mode(mode));
    // The temporary file is deleted when `tmp` drops on any early return.
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write(&p, b"one").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write(&p, b"two, longer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two, longer");
        write(&p, b"").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn modes() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        write_secret(&key, b"secret").unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A public file is readable by others unless the umask says no;
        // the usual umasks (022, 002, 027) all leave the group bit.
        let public = dir.path().join("key.pub");
        write(&public, b"public").unwrap();
        let mode = std::fs::metadata(&public).unwrap().permissions().mode() & 0o777;
        assert_ne!(mode & 0o040, 0, "mode {mode:o}");
        assert_eq!(mode & 0o111, 0, "mode {mode:o}");
    }

    #[test]
    fn a_failed_replace_keeps_the_old_content_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the
        // temporary file was written.
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"keep").unwrap();
        assert!(write(&target, b"new").is_err());
        assert_eq!(std::fs::read(target.join("inside")).unwrap(), b"keep");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("repositories/acme/app/_manifests/tags");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        // Existing directories are fine, a file in the way is not.
        create_dir_all(&deep).unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(create_dir_all(&dir.path().join("file/sub")).is_err());
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("no/such/file"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(write(Path::new("/"), b"x").is_err());
    }
}
