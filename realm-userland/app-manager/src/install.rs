//! Installing an application: fetch over RA-TLS, verify, unpack, seal.
//!
//! Nothing on the application's disk changes until everything has been
//! fetched, verified and unpacked into a private staging directory; the
//! sealed image then replaces the previous one in one rename. A failure at
//! any step leaves the disk as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use atoll_oci_client::Client;
use atoll_ra_tls::rustls::{self, pki_types::CertificateDer};
use atoll_ra_tls::{AttestingClientResolver, CertOptions};
use atoll_signing::{SignatureArtifact, Verified, ARTIFACT_TYPE};
use ipc_schema::agent::{AppSpec, InstalledApp};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};
use x509_cert::der::Encode;
use x509_cert::Certificate;

use crate::disk::{self, Disk, Label};
use crate::error::AppError;
use crate::keys;
use crate::realm::{Realm, RealmError};
use crate::trust::TrustBundle;

/// Largest manifest, config or signature blob fetched into memory.
const MAX_SMALL_BLOB: u64 = 4 << 20;
/// Most signature artifacts tried for one image.
const MAX_SIGNATURES: usize = 16;

/// What `image.sealed` records next to the root file system.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// The installed version (tag).
    pub version: String,
    /// The repository it came from.
    pub repository: String,
    /// Digest of the image manifest.
    pub manifest_digest: String,
    /// Digest of the image config.
    pub config_digest: String,
    /// The OCI image config, as fetched.
    pub config: serde_json::Value,
    /// The vendor certificate's subject.
    pub vendor: String,
}

impl Meta {
    /// The status form.
    pub fn label(&self) -> Label {
        Label {
            version: self.version.clone(),
            manifest_digest: self.manifest_digest.clone(),
            vendor: self.vendor.clone(),
        }
    }
}

/// A `'static` attester: rustls keeps its resolver beyond this call.
struct SharedAttester(Arc<dyn Realm>);

impl atoll_ra_tls::Attester for SharedAttester {
    type Error = RealmError;
    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, RealmError> {
        self.0.attest(challenge)
    }
}

fn fetch_err(e: impl std::fmt::Display) -> AppError {
    AppError::Fetch(e.to_string())
}

fn verify_err(e: impl std::fmt::Display) -> AppError {
    AppError::Verify(e.to_string())
}

/// The RA-TLS client configuration: the registry is authenticated with
/// the trust bundle's registry roots; the realm answers the registry's
/// client authentication with an attested certificate.
pub fn client_config(
    realm: Arc<dyn Realm>,
    bundle: &TrustBundle,
) -> Result<rustls::ClientConfig, AppError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in &bundle.registry_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| AppError::Fetch(format!("registry root in the trust bundle: {e}")))?;
    }
    if roots.is_empty() {
        return Err(AppError::Fetch(
            "the trust bundle names no registry root CA: the realm cannot authenticate a registry"
                .into(),
        ));
    }
    AttestingClientResolver::new(SharedAttester(realm), CertOptions::default())
        .client_config(roots)
        .map_err(fetch_err)
}

/// The vendor's identity as the key layering uses it: the vendor
/// certificate's public key and the public key of the root that certifies
/// it. (Not the certificate itself: a renewed certificate for the same key
/// from the same root keeps the data.)
pub fn vendor_identity(
    chain: &[Certificate],
    root: &Certificate,
) -> Result<keys::Vendor, AppError> {
    let spki = |c: &Certificate| {
        c.tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| AppError::Verify(format!("certificate key: {e}")))
    };
    let vendor = chain
        .first()
        .ok_or_else(|| AppError::Verify("empty certificate chain".into()))?;
    Ok(keys::Vendor {
        spki: spki(vendor)?,
        root_spki: spki(root)?,
        subject: atoll_signing::cert::subject(vendor),
    })
}

