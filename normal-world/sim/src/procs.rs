//! Workspace binaries as separate processes, for tests (of this crate and
//! of the realm-side tools) that cross process boundaries the way users run
//! them. Only meaningful inside the Atoll workspace: [`binary`] builds with
//! the cargo that built this crate.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds (if needed) and returns a workspace binary: cargo only hands a
/// test the binaries of its own package.
pub fn binary(package: &str, name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .current_dir(workspace())
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building {name}");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("debug").join(name)
}

/// A running `atoll-hes`, killed when dropped.
pub struct HesProcess {
    child: Child,
    /// Its Unix socket.
    pub socket: PathBuf,
}

impl HesProcess {
    /// Starts `atoll-hes` with its provisioning file and socket in `dir`
    /// (the same `dir` again means the same device secrets).
    pub fn start(dir: &Path) -> Self {
        let socket = dir.join("hes.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(binary("atoll-hes", "atoll-hes"))
            .arg("--provision")
            .arg(dir.join("provision.bin"))
            .arg("--socket")
            .arg(&socket)
            .spawn()
            .expect("start atoll-hes");
        let hes = Self { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !hes.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "atoll-hes did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        hes
    }
}

impl Drop for HesProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
