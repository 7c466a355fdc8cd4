//! An OCI distribution v1.1 client for Atoll's registry and any other.
//!
//! Every byte that comes back is checked against the digest it was asked
//! for before the caller sees it: manifests in memory, blobs while they
//! stream to a temporary file that is renamed into place only when the
//! digest and size match. The transport is plain HTTP (development), TLS,
//! or any rustls `ClientConfig`, which is how RA-TLS comes in: the realm's
//! configuration answers the registry's client authentication with an
//! attested certificate.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

/// Largest manifest accepted.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Manifest media types asked for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The connection or TLS failed.
    #[error("{context}: {source}")]
    Http {
        /// What was being done.
        context: String,
        /// The error.
        source: reqwest::Error,
    },
    /// The registry answered with an error.
    #[error("{context}: HTTP {status}{}", registry_detail(.code, .message))]
    Registry {
        /// What was being done.
        context: String,
        /// HTTP status.
        status: u16,
        /// The first error code of the body (`DENIED`, `BLOB_UNKNOWN`, ...).
        code: Option<String>,
        /// Its message.
        message: Option<String>,
    },
    /// Content does not hash to its digest.
    #[error("{what}: content hashes to {actual}, expected {expected}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// Content has another size than its descriptor.
    #[error("{what}: {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// What was fetched.
        what: String,
        /// Expected bytes.
        expected: u64,
        /// Bytes received (or at least received).
        actual: u64,
    },
    /// Content above a limit.
    #[error("{what}: more than {limit} bytes")]
    TooLarge {
        /// What was fetched.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A malformed digest, reference, layout or answer.
    #[error("{0}")]
    Invalid(String),
    /// Local files.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn registry_detail(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" {c}: {m}"),
        (Some(c), None) => format!(" {c}"),
        _ => String::new(),
    }
}

impl OciError {
    /// True when the registry served content that does not match its
    /// digest or size: the content is not what was signed.
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Self::DigestMismatch { .. } | Self::SizeMismatch { .. }
        )
    }

    /// The registry's error code, if it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Registry { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn http(context: impl Into<String>) -> impl FnOnce(reqwest::Error) -> OciError {
    let context = context.into();
    move |source| OciError::Http { context, source }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
    let context = context.into();
    move |source| OciError::Io { context, source }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks a digest's form (only sha256 is accepted) and returns its hex.
pub fn digest_hex(digest: &str) -> Result<&str, OciError> {
    match digest.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) =>
        {
            Ok(h)
        }
        _ => Err(OciError::Invalid(format!(
            "unsupported or malformed digest {digest:?}"
        ))),
    }
}

/// A manifest as fetched.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// The Content-Type the registry gave.
    pub media_type: String,
    /// `sha256:` of the bytes.
    pub digest: String,
}

