//! The daemon's request handlers.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use ipc_schema::agent::{AgentRequest, AgentResponse, AppSpec};
use ipc_schema::wire::Bytes;
use serde_json::json;

use crate::backend::{Binaries, RealmFiles, RunningRealm};
use crate::protocol::{read_frame, write_frame, Request, Response};
use crate::state::{AppRecord, RealmRecord, State};

/// Longest console log answer.
const MAX_CONSOLE: u64 = 1 << 20;

type Slot = Arc<Mutex<Option<RunningRealm>>>;

/// The warden daemon.
pub struct Warden {
    dir: PathBuf,
    bins: Binaries,
    state: Mutex<State>,
    running: Mutex<BTreeMap<String, Slot>>,
    /// Held for the whole of every command that changes something (and for
    /// the restore at startup): checks and the changes they guard never
    /// interleave with another command's. Reads (list, inspect, token,
    /// console) do not take it. A realm boot holds it for its seconds.
    changes: Mutex<()>,
}

/// Application names: part of key derivations and directory names.
pub fn check_app_name(name: &str) -> Result<()> {
    ensure!(
        !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
        "application name {name:?}: 1 to 64 of a-z 0-9 . _ -, not starting with '.'"
    );
    Ok(())
}

fn agent_ok(resp: AgentResponse) -> Result<AgentResponse> {
    match resp {
        AgentResponse::Error { kind, message } => bail!("realm agent: {kind:?}: {message}"),
        other => Ok(other),
    }
}

/// Copies a description and the images it names into `dir` (paths
/// rewritten), so later changes to the originals do not change the realm.
fn copy_description(src: &Path, dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(src).with_context(|| format!("{}", src.display()))?;
    let mut value: toml::Value =
        toml::from_str(&text).with_context(|| format!("{}", src.display()))?;
    let base = src.parent().unwrap_or(Path::new("."));
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir)?;
    if let Some(images) = value.get_mut("image").and_then(|v| v.as_array_mut()) {
        for (i, image) in images.iter_mut().enumerate() {
            let Some(path) = image
                .get("path")
                .and_then(|p| p.as_str())
                .map(PathBuf::from)
            else {
                continue;
            };
            let from = if path.is_absolute() {
                path.clone()
            } else {
                base.join(&path)
            };
            let name = format!(
                "{i}-{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            let bytes = std::fs::read(&from)
                .with_context(|| format!("reading image {}", from.display()))?;
            atoll_atomic_file::write(&images_dir.join(&name), &bytes)
                .with_context(|| format!("copying image {}", from.display()))?;
            if let Some(t) = image.as_table_mut() {
                t.insert("path".into(), toml::Value::String(format!("images/{name}")));
            }
        }
    }
    atoll_atomic_file::write(&dir.join("realm.toml"), toml::to_string(&value)?.as_bytes())?;
    Ok(())
}

fn random_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).map_err(|e| anyhow!("random id: {e}"))?;
    Ok(hex::encode(b))
}

