//! Unpacks OCI image layers into a directory without letting a layer
//! write anywhere else, and packs directories back into tar streams.
//!
//! A layer is untrusted input even when its digest is signed: the vendor
//! may be careless or compromised, and the unpacker runs inside the realm
//! with the realm's privileges. So:
//!
//! * every entry path is relative, has no `..` component and is resolved
//!   inside the root the way a chroot would: symlinks met on the way are
//!   followed *within* the root (absolute targets are relative to it; a
//!   relative target climbing above it is refused), and the entry's
//!   own last component is never followed (an existing symlink there is
//!   replaced, never written through); files are created with
//!   `O_CREAT|O_EXCL`;
//! * hard links must name a regular file already inside the root;
//! * OCI whiteouts (`.wh.<name>`, `.wh..wh..opq`) are applied inside the
//!   root and never created as files;
//! * device nodes and FIFOs are refused; setuid and setgid bits are
//!   stripped;
//! * [`Limits`] cap the uncompressed bytes (decompression bombs stop as
//!   soon as the cap is crossed), each file, the number of entries and
//!   path lengths;
//! * each layer's diff_id (SHA-256 of the uncompressed tar stream) is
//!   computed while unpacking; [`unpack_image`] compares it with the
//!   config's and unpacks into a staging directory that replaces the
//!   destination only when every layer succeeded.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Gzip-compressed tar layer (OCI).
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Uncompressed tar layer (OCI).
pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Docker's gzip layer.
pub const MEDIA_DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Most symlinks followed while resolving one path.
const MAX_LINKS: usize = 40;
/// Whiteout prefix.
const WHITEOUT: &str = ".wh.";
/// Opaque-directory marker.
const OPAQUE: &str = ".wh..wh..opq";

/// Why unpacking failed. Each names the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer's media type is not one this crate decompresses.
    #[error("unsupported layer media type {0}")]
    Unsupported(String),
    /// An entry path is absolute.
    #[error("entry {0:?}: absolute paths are not allowed in a layer")]
    AbsolutePath(String),
    /// An entry path has a `..` component.
    #[error("entry {0:?}: `..` components are not allowed in a layer")]
    ParentDir(String),
    /// A path is longer than the limit.
    #[error("entry {0:?}: path longer than {1} bytes")]
    PathTooLong(String, usize),
    /// An entry type that must not be in an application image.
    #[error("entry {path:?}: {kind} entries are not allowed")]
    ForbiddenType {
        /// The entry.
        path: String,
        /// What it is.
        kind: &'static str,
    },
    /// A hard link to something that is not a regular file in the root.
    #[error("entry {path:?}: hard link to {target:?}, which is not a regular file in the image")]
    BadHardLink {
        /// The entry.
        path: String,
        /// Its target.
        target: String,
    },
    /// Resolving a path met a file where a directory was needed, or too
    /// many links.
    #[error("entry {0:?}: {1}")]
    Resolve(String, String),
    /// The uncompressed layers exceed the total cap.
    #[error("the image unpacks to more than {0} bytes (a decompression bomb, or an image too large for its partition)")]
    TooLarge(u64),
    /// One file exceeds the per-file cap.
    #[error("entry {0:?}: larger than {1} bytes")]
    FileTooLarge(String, u64),
    /// Too many entries.
    #[error("more than {0} entries")]
    TooManyEntries(u64),
    /// The uncompressed stream does not hash to the config's diff_id.
    #[error("layer {index}: diff_id {actual} does not match the config's {expected}")]
    DiffIdMismatch {
        /// Layer index.
        index: usize,
        /// From the config.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The destination exists already (the caller must choose to replace).
    #[error("{0}: already exists")]
    Exists(PathBuf),
    /// Reading the layer or writing files failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
}

fn io_ctx(context: impl Into<String>) -> impl FnOnce(io::Error) -> UnpackError {
    let context = context.into();
    move |source| UnpackError::Io { context, source }
}

/// Caps on what unpacking may create.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Uncompressed bytes across all layers (tar headers included).
    pub max_total_bytes: u64,
    /// Bytes of one file.
    pub max_file_bytes: u64,
    /// Entries across all layers.
    pub max_entries: u64,
    /// Bytes of one entry path.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            max_file_bytes: 1 << 30,
            max_entries: 1 << 20,
            max_path_len: 4096,
        }
    }
}

