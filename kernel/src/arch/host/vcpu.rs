//! Realm vCPUs as host threads.
//!
//! A guest program is ordinary Rust running on its own thread with a
//! [`RealmCpu`]: every SMC, load, store and WFI it makes blocks the thread
//! and hands a [`Trap`] to the RMM, which decides (through the REC's state
//! and the realm's RTTs) how it completes, exactly as it would for a realm
//! running on hardware. The RMM only ever sees registers and traps.

use std::boxed::Box;
use std::collections::BTreeMap;
use std::string::{String, ToString};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::vec::Vec;

use ipc_schema::smccc::SmcRegs;

use crate::arch::{MemAccess, Resume, Trap, VcpuRegs};

/// Code a realm vCPU runs.
pub type GuestProgram = Box<dyn FnOnce(&mut RealmCpu) + Send + 'static>;

/// A guest written as a state machine that runs on the RMM's own thread:
/// given how the last trap ended and the registers, it returns the next
/// trap. No thread switch per trap, so benchmarks measure the RMM rather
/// than the host scheduler.
pub type InlineGuest = Box<dyn FnMut(Resume, &mut VcpuRegs) -> Trap + Send + 'static>;

/// The register a simulated load or store transfers through.
const XFER_REG: u8 = 9;

struct ToRmm {
    trap: Trap,
    regs: VcpuRegs,
}

struct ToGuest {
    resume: Resume,
    regs: VcpuRegs,
}

/// Unwinds a guest thread whose vCPU the RMM tore down; carries no message
/// so nothing is printed.
struct VcpuGone;

/// A realm's view of its CPU: the only way a guest program touches the
/// machine.
pub struct RealmCpu {
    regs: VcpuRegs,
    entry: VcpuRegs,
    to_rmm: Sender<ToRmm>,
    from_rmm: Receiver<ToGuest>,
}

/// A synchronous external abort taken by the realm.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Sea;

impl RealmCpu {
    /// The registers the vCPU started with (REC params or PSCI_CPU_ON).
    pub fn entry_regs(&self) -> &VcpuRegs {
        &self.entry
    }

    fn trap(&mut self, trap: Trap) -> Resume {
        let msg = ToRmm {
            trap,
            regs: self.regs.clone(),
        };
        if self.to_rmm.send(msg).is_err() {
            std::panic::resume_unwind(Box::new(VcpuGone));
        }
        match self.from_rmm.recv() {
            Ok(ToGuest { resume, regs }) => {
                self.regs = regs;
                resume
            }
            Err(_) => std::panic::resume_unwind(Box::new(VcpuGone)),
        }
    }

    /// Executes SMC with x0..x17 and returns x0..x17 afterwards.
    pub fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
        loop {
            self.regs.gprs[..18].copy_from_slice(&regs);
            match self.trap(Trap::Smc) {
                Resume::Next | Resume::Sea | Resume::Undefined => break,
                // The RMM exited to the host (e.g. to map a buffer) and will
                // replay the SMC itself; a retry here means re-execute.
                Resume::Retry => continue,
            }
        }
        let mut out = [0; 18];
        out.copy_from_slice(&self.regs.gprs[..18]);
        out
    }

    fn access(&mut self, ipa: u64, size: u8, write: bool) -> Result<(), Sea> {
        loop {
            let access = MemAccess {
                ipa,
                size,
                write,
                reg: XFER_REG,
            };
            match self.trap(Trap::MemAccess(access)) {
                Resume::Next => return Ok(()),
                Resume::Retry => continue,
                Resume::Sea | Resume::Undefined => return Err(Sea),
            }
        }
    }

    /// Loads `size` (1, 2, 4, 8) bytes at `ipa`.
    pub fn load(&mut self, ipa: u64, size: u8) -> Result<u64, Sea> {
        self.access(ipa, size, false)?;
        Ok(self.regs.gprs[XFER_REG as usize])
    }

    /// Stores the low `size` bytes of `value` at `ipa`.
    pub fn store(&mut self, ipa: u64, size: u8, value: u64) -> Result<(), Sea> {
        self.regs.gprs[XFER_REG as usize] = value;
        self.access(ipa, size, true)
    }

    /// The naturally aligned access that starts at `ipa` and covers as
    /// much of `remaining` bytes as possible (8, 4, 2 or 1 bytes).
    fn access_size(ipa: u64, remaining: usize) -> u8 {
        [8u8, 4, 2, 1]
            .into_iter()
            .find(|&s| ipa % u64::from(s) == 0 && usize::from(s) <= remaining)
            .unwrap_or(1)
    }

    /// Reads bytes with naturally aligned loads (any start and length).
    pub fn read_bytes(&mut self, ipa: u64, buf: &mut [u8]) -> Result<(), Sea> {
        let mut done = 0;
        while done < buf.len() {
            let at = ipa + done as u64;
            let size = Self::access_size(at, buf.len() - done);
            let v = self.load(at, size)?;
            let n = usize::from(size);
            buf[done..done + n].copy_from_slice(&v.to_le_bytes()[..n]);
            done += n;
        }
        Ok(())
    }

    /// Writes bytes with naturally aligned stores (any start and length).
    pub fn write_bytes(&mut self, ipa: u64, data: &[u8]) -> Result<(), Sea> {
        let mut done = 0;
        while done < data.len() {
            let at = ipa + done as u64;
            let size = Self::access_size(at, data.len() - done);
            let n = usize::from(size);
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(&data[done..done + n]);
            self.store(at, size, u64::from_le_bytes(v))?;
            done += n;
        }
        Ok(())
    }

    /// Waits for an interrupt: returns on the next REC entry.
    pub fn wfi(&mut self) {
        self.trap(Trap::Wfi);
    }

    /// Waits for an event.
    pub fn wfe(&mut self) {
        self.trap(Trap::Wfe);
    }

    /// Executes HVC (realms may not: the RMM injects an undefined
    /// instruction exception, which the simulation reports by returning).
    pub fn hvc(&mut self) {
        self.trap(Trap::Hvc);
    }

    /// Lets the host run: models a physical interrupt arriving while the
    /// realm runs (a REC exit with reason IRQ).
    pub fn host_interrupt(&mut self) {
        self.trap(Trap::Irq);
    }
}