impl Warden {
    /// Opens the state in `dir` (refusing a corrupt one).
    pub fn open(dir: &Path, bins: Binaries) -> Result<Self> {
        atoll_atomic_file::create_dir_all(&dir.join("realms"))?;
        atoll_atomic_file::create_dir_all(&dir.join("hes"))?;
        let state = State::load(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            bins,
            state: Mutex::new(state),
            running: Mutex::new(BTreeMap::new()),
            changes: Mutex::new(()),
        })
    }

    fn files(&self, id: &str) -> RealmFiles {
        RealmFiles {
            dir: self.dir.join("realms").join(id),
        }
    }

    fn record(&self, key: &str) -> Result<RealmRecord> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .find(key)
            .cloned()
            .ok_or_else(|| anyhow!("no realm {key:?}"))
    }

    fn update(
        &self,
        id: &str,
        f: impl FnOnce(&mut RealmRecord) -> Result<()>,
    ) -> Result<RealmRecord> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let rec = state
            .realms
            .get(id)
            .ok_or_else(|| anyhow!("no realm {id}"))?;
        let mut copy = rec.clone();
        f(&mut copy)?;
        // Saved first, adopted after: a failed save changes nothing.
        let mut next = state.clone();
        next.realms.insert(id.to_string(), copy.clone());
        next.save(&self.dir)?;
        *state = next;
        Ok(copy)
    }

    fn slot(&self, id: &str) -> Slot {
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn specs(&self, rec: &RealmRecord) -> Vec<AppSpec> {
        let files = self.files(&rec.id);
        rec.apps
            .iter()
            .map(|a| AppSpec {
                name: a.name.clone(),
                version: a.version.clone(),
                registry: a.registry.clone(),
                repository: a.repository.clone(),
                disk: files.disk(&a.name).display().to_string(),
                image_limit: a.image_limit,
                data_limit: a.data_limit,
            })
            .collect()
    }

    /// Answers one request.
    pub fn handle(&self, req: Request) -> Response {
        let _changes = match req {
            Request::ListRealms
            | Request::InspectRealm { .. }
            | Request::FetchAttestationToken { .. }
            | Request::Console { .. } => None,
            _ => Some(self.changes.lock().unwrap_or_else(|e| e.into_inner())),
        };
        let r = match req {
            Request::CreateRealm {
                name,
                description,
                metadata,
            } => self.create_realm(name, &description, &metadata),
            Request::ListRealms => self.list(),
            Request::InspectRealm { realm } => self.inspect(&realm),
            Request::StartRealm { realm } => self.start_realm(&realm),
            Request::StopRealm { realm } => self.stop_realm(&realm, true),
            Request::RebootRealm { realm } => self
                .stop_realm(&realm, false)
                .and_then(|_| self.start_realm(&realm)),
            Request::DestroyRealm { realm, force } => self.destroy(&realm, force),
            Request::CreateApplication {
                realm,
                name,
                version,
                registry,
                repository,
                image_size_mb,
                data_size_mb,
            } => self.create_app(
                &realm,
                AppRecord {
                    repository: repository.unwrap_or_else(|| name.clone()),
                    name,
                    version,
                    registry,
                    image_limit: image_size_mb << 20,
                    data_limit: data_size_mb << 20,
                    running: false,
                },
            ),
            Request::StartApplication { realm, name } => self.app_run(&realm, &name, true),
            Request::StopApplication { realm, name } => self.app_run(&realm, &name, false),
            Request::UpdateApplication {
                realm,
                name,
                version,
            } => self.update_app(&realm, &name, &version),
            Request::FetchAttestationToken { realm, challenge } => self.token(&realm, &challenge),
            Request::Console { realm } => self.console(&realm),
        };
        match r {
            Ok(data) => Response::ok(data),
            Err(e) => Response::err(e),
        }
    }

    fn create_realm(
        &self,
        name: Option<String>,
        description: &Path,
        metadata: &Path,
    ) -> Result<serde_json::Value> {
        let desc = atoll_realm_description::RealmDescription::load(description)
            .with_context(|| format!("{}", description.display()))?;
        let plan = atoll_realm_description::BuildPlan::new(&desc)?;
        let measured = atoll_measure::measure(&plan).map_err(|e| anyhow!("measuring: {e}"))?;
        let block = std::fs::read(metadata).with_context(|| format!("{}", metadata.display()))?;
        let verified = atoll_metadata::verify(&block, atoll_metadata::TrustAnchor::EmbeddedKeyOnly)
            .map_err(|e| anyhow!("metadata {}: {e}", metadata.display()))?;
        let rim = hex::encode(verified.metadata.rim.digest());
        ensure!(
            verified.metadata.rim.padded() == &measured.rim,
            "the metadata block is for RIM {rim}, but {} measures to {}: the RMM would refuse to activate it",
            description.display(),
            hex::encode(&measured.rim[..verified.metadata.rim.digest().len()])
        );
        let name = name
            .or(desc.realm.name.clone())
            .ok_or_else(|| anyhow!("the realm needs a name (--name)"))?;
        ensure!(
            !name.is_empty() && name.len() <= 64 && !name.contains('/'),
            "realm name {name:?}"
        );
        let id = random_id()?;
        {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            ensure!(
                state.find(&name).is_none(),
                "a realm named {name} exists already"
            );
        }
        let files = self.files(&id);
        let made = (|| -> Result<()> {
            atoll_atomic_file::create_dir_all(&files.dir.join("disks"))?;
            copy_description(description, &files.dir)?;
            atoll_atomic_file::write(&files.metadata(), &block)?;
            Ok(())
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_dir_all(&files.dir);
            return Err(e);
        }
        let rec = RealmRecord {
            id: id.clone(),
            name,
            rim,
            running: false,
            apps: Vec::new(),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.realms.insert(id.clone(), rec.clone());
        if let Err(e) = state.save(&self.dir) {
            state.realms.remove(&id);
            let _ = std::fs::remove_dir_all(&files.dir);
            return Err(anyhow!(e));
        }
        Ok(json!({"id": id, "name": rec.name, "rim": rec.rim}))
    }

    fn is_running(&self, id: &str) -> bool {
        let slot = self.slot(id);
        let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
        let alive = g.as_mut().map(|r| r.alive());
        if alive == Some(false) {
            *g = None;
        }
        alive == Some(true)
    }

    fn summary(&self, rec: &RealmRecord) -> serde_json::Value {
        json!({
            "id": rec.id,
            "name": rec.name,
            "rim": rec.rim,
            "state": if self.is_running(&rec.id) { "running" } else { "stopped" },
            "desired": if rec.running { "running" } else { "stopped" },
            "apps": rec.apps.iter().map(|a| json!({
                "name": a.name, "version": a.version, "registry": a.registry,
                "repository": a.repository, "running": a.running,
            })).collect::<Vec<_>>(),
        })
    }

    fn list(&self) -> Result<serde_json::Value> {
        let recs: Vec<RealmRecord> = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .realms
            .values()
            .cloned()
            .collect();
        Ok(json!(recs
            .iter()
            .map(|r| self.summary(r))
            .collect::<Vec<_>>()))
    }

    fn inspect(&self, key: &str) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        let mut out = self.summary(&rec);
        let slot = self.slot(&rec.id);
        let g = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = g.as_ref() {
            out["cpak_jwk"] = r.cpak_jwk().unwrap_or(serde_json::Value::Null);
            match r.agent(&AgentRequest::Status) {
                Ok(AgentResponse::Status { apps }) => {
                    out["apps"] = serde_json::to_value(&apps)?;
                }
                Ok(other) => out["agent_error"] = json!(format!("{other:?}")),
                Err(e) => out["agent_error"] = json!(format!("{e:#}")),
            }
        }
        Ok(out)
    }

    fn start_realm(&self, key: &str) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        let slot = self.slot(&rec.id);
        let mut g = slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = g.as_mut() {
            if r.alive() {
                return Ok(json!({"id": rec.id, "state": "running"}));
            }
            r.stop();
            *g = None;
        }
        let files = self.files(&rec.id);
        let realm = RunningRealm::start(&self.bins, &files, &self.dir.join("hes/provision.bin"))?;
        let specs = self.specs(&rec);
        agent_ok(realm.agent(&AgentRequest::Provision { apps: specs })?)?;
        let mut failures = Vec::new();
        for app in rec.apps.iter().filter(|a| a.running) {
            if let Err(e) = realm
                .agent(&AgentRequest::StartApp {
                    name: app.name.clone(),
                })
                .and_then(agent_ok)
            {
                failures.push(format!("{}: {e:#}", app.name));
            }
        }
        *g = Some(realm);
        drop(g);
        self.update(&rec.id, |r| {
            r.running = true;
            Ok(())
        })?;
        Ok(json!({"id": rec.id, "state": "running", "app_failures": failures}))
    }

    fn stop_realm(&self, key: &str, record: bool) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        let slot = self.slot(&rec.id);
        if let Some(mut r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            r.stop();
        }
        if record {
            self.update(&rec.id, |r| {
                r.running = false;
                Ok(())
            })?;
        }
        Ok(json!({"id": rec.id, "state": "stopped"}))
    }

    fn destroy(&self, key: &str, force: bool) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        if self.is_running(&rec.id) {
            ensure!(
                force,
                "realm {} is running: stop it first or use --force",
                rec.name
            );
            self.stop_realm(&rec.id, false)?;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = state.clone();
        next.realms.remove(&rec.id);
        next.save(&self.dir)?;
        *state = next;
        drop(state);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&rec.id);
        std::fs::remove_dir_all(self.files(&rec.id).dir)?;
        Ok(json!({"id": rec.id, "destroyed": true}))
    }

    /// Runs `f` with the realm's agent when the realm runs.
    fn with_agent<T>(
        &self,
        id: &str,
        f: impl FnOnce(&RunningRealm) -> Result<T>,
    ) -> Result<Option<T>> {
        let slot = self.slot(id);
        let g = slot.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(r) => f(r).map(Some),
            None => Ok(None),
        }
    }

    fn create_app(&self, key: &str, app: AppRecord) -> Result<serde_json::Value> {
        check_app_name(&app.name)?;
        ensure!(
            app.registry
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
            "registry {:?} is not host:port",
            app.registry
        );
        ensure!(
            !app.version.is_empty() && !app.repository.is_empty(),
            "version and repository are required"
        );
        // The OCI limits (tag: 128 characters; a repository name fits
        // 255 with its registry), which also keep the agent's frames small.
        ensure!(
            app.version.len() <= 128 && app.repository.len() <= 255 && app.registry.len() <= 255,
            "version (at most 128 bytes), repository and registry (at most 255) are too long"
        );
        ensure!(
            app.image_limit > 0 && app.data_limit > 0,
            "partition sizes must be positive"
        );
        let rec = self.record(key)?;
        ensure!(
            rec.apps.iter().all(|a| a.name != app.name),
            "realm {} has an application {} already",
            rec.name,
            app.name
        );
        let disk = self.files(&rec.id).disk(&app.name);
        atoll_atomic_file::create_dir_all(&disk)?;
        let name = app.name.clone();
        let id = rec.id.clone();
        let rec = self.update(&id, |r| {
            r.apps.push(app);
            Ok(())
        })?;
        let specs = self.specs(&rec);
        let provisioned = self.with_agent(&rec.id, |r| {
            agent_ok(r.agent(&AgentRequest::Provision { apps: specs })?)
        });
        if let Err(e) = provisioned {
            // The realm's agent refused the new list: forget the
            // application again, or no later start could provision it.
            self.update(&id, |r| {
                r.apps.retain(|a| a.name != name);
                Ok(())
            })?;
            let _ = std::fs::remove_dir(&disk);
            return Err(e.context(format!("the realm's agent refused application {name}")));
        }
        Ok(json!({"realm": rec.id, "application": name, "disk": disk}))
    }

    fn app_run(&self, key: &str, name: &str, run: bool) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        ensure!(
            rec.apps.iter().any(|a| a.name == name),
            "realm {} has no application {name}",
            rec.name
        );
        self.update(&rec.id, |r| {
            for a in r.apps.iter_mut().filter(|a| a.name == name) {
                a.running = run;
            }
            Ok(())
        })?;
        let req = if run {
            AgentRequest::StartApp { name: name.into() }
        } else {
            AgentRequest::StopApp { name: name.into() }
        };
        let done = self.with_agent(&rec.id, |r| agent_ok(r.agent(&req)?))?;
        Ok(json!({"application": name, "running": run, "realm_running": done.is_some()}))
    }

    fn update_app(&self, key: &str, name: &str, version: &str) -> Result<serde_json::Value> {
        ensure!(!version.is_empty(), "version is required");
        let rec = self.record(key)?;
        let old = rec
            .apps
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| anyhow!("realm {} has no application {name}", rec.name))?;
        let mut updated = rec.clone();
        for a in updated.apps.iter_mut().filter(|a| a.name == name) {
            a.version = version.into();
        }
        let specs = self.specs(&updated);
        // Install first: a version that fails to verify changes nothing.
        let installed = self.with_agent(&rec.id, |r| {
            agent_ok(r.agent(&AgentRequest::Provision { apps: specs })?)?;
            if let Err(e) = r
                .agent(&AgentRequest::InstallApp { name: name.into() })
                .and_then(agent_ok)
            {
                let back = self.specs(&rec);
                let _ = r.agent(&AgentRequest::Provision { apps: back });
                return Err(e);
            }
            if old.running {
                agent_ok(r.agent(&AgentRequest::StartApp { name: name.into() })?)?;
            }
            Ok(())
        })?;
        self.update(&rec.id, |r| {
            for a in r.apps.iter_mut().filter(|a| a.name == name) {
                a.version = version.into();
            }
            Ok(())
        })?;
        Ok(json!({"application": name, "version": version, "installed_now": installed.is_some()}))
    }

    fn token(&self, key: &str, challenge: &str) -> Result<serde_json::Value> {
        let bytes = hex::decode(challenge).context("the challenge is not hex")?;
        let challenge: [u8; 64] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| anyhow!("the challenge must be 64 bytes, not {}", b.len()))?;
        let rec = self.record(key)?;
        let token = self
            .with_agent(&rec.id, |r| {
                match agent_ok(r.agent(&AgentRequest::AttestationToken {
                    challenge: Bytes(challenge),
                })?)? {
                    AgentResponse::Token { token } => Ok(token),
                    other => bail!("unexpected agent answer {other:?}"),
                }
            })?
            .ok_or_else(|| anyhow!("realm {} is not running", rec.name))?;
        Ok(json!({"token": hex::encode(token)}))
    }

    fn console(&self, key: &str) -> Result<serde_json::Value> {
        let rec = self.record(key)?;
        let path = self.files(&rec.id).console();
        let text = match crate::backend::read_end(&path, MAX_CONSOLE) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(json!({"console": text}))
    }

    /// Starts the realms whose desired state is running (after a daemon
    /// restart).
    pub fn restore(&self) {
        let ids: Vec<String> = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .realms
            .values()
            .filter(|r| r.running)
            .map(|r| r.id.clone())
            .collect();
        for id in ids {
            let _changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
            match self.start_realm(&id) {
                Ok(_) => tracing::info!("realm {id} started again"),
                Err(e) => tracing::warn!("realm {id} could not be started again: {e:#}"),
            }
        }
    }

    /// Stops every running realm (their desired state is kept).
    pub fn stop_all(&self) {
        let slots: Vec<Slot> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for slot in slots {
            if let Some(mut r) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                r.stop();
            }
        }
    }
}

