//! Content-addressed on-disk storage.
//!
//! Layout under the root directory:
//!
//! * `blobs/sha256/<hex>`: every blob and manifest, by digest. Written as
//!   `blobs/sha256/.upload-<id>` first, fsynced, digest-checked, renamed into
//!   place, then the directory is fsynced. Temporary files are removed on
//!   startup, so a crash mid-upload never exposes a partial blob.
//! * `repositories/<name>/_blobs/<hex>`: the blob belongs to the repository.
//! * `repositories/<name>/_manifests/revisions/<hex>`: the manifest belongs
//!   to the repository; the file holds its media type.
//! * `repositories/<name>/_manifests/tags/<tag>`: the digest a tag points to.
//!
//! Link and tag files are written atomically too (temp file, fsync, rename).

use sha2::{Digest as _, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// Prefix of temporary files in the blob directory.
const TMP_PREFIX: &str = ".upload-";

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<hex>`; other algorithms are refused.
    pub fn parse(s: &str) -> Option<Digest> {
        let hex = s.strip_prefix("sha256:")?;
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Some(Digest {
                hex: hex.to_string(),
            })
        } else {
            None
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(data)),
        }
    }

    /// The digest a finished hasher gives.
    pub fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Whether `name` is a valid repository name (distribution spec grammar).
pub fn valid_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    name.split('/').all(|comp| {
        // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
        let b = comp.as_bytes();
        if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !is_alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return false;
            }
        }
        true
    })
}

fn is_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Whether `tag` is a valid tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The on-disk store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) a store at `root` and removes leftover
    /// temporary files from interrupted uploads.
    pub async fn open(root: &Path) -> io::Result<Store> {
        let store = Store {
            root: root.to_path_buf(),
        };
        fs::create_dir_all(store.blob_dir()).await?;
        fs::create_dir_all(root.join("repositories")).await?;
        let mut rd = fs::read_dir(store.blob_dir()).await?;
        while let Some(e) = rd.next_entry().await? {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_file(e.path()).await?;
            }
        }
        Ok(store)
    }

    /// `blobs/sha256`.
    pub fn blob_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Path of a committed blob.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blob_dir().join(d.hex())
    }

    /// A fresh temporary path in the blob directory.
    pub fn temp_path(&self, id: &str) -> PathBuf {
        self.blob_dir().join(format!("{TMP_PREFIX}{id}"))
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn blob_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_blobs").join(d.hex())
    }

    fn revision(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests")
            .join("revisions")
            .join(d.hex())
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests").join("tags")
    }

    /// Moves a finished, fsynced temp file into place as blob `d`.
    pub async fn commit_temp(&self, temp: &Path, d: &Digest) -> io::Result<()> {
        fs::rename(temp, self.blob_path(d)).await?;
        sync_dir(&self.blob_dir()).await
    }

    /// Stores `data` as a blob (atomically) and returns its digest.
    pub async fn put_bytes(&self, data: &[u8]) -> io::Result<Digest> {
        let d = Digest::of(data);
        if fs::try_exists(self.blob_path(&d)).await? {
            return Ok(d);
        }
        let temp = self.temp_path(&new_id());
        let res = async {
            let mut f = fs::File::create(&temp).await?;
            f.write_all(data).await?;
            f.sync_all().await?;
            drop(f);
            self.commit_temp(&temp, &d).await
        }
        .await;
        if res.is_err() {
            let _ = fs::remove_file(&temp).await;
        }
        res.map(|()| d)
    }

    /// Size of a committed blob, if present.
    pub async fn blob_size(&self, d: &Digest) -> io::Result<Option<u64>> {
        match fs::metadata(self.blob_path(d)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the repository has blob `d` (and the blob is stored).
    pub async fn has_blob(&self, name: &str, d: &Digest) -> io::Result<Option<u64>> {
        if !fs::try_exists(self.blob_link(name, d)).await? {
            return Ok(None);
        }
        self.blob_size(d).await
    }

    /// Records that the repository has blob `d`.
    pub async fn link_blob(&self, name: &str, d: &Digest) -> io::Result<()> {
        write_atomic(&self.blob_link(name, d), b"").await
    }

    /// Removes the repository's link to blob `d`; false if there was none.
    pub async fn unlink_blob(&self, name: &str, d: &Digest) -> io::Result<bool> {
        remove_if_exists(&self.blob_link(name, d)).await
    }

    /// Records manifest `d` with its media type in the repository.
    pub async fn link_manifest(&self, name: &str, d: &Digest, media_type: &str) -> io::Result<()> {
        write_atomic(&self.revision(name, d), media_type.as_bytes()).await
    }

    /// The media type of manifest `d` in the repository, if it has it.
    pub async fn manifest_media_type(&self, name: &str, d: &Digest) -> io::Result<Option<String>> {
        match fs::read_to_string(self.revision(name, d)).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Manifest bytes and media type.
    pub async fn get_manifest(
        &self,
        name: &str,
        d: &Digest,
    ) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some(mt) = self.manifest_media_type(name, d).await? else {
            return Ok(None);
        };
        match fs::read(self.blob_path(d)).await {
            Ok(b) => Ok(Some((mt, b))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All manifest digests of a repository.
    pub async fn manifests(&self, name: &str) -> io::Result<Vec<Digest>> {
        let dir = self.repo_dir(name).join("_manifests").join("revisions");
        Ok(list_dir(&dir)
            .await?
            .into_iter()
            .filter_map(|h| Digest::parse(&format!("sha256:{h}")))
            .collect())
    }

    /// Removes manifest `d` and every tag pointing to it; false if absent.
    pub async fn delete_manifest(&self, name: &str, d: &Digest) -> io::Result<bool> {
        if !remove_if_exists(&self.revision(name, d)).await? {
            return Ok(false);
        }
        for tag in self.tags(name).await? {
            if self.tag(name, &tag).await?.as_ref() == Some(d) {
                remove_if_exists(&self.tags_dir(name).join(&tag)).await?;
            }
        }
        Ok(true)
    }

    /// Points `tag` at `d`.
    pub async fn set_tag(&self, name: &str, tag: &str, d: &Digest) -> io::Result<()> {
        write_atomic(&self.tags_dir(name).join(tag), d.to_string().as_bytes()).await
    }

    /// What `tag` points to.
    pub async fn tag(&self, name: &str, tag: &str) -> io::Result<Option<Digest>> {
        match fs::read_to_string(self.tags_dir(name).join(tag)).await {
            Ok(s) => Ok(Digest::parse(s.trim())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes a tag; false if absent.
    pub async fn delete_tag(&self, name: &str, tag: &str) -> io::Result<bool> {
        remove_if_exists(&self.tags_dir(name).join(tag)).await
    }

    /// Sorted tags of a repository.
    pub async fn tags(&self, name: &str) -> io::Result<Vec<String>> {
        let mut t: Vec<String> = list_dir(&self.tags_dir(name)).await?;
        t.retain(|s| valid_tag(s));
        t.sort();
        Ok(t)
    }

    /// Whether the repository exists at all.
    pub async fn repo_exists(&self, name: &str) -> io::Result<bool> {
        fs::try_exists(self.repo_dir(name)).await
    }
}

/// A random identifier for uploads and temp files.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("getrandom");
    hex::encode(b)
}

async fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rd = match fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    while let Some(e) = rd.next_entry().await? {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.starts_with('.') {
            out.push(n);
        }
    }
    Ok(out)
}

async fn remove_if_exists(p: &Path) -> io::Result<bool> {
    match fs::remove_file(p).await {
        Ok(()) => {
            if let Some(dir) = p.parent() {
                sync_dir(dir).await?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `data` atomically and durably, creating its
/// directory first.
pub async fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().expect("path has a parent").to_owned();
    let (path, data) = (path.to_owned(), data.to_vec());
    tokio::task::spawn_blocking(move || {
        atoll_atomic_file::create_dir_all(&dir)?;
        atoll_atomic_file::write(&path, &data)
    })
    .await
    .map_err(io::Error::other)?
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert!(valid_name("library/ubuntu"));
        assert!(valid_name("a.b_c__d---e/f"));
        assert!(!valid_name("Upper"));
        assert!(!valid_name("a//b"));
        assert!(!valid_name("a/"));
        assert!(!valid_name("a..b"));
        assert!(!valid_name("../x"));
        assert!(valid_tag("v1.0_rc-1"));
        assert!(!valid_tag(".hidden"));
        assert!(!valid_tag("a/b"));
    }

    #[test]
    fn digests() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()), Some(d));
        assert!(Digest::parse("sha256:../../etc").is_none());
        assert!(Digest::parse("sha512:00").is_none());
    }
}