enum Vcpu {
    /// Attached, not yet started.
    Ready(GuestProgram),
    /// A state machine run in place.
    Inline(InlineGuest),
    Running {
        to_guest: Sender<ToGuest>,
        from_guest: Receiver<ToRmm>,
        thread: Option<JoinHandle<()>>,
    },
    /// The program returned or failed.
    Halted,
}

/// Every vCPU of the machine, by REC address.
#[derive(Default)]
pub(crate) struct Vcpus {
    vcpus: BTreeMap<u64, Vcpu>,
    failures: Vec<String>,
}

impl Vcpus {
    pub(crate) fn attach(&mut self, rec: u64, program: GuestProgram) {
        self.destroy(rec);
        self.vcpus.insert(rec, Vcpu::Ready(program));
    }

    pub(crate) fn attach_inline(&mut self, rec: u64, guest: InlineGuest) {
        self.destroy(rec);
        self.vcpus.insert(rec, Vcpu::Inline(guest));
    }

    pub(crate) fn take_failures(&mut self) -> Vec<String> {
        core::mem::take(&mut self.failures)
    }

    pub(crate) fn destroy(&mut self, rec: u64) {
        if let Some(Vcpu::Running {
            to_guest,
            from_guest,
            thread,
        }) = self.vcpus.remove(&rec)
        {
            // Closing both channels unwinds the guest thread at its next trap.
            drop(to_guest);
            drop(from_guest);
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
    }

    pub(crate) fn run(&mut self, rec: u64, regs: &mut VcpuRegs, resume: Resume) -> Trap {
        let Some(vcpu) = self.vcpus.get_mut(&rec) else {
            // Nothing to run: the vCPU idles until a host interrupt.
            return Trap::Irq;
        };
        if let Vcpu::Inline(guest) = vcpu {
            return guest(resume, regs);
        }
        match core::mem::replace(vcpu, Vcpu::Halted) {
            Vcpu::Inline(_) => unreachable!("handled above"),
            Vcpu::Ready(program) => {
                let (to_rmm, from_guest) = channel();
                let (to_guest, from_rmm) = channel();
                let start = regs.clone();
                let thread = std::thread::Builder::new()
                    .name(std::format!("realm-vcpu-{rec:#x}"))
                    .spawn(move || {
                        let mut cpu = RealmCpu {
                            regs: start.clone(),
                            entry: start,
                            to_rmm,
                            from_rmm,
                        };
                        program(&mut cpu);
                        let _ = cpu.to_rmm.send(ToRmm {
                            trap: Trap::Halted,
                            regs: cpu.regs.clone(),
                        });
                    })
                    .expect("spawn realm vCPU thread");
                *vcpu = Vcpu::Running {
                    to_guest,
                    from_guest,
                    thread: Some(thread),
                };
                self.wait(rec, regs)
            }
            Vcpu::Running {
                to_guest,
                from_guest,
                thread,
            } => {
                let sent = to_guest
                    .send(ToGuest {
                        resume,
                        regs: regs.clone(),
                    })
                    .is_ok();
                *vcpu = Vcpu::Running {
                    to_guest,
                    from_guest,
                    thread,
                };
                if sent {
                    self.wait(rec, regs)
                } else {
                    self.halt(rec)
                }
            }
            Vcpu::Halted => Trap::Halted,
        }
    }

    fn wait(&mut self, rec: u64, regs: &mut VcpuRegs) -> Trap {
        let Some(Vcpu::Running { from_guest, .. }) = self.vcpus.get(&rec) else {
            return Trap::Halted;
        };
        match from_guest.recv() {
            Ok(ToRmm {
                trap: Trap::Halted, ..
            }) => self.halt(rec),
            Ok(ToRmm { trap, regs: r }) => {
                *regs = r;
                trap
            }
            Err(_) => self.halt(rec),
        }
    }

    fn halt(&mut self, rec: u64) -> Trap {
        if let Some(Vcpu::Running { thread, .. }) = self.vcpus.get_mut(&rec) {
            if let Some(t) = thread.take() {
                if let Err(payload) = t.join() {
                    if !payload.is::<VcpuGone>() {
                        let msg = payload
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "guest program panicked".to_string());
                        self.failures.push(msg);
                    }
                }
            }
        }
        self.vcpus.insert(rec, Vcpu::Halted);
        Trap::Halted
    }
}

impl Drop for Vcpus {
    fn drop(&mut self) {
        let recs: Vec<u64> = self.vcpus.keys().copied().collect();
        for rec in recs {
            self.destroy(rec);
        }
    }
}
