//! The signature artifact as an OCI image layout directory:
//! `oci-layout`, `index.json` naming the artifact manifest (with its
//! `artifactType`) and `blobs/sha256/<hex>` for the manifest and its blobs.
//! Tools such as `skopeo copy oci:DIR docker://...` or `oras` can push it.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use crate::artifact::{SignatureArtifact, ARTIFACT_TYPE};
use crate::SigningError;

/// Largest file read from a layout.
const MAX_FILE: u64 = 4 << 20;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SigningError + '_ {
    move |source| SigningError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `blobs/sha256/<hex>` of a descriptor, refusing anything but SHA-256 hex.
fn blob_path(dir: &Path, d: &Descriptor) -> Result<PathBuf, SigningError> {
    let hex = d
        .as_digest_sha256()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| SigningError::Artifact(format!("unsupported digest {}", d.digest())))?;
    Ok(dir.join("blobs").join("sha256").join(hex))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, SigningError> {
    let meta = fs::metadata(path).map_err(io(path))?;
    if meta.len() > MAX_FILE {
        return Err(SigningError::Artifact(format!(
            "{} is too large",
            path.display()
        )));
    }
    fs::read(path).map_err(io(path))
}

/// Writes `artifact` as an OCI image layout in `dir` (created if needed),
/// each file atomically and `index.json` last, so a layout whose index
/// names the artifact holds all of it.
pub fn write(dir: &Path, artifact: &SignatureArtifact) -> Result<(), SigningError> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let oci_layout = dir.join("oci-layout");
    atoll_atomic_file::write(&oci_layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io(&oci_layout))?;
    for blob in artifact.blobs() {
        let p = blob_path(dir, &blob.descriptor)?;
        atoll_atomic_file::write(&p, &blob.data).map_err(io(&p))?;
    }
    let p = blob_path(dir, &artifact.descriptor)?;
    atoll_atomic_file::write(&p, &artifact.manifest).map_err(io(&p))?;
    let index: ImageIndex = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![artifact.descriptor.clone()])
        .build()
        .map_err(|e| SigningError::Artifact(e.to_string()))?;
    let json =
        serde_json::to_vec_pretty(&index).map_err(|e| SigningError::Artifact(e.to_string()))?;
    let index_path = dir.join("index.json");
    atoll_atomic_file::write(&index_path, &json).map_err(io(&index_path))
}

/// Reads the signature artifact of an OCI image layout written by [`write`]
/// (the one manifest of `index.json` whose `artifactType` is
/// [`ARTIFACT_TYPE`]), checking every blob's digest.
pub fn read(dir: &Path) -> Result<SignatureArtifact, SigningError> {
    let index_path = dir.join("index.json");
    let index: ImageIndex = serde_json::from_slice(&read_limited(&index_path)?)
        .map_err(|e| SigningError::Artifact(format!("{}: {e}", index_path.display())))?;
    let mut ours = index.manifests().iter().filter(|d| {
        d.artifact_type()
            .as_ref()
            .is_some_and(|t| t.to_string() == ARTIFACT_TYPE)
    });
    let (Some(desc), None) = (ours.next(), ours.next()) else {
        return Err(SigningError::Artifact(format!(
            "{} must name exactly one manifest with artifactType {ARTIFACT_TYPE}",
            index_path.display()
        )));
    };
    let manifest = read_blob(dir, desc)?;
    SignatureArtifact::parse(&manifest, |d| {
        blob_path(dir, d).ok().and_then(|p| read_limited(&p).ok())
    })
}

fn read_blob(dir: &Path, d: &Descriptor) -> Result<Vec<u8>, SigningError> {
    let data = read_limited(&blob_path(dir, d)?)?;
    let actual = crate::sha256_digest(&data);
    if actual != d.digest().to_string() {
        return Err(SigningError::BlobMismatch {
            digest: d.digest().to_string(),
            actual,
            size: data.len() as u64,
        });
    }
    Ok(data)
}
