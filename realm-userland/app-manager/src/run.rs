//! Running an installed application: unseal, start the OCI config's
//! command, seal the volumes back when it ends.
//!
//! The application sees ordinary files: its image is unsealed into a
//! private directory (realm memory on hardware; a 0700 directory under the
//! work dir in simulation), its volumes from the data partition are put in
//! place, and it runs with the config's `Entrypoint` + `Cmd`, `Env` (and
//! nothing of the app-manager's environment) and `WorkingDir`. When it
//! exits, or is stopped, its volumes are sealed into the data partition
//! and the unsealed copy is removed. Everything outside the volumes starts
//! from the image again on each run, as in a container.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ipc_schema::agent::{AppSpec, InstalledApp};
use oci_spec::image::ImageConfiguration;
use tracing::{info, warn};

use crate::disk::{Disk, DATA, IMAGE};
use crate::error::AppError;
use crate::install::Meta;
use crate::keys::{stored_vendor, AppKeys};
use crate::realm::{app_measurement, Realm, APP_REM};

/// How long a stopped application gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// `PATH` when the image's config sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a run ended: the exit code (`-signal` for a signal) or why it
/// failed (including failing to seal its data).
pub type Outcome = Result<i32, String>;

#[derive(Default)]
struct Shared {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

/// A running application.
pub struct RunningApp {
    pid: u32,
    installed: InstalledApp,
    vendor: crate::keys::Vendor,
    shared: Arc<Shared>,
    waiter: Option<JoinHandle<()>>,
}

impl RunningApp {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What runs.
    pub fn installed(&self) -> &InstalledApp {
        &self.installed
    }

    /// Its vendor, as its keys are bound to it.
    pub fn vendor(&self) -> &crate::keys::Vendor {
        &self.vendor
    }

    /// The outcome, once the run has ended and its data is sealed.
    pub fn finished(&self) -> Option<Outcome> {
        self.shared
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wait_for(&self, timeout: Duration) -> Option<Outcome> {
        let guard = self
            .shared
            .outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .shared
            .done
            .wait_timeout_while(guard, timeout, |o| o.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// Stops the application (SIGTERM to its process group, SIGKILL after
    /// a grace period) and waits until its data is sealed.
    pub fn stop(mut self) -> Outcome {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        let group = Pid::from_raw(self.pid as i32);
        if self.finished().is_none() {
            let _ = killpg(group, Signal::SIGTERM);
            if self.wait_for(STOP_GRACE).is_none() {
                warn!(
                    "pid {}: no exit {STOP_GRACE:?} after SIGTERM; SIGKILL",
                    self.pid
                );
                let _ = killpg(group, Signal::SIGKILL);
            }
        }
        if let Some(w) = self.waiter.take() {
            let _ = w.join();
        }
        self.finished()
            .unwrap_or_else(|| Err("the run ended without an outcome".into()))
    }
}

/// Resolves `path` (absolute, as the application sees it) inside `root`
/// the way a chroot would, with the unpacker's rules: symlinks are
/// followed within the root, and a path or link that climbs above the
/// root is refused. Returns the host path.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf, AppError> {
    let parts: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    atoll_oci_unpack::resolve_in_root(root, &parts, false, true)
        .map_err(|e| AppError::Run(format!("{}: {e}", path.display())))
}

/// A volume path from the config, checked: absolute, no `..`.
fn volume_rel(v: &str) -> Result<PathBuf, AppError> {
    let p = Path::new(v);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(AppError::Run(format!(
            "volume {v:?} is not a plain absolute path"
        )));
    }
    let rel: PathBuf = p
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        return Err(AppError::Run("the root cannot be a volume".into()));
    }
    Ok(rel)
}

fn finds_program(
    rootfs: &Path,
    argv0: &str,
    env: &[(String, String)],
    cwd: &Path,
) -> Result<PathBuf, AppError> {
    if argv0.contains('/') {
        let p = Path::new(argv0);
        let resolved = if p.is_absolute() {
            resolve_in_root(rootfs, p)?
        } else {
            cwd.join(p)
        };
        return Ok(resolved);
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = resolve_in_root(rootfs, &Path::new(dir).join(argv0))?;
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(AppError::Run(format!(
        "{argv0}: not found in the image's PATH ({path})"
    )))
}

/// Copies an output stream of the application to the console, each line
/// prefixed with its name.
fn forward(name: String, stream: impl Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => println!("{name}| {l}"),
                Err(_) => break,
            }
        }
    });
}