/// Running totals against [`Limits`].
#[derive(Clone, Debug, Default)]
pub struct Usage {
    /// Uncompressed bytes read so far.
    pub bytes: u64,
    /// Entries so far.
    pub entries: u64,
    /// setuid/setgid bits stripped.
    pub stripped_mode_bits: u64,
}

/// What one layer contained.
#[derive(Clone, Debug)]
pub struct LayerReport {
    /// `sha256:<hex>` of the uncompressed stream.
    pub diff_id: String,
    /// Uncompressed bytes.
    pub uncompressed_bytes: u64,
    /// Entries.
    pub entries: u64,
}

/// What a whole image contained.
#[derive(Clone, Debug, Default)]
pub struct ImageReport {
    /// Per layer.
    pub layers: Vec<LayerReport>,
    /// setuid/setgid bits stripped.
    pub stripped_mode_bits: u64,
}

impl ImageReport {
    /// Uncompressed bytes of all layers.
    pub fn total_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.uncompressed_bytes).sum()
    }
}

/// Reads through, hashing and counting, failing once the total cap is
/// crossed.
struct Metered<'a, R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
    usage: &'a mut Usage,
    cap: u64,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        self.usage.bytes += n as u64;
        if self.usage.bytes > self.cap {
            return Err(io::Error::other(TooLargeMarker));
        }
        Ok(n)
    }
}

#[derive(Debug)]
struct TooLargeMarker;
impl std::fmt::Display for TooLargeMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("uncompressed size cap crossed")
    }
}
impl std::error::Error for TooLargeMarker {}

fn is_too_large(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<TooLargeMarker>())
}

/// The normal components of an entry path, refusing absolute paths and
/// `..`.
fn entry_components(raw: &Path, limits: &Limits) -> Result<Vec<OsString>, UnpackError> {
    let shown = raw.to_string_lossy().into_owned();
    if raw.as_os_str().len() > limits.max_path_len {
        return Err(UnpackError::PathTooLong(shown, limits.max_path_len));
    }
    let mut out = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n.to_owned()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::AbsolutePath(shown))
            }
            Component::ParentDir => return Err(UnpackError::ParentDir(shown)),
        }
    }
    Ok(out)
}

/// Resolves `parts` (relative to the root) inside `root` chroot-style:
/// symlinks are followed within the root (an absolute target is relative
/// to the root, as in a container); a relative target that climbs above
/// the root is refused as an escape. With `create`, missing directories are created (mode
/// 0755). The last component is resolved too only when `follow_last`.
pub fn resolve_in_root(
    root: &Path,
    parts: &[OsString],
    create: bool,
    follow_last: bool,
) -> Result<PathBuf, String> {
    let mut stack: Vec<OsString> = Vec::new();
    let mut pending: Vec<OsString> = parts.iter().rev().cloned().collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            // Only link targets contribute `..` (entry paths with `..` are
            // refused earlier): a relative target that climbs above the
            // root is an escape attempt, not something to clamp.
            if stack.pop().is_none() {
                return Err("a symbolic link on the path points outside the root".into());
            }
            continue;
        }
        if part == "." {
            continue;
        }
        let is_last = pending.is_empty();
        let mut here = root.to_path_buf();
        here.extend(&stack);
        here.push(&part);
        if is_last && !follow_last {
            stack.push(part);
            break;
        }
        match fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err("too many levels of symbolic links".into());
                }
                let target = fs::read_link(&here).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    stack.clear();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(m) if m.is_dir() => stack.push(part),
            Ok(_) if is_last => stack.push(part),
            Ok(_) => return Err(format!("{} is not a directory", here.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if create && !is_last {
                    fs::create_dir(&here).map_err(|e| format!("{}: {e}", here.display()))?;
                }
                stack.push(part);
            }
            Err(e) => return Err(format!("{}: {e}", here.display())),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&stack);
    Ok(out)
}

/// `io::copy` with a buffer large enough that unpacking big files costs
/// few reads through the decompressor and few system calls.
fn copy_big(from: &mut impl Read, to: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Removes whatever is at `path` (not following a symlink there).
/// Applies an opaque whiteout to `dir`: removes everything below it that
/// the current layer did not create, at any depth. A directory the layer
/// created (or created entries inside) stays, but what lower layers left
/// in it goes.
fn remove_lower(dir: &Path, created: &HashSet<PathBuf>) -> io::Result<()> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in read {
        let p = child?.path();
        if !created.contains(&p) {
            remove_existing(&p)?;
        } else if fs::symlink_metadata(&p)?.is_dir() {
            remove_lower(&p, created)?;
        }
    }
    Ok(())
}

fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn decompressor<'a>(
    reader: impl Read + 'a,
    media_type: &str,
) -> Result<Box<dyn Read + 'a>, UnpackError> {
    match media_type {
        MEDIA_TAR_GZIP | MEDIA_DOCKER_GZIP => {
            Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)))
        }
        MEDIA_TAR | "application/vnd.docker.image.rootfs.diff.tar" | "tar" => Ok(Box::new(reader)),
        other => Err(UnpackError::Unsupported(other.to_string())),
    }
}

/// Unpacks one layer (compressed as `media_type` says) over `root`,
/// counting against `limits` with `usage` carried across layers.
pub fn unpack_layer(
    reader: impl Read,
    media_type: &str,
    root: &Path,
    limits: &Limits,
    usage: &mut Usage,
) -> Result<LayerReport, UnpackError> {
    let stream = decompressor(reader, media_type)?;
    let entries_before = usage.entries;
    let mut metered = Metered {
        inner: stream,
        hash: Sha256::new(),
        bytes: 0,
        usage,
        cap: limits.max_total_bytes,
    };
    let cap = limits.max_total_bytes;
    let map_io = |context: &str| {
        let context = context.to_string();
        move |e: io::Error| {
            if is_too_large(&e) {
                UnpackError::TooLarge(cap)
            } else {
                UnpackError::Io { context, source: e }
            }
        }
    };
    {
        let mut archive = tar::Archive::new(&mut metered);
        let mut created: HashSet<PathBuf> = HashSet::new();
        let mut stripped = 0u64;
        let mut count = 0u64;
        for entry in archive.entries().map_err(map_io("reading the layer"))? {
            let mut entry = entry.map_err(map_io("reading the layer"))?;
            count += 1;
            if entries_before + count > limits.max_entries {
                return Err(UnpackError::TooManyEntries(limits.max_entries));
            }
            let raw = entry.path().map_err(map_io("entry path"))?.into_owned();
            let shown = raw.to_string_lossy().into_owned();
            let parts = entry_components(&raw, limits)?;
            let Some(name) = parts.last().cloned() else {
                continue; // the root itself
            };
            let name_str = name.to_string_lossy();
            let parent = &parts[..parts.len() - 1];
            let resolve = |parts: &[OsString], create: bool, follow_last: bool| {
                resolve_in_root(root, parts, create, follow_last)
                    .map_err(|e| UnpackError::Resolve(shown.clone(), e))
            };

            // Whiteouts.
            if name_str == OPAQUE {
                let dir = resolve(parent, false, true)?;
                remove_lower(&dir, &created).map_err(io_ctx(format!("{}", dir.display())))?;
                continue;
            }
            if let Some(hidden) = name_str.strip_prefix(WHITEOUT) {
                if hidden.is_empty() || hidden == "." || hidden == ".." || hidden.contains('/') {
                    return Err(UnpackError::Resolve(shown, "malformed whiteout".into()));
                }
                let mut target = parent.to_vec();
                target.push(hidden.into());
                let path = resolve(&target, false, false)?;
                remove_existing(&path).map_err(io_ctx(format!("{}", path.display())))?;
                continue;
            }

            let kind = entry.header().entry_type();
            let mode = entry.header().mode().map_err(map_io("entry mode"))?;
            let safe_mode = mode & 0o1777;
            if mode & 0o6000 != 0 {
                stripped += 1;
            }
            let path = resolve(&parts, true, false)?;
            match kind {
                tar::EntryType::Directory => {
                    match fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => {
                            remove_existing(&path).map_err(io_ctx(shown.clone()))?;
                            fs::create_dir(&path).map_err(io_ctx(shown.clone()))?;
                        }
                        Err(_) => fs::create_dir(&path).map_err(io_ctx(shown.clone()))?,
                    }
                    // The owner keeps write access so later entries fit.
                    fs::set_permissions(&path, fs::Permissions::from_mode(safe_mode | 0o700))
                        .map_err(io_ctx(shown.clone()))?;
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.header().size().map_err(map_io("entry size"))?;
                    if size > limits.max_file_bytes {
                        return Err(UnpackError::FileTooLarge(shown, limits.max_file_bytes));
                    }
                    remove_existing(&path).map_err(io_ctx(shown.clone()))?;
                    let mut file = OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(io_ctx(shown.clone()))?;
                    let copied =
                        copy_big(&mut (&mut entry).take(limits.max_file_bytes + 1), &mut file)
                            .map_err(map_io(&shown))?;
                    if copied > limits.max_file_bytes {
                        return Err(UnpackError::FileTooLarge(shown, limits.max_file_bytes));
                    }
                    file.set_permissions(fs::Permissions::from_mode(safe_mode))
                        .map_err(io_ctx(shown.clone()))?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(map_io("link target"))?
                        .ok_or_else(|| {
                            UnpackError::Resolve(shown.clone(), "symlink without target".into())
                        })?
                        .into_owned();
                    remove_existing(&path).map_err(io_ctx(shown.clone()))?;
                    std::os::unix::fs::symlink(&target, &path).map_err(io_ctx(shown.clone()))?;
                }
                tar::EntryType::Link => {
                    let raw_target = entry
                        .link_name()
                        .map_err(map_io("link target"))?
                        .ok_or_else(|| {
                            UnpackError::Resolve(shown.clone(), "hard link without target".into())
                        })?
                        .into_owned();
                    let target_shown = raw_target.to_string_lossy().into_owned();
                    let bad = || UnpackError::BadHardLink {
                        path: shown.clone(),
                        target: target_shown.clone(),
                    };
                    let target_parts = entry_components(&raw_target, limits).map_err(|_| bad())?;
                    let target =
                        resolve_in_root(root, &target_parts, false, false).map_err(|_| bad())?;
                    match fs::symlink_metadata(&target) {
                        Ok(m) if m.is_file() => {}
                        _ => return Err(bad()),
                    }
                    remove_existing(&path).map_err(io_ctx(shown.clone()))?;
                    fs::hard_link(&target, &path).map_err(io_ctx(shown.clone()))?;
                }
                tar::EntryType::Char => {
                    return Err(UnpackError::ForbiddenType {
                        path: shown,
                        kind: "character device",
                    })
                }
                tar::EntryType::Block => {
                    return Err(UnpackError::ForbiddenType {
                        path: shown,
                        kind: "block device",
                    })
                }
                tar::EntryType::Fifo => {
                    return Err(UnpackError::ForbiddenType {
                        path: shown,
                        kind: "FIFO",
                    })
                }
                _ => {
                    return Err(UnpackError::ForbiddenType {
                        path: shown,
                        kind: "unknown-type",
                    })
                }
            }
            // This layer's entry, and the directories leading to it (made
            // here or kept from below): an opaque marker later in the
            // layer must not remove them.
            let mut up = path.parent();
            while let Some(dir) = up.filter(|d| *d != root) {
                if !created.insert(dir.to_owned()) {
                    break;
                }
                up = dir.parent();
            }
            created.insert(path);
        }
        metered.usage.entries += count;
        metered.usage.stripped_mode_bits += stripped;
    }
    // The diff_id covers the whole stream, trailing blocks included.
    io::copy(&mut metered, &mut io::sink()).map_err(map_io("reading the layer's end"))?;
    Ok(LayerReport {
        diff_id: format!("sha256:{}", hex::encode(metered.hash.finalize_reset())),
        uncompressed_bytes: metered.bytes,
        entries: metered.usage.entries - entries_before,
    })
}

