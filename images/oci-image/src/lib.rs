//! Builds OCI image layouts from directories, reproducibly: the same
//! directory and settings give the same digests on any machine (entries
//! sorted, owners 0, fixed timestamps, fixed gzip settings).
//!
//! This is how an application vendor packages an application for Atoll
//! without a container engine: `atoll image build` writes a layout that
//! `atoll sign image` signs and `atoll push` (or `skopeo copy oci:...`)
//! pushes. Only regular files, directories and symbolic links are packed;
//! anything else in the source is refused, so what is signed is what the
//! vendor sees.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    ConfigBuilder, Descriptor, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, RootFsBuilder, SCHEMA_VERSION,
};
use sha2::{Digest, Sha256};

/// Annotation carrying the tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation carrying the version in the manifest.
pub const VERSION: &str = "org.opencontainers.image.version";

/// Why an image could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading the source or writing the layout failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The source holds something an image should not carry.
    #[error("{0}: only regular files, directories and symbolic links can be packed")]
    Unsupported(PathBuf),
    /// Building the OCI JSON failed.
    #[error("OCI metadata: {0}")]
    Spec(String),
    /// The output is not usable.
    #[error("{0}")]
    Output(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

fn spec_err(e: impl std::fmt::Display) -> ImageError {
    ImageError::Spec(e.to_string())
}

/// What the image runs and how (the OCI config's `config` section).
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env` entries, `KEY=value`.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: Option<String>,
    /// `Volumes`: paths whose contents persist across runs (the
    /// application's data on Atoll).
    pub volumes: Vec<String>,
    /// The version, recorded as an annotation of the manifest.
    pub version: Option<String>,
    /// Platform architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Platform OS.
    pub os: String,
    /// gzip level for layers (0-9).
    pub compression: u32,
}

impl ImageSpec {
    /// A spec for this host's platform with default compression.
    pub fn for_host() -> Self {
        Self {
            architecture: match std::env::consts::ARCH {
                "x86_64" => "amd64".into(),
                "aarch64" => "arm64".into(),
                other => other.into(),
            },
            os: "linux".into(),
            compression: 6,
            ..Self::default()
        }
    }
}

/// What was built.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// The manifest's digest (`sha256:...`).
    pub manifest_digest: String,
    /// The manifest's exact bytes.
    pub manifest: Vec<u8>,
    /// The config's digest.
    pub config_digest: String,
    /// Each layer's (compressed) descriptor digest and uncompressed diff_id.
    pub layers: Vec<(String, String)>,
    /// Bytes of all blobs.
    pub total_bytes: u64,
}

/// Writes `data` into the layout's blob store and returns its descriptor.
fn put_blob(layout: &Path, media_type: MediaType, data: &[u8]) -> Result<Descriptor, ImageError> {
    let hex = hex::encode(Sha256::digest(data));
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    write_atomic(&dir.join(&hex), data)?;
    descriptor(media_type, &hex, data.len() as u64)
}

fn descriptor(media_type: MediaType, hex: &str, size: u64) -> Result<Descriptor, ImageError> {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(
            format!("sha256:{hex}")
                .parse::<oci_spec::image::Digest>()
                .map_err(spec_err)?,
        )
        .size(size)
        .build()
        .map_err(spec_err)
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Every entry under `root`, sorted, as paths relative to it.
fn walk(root: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err(&dir))?;
        names.sort();
        for name in names.into_iter().rev() {
            let rel = rel.join(name);
            let meta =
                std::fs::symlink_metadata(root.join(&rel)).map_err(io_err(&root.join(&rel)))?;
            if meta.is_dir() {
                stack.push(rel.clone());
            }
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Packs `src` as a gzip tar layer into the layout; returns its descriptor
/// and diff_id.
fn pack_layer(layout: &Path, src: &Path, level: u32) -> Result<(Descriptor, String), ImageError> {
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io_err(&dir))?;
    let file = tmp.reopen().map_err(io_err(tmp.path()))?;
    let compressed = Hashing {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        len: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, flate2::Compression::new(level));
    let uncompressed = Hashing {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    };
    let mut builder = tar::Builder::new(uncompressed);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    for rel in walk(src)? {
        let path = src.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let ft = meta.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            return Err(ImageError::Unsupported(path));
        }
        builder
            .append_path_with_name(&path, &rel)
            .map_err(io_err(&path))?;
    }
    let uncompressed = builder.into_inner().map_err(io_err(src))?;
    let diff_id = format!("sha256:{}", hex::encode(uncompressed.hash.finalize()));
    let compressed = uncompressed.inner.finish().map_err(io_err(src))?;
    let mut buffered = compressed.inner;
    buffered.flush().map_err(io_err(tmp.path()))?;
    let file = buffered.into_inner().map_err(|e| ImageError::Io {
        path: tmp.path().to_owned(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(tmp.path()))?;
    let hex = hex::encode(compressed.hash.finalize());
    let path = dir.join(&hex);
    tmp.persist(&path).map_err(|e| ImageError::Io {
        path: path.clone(),
        source: e.error,
    })?;
    let desc = descriptor(MediaType::ImageLayerGzip, &hex, compressed.len)?;
    Ok((desc, diff_id))
}

/// Builds an image whose layers are the directories `layers` (in order,
/// each one layer) into the OCI image layout `out` (created if missing;
/// an existing layout gains the image, and `index.json` lists it under
/// `tag`, replacing an earlier image with that tag).
pub fn build(
    layers: &[&Path],
    spec: &ImageSpec,
    out: &Path,
    tag: &str,
) -> Result<BuiltImage, ImageError> {
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for dir in layers {
        let (desc, diff_id) = pack_layer(out, dir, spec.compression)?;
        descs.push(desc);
        diff_ids.push(diff_id);
    }
    let mut config = ConfigBuilder::default();
    if !spec.entrypoint.is_empty() {
        config = config.entrypoint(spec.entrypoint.clone());
    }
    if !spec.cmd.is_empty() {
        config = config.cmd(spec.cmd.clone());
    }
    if !spec.env.is_empty() {
        config = config.env(spec.env.clone());
    }
    if let Some(wd) = &spec.working_dir {
        config = config.working_dir(wd.clone());
    }
    if !spec.volumes.is_empty() {
        config = config.volumes(spec.volumes.clone());
    }
    let image_config = ImageConfigurationBuilder::default()
        .architecture(spec.architecture.as_str())
        .os(spec.os.as_str())
        .created("1970-01-01T00:00:01Z".to_string())
        .config(config.build().map_err(spec_err)?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(diff_ids.clone())
                .build()
                .map_err(spec_err)?,
        )
        .build()
        .map_err(spec_err)?;
    let config_bytes = serde_json::to_vec(&image_config).map_err(spec_err)?;
    let config_desc = put_blob(out, MediaType::ImageConfig, &config_bytes)?;
    let mut annotations = BTreeMap::new();
    if let Some(v) = &spec.version {
        annotations.insert(VERSION.to_string(), v.clone());
    }
    let mut manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config_desc.clone())
        .layers(descs.clone());
    if !annotations.is_empty() {
        manifest = manifest.annotations(
            annotations
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    let manifest = manifest.build().map_err(spec_err)?;
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(spec_err)?;
    let mut manifest_desc = put_blob(out, MediaType::ImageManifest, &manifest_bytes)?;
    manifest_desc.set_annotations(Some(
        [(REF_NAME.to_string(), tag.to_string())]
            .into_iter()
            .collect(),
    ));

    // index.json: keep other tags' entries.
    let index_path = out.join("index.json");
    let mut entries: Vec<Descriptor> = match std::fs::read(&index_path) {
        Ok(bytes) => {
            let index: oci_spec::image::ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::Output(format!("{}: {e}", index_path.display())))?;
            index
                .manifests()
                .iter()
                .filter(|d| {
                    d.annotations()
                        .as_ref()
                        .and_then(|a| a.get(REF_NAME))
                        .map(String::as_str)
                        != Some(tag)
                })
                .cloned()
                .collect()
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(&index_path)(e)),
    };
    entries.push(manifest_desc);
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .map_err(spec_err)?;
    write_atomic(
        &index_path,
        &serde_json::to_vec_pretty(&index).map_err(spec_err)?,
    )?;
    write_atomic(
        &out.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let total_bytes = config_bytes.len() as u64
        + manifest_bytes.len() as u64
        + descs.iter().map(|d| d.size()).sum::<u64>();
    Ok(BuiltImage {
        manifest_digest: format!("sha256:{}", hex::encode(Sha256::digest(&manifest_bytes))),
        manifest: manifest_bytes,
        config_digest: config_desc.digest().to_string(),
        layers: descs
            .iter()
            .map(|d| d.digest().to_string())
            .zip(diff_ids)
            .collect(),
        total_bytes,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    atoll_atomic_file::write(path, bytes).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) {
        std::fs::create_dir_all(dir.join("app/bin")).unwrap();
        std::fs::write(dir.join("app/bin/run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        std::os::unix::fs::symlink("bin/run.sh", dir.join("app/run")).unwrap();
    }

    fn spec() -> ImageSpec {
        ImageSpec {
            entrypoint: vec!["/app/run".into()],
            volumes: vec!["/data".into()],
            version: Some("1.0".into()),
            ..ImageSpec::for_host()
        }
    }

    #[test]
    fn builds_are_reproducible() {
        let src = tempfile::tempdir().unwrap();
        sample(src.path());
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let one = build(&[src.path()], &spec(), a.path(), "1.0").unwrap();
        let two = build(&[src.path()], &spec(), b.path(), "1.0").unwrap();
        assert_eq!(one.manifest_digest, two.manifest_digest);
        assert_eq!(one.layers, two.layers);
        // Every blob is where its digest says.
        for (digest, _) in &one.layers {
            let hex = digest.strip_prefix("sha256:").unwrap();
            let bytes = std::fs::read(a.path().join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), hex);
        }
        // Another content gives another digest.
        std::fs::write(src.path().join("app/bin/run.sh"), "#!/bin/sh\necho bye\n").unwrap();
        let three = build(&[src.path()], &spec(), b.path(), "1.1").unwrap();
        assert_ne!(three.manifest_digest, one.manifest_digest);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn layer_has_the_files_and_diff_id() {
        let src = tempfile::tempdir().unwrap();
        sample(src.path());
        let out = tempfile::tempdir().unwrap();
        let built = build(&[src.path()], &spec(), out.path(), "1.0").unwrap();
        let (digest, diff_id) = &built.layers[0];
        let blob = std::fs::read(out.path().join("blobs/sha256").join(&digest[7..])).unwrap();
        let mut tar_bytes = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar_bytes)
            .unwrap();
        assert_eq!(
            &format!("sha256:{}", hex::encode(Sha256::digest(&tar_bytes))),
            diff_id
        );
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["app", "app/bin", "app/bin/run.sh", "app/run"]);
    }

    #[test]
    fn fifo_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(src.path().join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let out = tempfile::tempdir().unwrap();
        let err = build(&[src.path()], &spec(), out.path(), "1.0").unwrap_err();
        assert!(matches!(err, ImageError::Unsupported(_)), "{err}");
    }
}