/// Unseals and starts `spec`'s installed copy, unless its vendor is not
/// `pinned`, the vendor this realm already serves.
pub fn start(
    realm: &dyn Realm,
    spec: &AppSpec,
    work_dir: &Path,
    pinned: Option<&crate::keys::Vendor>,
) -> Result<RunningApp, AppError> {
    let disk = Disk::new(Path::new(&spec.disk));
    disk.check()?;
    let label = disk
        .label()?
        .ok_or_else(|| AppError::BadRequest(format!("{} is not installed", spec.name)))?;
    let bundle = realm.trust_bundle()?;
    let vendor = stored_vendor(&disk, &bundle)?.ok_or_else(|| {
        AppError::Storage(format!(
            "{}: the disk has an image but no vendor chain",
            spec.name
        ))
    })?;
    if let Some(pin) = pinned.filter(|p| !p.same_key(&vendor)) {
        return Err(AppError::Verify(format!(
            "this realm runs applications of vendor {}; {} is from {}",
            pin.subject, spec.name, vendor.subject
        )));
    }
    let keys = AppKeys::derive(realm, &vendor, &spec.name)?;

    let run_dir = work_dir.join("run").join(&spec.name);
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .map_err(|e| AppError::Run(format!("{}: {e}", run_dir.display())))?;
    }
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| AppError::Run(format!("{}: {e}", run_dir.display())))?;
    let result = prepare_and_spawn(realm, spec, &disk, &keys, &vendor, &label, &run_dir);
    match result {
        Ok(running) => Ok(running),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&run_dir);
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn prepare_and_spawn(
    realm: &dyn Realm,
    spec: &AppSpec,
    disk: &Disk,
    keys: &AppKeys,
    vendor: &crate::keys::Vendor,
    label: &crate::disk::Label,
    run_dir: &Path,
) -> Result<RunningApp, AppError> {
    let tree = run_dir.join("image");
    keys.unseal_image(&disk.path(IMAGE), &tree, spec.image_limit)?;
    let meta: Meta = serde_json::from_slice(
        &std::fs::read(tree.join("meta.json"))
            .map_err(|e| AppError::Storage(format!("meta.json: {e}")))?,
    )
    .map_err(|e| AppError::Storage(format!("meta.json: {e}")))?;
    if &meta.label() != label {
        // The sealed image is authenticated, the label is not: an update
        // interrupted between sealing the new image and writing its label
        // leaves the old label. Trust the image and repair the label.
        warn!(
            "{}: the disk's label ({} {}) does not match its sealed image ({} {}); rewriting the label",
            spec.name, label.version, label.manifest_digest, meta.version, meta.manifest_digest
        );
        let fixed = serde_json::to_vec_pretty(&meta.label())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        disk.write_atomic(crate::disk::LABEL, &fixed)?;
    }
    let rootfs = tree.join("rootfs");
    let config: ImageConfiguration = serde_json::from_value(meta.config.clone())
        .map_err(|e| AppError::Storage(format!("image config: {e}")))?;
    let cfg = config.config().clone().unwrap_or_default();

    // Volumes: restored from the data partition, or initialised from the
    // image the first time.
    let volumes: Vec<PathBuf> = cfg
        .volumes()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|v| volume_rel(v))
        .collect::<Result<_, _>>()?;
    let data_path = disk.path(DATA);
    if data_path.exists() {
        let data = run_dir.join("data");
        keys.unseal_data(&data_path, &data, spec.data_limit)?;
        for v in &volumes {
            let src = data.join(v);
            if !src.exists() {
                continue;
            }
            let dst = resolve_in_root(&rootfs, &Path::new("/").join(v))?;
            if dst.is_dir() {
                std::fs::remove_dir_all(&dst)
                    .map_err(|e| AppError::Run(format!("{}: {e}", dst.display())))?;
            } else if dst.exists() {
                std::fs::remove_file(&dst)
                    .map_err(|e| AppError::Run(format!("{}: {e}", dst.display())))?;
            }
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(|e| AppError::Run(e.to_string()))?;
            }
            std::fs::rename(&src, &dst)
                .map_err(|e| AppError::Run(format!("{}: {e}", dst.display())))?;
        }
    }
    for v in &volumes {
        let dst = resolve_in_root(&rootfs, &Path::new("/").join(v))?;
        std::fs::create_dir_all(&dst)
            .map_err(|e| AppError::Run(format!("{}: {e}", dst.display())))?;
    }

    // What runs, as the config says.
    let mut argv: Vec<String> = cfg.entrypoint().clone().unwrap_or_default();
    argv.extend(cfg.cmd().clone().unwrap_or_default());
    let Some(argv0) = argv.first().cloned() else {
        return Err(AppError::Run(
            "the image config has neither Entrypoint nor Cmd".into(),
        ));
    };
    let env: Vec<(String, String)> = cfg
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let workdir = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
    let cwd = resolve_in_root(&rootfs, Path::new(&workdir))?;
    std::fs::create_dir_all(&cwd).map_err(|e| AppError::Run(format!("working dir: {e}")))?;
    let program = finds_program(&rootfs, &argv0, &env, &cwd)?;

    // The application's identity into the REM, before it runs.
    realm.extend(
        APP_REM,
        &app_measurement(&vendor.spki, &meta.manifest_digest),
    )?;

    let mut cmd = Command::new(&program);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if !env.iter().any(|(k, _)| k == "PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| AppError::Run(format!("starting {argv0} ({}): {e}", program.display())))?;
    let pid = child.id();
    info!("{}: started {argv0} as pid {pid}", spec.name);
    if let Some(out) = child.stdout.take() {
        forward(spec.name.clone(), out);
    }
    if let Some(err) = child.stderr.take() {
        forward(spec.name.clone(), err);
    }

    let shared = Arc::new(Shared::default());
    let waiter = {
        let shared = shared.clone();
        let name = spec.name.clone();
        let run_dir = run_dir.to_owned();
        let data_limit = spec.data_limit;
        let data_path = disk.path(DATA);
        // The waiter needs the keys after this function returns.
        let keys = AppKeys::derive(realm, vendor, &spec.name)?;
        std::thread::spawn(move || {
            let status = child.wait();
            let code = match status {
                Ok(s) => s.code().unwrap_or_else(|| -s.signal().unwrap_or(0)),
                Err(e) => {
                    warn!("{name}: wait: {e}");
                    -1
                }
            };
            info!("{name}: exited with {code}; sealing its data");
            let outcome = seal_volumes(&keys, &rootfs, &volumes, &run_dir, data_limit, &data_path)
                .map(|()| code)
                .map_err(|e| format!("exited with {code}, but its data was not saved: {e}"));
            if let Err(e) = std::fs::remove_dir_all(&run_dir) {
                warn!("{name}: removing {}: {e}", run_dir.display());
            }
            *shared.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            shared.done.notify_all();
        })
    };
    Ok(RunningApp {
        pid,
        installed: meta.label().into(),
        vendor: vendor.clone(),
        shared,
        waiter: Some(waiter),
    })
}