/// Installs (or updates) `spec` onto its disk. A realm holds one vendor's
/// applications only: `pinned` is the vendor this realm has installed or
/// started since it booted (kept in realm memory, out of the host's
/// reach), `other_disks` the disks of the realm's other applications
/// (which the host could hide, so they only give an early, clear error).
/// Returns what was installed and its vendor.
pub fn install(
    realm: Arc<dyn Realm>,
    spec: &AppSpec,
    work_dir: &Path,
    other_disks: &[PathBuf],
    pinned: Option<&keys::Vendor>,
) -> Result<(InstalledApp, keys::Vendor), AppError> {
    let disk = Disk::new(Path::new(&spec.disk));
    disk.check()?;
    let bundle = realm.trust_bundle()?;
    let staging = tempfile::Builder::new()
        .prefix(&format!("install-{}-", spec.name))
        .tempdir_in(work_dir)
        .map_err(|e| AppError::Install(format!("staging directory: {e}")))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Internal(format!("runtime: {e}")))?;
    let started = std::time::Instant::now();
    let client =
        Client::tls(&spec.registry, client_config(realm.clone(), &bundle)?).map_err(fetch_err)?;
    let fetched = rt.block_on(fetch(&client, &bundle, spec))?;
    let fetch_time = started.elapsed();

    // The vendor: the same as what this disk holds, and as every other
    // application of the realm.
    let root = &bundle.vendor_roots[fetched.verified.root_index];
    let vendor = vendor_identity(&fetched.verified.chain, root)?;
    if let Some(pin) = pinned.filter(|p| !p.same_key(&vendor)) {
        return Err(AppError::Verify(format!(
            "this realm runs applications of vendor {}; it will not install one signed by {}",
            pin.subject, vendor.subject
        )));
    }
    let previous_vendor = keys::stored_vendor(&disk, &bundle)?;
    if let Some(prev) = &previous_vendor {
        if !prev.same_key(&vendor) {
            return Err(AppError::Verify(format!(
                "{} is installed from vendor {}; an image signed by {} cannot replace it \
                 (it could not open the application's data)",
                spec.name, prev.subject, vendor.subject
            )));
        }
    }
    for other in other_disks {
        if let Some(other_vendor) = keys::stored_vendor(&Disk::new(other), &bundle)? {
            if !other_vendor.same_key(&vendor) {
                return Err(AppError::Verify(format!(
                    "this realm holds applications of vendor {}; it will not install one signed by {}",
                    other_vendor.subject, vendor.subject
                )));
            }
        }
    }

    // Unpack every layer into the staging root, checking diff_ids.
    let tree = staging.path().join("tree");
    let rootfs = tree.join("rootfs");
    std::fs::create_dir_all(&tree).map_err(|e| AppError::Install(format!("staging: {e}")))?;
    let limits = atoll_oci_unpack::Limits {
        max_total_bytes: spec.image_limit,
        ..Default::default()
    };
    let unpacked_bytes = rt.block_on(stream_unpack(
        &client,
        &spec.repository,
        &fetched.layers,
        &fetched.diff_ids,
        &rootfs,
        &limits,
    ))?;
    let unpack_time = started.elapsed() - fetch_time;

    let meta = Meta {
        version: spec.version.clone(),
        repository: spec.repository.clone(),
        manifest_digest: fetched.manifest_digest.clone(),
        config_digest: fetched.config_digest.clone(),
        config: serde_json::from_slice(&fetched.config_bytes)
            .map_err(|e| AppError::Verify(format!("image config: {e}")))?,
        vendor: vendor.subject.clone(),
    };
    let meta_json =
        serde_json::to_vec_pretty(&meta).map_err(|e| AppError::Internal(e.to_string()))?;
    std::fs::write(tree.join("meta.json"), &meta_json)
        .map_err(|e| AppError::Install(format!("staging: {e}")))?;

    // Seal and commit: vendor chain, image, label.
    let keys = keys::AppKeys::derive(realm.as_ref(), &vendor, &spec.name)?;
    let chain_pem = atoll_signing::cert::to_pem(&fetched.verified.chain)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    disk.write_atomic(disk::VENDOR, chain_pem.as_bytes())?;
    keys.seal_image(&tree, &disk.path(disk::IMAGE), spec.image_limit)?;
    let label =
        serde_json::to_vec_pretty(&meta.label()).map_err(|e| AppError::Internal(e.to_string()))?;
    disk.write_atomic(disk::LABEL, &label)?;
    info!(
        "{}: manifest, signature and config in {:.0?}, {} layers ({} bytes) fetched and unpacked in {:.0?}, sealed in {:.0?}",
        spec.name,
        fetch_time,
        fetched.layers.len(),
        unpacked_bytes,
        unpack_time,
        started.elapsed() - fetch_time - unpack_time
    );
    Ok((meta.label().into(), vendor))
}