/// Serves the CLI on `socket` until `stop` is set.
pub fn serve(warden: Arc<Warden>, socket: &Path, stop: Arc<AtomicBool>) -> Result<()> {
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            bail!("{} is in use by a running warden", socket.display());
        }
        std::fs::remove_file(socket)?;
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    }
    listener.set_nonblocking(true)?;
    {
        let w = warden.clone();
        std::thread::spawn(move || w.restore());
    }
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let w = warden.clone();
                let spawned = std::thread::Builder::new()
                    .name("warden-client".into())
                    .spawn(move || {
                        if stream.set_nonblocking(false).is_err() {
                            return;
                        }
                        loop {
                            let resp = match read_frame::<Request>(&mut stream) {
                                Ok(Some(req)) => w.handle(req),
                                Ok(None) => return,
                                Err(e) if e.kind() == ErrorKind::InvalidData => {
                                    let _ = write_frame(
                                        &mut stream,
                                        &Response::err(format!("bad request: {e}")),
                                    );
                                    return;
                                }
                                Err(_) => return,
                            };
                            if write_frame(&mut stream, &resp).is_err() {
                                return;
                            }
                        }
                    });
                if let Err(e) = spawned {
                    // Out of threads: this client is dropped, the daemon
                    // and its realms go on.
                    tracing::warn!("cannot serve a client: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    tracing::info!("stopping realms");
    warden.stop_all();
    let _ = std::fs::remove_file(socket);
    Ok(())
}
