//! Running realms on the simulated platform.
//!
//! A running realm is three processes, each in its own process group and
//! with its output appended to the realm's `console.log`:
//!
//! 1. `atoll-hes`: the platform's root of trust for this boot, always with
//!    the warden's one provisioning file, so the device secrets (and the
//!    realm's sealing keys) stay the same across restarts;
//! 2. `atoll-sim`: the simulated RMM with the realm built from its
//!    description and metadata, serving the realm's vCPU;
//! 3. `atoll-app-manager`: the realm's agent, reached on a Unix socket
//!    that stands in for virtio-vsock.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use ipc_schema::agent::{
    decode_header, decode_response, encode_frame, AgentFrameKind, AgentRequest, AgentResponse,
    AGENT_HEADER_LEN,
};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How long a process gets to open its socket.
const STARTUP: Duration = Duration::from_secs(60);
/// How long an agent request may take (an install fetches and seals a
/// whole image).
const AGENT_TIMEOUT: Duration = Duration::from_secs(900);
/// Grace period between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Where the platform's programs are.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// `atoll-hes`.
    pub hes: PathBuf,
    /// `atoll-sim`.
    pub sim: PathBuf,
    /// `atoll-app-manager`.
    pub app_manager: PathBuf,
}

impl Binaries {
    /// Looks in `dir`, else next to this executable, else on `PATH`.
    pub fn find(dir: Option<&Path>) -> Result<Self> {
        let here = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let find = |name: &str| -> Result<PathBuf> {
            dir.map(Path::to_path_buf)
                .into_iter()
                .chain(here.clone())
                .chain(path_dirs.iter().cloned())
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    anyhow!(
                        "{name} not found (looked in --bin-dir, next to atoll-warden and on PATH); \
                         build it with `cargo build -p {name}`"
                    )
                })
        };
        Ok(Self {
            hes: find("atoll-hes")?,
            sim: find("atoll-sim")?,
            app_manager: find("atoll-app-manager")?,
        })
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Process groups of a previous run (`pids` file), stopped before a new
/// start so stale processes cannot hold the sockets.
pub fn kill_stale(run_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(run_dir.join("pids")) else {
        return;
    };
    for pid in text
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let group = Pid::from_raw(pid);
        if killpg(group, Signal::SIGKILL).is_ok() {
            tracing::warn!("stopped stale process group {pid} from a previous warden");
        }
    }
    let _ = std::fs::remove_file(run_dir.join("pids"));
}

/// A realm's files.
#[derive(Clone, Debug)]
pub struct RealmFiles {
    /// The realm's directory in the warden's state.
    pub dir: PathBuf,
}

impl RealmFiles {
    /// The copied description.
    pub fn description(&self) -> PathBuf {
        self.dir.join("realm.toml")
    }
    /// The metadata block.
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata.bin")
    }
    /// The console log.
    pub fn console(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// Per-boot files (sockets, pids, the CPAK).
    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    /// An application's disk.
    pub fn disk(&self, app: &str) -> PathBuf {
        self.dir.join("disks").join(app)
    }
}

/// A realm that runs.
pub struct RunningRealm {
    children: Vec<(&'static str, Child)>,
    agent_socket: PathBuf,
    files: RealmFiles,
}

fn spawn(name: &'static str, cmd: &mut Command, console: &Path) -> Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(console)
        .with_context(|| format!("{}", console.display()))?;
    let err = log.try_clone()?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name}"))
}

impl RunningRealm {
    /// Boots the realm: HES, simulator, agent; waits for each.
    pub fn start(bins: &Binaries, files: &RealmFiles, hes_provision: &Path) -> Result<Self> {
        let run = files.run();
        kill_stale(&run);
        if run.exists() {
            std::fs::remove_dir_all(&run).with_context(|| format!("{}", run.display()))?;
        }
        std::fs::create_dir_all(&run)?;
        let console = files.console();
        let mut realm = Self {
            children: Vec::new(),
            agent_socket: run.join("agent.sock"),
            files: files.clone(),
        };
        let result = realm.boot(bins, hes_provision, &run, &console);
        if let Err(e) = result {
            realm.stop();
            bail!("{e:#}\nlast console lines:\n{}", tail(&console, 15));
        }
        Ok(realm)
    }

    fn record_pids(&self) {
        let pids: Vec<String> = self
            .children
            .iter()
            .map(|(_, c)| c.id().to_string())
            .collect();
        let _ = std::fs::write(self.files.run().join("pids"), pids.join(" "));
    }

