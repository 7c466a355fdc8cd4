//! The OCI Distribution v1.1 HTTP API.

use crate::storage::{new_id, valid_name, valid_tag, Digest, Store};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RANGE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::fs;
use tokio::io::AsyncWriteExt;

/// Response body type.
pub type Body = BoxBody<Bytes, io::Error>;

/// Largest manifest accepted.
pub const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// Media types of the manifests accepted.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

struct Upload {
    name: String,
    temp: PathBuf,
    file: fs::File,
    hasher: Sha256,
    size: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Upload>>>;

/// An open upload session: its temp file stays open between requests.
struct Session {
    slot: Slot,
    last_used: Instant,
}

/// Bounds on upload sessions. Each open session holds a file descriptor
/// and a temp file, so a client that opens sessions and never finishes
/// them must not be able to exhaust either.
#[derive(Clone, Copy, Debug)]
pub struct UploadLimits {
    /// Sessions open at once; a further `POST` gets `429 TOOMANYREQUESTS`
    /// until one finishes, is cancelled or expires.
    pub max_sessions: usize,
    /// A session no request has touched for this long is discarded (its
    /// temp file removed) when the next session is opened.
    pub idle_timeout: Duration,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_sessions: 128,
            idle_timeout: Duration::from_secs(15 * 60),
        }
    }
}

/// The registry: storage plus in-progress upload sessions.
pub struct Registry {
    store: Store,
    uploads: Mutex<HashMap<String, Session>>,
    limits: UploadLimits,
}

impl Registry {
    /// Opens the registry rooted at `root`.
    pub async fn open(root: &Path) -> io::Result<Registry> {
        Self::with_limits(root, UploadLimits::default()).await
    }

    /// Opens the registry rooted at `root` with the given upload bounds.
    pub async fn with_limits(root: &Path, limits: UploadLimits) -> io::Result<Registry> {
        Ok(Registry {
            store: Store::open(root).await?,
            uploads: Mutex::new(HashMap::new()),
            limits,
        })
    }