/// Progress callback: bytes done, bytes total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A client for one registry.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// Plain HTTP to `host:port` (development registries only).
    pub fn plain(registry: &str) -> Result<Self, OciError> {
        let http = reqwest::Client::builder()
            .http1_only()
            .build()
            .map_err(http("building the HTTP client"))?;
        Ok(Self {
            http,
            base: format!("http://{registry}"),
        })
    }

    /// HTTPS to `host:port` with a rustls configuration: ordinary TLS with
    /// chosen roots, or RA-TLS.
    pub fn tls(registry: &str, config: rustls::ClientConfig) -> Result<Self, OciError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .http1_only()
            .build()
            .map_err(http("building the HTTPS client"))?;
        Ok(Self {
            http,
            base: format!("https://{registry}"),
        })
    }

    /// TLS trusting the PEM root certificates in `ca_pem`.
    pub fn tls_with_roots(registry: &str, ca_pem: &[u8]) -> Result<Self, OciError> {
        let mut roots = rustls::RootCertStore::empty();
        let mut reader = std::io::BufReader::new(ca_pem);
        for cert in rustls_pemfile_certs(&mut reader)? {
            roots
                .add(cert)
                .map_err(|e| OciError::Invalid(format!("root certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(OciError::Invalid("no certificate in the CA file".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| OciError::Invalid(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self::tls(registry, config)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        context: &str,
    ) -> Result<reqwest::Response, OciError> {
        let resp = req.send().await.map_err(http(context))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        // An error body is for a message: a registry cannot make the
        // client buffer more than 64 KiB of it.
        let body = read_capped(resp, 64 * 1024, context)
            .await
            .unwrap_or_default();
        let (code, message) = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"].get(0).cloned())
            .map(|e| {
                (
                    e["code"].as_str().map(str::to_owned),
                    e["message"].as_str().map(str::to_owned),
                )
            })
            .unwrap_or((None, None));
        Err(OciError::Registry {
            context: context.into(),
            status,
            code,
            message,
        })
    }

    /// `GET /v2/`: the registry speaks the distribution API and lets us in.
    pub async fn ping(&self) -> Result<(), OciError> {
        self.send(self.http.get(self.url("/v2/")), "GET /v2/")
            .await?;
        Ok(())
    }

    /// Fetches a manifest by tag or digest.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Manifest, OciError> {
        let context = format!("manifest {repo}:{reference}");
        let resp = self
            .send(
                self.http
                    .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
                    .header(ACCEPT, MANIFEST_ACCEPT),
                &context,
            )
            .await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let header_digest = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(resp, MAX_MANIFEST, &context).await?;
        let digest = sha256_digest(&bytes);
        for expected in [
            reference
                .starts_with("sha256:")
                .then(|| reference.to_string()),
            header_digest,
        ]
        .into_iter()
        .flatten()
        {
            if expected != digest {
                return Err(OciError::DigestMismatch {
                    what: context,
                    expected,
                    actual: digest,
                });
            }
        }
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Fetches a small blob into memory, checking its digest.
    pub async fn blob_bytes(
        &self,
        repo: &str,
        digest: &str,
        max: u64,
    ) -> Result<Vec<u8>, OciError> {
        digest_hex(digest)?;
        let context = format!("blob {digest}");
        let resp = self
            .send(
                self.http
                    .get(self.url(&format!("/v2/{repo}/blobs/{digest}"))),
                &context,
            )
            .await?;
        let bytes = read_capped(resp, max, &context).await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(OciError::DigestMismatch {
                what: context,
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams a blob to `path`: into a temporary file beside it, hashed as
    /// it arrives, never more than `size` bytes; renamed to `path` only
    /// when digest and size match.
    pub async fn blob_to_file(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        path: &Path,
        progress: Progress<'_>,
    ) -> Result<(), OciError> {
        let hex = digest_hex(digest)?.to_string();
        let context = format!("blob {digest}");
        let resp = self
            .send(
                self.http
                    .get(self.url(&format!("/v2/{repo}/blobs/{digest}"))),
                &context,
            )
            .await?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(dir)
            .map_err(io(format!("temp file in {}", dir.display())))?;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let mut hash = Sha256::new();
        let mut done = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(http(context.clone()))?;
            done += chunk.len() as u64;
            if done > size {
                return Err(OciError::SizeMismatch {
                    what: context,
                    expected: size,
                    actual: done,
                });
            }
            hash.update(&chunk);
            file.write_all(&chunk).map_err(io(context.clone()))?;
            progress(done, size);
        }
        file.flush().map_err(io(context.clone()))?;
        drop(file);
        if done != size {
            return Err(OciError::SizeMismatch {
                what: context,
                expected: size,
                actual: done,
            });
        }
        let actual = hex::encode(hash.finalize());
        if actual != hex {
            return Err(OciError::DigestMismatch {
                what: context,
                expected: digest.into(),
                actual: format!("sha256:{actual}"),
            });
        }
        tmp.persist(path)
            .map_err(|e| io(format!("{}", path.display()))(e.error))?;
        Ok(())
    }

    /// Streams a blob to `sink` chunk by chunk as it arrives, never more
    /// than `size` bytes, and checks its size and digest at the end. The
    /// sink sees bytes before they are verified: it must treat them as
    /// untrusted until this returns `Ok` (write them somewhere private,
    /// discard on error).
    pub async fn blob_chunks(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), OciError>,
    ) -> Result<(), OciError> {
        let hex = digest_hex(digest)?.to_string();
        let context = format!("blob {digest}");
        let resp = self
            .send(
                self.http
                    .get(self.url(&format!("/v2/{repo}/blobs/{digest}"))),
                &context,
            )
            .await?;
        let mut hash = Sha256::new();
        let mut done = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(http(context.clone()))?;
            done += chunk.len() as u64;
            if done > size {
                return Err(OciError::SizeMismatch {
                    what: context,
                    expected: size,
                    actual: done,
                });
            }
            hash.update(&chunk);
            sink(&chunk)?;
        }
        if done != size {
            return Err(OciError::SizeMismatch {
                what: context,
                expected: size,
                actual: done,
            });
        }
        let actual = hex::encode(hash.finalize());
        if actual != hex {
            return Err(OciError::DigestMismatch {
                what: context,
                expected: digest.into(),
                actual: format!("sha256:{actual}"),
            });
        }
        Ok(())
    }

    /// `HEAD` a blob.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, OciError> {
        digest_hex(digest)?;
        let resp = self
            .http
            .head(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .await
            .map_err(http(format!("HEAD blob {digest}")))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(OciError::Registry {
                context: format!("HEAD blob {digest}"),
                status: s.as_u16(),
                code: None,
                message: None,
            }),
        }
    }

    async fn start_upload(&self, repo: &str, context: &str) -> Result<String, OciError> {
        let resp = self
            .send(
                self.http
                    .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
                    .header(CONTENT_LENGTH, 0),
                context,
            )
            .await?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| OciError::Invalid(format!("{context}: no Location in the answer")))?;
        Ok(if location.starts_with("http") {
            location.to_string()
        } else {
            self.url(location)
        })
    }

    fn with_digest(location: &str, digest: &str) -> String {
        let sep = if location.contains('?') { '&' } else { '?' };
        format!("{location}{sep}digest={digest}")
    }

    /// Pushes a blob from memory (skipped when the registry has it);
    /// returns its digest.
    pub async fn push_blob_bytes(&self, repo: &str, bytes: Vec<u8>) -> Result<String, OciError> {
        let digest = sha256_digest(&bytes);
        if self.blob_exists(repo, &digest).await? {
            return Ok(digest);
        }
        let context = format!("pushing blob {digest}");
        let location = self.start_upload(repo, &context).await?;
        self.send(
            self.http
                .request(Method::PUT, Self::with_digest(&location, &digest))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, bytes.len())
                .body(bytes),
            &context,
        )
        .await?;
        Ok(digest)
    }

    /// Pushes a blob from a file (skipped when the registry has it),
    /// streamed in one PUT.
    pub async fn push_blob_file(
        &self,
        repo: &str,
        path: &Path,
        digest: &str,
        size: u64,
    ) -> Result<(), OciError> {
        digest_hex(digest)?;
        if self.blob_exists(repo, digest).await? {
            return Ok(());
        }
        let context = format!("pushing blob {digest}");
        let location = self.start_upload(repo, &context).await?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(io(format!("{}", path.display())))?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        self.send(
            self.http
                .request(Method::PUT, Self::with_digest(&location, digest))
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, size)
                .body(reqwest::Body::wrap_stream(stream)),
            &context,
        )
        .await?;
        Ok(())
    }

    /// Pushes a manifest under a tag or its digest; returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String, OciError> {
        let digest = sha256_digest(&bytes);
        let context = format!("pushing manifest {repo}:{reference}");
        self.send(
            self.http
                .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
                .header(CONTENT_TYPE, media_type)
                .body(bytes),
            &context,
        )
        .await?;
        Ok(digest)
    }

    /// The manifests that refer to `digest` (OCI 1.1 referrers), filtered
    /// by artifact type (here as well, if the registry did not).
    pub async fn referrers(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, OciError> {
        digest_hex(digest)?;
        let url = self.url(&format!("/v2/{repo}/referrers/{digest}"));
        let mut req = self.http.get(url);
        if let Some(t) = artifact_type {
            req = req.query(&[("artifactType", t)]);
        }
        let context = format!("referrers of {digest}");
        let resp = self.send(req, &context).await?;
        let bytes = read_capped(resp, MAX_MANIFEST, &context).await?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::Invalid(format!("{context}: {e}")))?;
        Ok(index
            .manifests()
            .iter()
            .filter(|d| match artifact_type {
                Some(t) => d.artifact_type().as_ref().map(|a| a.to_string()).as_deref() == Some(t),
                None => true,
            })
            .cloned()
            .collect())
    }

    /// Every tag of a repository (following `Link` pagination).
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>, OciError> {
        let mut out = Vec::new();
        let mut url = self.url(&format!("/v2/{repo}/tags/list"));
        loop {
            let resp = self.send(self.http.get(&url), "listing tags").await?;
            let next = resp
                .headers()
                .get("Link")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| {
                    l.split_once('<')
                        .and_then(|(_, r)| r.split_once('>'))
                        .map(|(u, _)| u.to_string())
                });
            let bytes = read_capped(resp, MAX_MANIFEST, "listing tags").await?;
            let v: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| OciError::Invalid(format!("tag list: {e}")))?;
            out.extend(
                v["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned)),
            );
            match next {
                Some(n) if n.starts_with('/') => url = self.url(&n),
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
    }

    /// Pushes every image in an OCI image layout: blobs first (configs,
    /// layers, index children), then manifests, each tagged with its
    /// `org.opencontainers.image.ref.name` (untagged ones, such as
    /// signature artifacts, by digest). Returns (digest, tag) per image.
    pub async fn push_layout(
        &self,
        dir: &Path,
        repo: &str,
    ) -> Result<Vec<(String, Option<String>)>, OciError> {
        let index_path = dir.join("index.json");
        let index: ImageIndex = serde_json::from_slice(
            &std::fs::read(&index_path).map_err(io(format!("{}", index_path.display())))?,
        )
        .map_err(|e| OciError::Invalid(format!("{}: {e}", index_path.display())))?;
        let mut pushed = Vec::new();
        for desc in index.manifests() {
            let tag = desc
                .annotations()
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name"))
                .cloned();
            let digest = self
                .push_descriptor(dir, repo, desc, tag.as_deref(), 0)
                .await?;
            pushed.push((digest, tag));
        }
        Ok(pushed)
    }

    fn push_descriptor<'a>(
        &'a self,
        dir: &'a Path,
        repo: &'a str,
        desc: &'a Descriptor,
        tag: Option<&'a str>,
        depth: usize,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, OciError>> + Send + 'a>>
    {
        Box::pin(async move {
            if depth > 4 {
                return Err(OciError::Invalid("index nesting too deep".into()));
            }
            let digest = desc.digest().to_string();
            let bytes = read_layout_blob(dir, &digest, desc.size())?;
            let media_type = desc.media_type().to_string();
            match desc.media_type() {
                MediaType::ImageIndex => {
                    let child: ImageIndex = serde_json::from_slice(&bytes)
                        .map_err(|e| OciError::Invalid(format!("index {digest}: {e}")))?;
                    for m in child.manifests() {
                        self.push_descriptor(dir, repo, m, None, depth + 1).await?;
                    }
                }
                _ => {
                    let manifest: ImageManifest = serde_json::from_slice(&bytes)
                        .map_err(|e| OciError::Invalid(format!("manifest {digest}: {e}")))?;
                    for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
                        let d = blob.digest().to_string();
                        let path = blob_path(dir, &d)?;
                        check_file(&path, &d, blob.size())?;
                        self.push_blob_file(repo, &path, &d, blob.size()).await?;
                    }
                }
            }
            let reference = tag.unwrap_or(&digest).to_string();
            self.push_manifest(repo, &reference, bytes, &media_type)
                .await
        })
    }

    /// Pulls `repo:reference` (a single-platform manifest) into an OCI
    /// image layout directory, tagged `reference` when it is a tag.
    pub async fn pull_to_layout(
        &self,
        repo: &str,
        reference: &str,
        dir: &Path,
    ) -> Result<String, OciError> {
        let m = self.manifest(repo, reference).await?;
        let manifest: ImageManifest = serde_json::from_slice(&m.bytes)
            .map_err(|e| OciError::Invalid(format!("manifest: {e}")))?;
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io(format!("{}", blobs.display())))?;
        for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
            let d = blob.digest().to_string();
            self.blob_to_file(repo, &d, blob.size(), &blob_path(dir, &d)?, &|_, _| {})
                .await?;
        }
        std::fs::write(blob_path(dir, &m.digest)?, &m.bytes).map_err(io("writing the manifest"))?;
        let mut entry = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.digest,
            "size": m.bytes.len(),
        });
        if !reference.starts_with("sha256:") {
            entry["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": reference});
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap_or_default(),
        )
        .map_err(io("writing index.json"))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(io("writing oci-layout"))?;
        Ok(m.digest)
    }
}

