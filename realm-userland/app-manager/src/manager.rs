//! The applications of one realm: what the warden provisioned, what is
//! installed on each disk, what runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ipc_schema::agent::{
    AgentErrorKind, AgentRequest, AgentResponse, AppSpec, AppState, AppStatus, InstalledApp,
};
use tracing::{info, warn};

use crate::disk::Disk;
use crate::error::AppError;
use crate::keys::Vendor;
use crate::realm::Realm;
use crate::run::RunningApp;

/// Longest application name.
pub const MAX_NAME: usize = 64;

/// One provisioned application.
struct App {
    spec: AppSpec,
    state: AppState,
    installed: Option<InstalledApp>,
    running: Option<RunningApp>,
    /// Held for the whole of an install, start or stop of this application.
    busy: Arc<Mutex<()>>,
}

/// The app-manager's state.
pub struct Manager {
    realm: Arc<dyn Realm>,
    work_dir: PathBuf,
    apps: Mutex<BTreeMap<String, App>>,
    /// Installs and starts of different applications may not interleave
    /// their vendor checks.
    install_lock: Mutex<()>,
    /// The one vendor this realm serves: set by the first install or start
    /// since the realm booted, and never changed until it reboots. It
    /// lives in realm memory, so unlike the disks' vendor files the host
    /// cannot hide or swap it, and two vendors' applications never run
    /// side by side in one realm.
    vendor: Mutex<Option<Vendor>>,
}

/// Checks an application name: it names a directory and is part of a key
/// derivation, so it is kept to a portable alphabet.
pub fn check_name(name: &str) -> Result<(), AppError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "application name {name:?}: 1 to {MAX_NAME} of a-z 0-9 . _ -, not starting with '.'"
        )))
    }
}