/// A layer to unpack: its (digest-checked) file, media type and the
/// config's diff_id for it.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The compressed blob on disk.
    pub path: PathBuf,
    /// Its media type.
    pub media_type: String,
    /// `sha256:<hex>` from the config's `rootfs.diff_ids`.
    pub diff_id: String,
}

/// Unpacks `layers` in order into a new directory `dest` (which must not
/// exist): into a staging directory beside it first, renamed to `dest`
/// only when every layer unpacked and matched its diff_id. On error
/// nothing is left behind.
pub fn unpack_image(
    layers: &[Layer],
    dest: &Path,
    limits: &Limits,
) -> Result<ImageReport, UnpackError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(UnpackError::Exists(dest.to_owned()));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(io_ctx(format!("staging in {}", parent.display())))?;
    let root = staging.path().join("root");
    fs::create_dir(&root).map_err(io_ctx("staging root"))?;
    let mut usage = Usage::default();
    let mut report = ImageReport::default();
    for (index, layer) in layers.iter().enumerate() {
        let file = File::open(&layer.path).map_err(io_ctx(format!("{}", layer.path.display())))?;
        let r = unpack_layer(
            io::BufReader::with_capacity(1 << 20, file),
            &layer.media_type,
            &root,
            limits,
            &mut usage,
        )?;
        if r.diff_id != layer.diff_id {
            return Err(UnpackError::DiffIdMismatch {
                index,
                expected: layer.diff_id.clone(),
                actual: r.diff_id,
            });
        }
        report.layers.push(r);
    }
    report.stripped_mode_bits = usage.stripped_mode_bits;
    fs::rename(&root, dest).map_err(io_ctx(format!("{}", dest.display())))?;
    Ok(report)
}