    fn wait_socket(&mut self, which: usize, socket: &Path) -> Result<()> {
        let deadline = Instant::now() + STARTUP;
        while !socket.exists() {
            let (name, child) = &mut self.children[which];
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{name} exited ({status}) before opening {}",
                    socket.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not open {} within {STARTUP:?}",
                    socket.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn boot(
        &mut self,
        bins: &Binaries,
        provision: &Path,
        run: &Path,
        console: &Path,
    ) -> Result<()> {
        let hes_sock = run.join("hes.sock");
        let vcpu_sock = run.join("vcpu.sock");
        let hes = spawn(
            "atoll-hes",
            Command::new(&bins.hes)
                .arg("--provision")
                .arg(provision)
                .arg("--socket")
                .arg(&hes_sock),
            console,
        )?;
        self.children.push(("atoll-hes", hes));
        self.record_pids();
        self.wait_socket(0, &hes_sock)?;
        let sim = spawn(
            "atoll-sim",
            Command::new(&bins.sim)
                .arg("--realm")
                .arg(self.files.description())
                .arg("--metadata")
                .arg(self.files.metadata())
                .arg("--socket")
                .arg(&vcpu_sock)
                .arg("--hes")
                .arg(&hes_sock)
                .arg("--cpak-jwk")
                .arg(run.join("cpak.jwk")),
            console,
        )?;
        self.children.push(("atoll-sim", sim));
        self.record_pids();
        self.wait_socket(1, &vcpu_sock)?;
        let agent = spawn(
            "atoll-app-manager",
            Command::new(&bins.app_manager)
                .arg("--rsi")
                .arg(&vcpu_sock)
                .arg("--control")
                .arg(&self.agent_socket)
                .arg("--work-dir")
                .arg(run.join("private")),
            console,
        )?;
        self.children.push(("atoll-app-manager", agent));
        self.record_pids();
        let socket = self.agent_socket.clone();
        self.wait_socket(2, &socket)?;
        match self.agent(&AgentRequest::Hello)? {
            AgentResponse::Hello { software } => {
                tracing::info!("realm agent: {software}");
                Ok(())
            }
            other => bail!("agent answered Hello with {other:?}"),
        }
    }

    /// The CPAK of this boot's platform, as a JWK.
    pub fn cpak_jwk(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.files.run().join("cpak.jwk")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether every process still runs.
    pub fn alive(&mut self) -> bool {
        self.children
            .iter_mut()
            .all(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// One request to the agent.
    pub fn agent(&self, req: &AgentRequest) -> Result<AgentResponse> {
        agent_call(&self.agent_socket, req)
    }

    /// Stops the realm: the agent seals its applications' data and exits,
    /// then the simulator and the HES are stopped.
    pub fn stop(&mut self) {
        if self.agent_socket.exists() {
            if let Err(e) = self.agent(&AgentRequest::Shutdown) {
                tracing::warn!("agent shutdown: {e:#}");
            }
        }
        // The agent first (it may still be sealing), then the platform.
        for (name, child) in self.children.iter_mut().rev() {
            let group = Pid::from_raw(child.id() as i32);
            let deadline = Instant::now() + STOP_GRACE;
            let mut signalled = false;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => {}
                }
                if !signalled {
                    let _ = killpg(group, Signal::SIGTERM);
                    signalled = true;
                }
                if Instant::now() > deadline {
                    tracing::warn!("{name} ignored SIGTERM; SIGKILL");
                    let _ = killpg(group, Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.children.clear();
        let _ = std::fs::remove_file(self.files.run().join("pids"));
    }
}

impl Drop for RunningRealm {
    fn drop(&mut self) {
        if !self.children.is_empty() {
            self.stop();
        }
    }
}

/// One request/response on the agent socket.
pub fn agent_call(socket: &Path, req: &AgentRequest) -> Result<AgentResponse> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to the realm agent at {}", socket.display()))?;
    s.set_read_timeout(Some(AGENT_TIMEOUT))?;
    let frame = encode_frame(AgentFrameKind::Request, req).map_err(|e| anyhow!("{e}"))?;
    s.write_all(&frame)?;
    let mut header = [0u8; AGENT_HEADER_LEN];
    s.read_exact(&mut header)
        .context("reading the agent's answer")?;
    let len = decode_header(&header, AgentFrameKind::Response).map_err(|e| anyhow!("{e}"))?;
    let mut frame = header.to_vec();
    frame.resize(AGENT_HEADER_LEN + len, 0);
    s.read_exact(&mut frame[AGENT_HEADER_LEN..])?;
    decode_response(&frame).map_err(|e| anyhow!("agent answer: {e}"))
}