/// The path of a blob in a layout.
pub fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, OciError> {
    Ok(dir.join("blobs/sha256").join(digest_hex(digest)?))
}

fn read_layout_blob(dir: &Path, digest: &str, size: u64) -> Result<Vec<u8>, OciError> {
    let path = blob_path(dir, digest)?;
    let bytes = std::fs::read(&path).map_err(io(format!("{}", path.display())))?;
    if bytes.len() as u64 != size || sha256_digest(&bytes) != digest {
        return Err(OciError::DigestMismatch {
            what: format!("layout blob {}", path.display()),
            expected: digest.into(),
            actual: sha256_digest(&bytes),
        });
    }
    Ok(bytes)
}

/// Checks a layout file against its descriptor before pushing it.
fn check_file(path: &Path, digest: &str, size: u64) -> Result<(), OciError> {
    let mut file = std::fs::File::open(path).map_err(io(format!("{}", path.display())))?;
    let mut hash = Sha256::new();
    let n = std::io::copy(&mut file, &mut hash).map_err(io(format!("{}", path.display())))?;
    let actual = format!("sha256:{}", hex::encode(hash.finalize()));
    if n != size || actual != digest {
        return Err(OciError::DigestMismatch {
            what: format!("layout blob {}", path.display()),
            expected: digest.into(),
            actual,
        });
    }
    Ok(())
}

async fn read_capped(
    resp: reqwest::Response,
    max: u64,
    context: &str,
) -> Result<Vec<u8>, OciError> {
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(OciError::TooLarge {
            what: context.into(),
            limit: max,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(http(context))?;
        if out.len() as u64 + chunk.len() as u64 > max {
            return Err(OciError::TooLarge {
                what: context.into(),
                limit: max,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Reads PEM certificates (no extra crate: the format is simple).
fn rustls_pemfile_certs(
    reader: &mut impl std::io::BufRead,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, OciError> {
    use rustls::pki_types::pem::PemObject;
    let mut text = Vec::new();
    reader.read_to_end(&mut text).map_err(io("reading PEM"))?;
    rustls::pki_types::CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| OciError::Invalid(format!("PEM: {e:?}")))
}