/// Everything fetched and verified, not yet unpacked.
struct Fetched {
    manifest_digest: String,
    config_digest: String,
    config_bytes: Vec<u8>,
    verified: Verified,
    /// The layers' descriptors, in order (fetched later, streamed into
    /// the unpacker).
    layers: Vec<Descriptor>,
    /// The config's diff_ids, in order.
    diff_ids: Vec<String>,
}

async fn fetch(client: &Client, bundle: &TrustBundle, spec: &AppSpec) -> Result<Fetched, AppError> {
    let repo = spec.repository.as_str();

    let manifest = client
        .manifest(repo, &spec.version)
        .await
        .map_err(fetch_err)?;
    let parsed: ImageManifest = serde_json::from_slice(&manifest.bytes)
        .map_err(|e| verify_err(format!("the image manifest does not parse: {e}")))?;
    match parsed.media_type() {
        Some(MediaType::ImageManifest) | None => {}
        Some(other) => {
            return Err(verify_err(format!(
                "manifest media type {other} (an image index or foreign type); push a single-platform OCI image manifest"
            )))
        }
    }
    info!("{}: manifest {}", spec.name, manifest.digest);

    // The signature: an artifact referring to this manifest, by a vendor
    // certified by a root in the trust bundle.
    let referrers = client
        .referrers(repo, &manifest.digest, Some(ARTIFACT_TYPE))
        .await
        .map_err(fetch_err)?;
    let mut failures = Vec::new();
    let mut verified = None;
    for desc in referrers.iter().take(MAX_SIGNATURES) {
        match check_signature(client, repo, desc, &manifest.bytes, bundle).await {
            Ok(v) => {
                verified = Some(v);
                break;
            }
            Err(e) => {
                warn!("{}: signature {}: {e}", spec.name, desc.digest());
                failures.push(format!("{}: {e}", desc.digest()));
            }
        }
    }
    let verified = match verified {
        Some(v) => v,
        None if failures.is_empty() => {
            return Err(verify_err(format!(
                "{}:{} ({}) has no signature in the registry",
                repo, spec.version, manifest.digest
            )))
        }
        None => {
            return Err(verify_err(format!(
                "no valid signature for {} ({}): {}",
                manifest.digest,
                repo,
                failures.join("; ")
            )))
        }
    };
    info!("{}: signed by {}", spec.name, verified.vendor());

    // The config and its diff_ids.
    let config_desc = parsed.config();
    let config_digest = config_desc.digest().to_string();
    let config_bytes = client
        .blob_bytes(repo, &config_digest, MAX_SMALL_BLOB)
        .await
        .map_err(fetch_err)?;
    let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
        .map_err(|e| verify_err(format!("the image config does not parse: {e}")))?;
    let diff_ids: Vec<String> = config.rootfs().diff_ids().to_vec();
    if diff_ids.len() != parsed.layers().len() {
        return Err(verify_err(format!(
            "the manifest has {} layers, the config {} diff_ids",
            parsed.layers().len(),
            diff_ids.len()
        )));
    }
    let total: u64 = parsed.layers().iter().map(|l| l.size()).sum();
    if total > spec.image_limit {
        return Err(AppError::Install(format!(
            "the image's layers are {total} bytes compressed, above the image partition's {} bytes",
            spec.image_limit
        )));
    }

    let layers = parsed.layers().to_vec();
    Ok(Fetched {
        manifest_digest: manifest.digest.clone(),
        config_digest,
        config_bytes,
        verified,
        layers,
        diff_ids,
    })
}