/// Unpacks a plain tar stream into a new directory `dest` (staging, then
/// rename), with the same checks as a layer.
pub fn unpack_tar(
    reader: impl Read,
    dest: &Path,
    limits: &Limits,
) -> Result<LayerReport, UnpackError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(UnpackError::Exists(dest.to_owned()));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)
        .map_err(io_ctx(format!("staging in {}", parent.display())))?;
    let root = staging.path().join("root");
    fs::create_dir(&root).map_err(io_ctx("staging root"))?;
    let mut usage = Usage::default();
    let report = unpack_layer(reader, "tar", &root, limits, &mut usage)?;
    fs::rename(&root, dest).map_err(io_ctx(format!("{}", dest.display())))?;
    Ok(report)
}

/// Writes the tree under `root` as a tar stream: regular files,
/// directories and symbolic links with their modes, sorted, a file with
/// several names once (its other names as hard links); anything else is
/// refused. `limits` are checked as [`unpack_tar`] checks them (entries,
/// path length, file size, stream bytes), so what packs within limits
/// unpacks within the same limits. Returns the stream's length.
pub fn pack_dir(root: &Path, writer: impl Write, limits: &Limits) -> Result<u64, UnpackError> {
    let cap = limits.max_total_bytes;
    let mut builder = tar::Builder::new(Counted {
        inner: writer,
        bytes: 0,
        cap,
    });
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    let map_io = |context: String| {
        move |e: io::Error| {
            if is_too_large(&e) {
                UnpackError::TooLarge(cap)
            } else {
                UnpackError::Io { context, source: e }
            }
        }
    };
    let mut stack = vec![PathBuf::new()];
    let mut all = Vec::new();
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<OsString> = fs::read_dir(&dir)
            .map_err(io_ctx(format!("{}", dir.display())))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_ctx(format!("{}", dir.display())))?;
        names.sort();
        for name in names {
            let rel = rel.join(name);
            let meta = fs::symlink_metadata(root.join(&rel))
                .map_err(io_ctx(format!("{}", rel.display())))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                stack.push(rel.clone());
            } else if !(ft.is_file() || ft.is_symlink()) {
                return Err(UnpackError::ForbiddenType {
                    path: rel.to_string_lossy().into_owned(),
                    kind: "special-file",
                });
            }
            all.push(rel);
            if all.len() as u64 > limits.max_entries {
                return Err(UnpackError::TooManyEntries(limits.max_entries));
            }
        }
    }
    all.sort();
    // Files with several names are packed once; later names become hard
    // link entries to the first, as they were unpacked.
    let mut first_name: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for rel in all {
        let shown = rel.to_string_lossy().into_owned();
        if rel.as_os_str().len() > limits.max_path_len {
            return Err(UnpackError::PathTooLong(shown, limits.max_path_len));
        }
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(io_ctx(shown.clone()))?;
        if meta.is_file() {
            if meta.len() > limits.max_file_bytes {
                return Err(UnpackError::FileTooLarge(shown, limits.max_file_bytes));
            }
            if meta.nlink() > 1 {
                match first_name.entry((meta.dev(), meta.ino())) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        let mut header = tar::Header::new_gnu();
                        header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                        header.set_entry_type(tar::EntryType::Link);
                        header.set_size(0);
                        builder
                            .append_link(&mut header, &rel, first.get())
                            .map_err(map_io(format!("packing {shown}")))?;
                        continue;
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(rel.clone());
                    }
                }
            }
        }
        builder
            .append_path_with_name(&path, &rel)
            .map_err(map_io(format!("packing {shown}")))?;
    }
    let mut counted = builder
        .into_inner()
        .map_err(map_io("finishing the tar stream".into()))?;
    counted
        .flush()
        .map_err(io_ctx("finishing the tar stream"))?;
    Ok(counted.bytes)
}

/// Counts what goes through, failing once the cap is crossed (the same
/// count [`Metered`] keeps when the stream is unpacked again).
struct Counted<W> {
    inner: W,
    bytes: u64,
    cap: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes + buf.len() as u64 > self.cap {
            return Err(io::Error::other(TooLargeMarker));
        }
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