    /// The storage.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles one request.
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        match self.route(req).await {
            Ok(r) => r,
            Err(e) => oci_error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &e.to_string()),
        }
    }

    async fn route(&self, req: Request<Incoming>) -> io::Result<Response<Body>> {
        let path = req.uri().path().to_string();
        let query = parse_query(req.uri().query().unwrap_or(""));
        let method = req.method().clone();
        let Some(rest) = path.strip_prefix("/v2") else {
            return Ok(oci_error(StatusCode::NOT_FOUND, "NOT_FOUND", "not found"));
        };
        if rest.is_empty() || rest == "/" {
            return Ok(match method {
                Method::GET | Method::HEAD => {
                    with_api_header(response(StatusCode::OK, "application/json", b"{}".to_vec()))
                }
                _ => unsupported(),
            });
        }
        let Some((name, route)) = rest.strip_prefix('/').and_then(parse_route) else {
            return Ok(oci_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "unknown endpoint",
            ));
        };
        if !valid_name(&name) {
            return Ok(oci_error(
                StatusCode::BAD_REQUEST,
                "NAME_INVALID",
                "invalid repository name",
            ));
        }
        let r = match route {
            Route::Blob(d) => {
                let Some(d) = Digest::parse(&d) else {
                    return Ok(digest_invalid());
                };
                match method {
                    Method::GET | Method::HEAD => {
                        self.get_blob(&name, &d, &req, method == Method::HEAD)
                            .await?
                    }
                    Method::DELETE => {
                        if self.store.unlink_blob(&name, &d).await? {
                            empty(StatusCode::ACCEPTED)
                        } else {
                            blob_unknown()
                        }
                    }
                    _ => unsupported(),
                }
            }
            Route::Upload(id) if id.is_empty() => match method {
                Method::POST => self.start_upload(&name, &query, req.into_body()).await?,
                _ => unsupported(),
            },
            Route::Upload(id) => match method {
                Method::PATCH => self.patch_upload(&name, &id, req).await?,
                Method::PUT => {
                    self.finish_upload(&name, &id, &query, req.into_body())
                        .await?
                }
                Method::GET => self.upload_status(&name, &id).await,
                Method::DELETE => self.cancel_upload(&name, &id).await,
                _ => unsupported(),
            },
            Route::Manifest(reference) => match method {
                Method::GET | Method::HEAD => {
                    self.get_manifest(&name, &reference, method == Method::HEAD)
                        .await?
                }
                Method::PUT => self.put_manifest(&name, &reference, req).await?,
                Method::DELETE => self.delete_manifest(&name, &reference).await?,
                _ => unsupported(),
            },
            Route::Tags => match method {
                Method::GET => self.list_tags(&name, &query).await?,
                _ => unsupported(),
            },
            Route::Referrers(d) => match method {
                Method::GET => {
                    let Some(d) = Digest::parse(&d) else {
                        return Ok(digest_invalid());
                    };
                    self.referrers(&name, &d, &query).await?
                }
                _ => unsupported(),
            },
        };
        Ok(with_api_header(r))
    }

    async fn get_blob(
        &self,
        name: &str,
        d: &Digest,
        req: &Request<Incoming>,
        head: bool,
    ) -> io::Result<Response<Body>> {
        let Some(size) = self.store.has_blob(name, d).await? else {
            return Ok(blob_unknown());
        };
        let range = match req.headers().get(RANGE).and_then(|v| v.to_str().ok()) {
            Some(r) => match parse_range(r, size) {
                Some(r) => Some(r),
                None => {
                    let mut resp = oci_error(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UNKNOWN",
                        "invalid range",
                    );
                    set(&mut resp, "content-range", &format!("bytes */{size}"));
                    return Ok(resp);
                }
            },
            None => None,
        };
        let (start, len) = range.map(|(a, b)| (a, b - a + 1)).unwrap_or((0, size));
        let body = if head || len == 0 {
            empty_body()
        } else {
            let file = fs::File::open(self.store.blob_path(d)).await?;
            file_body(file.into_std().await, start, len)
        };
        let mut resp = Response::new(body);
        if let Some((a, b)) = range {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(&mut resp, "content-range", &format!("bytes {a}-{b}/{size}"));
        }
        set(&mut resp, "content-type", "application/octet-stream");
        set(&mut resp, "content-length", &len.to_string());
        set(&mut resp, "accept-ranges", "bytes");
        set(&mut resp, "docker-content-digest", &d.to_string());
        Ok(resp)
    }

    /// Discards sessions idle for longer than the limit. A session whose
    /// lock is held is in the middle of a request and is kept.
    async fn expire_sessions(&self) {
        let now = Instant::now();
        let expired: Vec<(String, Slot)> = {
            let mut uploads = self.uploads.lock().expect("uploads lock");
            let ids: Vec<String> = uploads
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= self.limits.idle_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| uploads.remove(&id).map(|s| (id, s.slot)))
                .collect()
        };
        for (id, slot) in expired {
            let taken = match slot.try_lock() {
                Ok(mut guard) => Ok(guard.take()),
                Err(_) => Err(()),
            };
            match taken {
                Ok(Some(up)) => {
                    tracing::info!("upload session {id} for {} expired", up.name);
                    let _ = fs::remove_file(&up.temp).await;
                }
                Ok(None) => {}
                // Busy with a request: put it back, touched.
                Err(()) => {
                    self.uploads.lock().expect("uploads lock").insert(
                        id,
                        Session {
                            slot,
                            last_used: now,
                        },
                    );
                }
            }
        }
    }

    /// Opens an upload session, or `None` when the limit on open sessions
    /// is reached.
    async fn new_session(&self, name: &str) -> io::Result<Option<(String, Slot)>> {
        self.expire_sessions().await;
        if self.uploads.lock().expect("uploads lock").len() >= self.limits.max_sessions {
            tracing::warn!(
                "upload to {name} refused: {} sessions open",
                self.limits.max_sessions
            );
            return Ok(None);
        }
        let id = new_id();
        let temp = self.store.temp_path(&id);
        let file = fs::File::create(&temp).await?;
        let up = Upload {
            name: name.to_string(),
            temp,
            file,
            hasher: Sha256::new(),
            size: 0,
        };
        let slot = Arc::new(tokio::sync::Mutex::new(Some(up)));
        self.uploads.lock().expect("uploads lock").insert(
            id.clone(),
            Session {
                slot: slot.clone(),
                last_used: Instant::now(),
            },
        );
        Ok(Some((id, slot)))
    }

    /// The session `id`, marked as used now. (Its repository is checked
    /// against `name` under the session's lock by each caller.)
    fn session(&self, id: &str) -> Option<Slot> {
        let mut uploads = self.uploads.lock().expect("uploads lock");
        let s = uploads.get_mut(id)?;
        s.last_used = Instant::now();
        Some(s.slot.clone())
    }

    fn drop_session(&self, id: &str) {
        self.uploads.lock().expect("uploads lock").remove(id);
    }

    async fn start_upload(
        &self,
        name: &str,
        query: &HashMap<String, String>,
        body: Incoming,
    ) -> io::Result<Response<Body>> {
        if let Some(mount) = query.get("mount") {
            let Some(d) = Digest::parse(mount) else {
                return Ok(digest_invalid());
            };
            if let Some(from) = query.get("from") {
                if valid_name(from) && self.store.has_blob(from, &d).await?.is_some() {
                    self.store.link_blob(name, &d).await?;
                    return Ok(blob_created(name, &d));
                }
            }
            // Mount not possible: fall back to an upload session.
            drain(body).await;
            return self.session_response(name).await;
        }
        if let Some(digest) = query.get("digest") {
            let Some(expected) = Digest::parse(digest) else {
                return Ok(digest_invalid());
            };
            let Some((id, slot)) = self.new_session(name).await? else {
                // The body is not read: hyper closes the connection.
                return Ok(too_many_uploads());
            };
            let mut guard = slot.lock().await;
            let up = guard.as_mut().expect("fresh session");
            let res = append(up, body).await;
            let up = guard.take().expect("fresh session");
            drop(guard);
            self.drop_session(&id);
            if let Err(e) = res {
                let _ = fs::remove_file(&up.temp).await;
                return Err(e);
            }
            return self.commit(up, &expected).await;
        }
        drain(body).await;
        self.session_response(name).await
    }

    async fn session_response(&self, name: &str) -> io::Result<Response<Body>> {
        let Some((id, _)) = self.new_session(name).await? else {
            return Ok(too_many_uploads());
        };
        let mut resp = empty(StatusCode::ACCEPTED);
        set(
            &mut resp,
            "location",
            &format!("/v2/{name}/blobs/uploads/{id}"),
        );
        set(&mut resp, "docker-upload-uuid", &id);
        set(&mut resp, "range", "0-0");
        set(&mut resp, "oci-chunk-min-length", "0");
        Ok(resp)
    }

    async fn patch_upload(
        &self,
        name: &str,
        id: &str,
        req: Request<Incoming>,
    ) -> io::Result<Response<Body>> {
        let Some(slot) = self.session(id) else {
            return Ok(upload_unknown());
        };
        let mut guard = slot.lock().await;
        let Some(up) = guard.as_mut().filter(|u| u.name == name) else {
            return Ok(upload_unknown());
        };
        if let Some(cr) = req
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
        {
            let start = cr
                .trim()
                .trim_start_matches("bytes ")
                .split('-')
                .next()
                .and_then(|s| s.parse::<u64>().ok());
            if start != Some(up.size) {
                let mut resp = oci_error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "BLOB_UPLOAD_INVALID",
                    "chunk out of order",
                );
                set(
                    &mut resp,
                    "location",
                    &format!("/v2/{name}/blobs/uploads/{id}"),
                );
                set(&mut resp, "range", &range_header(up.size));
                return Ok(resp);
            }
        }
        if let Err(e) = append(up, req.into_body()).await {
            // A broken chunk leaves the session unusable: drop it entirely.
            if let Some(up) = guard.take() {
                let _ = fs::remove_file(&up.temp).await;
            }
            drop(guard);
            self.drop_session(id);
            return Err(e);
        }
        let mut resp = empty(StatusCode::ACCEPTED);
        set(
            &mut resp,
            "location",
            &format!("/v2/{name}/blobs/uploads/{id}"),
        );
        set(&mut resp, "docker-upload-uuid", id);
        set(&mut resp, "range", &range_header(up.size));
        Ok(resp)
    }

    async fn finish_upload(
        &self,
        name: &str,
        id: &str,
        query: &HashMap<String, String>,
        body: Incoming,
    ) -> io::Result<Response<Body>> {
        let Some(slot) = self.session(id) else {
            return Ok(upload_unknown());
        };
        let mut guard = slot.lock().await;
        if guard.as_ref().is_none_or(|u| u.name != name) {
            return Ok(upload_unknown());
        }
        let up = guard.take().expect("checked");
        drop(guard);
        self.drop_session(id);
        let mut up = up;
        let Some(expected) = query.get("digest").and_then(|d| Digest::parse(d)) else {
            let _ = fs::remove_file(&up.temp).await;
            return Ok(digest_invalid());
        };
        if let Err(e) = append(&mut up, body).await {
            let _ = fs::remove_file(&up.temp).await;
            return Err(e);
        }
        self.commit(up, &expected).await
    }

    /// Verifies, fsyncs and moves an upload into place.
    async fn commit(&self, mut up: Upload, expected: &Digest) -> io::Result<Response<Body>> {
        let actual = Digest::from_hasher(std::mem::take(&mut up.hasher));
        if &actual != expected {
            let _ = fs::remove_file(&up.temp).await;
            return Ok(oci_error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                &format!("content digest {actual} does not match {expected}"),
            ));
        }
        let res = async {
            up.file.flush().await?;
            up.file.sync_all().await?;
            if self.store.blob_size(&actual).await?.is_some() {
                fs::remove_file(&up.temp).await
            } else {
                self.store.commit_temp(&up.temp, &actual).await
            }
        }
        .await;
        if let Err(e) = res {
            let _ = fs::remove_file(&up.temp).await;
            return Err(e);
        }
        self.store.link_blob(&up.name, &actual).await?;
        Ok(blob_created(&up.name, &actual))
    }

    async fn upload_status(&self, name: &str, id: &str) -> Response<Body> {
        let Some(slot) = self.session(id) else {
            return upload_unknown();
        };
        let guard = slot.lock().await;
        let Some(up) = guard.as_ref().filter(|u| u.name == name) else {
            return upload_unknown();
        };
        let mut resp = empty(StatusCode::NO_CONTENT);
        set(
            &mut resp,
            "location",
            &format!("/v2/{name}/blobs/uploads/{id}"),
        );
        set(&mut resp, "range", &range_header(up.size));
        set(&mut resp, "docker-upload-uuid", id);
        resp
    }

    async fn cancel_upload(&self, name: &str, id: &str) -> Response<Body> {
        let Some(slot) = self.session(id) else {
            return upload_unknown();
        };
        let mut guard = slot.lock().await;
        if guard.as_ref().is_none_or(|u| u.name != name) {
            return upload_unknown();
        }
        if let Some(up) = guard.take() {
            let _ = fs::remove_file(&up.temp).await;
        }
        drop(guard);
        self.drop_session(id);
        empty(StatusCode::NO_CONTENT)
    }

    async fn resolve(&self, name: &str, reference: &str) -> io::Result<Option<Digest>> {
        if let Some(d) = Digest::parse(reference) {
            return Ok(Some(d));
        }
        if valid_tag(reference) {
            return self.store.tag(name, reference).await;
        }
        Ok(None)
    }

    async fn get_manifest(
        &self,
        name: &str,
        reference: &str,
        head: bool,
    ) -> io::Result<Response<Body>> {
        if Digest::parse(reference).is_none() && !valid_tag(reference) {
            return Ok(oci_error(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                "invalid reference",
            ));
        }
        let Some(d) = self.resolve(name, reference).await? else {
            return Ok(manifest_unknown());
        };
        let Some((mt, bytes)) = self.store.get_manifest(name, &d).await? else {
            return Ok(manifest_unknown());
        };
        let len = bytes.len();
        let mut resp = if head {
            Response::new(empty_body())
        } else {
            Response::new(full(bytes))
        };
        set(&mut resp, "content-type", &mt);
        set(&mut resp, "content-length", &len.to_string());
        set(&mut resp, "docker-content-digest", &d.to_string());
        Ok(resp)
    }

    async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        req: Request<Incoming>,
    ) -> io::Result<Response<Body>> {
        let ref_digest = Digest::parse(reference);
        if ref_digest.is_none() && !valid_tag(reference) {
            return Ok(oci_error(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                "invalid tag",
            ));
        }
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string());
        let Some(bytes) = read_limited(req.into_body(), MAX_MANIFEST).await? else {
            return Ok(oci_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                "manifest too large",
            ));
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(manifest_invalid("manifest is not valid JSON"));
        };
        let body_mt = v.get("mediaType").and_then(Value::as_str);
        let mt = match (content_type.as_deref(), body_mt) {
            (Some(ct), Some(b)) if ct != b && MANIFEST_TYPES.contains(&ct) => {
                return Ok(manifest_invalid("mediaType does not match Content-Type"));
            }
            (Some(ct), _) if MANIFEST_TYPES.contains(&ct) => ct.to_string(),
            (_, Some(b)) if MANIFEST_TYPES.contains(&b) => b.to_string(),
            _ => return Ok(manifest_invalid("unknown manifest media type")),
        };
        let digest = Digest::of(&bytes);
        if let Some(rd) = &ref_digest {
            if rd != &digest {
                return Ok(digest_invalid());
            }
        }
        // Referenced content must exist in this repository.
        if INDEX_TYPES.contains(&mt.as_str()) {
            let Some(list) = v.get("manifests").and_then(Value::as_array) else {
                return Ok(manifest_invalid("index without manifests"));
            };
            for m in list {
                let Some(d) = descriptor_digest(m) else {
                    return Ok(manifest_invalid("bad descriptor"));
                };
                if self.store.manifest_media_type(name, &d).await?.is_none() {
                    return Ok(oci_error(
                        StatusCode::BAD_REQUEST,
                        "MANIFEST_BLOB_UNKNOWN",
                        &format!("manifest {d} not in repository"),
                    ));
                }
            }
        } else {
            let mut refs = Vec::new();
            match v.get("config") {
                Some(c) => refs.push(c),
                None => return Ok(manifest_invalid("manifest without config")),
            }
            match v.get("layers").and_then(Value::as_array) {
                Some(l) => refs.extend(l.iter()),
                None => return Ok(manifest_invalid("manifest without layers")),
            }
            for r in refs {
                let Some(d) = descriptor_digest(r) else {
                    return Ok(manifest_invalid("bad descriptor"));
                };
                if self.store.has_blob(name, &d).await?.is_none() {
                    return Ok(oci_error(
                        StatusCode::BAD_REQUEST,
                        "MANIFEST_BLOB_UNKNOWN",
                        &format!("blob {d} not in repository"),
                    ));
                }
            }
        }
        let subject = match v.get("subject") {
            Some(s) => match descriptor_digest(s) {
                Some(d) => Some(d),
                None => return Ok(manifest_invalid("bad subject")),
            },
            None => None,
        };
        self.store.put_bytes(&bytes).await?;
        self.store.link_manifest(name, &digest, &mt).await?;
        if ref_digest.is_none() {
            self.store.set_tag(name, reference, &digest).await?;
        }
        let mut resp = empty(StatusCode::CREATED);
        set(
            &mut resp,
            "location",
            &format!("/v2/{name}/manifests/{digest}"),
        );
        set(&mut resp, "docker-content-digest", &digest.to_string());
        if let Some(s) = subject {
            set(&mut resp, "oci-subject", &s.to_string());
        }
        Ok(resp)
    }

    async fn delete_manifest(&self, name: &str, reference: &str) -> io::Result<Response<Body>> {
        if let Some(d) = Digest::parse(reference) {
            return Ok(if self.store.delete_manifest(name, &d).await? {
                empty(StatusCode::ACCEPTED)
            } else {
                manifest_unknown()
            });
        }
        if !valid_tag(reference) {
            return Ok(oci_error(
                StatusCode::BAD_REQUEST,
                "TAG_INVALID",
                "invalid tag",
            ));
        }
        Ok(if self.store.delete_tag(name, reference).await? {
            empty(StatusCode::ACCEPTED)
        } else {
            manifest_unknown()
        })
    }

    async fn list_tags(
        &self,
        name: &str,
        query: &HashMap<String, String>,
    ) -> io::Result<Response<Body>> {
        if !self.store.repo_exists(name).await? {
            return Ok(oci_error(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            ));
        }
        let mut tags = self.store.tags(name).await?;
        if let Some(last) = query.get("last") {
            tags.retain(|t| t.as_str() > last.as_str());
        }
        let mut next = None;
        if let Some(n) = query.get("n") {
            let Ok(n) = n.parse::<usize>() else {
                return Ok(oci_error(
                    StatusCode::BAD_REQUEST,
                    "PAGINATION_NUMBER_INVALID",
                    "invalid n",
                ));
            };
            if tags.len() > n {
                tags.truncate(n);
                if let Some(last) = tags.last() {
                    next = Some(format!(
                        "</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""
                    ));
                }
            }
        }
        let body = serde_json::to_vec(&json!({ "name": name, "tags": tags })).expect("json");
        let mut resp = response(StatusCode::OK, "application/json", body);
        if let Some(link) = next {
            set(&mut resp, "link", &link);
        }
        Ok(resp)
    }

    async fn referrers(
        &self,
        name: &str,
        subject: &Digest,
        query: &HashMap<String, String>,
    ) -> io::Result<Response<Body>> {
        let filter = query.get("artifactType");
        let mut list = Vec::new();
        for d in self.store.manifests(name).await? {
            let Some((mt, bytes)) = self.store.get_manifest(name, &d).await? else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            if v.get("subject").and_then(descriptor_digest).as_ref() != Some(subject) {
                continue;
            }
            let artifact_type = v.get("artifactType").and_then(Value::as_str).or_else(|| {
                v.get("config")
                    .and_then(|c| c.get("mediaType"))
                    .and_then(Value::as_str)
            });
            if let Some(f) = filter {
                if artifact_type != Some(f.as_str()) {
                    continue;
                }
            }
            let mut desc = json!({ "mediaType": mt, "digest": d.to_string(), "size": bytes.len() });
            if let Some(at) = artifact_type {
                desc["artifactType"] = json!(at);
            }
            if let Some(a) = v.get("annotations") {
                desc["annotations"] = a.clone();
            }
            list.push(desc);
        }
        list.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        let body = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": list,
        });
        let mut resp = response(
            StatusCode::OK,
            "application/vnd.oci.image.index.v1+json",
            serde_json::to_vec(&body).expect("json"),
        );
        if filter.is_some() {
            set(&mut resp, "oci-filters-applied", "artifactType");
        }
        Ok(resp)
    }
}

