//! The simulated Arm CCA platform as a process.
//!
//! [`Simulator`] creates the machine, its services and the RMM, builds one
//! realm from a realm description through RMI (the same `RealmBuilder` that
//! drives hardware), and then acts as that realm's hypervisor: it enters
//! REC 0 with `RMI_REC_ENTER` and handles each exit as a host would
//! (populating realm RAM on first touch, accepting RIPAS changes, completing
//! PSCI requests, emulating MMIO, printing console host calls).
//!
//! REC 0 runs a guest program ([`server`]) that serves a Unix socket: a
//! realm process (the RSI client, the SDK, `atoll-rsi`) connects and speaks
//! the `ipc_schema::simvcpu` protocol, and each of its SMCs, loads and
//! stores is executed on the vCPU, checked by the RMM exactly as a realm's
//! would be. When the process disconnects, the next one gets the same REC
//! with its state kept (measurements extended stay extended).
//!
//! Only REC 0 is served: other RECs exist (they are measured, and PSCI
//! `CPU_ON` for them completes as the specification says) but nothing runs
//! on them.
//!
//! # Root of trust
//!
//! With [`SimOptions::hes`] (`atoll-sim --hes SOCKET`) the platform boots
//! against a running `atoll-hes`: the simulated boot chain
//! ([`hes::SimulatedFirmware`]: the executable as `BL2`, the RMM's
//! identity as `RMM`) is measured into it, the HES becomes the machine's
//! root of trust, and the RMM provisions its attestation key, platform
//! token and VHUKs from it before the realm is built. Realms then get
//! attestation tokens that verify against the HES's CPAK
//! ([`Simulator::cpak`]) and sealing keys derived from its VHUKs. Without
//! an HES, token and sealing-key requests fail with `RSI_ERROR_UNKNOWN`,
//! as the RMM specifies for a platform without a root of trust. One
//! `atoll-hes` process serves one platform boot: restart it (same
//! provisioning file, same device secrets) for the next simulator.
#![forbid(unsafe_code)]

pub mod hes;
mod host;
pub mod platform;
pub mod procs;
pub mod server;

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use atoll_measure::RealmMeasurement;
use atoll_realm_description::{BuildPlan, DescriptionError, RamRegion, RealmDescription};
use atoll_rmi_client::{
    BuildError, BuiltRealm, MemoryError, RealmBuilder, RmiClient, RmiError, METADATA_LEN,
};
use ipc_schema::simvcpu::{MemRegion, VcpuInfo, MAX_RAM_REGIONS};

pub use host::RunEnd;
pub use platform::{setup_services, SimMemory, SimPlatform, SimRmm};

/// Base of the simulated machine's DRAM.
pub const DRAM_BASE: u64 = 0x8000_0000;
/// NS memory the host keeps beyond the realm's RAM and images: RTTs, RECs,
/// run pages and the realm builder's scratch pages.
const DRAM_SLACK: u64 = 32 << 20;
/// Smallest machine.
const DRAM_MIN: u64 = 64 << 20;
/// VMID the simulator gives its realm when the description leaves it open.
const DEFAULT_VMID: u16 = 1;