/// Moves the volumes out of the run tree and seals them; the previous
/// data partition stays if anything fails (for example, the data grew
/// beyond the partition).
fn seal_volumes(
    keys: &AppKeys,
    rootfs: &Path,
    volumes: &[PathBuf],
    run_dir: &Path,
    data_limit: u64,
    data_path: &Path,
) -> Result<(), AppError> {
    if volumes.is_empty() {
        return Ok(());
    }
    let out = run_dir.join("data-out");
    std::fs::create_dir_all(&out).map_err(|e| AppError::Storage(e.to_string()))?;
    for v in volumes {
        let src = resolve_in_root(rootfs, &Path::new("/").join(v))?;
        if !src.is_dir() {
            continue;
        }
        let dst = out.join(v);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(|e| AppError::Storage(e.to_string()))?;
        }
        std::fs::rename(&src, &dst)
            .map_err(|e| AppError::Storage(format!("{}: {e}", src.display())))?;
    }
    // Sealing counts the partition as unsealing will (tar stream bytes,
    // entries, file sizes) and refuses what would not unseal again.
    keys.seal_data(&out, data_path, data_limit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolution_stays_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::write(r.join("usr/bin/tool"), "x").unwrap();
        symlink("/usr/bin", r.join("bin")).unwrap();
        symlink("../../../../etc", r.join("usr/escape")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        // Absolute symlinks resolve against the root, not the host.
        assert_eq!(
            resolve_in_root(r, Path::new("/bin/tool")).unwrap(),
            r.join("usr/bin/tool")
        );
        assert_eq!(
            resolve_in_root(r, Path::new("/usr/bin/../bin/tool")).unwrap(),
            r.join("usr/bin/tool")
        );
        // Climbing out, by the path or through a link, is refused.
        assert!(resolve_in_root(r, Path::new("/../../usr/bin/tool")).is_err());
        assert!(resolve_in_root(r, Path::new("/usr/escape/passwd")).is_err());
        assert!(resolve_in_root(r, Path::new("/loop/x")).is_err());
    }

    #[test]
    fn volumes_must_be_plain_absolute_paths() {
        assert_eq!(volume_rel("/data").unwrap(), PathBuf::from("data"));
        assert_eq!(
            volume_rel("/var/lib/app/").unwrap(),
            PathBuf::from("var/lib/app")
        );
        assert!(volume_rel("data").is_err());
        assert!(volume_rel("/data/../etc").is_err());
        assert!(volume_rel("/").is_err());
    }

    #[test]
    fn program_lookup_uses_the_image_path() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("opt/app")).unwrap();
        std::fs::write(r.join("opt/app/run"), "x").unwrap();
        let env = vec![("PATH".to_string(), "/opt/app".to_string())];
        assert_eq!(
            finds_program(r, "run", &env, r).unwrap(),
            r.join("opt/app/run")
        );
        assert!(finds_program(r, "sh", &env, r).is_err());
        assert_eq!(
            finds_program(r, "/opt/app/run", &[], r).unwrap(),
            r.join("opt/app/run")
        );
    }
}