impl Manager {
    /// A manager for the realm `realm`, keeping its private working files
    /// (unpacked applications while they run) under `work_dir`: realm
    /// memory on hardware; a private directory in simulation.
    pub fn new(realm: Arc<dyn Realm>, work_dir: &Path) -> Result<Self, AppError> {
        std::fs::create_dir_all(work_dir)
            .map_err(|e| AppError::Internal(format!("{}: {e}", work_dir.display())))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(work_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| AppError::Internal(format!("{}: {e}", work_dir.display())))?;
        }
        Ok(Self {
            realm,
            work_dir: work_dir.to_owned(),
            apps: Mutex::new(BTreeMap::new()),
            install_lock: Mutex::new(()),
            vendor: Mutex::new(None),
        })
    }

    /// Answers one agent request.
    pub fn handle(&self, req: AgentRequest) -> AgentResponse {
        let result = match req {
            AgentRequest::Hello => Ok(AgentResponse::Hello {
                software: format!("atoll-app-manager {}", env!("CARGO_PKG_VERSION")),
            }),
            AgentRequest::Provision { apps } => self.provision(apps).map(|()| AgentResponse::Done),
            AgentRequest::InstallApp { name } => self.install(&name).map(|()| AgentResponse::Done),
            AgentRequest::StartApp { name } => self.start(&name).map(|()| AgentResponse::Done),
            AgentRequest::StopApp { name } => self.stop(&name).map(|()| AgentResponse::Done),
            AgentRequest::Status => Ok(AgentResponse::Status {
                apps: self.status(),
            }),
            AgentRequest::AttestationToken { challenge } => self
                .realm
                .attest(&challenge.0)
                .map(|token| AgentResponse::Token { token })
                .map_err(|e| AppError::Attestation(e.to_string())),
            AgentRequest::Shutdown => {
                self.stop_all();
                Ok(AgentResponse::Done)
            }
        };
        match result {
            Ok(resp) => resp,
            Err(e) => {
                warn!("{e}");
                AgentResponse::Error {
                    kind: e.kind(),
                    message: e.to_string(),
                }
            }
        }
    }

    fn provision(&self, specs: Vec<AppSpec>) -> Result<(), AppError> {
        let mut seen = std::collections::BTreeSet::new();
        for spec in &specs {
            check_name(&spec.name)?;
            if !seen.insert(spec.name.clone()) {
                return Err(AppError::BadRequest(format!(
                    "application {} is listed twice",
                    spec.name
                )));
            }
            if spec.disk.is_empty() || spec.registry.is_empty() || spec.repository.is_empty() {
                return Err(AppError::BadRequest(format!(
                    "application {}: disk, registry and repository are required",
                    spec.name
                )));
            }
        }
        let removed: Vec<String> = {
            let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            apps.keys()
                .filter(|n| !seen.contains(*n))
                .cloned()
                .collect()
        };
        for name in removed {
            self.stop(&name)?;
            self.apps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&name);
        }
        for spec in specs {
            // What is on the disk already (the warden may be re-provisioning
            // after a restart of the realm).
            let installed = match Disk::new(Path::new(&spec.disk)).installed_public() {
                Ok(i) => i,
                Err(e) => {
                    warn!("{}: {e}", spec.name);
                    None
                }
            };
            let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            match apps.get_mut(&spec.name) {
                Some(app) => app.spec = spec,
                None => {
                    let state = if installed.is_some() {
                        AppState::Installed
                    } else {
                        AppState::NotInstalled
                    };
                    apps.insert(
                        spec.name.clone(),
                        App {
                            spec,
                            state,
                            installed,
                            running: None,
                            busy: Arc::new(Mutex::new(())),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn app_parts(&self, name: &str) -> Result<(AppSpec, Arc<Mutex<()>>), AppError> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        let app = apps
            .get(name)
            .ok_or_else(|| AppError::BadRequest(format!("no application {name} is provisioned")))?;
        Ok((app.spec.clone(), app.busy.clone()))
    }

    fn set_state(&self, name: &str, state: AppState, installed: Option<Option<InstalledApp>>) {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(app) = apps.get_mut(name) {
            app.state = state;
            if let Some(i) = installed {
                app.installed = i;
            }
        }
    }

    /// The disks of the other provisioned applications, for the
    /// one-vendor-per-realm rule.
    fn other_disks(&self, name: &str) -> Vec<PathBuf> {
        let apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.values()
            .filter(|a| a.spec.name != name)
            .map(|a| PathBuf::from(&a.spec.disk))
            .collect()
    }

    fn pinned_vendor(&self) -> Option<Vendor> {
        self.vendor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn pin_vendor(&self, vendor: &Vendor) {
        let mut pin = self.vendor.lock().unwrap_or_else(|e| e.into_inner());
        if pin.is_none() {
            info!("this realm now serves vendor {}", vendor.subject);
            *pin = Some(vendor.clone());
        }
    }

    /// Installs `spec` under the vendor checks; the caller holds
    /// `install_lock`.
    fn install_pinned(&self, name: &str, spec: &AppSpec) -> Result<InstalledApp, AppError> {
        let pinned = self.pinned_vendor();
        let (installed, vendor) = crate::install::install(
            self.realm.clone(),
            spec,
            &self.work_dir,
            &self.other_disks(name),
            pinned.as_ref(),
        )?;
        self.pin_vendor(&vendor);
        Ok(installed)
    }

    fn install(&self, name: &str) -> Result<(), AppError> {
        let (spec, busy) = self.app_parts(name)?;
        let _busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        let was_running = self.stop_locked(name)?;
        let _install = self.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        info!(
            "{name}: installing {}:{} from {}",
            spec.repository, spec.version, spec.registry
        );
        match self.install_pinned(name, &spec) {
            Ok(installed) => {
                info!(
                    "{name}: installed {} ({}) signed by {}",
                    installed.version, installed.manifest_digest, installed.vendor
                );
                self.set_state(name, AppState::Installed, Some(Some(installed)));
            }
            Err(e) => {
                // What was installed before is untouched.
                let state = AppState::Failed {
                    reason: e.to_string(),
                };
                self.set_state(name, state, None);
                return Err(e);
            }
        }
        drop(_install);
        if was_running {
            self.start_locked(name, &spec)?;
        }
        Ok(())
    }

    fn start(&self, name: &str) -> Result<(), AppError> {
        let (spec, busy) = self.app_parts(name)?;
        let _busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_running(name) {
            return Ok(());
        }
        let installed = Disk::new(Path::new(&spec.disk)).installed_public()?;
        if installed.is_none() {
            let _install = self.install_lock.lock().unwrap_or_else(|e| e.into_inner());
            info!("{name}: nothing installed yet; installing first");
            match self.install_pinned(name, &spec) {
                Ok(i) => self.set_state(name, AppState::Installed, Some(Some(i))),
                Err(e) => {
                    self.set_state(
                        name,
                        AppState::Failed {
                            reason: e.to_string(),
                        },
                        None,
                    );
                    return Err(e);
                }
            }
        }
        self.start_locked(name, &spec)
    }

    fn start_locked(&self, name: &str, spec: &AppSpec) -> Result<(), AppError> {
        let _vendor_checks = self.install_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pinned = self.pinned_vendor();
        match crate::run::start(self.realm.as_ref(), spec, &self.work_dir, pinned.as_ref()) {
            Ok(running) => {
                self.pin_vendor(running.vendor());
                let pid = running.pid();
                let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(app) = apps.get_mut(name) {
                    app.state = AppState::Running { pid };
                    app.installed = Some(running.installed().clone());
                    app.running = Some(running);
                }
                Ok(())
            }
            Err(e) => {
                self.set_state(
                    name,
                    AppState::Failed {
                        reason: e.to_string(),
                    },
                    None,
                );
                Err(e)
            }
        }
    }

    fn is_running(&self, name: &str) -> bool {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        let Some(app) = apps.get_mut(name) else {
            return false;
        };
        Self::refresh(app);
        app.running.is_some()
    }

    /// Collects a finished run into the app's state.
    fn refresh(app: &mut App) {
        if let Some(running) = &app.running {
            if let Some(outcome) = running.finished() {
                app.state = match outcome {
                    Ok(code) => AppState::Exited { code },
                    Err(reason) => AppState::Failed { reason },
                };
                app.running = None;
            }
        }
    }

    fn stop(&self, name: &str) -> Result<(), AppError> {
        let (_, busy) = self.app_parts(name)?;
        let _busy = busy.lock().unwrap_or_else(|e| e.into_inner());
        self.stop_locked(name).map(|_| ())
    }

    /// Stops the application if it runs; returns whether it did.
    fn stop_locked(&self, name: &str) -> Result<bool, AppError> {
        let running = {
            let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
            match apps.get_mut(name) {
                Some(app) => {
                    Self::refresh(app);
                    app.running.take()
                }
                None => None,
            }
        };
        let Some(running) = running else {
            return Ok(false);
        };
        let outcome = running.stop();
        let state = match outcome {
            Ok(code) => AppState::Exited { code },
            Err(reason) => AppState::Failed { reason },
        };
        self.set_state(name, state, None);
        Ok(true)
    }

    /// Stops every application, sealing its data.
    pub fn stop_all(&self) {
        let names: Vec<String> = self
            .apps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        for name in names {
            if let Err(e) = self.stop(&name) {
                warn!("{name}: {e}");
            }
        }
    }

    fn status(&self) -> Vec<AppStatus> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        apps.values_mut()
            .map(|app| {
                Self::refresh(app);
                AppStatus {
                    name: app.spec.name.clone(),
                    state: app.state.clone(),
                    installed: app.installed.clone(),
                }
            })
            .collect()
    }
}

impl AppError {
    /// The protocol's class of this error.
    pub fn kind(&self) -> AgentErrorKind {
        match self {
            AppError::BadRequest(_) => AgentErrorKind::BadRequest,
            AppError::Fetch(_) => AgentErrorKind::Fetch,
            AppError::Verify(_) => AgentErrorKind::Verify,
            AppError::Install(_) => AgentErrorKind::Install,
            AppError::Storage(_) => AgentErrorKind::Storage,
            AppError::Run(_) => AgentErrorKind::Run,
            AppError::Attestation(_) => AgentErrorKind::Attestation,
            AppError::Realm(_) | AppError::Internal(_) => AgentErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names() {
        for ok in ["counter", "a", "web-1.2_x"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "Upper", "a/b", "..", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