/// An endpoint under `/v2/<name>/`.
pub(crate) enum Route {
    Blob(String),
    Upload(String),
    Manifest(String),
    Tags,
    Referrers(String),
}

/// Splits `<name>/<endpoint>` (the path after `/v2/`) into the repository
/// name and the endpoint. The name is matched from the end because it may
/// itself contain slashes. The access check uses this same function, so the
/// repository it authorizes is the one the request is served from.
pub(crate) fn parse_route(rest: &str) -> Option<(String, Route)> {
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let name_of = |k: usize| segs[..n - k].join("/");
    if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        Some((name_of(3), Route::Upload(segs[n - 1].to_string())))
    } else if n >= 3 && segs[n - 2] == "blobs" && segs[n - 1] == "uploads" {
        Some((name_of(2), Route::Upload(String::new())))
    } else if n >= 3 && segs[n - 2] == "blobs" {
        Some((name_of(2), Route::Blob(segs[n - 1].to_string())))
    } else if n >= 3 && segs[n - 2] == "manifests" {
        Some((name_of(2), Route::Manifest(segs[n - 1].to_string())))
    } else if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        Some((name_of(2), Route::Tags))
    } else if n >= 3 && segs[n - 2] == "referrers" {
        Some((name_of(2), Route::Referrers(segs[n - 1].to_string())))
    } else {
        None
    }
}