async fn check_signature(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    manifest: &[u8],
    bundle: &TrustBundle,
) -> Result<Verified, AppError> {
    let art = client
        .manifest(repo, desc.digest().as_ref())
        .await
        .map_err(fetch_err)?;
    let parsed: ImageManifest =
        serde_json::from_slice(&art.bytes).map_err(|e| verify_err(format!("artifact: {e}")))?;
    let mut blobs = BTreeMap::new();
    for d in std::iter::once(parsed.config()).chain(parsed.layers().iter()) {
        if d.size() > MAX_SMALL_BLOB {
            return Err(verify_err(format!(
                "artifact blob {} is too large",
                d.digest()
            )));
        }
        let bytes = client
            .blob_bytes(repo, d.digest().as_ref(), MAX_SMALL_BLOB)
            .await
            .map_err(fetch_err)?;
        blobs.insert(d.digest().to_string(), bytes);
    }
    let artifact =
        SignatureArtifact::parse(&art.bytes, |d| blobs.get(&d.digest().to_string()).cloned())
            .map_err(verify_err)?;
    artifact
        .verify(manifest, &bundle.vendor_roots, SystemTime::now())
        .map_err(verify_err)
}

/// Reads what a channel of chunks delivers: the unpacker's side of a
/// streamed layer. A closed channel is the end of the stream.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Fetches each layer and unpacks it while it arrives (network and
/// hashing on this thread, decompression and file writes on another),
/// into the private staging root. The unpacker sees bytes before the
/// layer's digest is verified at its end; on any failure the staging
/// directory is discarded, so nothing unverified is ever installed.
/// Returns the uncompressed bytes.
async fn stream_unpack(
    client: &Client,
    repo: &str,
    layers: &[Descriptor],
    diff_ids: &[String],
    root: &Path,
    limits: &atoll_oci_unpack::Limits,
) -> Result<u64, AppError> {
    std::fs::create_dir_all(root).map_err(|e| AppError::Install(format!("staging: {e}")))?;
    let mut usage = atoll_oci_unpack::Usage::default();
    let mut total = 0;
    for (index, (layer, diff_id)) in layers.iter().zip(diff_ids).enumerate() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
        let media_type = layer.media_type().to_string();
        let (root, limits) = (root.to_owned(), limits.clone());
        let mut layer_usage = std::mem::take(&mut usage);
        let worker = std::thread::spawn(move || {
            let reader = ChannelReader {
                rx,
                chunk: Vec::new(),
                pos: 0,
            };
            let r = atoll_oci_unpack::unpack_layer(
                std::io::BufReader::with_capacity(256 * 1024, reader),
                &media_type,
                &root,
                &limits,
                &mut layer_usage,
            );
            (r, layer_usage)
        });
        let digest = layer.digest().to_string();
        let fetched = client
            .blob_chunks(repo, &digest, layer.size(), |chunk| {
                tx.send(chunk.to_vec())
                    .map_err(|_| atoll_oci_client::OciError::Invalid("the unpacker stopped".into()))
            })
            .await;
        drop(tx);
        let (unpacked, u) = worker
            .join()
            .map_err(|_| AppError::Internal("the unpacker panicked".into()))?;
        usage = u;
        match (fetched, unpacked) {
            // Integrity first: content that is not what was signed.
            (Err(e), _) if e.is_integrity() => {
                return Err(verify_err(format!("layer {digest}: {e}")))
            }
            (_, Err(e)) => return Err(AppError::Install(format!("layer {digest}: {e}"))),
            (Err(e), Ok(_)) => return Err(fetch_err(format!("layer {digest}: {e}"))),
            (Ok(()), Ok(report)) => {
                if &report.diff_id != diff_id {
                    return Err(verify_err(format!(
                        "layer {index}: diff_id {} does not match the config's {diff_id}",
                        report.diff_id
                    )));
                }
                total += report.uncompressed_bytes;
            }
        }
    }
    Ok(total)
}