/// Why the simulator could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The realm description is invalid.
    #[error("realm description: {0}")]
    Description(#[from] DescriptionError),
    /// Predicting the RIM failed.
    #[error("measuring the realm: {0}")]
    Measure(String),
    /// Building the realm through RMI failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The RMM's boot-time provisioning from the root of trust failed.
    #[error("RMM boot: {0:?}")]
    Boot(atoll_kernel::boot::BootError),
    /// The HES could not be reached or refused the simulated boot.
    #[error(transparent)]
    Hes(#[from] hes::HesBootError),
    /// The realm has no runnable REC 0 to serve.
    #[error("the realm's REC 0 is not runnable: nothing would run the vCPU")]
    NoRunnableRec,
    /// The socket could not be set up.
    #[error("socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// Another simulator answers on the socket path.
    #[error("socket {0} is in use by a running simulator")]
    SocketInUse(PathBuf),
    /// An RMI command the host loop issued failed.
    #[error("{what}: {source}")]
    Rmi {
        /// What the host was doing.
        what: &'static str,
        /// The failure.
        source: RmiError,
    },
    /// The host ran out of NS memory.
    #[error("host memory: {0}")]
    Memory(#[from] MemoryError),
    /// The REC exited in a way no host can handle.
    #[error("unexpected REC exit: {0}")]
    UnexpectedExit(String),
    /// The guest program serving the socket failed.
    #[error("vCPU server failed: {0}")]
    Guest(String),
    /// Writing console output failed.
    #[error("console: {0}")]
    Console(std::io::Error),
}

/// How to run a [`Simulator`].
pub struct SimOptions {
    /// Where to listen for the realm process.
    pub socket: PathBuf,
    /// Stop after the first realm process disconnects.
    pub once: bool,
    /// Set (by a signal handler, or a test) to shut down.
    pub stop: Arc<AtomicBool>,
    /// Where console host calls go.
    pub console: Box<dyn Write + Send>,
    /// The Unix socket of a running `atoll-hes` to boot against (the
    /// platform's root of trust); `None` for a platform without one.
    pub hes: Option<PathBuf>,
    /// A vendor-signed realm metadata block (`atoll metadata create`) to
    /// give the realm before activation: the RMM then activates it only if
    /// its RIM is the signed one, and its sealing identity (realm id and
    /// vendor key) comes from the block.
    pub metadata: Option<[u8; METADATA_LEN]>,
}

/// A machine running one realm whose REC 0 is served on a Unix socket.
pub struct Simulator {
    rmi: RmiClient<SimPlatform>,
    platform: SimPlatform,
    mem: SimMemory,
    realm: BuiltRealm,
    ram: Vec<RamRegion>,
    measurement: RealmMeasurement,
    stop: Arc<AtomicBool>,
    console: Box<dyn Write + Send>,
    socket: PathBuf,
    cpak: Option<[u8; 97]>,
}

impl Simulator {
    /// Builds the machine and the realm and binds the socket; the realm
    /// runs when [`Simulator::run`] is called. A stale socket file (nobody
    /// listening) is replaced; a live one is refused.
    pub fn new(desc: &RealmDescription, opts: SimOptions) -> Result<Self, SimError> {
        let plan = BuildPlan::new(desc)?;
        let measurement =
            atoll_measure::measure(&plan).map_err(|e| SimError::Measure(e.to_string()))?;
        let ram_bytes: u64 = desc.memory.ram.iter().map(|r| r.size).sum();
        let image_bytes: u64 = desc.images.iter().map(|i| i.padded_len()).sum();
        let dram = (ram_bytes + image_bytes + DRAM_SLACK)
            .next_multiple_of(2 << 20)
            .max(DRAM_MIN);

        // Cold boot: the boot chain is measured into the HES (if there is
        // one), which then roots the RMM's attestation and sealing keys.
        let (root, cpak) = match &opts.hes {
            Some(socket) => {
                let (root, cpak) = hes::boot_hes(socket)?;
                let root: Box<dyn atoll_kernel::arch::host::RootOfTrust> = Box::new(root);
                (Some(root), Some(cpak))
            }
            None => (None, None),
        };
        let platform = SimPlatform::new(DRAM_BASE, dram, root).map_err(SimError::Boot)?;
        let mut mem = platform.host_memory(DRAM_BASE, dram);
        let mut rmi = RmiClient::new(platform.clone());
        let mut builder =
            RealmBuilder::new(&mut rmi, &mut mem).vmid(desc.realm.vmid.unwrap_or(DEFAULT_VMID));
        if let Some(block) = opts.metadata {
            builder = builder.metadata(block);
        }
        let realm = builder.build(&plan)?;
        let rec0 = realm.recs.first().ok_or(SimError::NoRunnableRec)?;
        if !rec0.runnable {
            return Err(SimError::NoRunnableRec);
        }

        let listener = bind(&opts.socket)?;
        let mut ram = [MemRegion::default(); MAX_RAM_REGIONS];
        for (slot, r) in ram.iter_mut().zip(&desc.memory.ram) {
            *slot = MemRegion {
                base: r.base,
                size: r.size,
            };
        }
        let info = VcpuInfo {
            mpidr: rec0.mpidr,
            pc: 0,
            entry_gprs: [0; 8],
            ipa_width: desc.realm.ipa_width,
            ram,
        };
        let cfg = server::ServerConfig {
            listener,
            info,
            once: opts.once,
            stop: opts.stop.clone(),
        };
        platform
            .rmm()
            .platform_mut()
            .attach_guest(rec0.rec, Box::new(move |cpu| server::serve(cpu, cfg)));

        Ok(Self {
            rmi,
            platform,
            mem,
            realm,
            ram: desc.memory.ram.clone(),
            measurement,
            stop: opts.stop,
            console: opts.console,
            socket: opts.socket,
            cpak,
        })
    }

    /// The CPAK's public key (uncompressed SEC1 P-384 point) of the HES
    /// this platform booted against: what relying parties verify tokens
    /// with. `None` without a root of trust (no attestation, no sealing).
    pub fn cpak(&self) -> Option<&[u8; 97]> {
        self.cpak.as_ref()
    }

    /// The realm's RIM as `atoll measure` predicts it (the digest, without
    /// padding); the RMM computed the same value while building.
    pub fn rim(&self) -> &[u8] {
        self.measurement.rim()
    }

    /// The measurement.
    pub fn measurement(&self) -> &RealmMeasurement {
        &self.measurement
    }

    /// What the realm builder created.
    pub fn realm(&self) -> &BuiltRealm {
        &self.realm
    }

    /// The platform (RMM and services), for inspection.
    pub fn platform(&self) -> &SimPlatform {
        &self.platform
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn bind(path: &Path) -> Result<UnixListener, SimError> {
    let err = |source| SimError::Socket {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(SimError::SocketInUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    UnixListener::bind(path).map_err(err)
}

/// Console output captured in memory (for [`Background`]).
#[derive(Clone, Default)]
pub struct SharedConsole(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedConsole {
    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Write for SharedConsole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("console lock poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A simulator running on a thread of its own, for embedding the platform
/// in another program or a test: the realm process side runs in the
/// caller. The simulator stops (and the thread is joined) on
/// [`Background::stop`] or drop.
pub struct Background {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<RunEnd, SimError>>>,
    console: SharedConsole,
    measurement: RealmMeasurement,
    socket: PathBuf,
    cpak: Option<[u8; 97]>,
}

impl Background {
    /// Builds the realm on a platform without a root of trust and starts
    /// serving `socket`; returns once the socket accepts connections (or
    /// with the reason it could not start).
    pub fn start(desc: RealmDescription, socket: PathBuf) -> Result<Self, SimError> {
        Self::start_with(desc, socket, None)
    }

    /// As [`Background::start`], on a platform booted against the
    /// `atoll-hes` listening on `hes` (see [`SimOptions::hes`]) when given.
    pub fn start_with(
        desc: RealmDescription,
        socket: PathBuf,
        hes: Option<PathBuf>,
    ) -> Result<Self, SimError> {
        Self::start_with_metadata(desc, socket, hes, None)
    }

    /// As [`Background::start_with`], building the realm with a
    /// vendor-signed metadata block (see [`SimOptions::metadata`]).
    pub fn start_with_metadata(
        desc: RealmDescription,
        socket: PathBuf,
        hes: Option<PathBuf>,
        metadata: Option<[u8; METADATA_LEN]>,
    ) -> Result<Self, SimError> {
        let stop = Arc::new(AtomicBool::new(false));
        let console = SharedConsole::default();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let opts = SimOptions {
            socket: socket.clone(),
            once: false,
            stop: stop.clone(),
            console: Box::new(console.clone()),
            hes,
            metadata,
        };
        let thread = std::thread::Builder::new()
            .name("atoll-sim".into())
            .spawn(move || {
                let mut sim = match Simulator::new(&desc, opts) {
                    Ok(sim) => {
                        let _ = ready_tx.send(Ok((sim.measurement().clone(), sim.cpak().copied())));
                        sim
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(RunEnd::Stopped);
                    }
                };
                sim.run()
            })
            .map_err(|source| SimError::Socket {
                path: socket.clone(),
                source,
            })?;
        let (measurement, cpak) = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let msg = match thread.join() {
                    Err(_) => "simulator thread panicked".to_string(),
                    Ok(_) => "simulator thread ended early".to_string(),
                };
                return Err(SimError::Guest(msg));
            }
        };
        Ok(Self {
            stop,
            thread: Some(thread),
            console,
            measurement,
            socket,
            cpak,
        })
    }

    /// The CPAK's public key of the HES the platform booted against, if
    /// any (see [`Simulator::cpak`]).
    pub fn cpak(&self) -> Option<&[u8; 97]> {
        self.cpak.as_ref()
    }

    /// The realm's measurement as predicted from its description.
    pub fn measurement(&self) -> &RealmMeasurement {
        &self.measurement
    }

    /// The socket realm processes connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Console host-call output so far.
    pub fn console(&self) -> Vec<u8> {
        self.console.contents()
    }

    /// Whether the simulator is still running (not stopped by the realm).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the simulator and returns how its run ended.
    pub fn stop(mut self) -> Result<RunEnd, SimError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<RunEnd, SimError> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(SimError::Guest("simulator thread panicked".into()))),
            None => Ok(RunEnd::Stopped),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