/// Streams a request body into an upload's temp file, hashing as it goes.
async fn append(up: &mut Upload, mut body: Incoming) -> io::Result<()> {
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(io::Error::other)?;
        if let Ok(data) = frame.into_data() {
            up.hasher.update(&data);
            up.file.write_all(&data).await?;
            up.size += data.len() as u64;
        }
    }
    Ok(())
}

async fn drain(mut body: Incoming) {
    while let Some(Ok(_)) = body.frame().await {}
}

async fn read_limited(mut body: Incoming, limit: usize) -> io::Result<Option<Vec<u8>>> {
    if body.size_hint().lower() > limit as u64 {
        return Ok(None);
    }
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(io::Error::other)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}

fn descriptor_digest(v: &Value) -> Option<Digest> {
    Digest::parse(v.get("digest")?.as_str()?)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) into inclusive offsets.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 {
                return None;
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (a <= b && a < size).then_some((a, b))
}

fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

pub(crate) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && hexval(b[i + 1]).is_some() && hexval(b[i + 2]).is_some() => {
                out.push(hexval(b[i + 1]).unwrap_or(0) * 16 + hexval(b[i + 2]).unwrap_or(0));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hexval(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Bytes per chunk when streaming a blob out.
const READ_CHUNK: usize = 1024 * 1024;

/// Streams `len` bytes of a blob file from offset `start`.
///
/// A blocking-pool thread reads 1 MiB chunks and hands them over a short
/// channel, so reading the next chunk overlaps sending this one. Reading
/// through `tokio::fs` instead hops to the blocking pool once per read,
/// which with 64 KiB reads held pulls to about 0.6x docker-registry's
/// throughput. A client that goes away drops the receiver, which stops the
/// reader at its next chunk.
fn file_body(mut file: std::fs::File, start: u64, len: u64) -> Body {
    use std::io::{Read as _, Seek as _};
    let (tx, mut rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            let _ = tx.blocking_send(Err(e));
            return;
        }
        let mut left = len;
        while left > 0 {
            let want = left.min(READ_CHUNK as u64);
            let mut chunk = Vec::with_capacity(want as usize);
            let chunk = match (&mut file).take(want).read_to_end(&mut chunk) {
                Ok(n) if n as u64 == want => Ok(Bytes::from(chunk)),
                // The blob is immutable once committed: a short read means
                // the file was damaged underneath the registry.
                Ok(_) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file shorter than its recorded size",
                )),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
            left -= want;
        }
    });
    let chunks = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    BodyExt::boxed(StreamBody::new(chunks.map_ok(Frame::data)))
}

