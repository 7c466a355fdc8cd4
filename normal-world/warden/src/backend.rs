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

/// At most the last `max` bytes of a file (a console log grows without
/// bound; only its end is ever shown).
pub fn read_end(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut out = Vec::new();
    f.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The last `n` lines of a file (from its last 64 KiB).
pub fn tail(path: &Path, n: usize) -> String {
    let bytes = read_end(path, 64 * 1024).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// This boot of the host, so that process ids recorded before a reboot are
/// never taken for live ones.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`
/// field 22): with the boot id, it tells a process from a later one that
/// reused its pid.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from after its closing parenthesis (field 3 onwards).
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// One line of the `pids` file: `<boot id> <pid> <start time>`.
fn pid_line(pid: u32) -> Option<String> {
    Some(format!("{} {pid} {}", boot_id()?, start_time(pid)?))
}

/// Process groups of a previous run (`pids` file), stopped before a new
/// start so stale processes cannot hold the sockets. A group is killed only
/// when its leader is provably the process recorded: same host boot, same
/// pid, same start time; anything else (a reboot, a reused pid, an old or
/// damaged file) is left alone.
pub fn kill_stale(run_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(run_dir.join("pids")) else {
        return;
    };
    let boot = boot_id();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(&recorded_boot), Some(pid), Some(started)) = (
            fields.first(),
            fields.get(1).and_then(|p| p.parse::<u32>().ok()),
            fields.get(2).and_then(|t| t.parse::<u64>().ok()),
        ) else {
            tracing::warn!("ignoring a malformed line in the pids file: {line:?}");
            continue;
        };
        let same =
            pid > 1 && boot.as_deref() == Some(recorded_boot) && start_time(pid) == Some(started);
        if !same {
            continue;
        }
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        if killpg(Pid::from_raw(raw), Signal::SIGKILL).is_ok() {
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
        let lines: Vec<String> = self
            .children
            .iter()
            .filter_map(|(_, c)| pid_line(c.id()))
            .collect();
        let _ = atoll_atomic_file::write(
            &self.files.run().join("pids"),
            (lines.join("\n") + "\n").as_bytes(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::{CommandExt, ExitStatusExt};

    fn sleeper() -> Child {
        Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .expect("sleep")
    }

    #[test]
    fn stale_groups_are_killed_only_when_provably_ours() {
        let dir = tempfile::tempdir().unwrap();
        let mut ours = sleeper();
        let mut bystander = sleeper();
        let ours_line = pid_line(ours.id()).expect("boot id and start time");
        let real = pid_line(bystander.id()).unwrap();
        let fields: Vec<&str> = real.split_whitespace().collect();
        // The bystander under another boot, and with another start time
        // (its pid reused); then garbage and init.
        let other_boot = format!("not-this-boot {} {}", fields[1], fields[2]);
        let started: u64 = fields[2].parse().unwrap();
        let other_start = format!("{} {} {}", fields[0], fields[1], started + 1);
        let init = format!("{} 1 0", fields[0]);
        std::fs::write(
            dir.path().join("pids"),
            format!("{ours_line}\n{other_boot}\n{other_start}\n{init}\n12 34\nxyz\n"),
        )
        .unwrap();
        kill_stale(dir.path());
        assert_eq!(ours.wait().unwrap().signal(), Some(9));
        assert!(bystander.try_wait().unwrap().is_none(), "bystander killed");
        assert!(!dir.path().join("pids").exists());
        let _ = bystander.kill();
        let _ = bystander.wait();
    }

    #[test]
    fn read_end_keeps_the_last_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("console.log");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_end(&p, 4).unwrap(), b"6789");
        assert_eq!(read_end(&p, 100).unwrap(), b"0123456789");
        std::fs::write(&p, b"a\nb\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), "c\nd");
    }
}