fn empty_body() -> Body {
    BodyExt::boxed(Full::new(Bytes::new()).map_err(|never| match never {}))
}

fn full(v: Vec<u8>) -> Body {
    BodyExt::boxed(Full::new(Bytes::from(v)).map_err(|never| match never {}))
}

fn set(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

fn response(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    set(&mut r, CONTENT_TYPE.as_str(), content_type);
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(empty_body());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(0));
    r
}

fn with_api_header(mut r: Response<Body>) -> Response<Body> {
    set(&mut r, "docker-distribution-api-version", "registry/2.0");
    r
}

/// An OCI error response: `{"errors":[{"code","message","detail"}]}`.
pub fn oci_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = json!({ "errors": [{ "code": code, "message": message, "detail": {} }] });
    with_api_header(response(
        status,
        "application/json",
        serde_json::to_vec(&body).expect("json"),
    ))
}

fn blob_created(name: &str, d: &Digest) -> Response<Body> {
    let mut resp = empty(StatusCode::CREATED);
    set(
        &mut resp,
        LOCATION.as_str(),
        &format!("/v2/{name}/blobs/{d}"),
    );
    set(&mut resp, "docker-content-digest", &d.to_string());
    resp
}

fn unsupported() -> Response<Body> {
    oci_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "the operation is unsupported",
    )
}

fn digest_invalid() -> Response<Body> {
    oci_error(
        StatusCode::BAD_REQUEST,
        "DIGEST_INVALID",
        "provided digest did not match uploaded content",
    )
}

fn blob_unknown() -> Response<Body> {
    oci_error(
        StatusCode::NOT_FOUND,
        "BLOB_UNKNOWN",
        "blob unknown to registry",
    )
}

fn too_many_uploads() -> Response<Body> {
    oci_error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        "too many upload sessions are open; finish or cancel one, or retry later",
    )
}

fn upload_unknown() -> Response<Body> {
    oci_error(
        StatusCode::NOT_FOUND,
        "BLOB_UPLOAD_UNKNOWN",
        "blob upload unknown to registry",
    )
}

fn manifest_unknown() -> Response<Body> {
    oci_error(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        "manifest unknown to registry",
    )
}

fn manifest_invalid(msg: &str) -> Response<Body> {
    oci_error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), None);
    }

    #[test]
    fn queries() {
        let q = parse_query("mount=sha256%3Aab&from=a/b&n=2");
        assert_eq!(q["mount"], "sha256:ab");
        assert_eq!(q["from"], "a/b");
        assert_eq!(percent_decode("%zz%"), "%zz%");
    }
}
