//! The simulated platform as a normal-world host sees it: the RMM behind
//! an SMC conduit and the machine's NS memory behind `HostMemory`, so the
//! same realm builder that will drive hardware drives the simulation.
//!
//! Both views share one machine, so they hold it through `Rc<RefCell<_>>`:
//! the builder borrows the conduit for each SMC and the memory for each
//! page it writes, never both at once.
#![forbid(unsafe_code)]

pub mod hes;
pub mod procs;

use std::cell::RefCell;
use std::rc::Rc;

use atoll_kernel::arch::host::{RootOfTrust, SimMachine, ThreadTransport};
use atoll_kernel::arch::Platform;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_rmi_client::{HostMemory, MemoryError};
use ipc_schema::smccc::{SmcConduit, SmcRegs};
use ipc_schema::GRANULE_SIZE;

/// The RMM over the simulated machine.
pub type SimRmm = Rmm<SimMachine, ThreadTransport>;

/// A simulated platform: the machine and the RMM, with every service
/// (measurement, attestation, keys) isolated on a thread of its own.
#[derive(Clone)]
pub struct Sim {
    rmm: Rc<RefCell<SimRmm>>,
}

impl Sim {
    /// A machine with `size` bytes of DRAM at `base` and the RMM on it.
    pub fn new(base: u64, size: u64) -> Self {
        // The same service assembly as the `atoll-sim` process; the root
        // of trust comes later, with `boot_with`.
        let mut machine = SimMachine::new(base, size);
        let transport = atoll_sim::setup_services(&mut machine, None);
        let rmm = Rmm::new(machine, transport, RmmConfig::default());
        Self {
            rmm: Rc::new(RefCell::new(rmm)),
        }
    }

    /// Connects the root monitor to `root` and runs the RMM's boot-time
    /// provisioning (attestation key and platform token, VHUKs).
    pub fn boot_with(
        &self,
        root: Box<dyn RootOfTrust>,
    ) -> Result<(), atoll_kernel::boot::BootError> {
        let mut rmm = self.rmm.borrow_mut();
        rmm.platform_mut().set_root_of_trust(root);
        let (attestation, keys) = rmm.boot();
        attestation.and(keys)
    }

    /// The RMM, for direct inspection.
    pub fn rmm(&self) -> std::cell::RefMut<'_, SimRmm> {
        self.rmm.borrow_mut()
    }

    /// Normal-world memory of this machine, allocated bottom-up from
    /// `base` (a host's view: everything it allocates starts NS).
    pub fn host_memory(&self, base: u64, size: u64) -> SimMemory {
        SimMemory {
            rmm: self.rmm.clone(),
            next: base,
            end: base + size,
        }
    }
}

impl SmcConduit for Sim {
    fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
        self.rmm.borrow_mut().handle_rmi(regs)
    }
}

/// NS memory of a [`Sim`], as [`HostMemory`].
pub struct SimMemory {
    rmm: Rc<RefCell<SimRmm>>,
    next: u64,
    end: u64,
}

const G: u64 = GRANULE_SIZE as u64;

impl HostMemory for SimMemory {
    fn alloc_granules(&mut self, count: usize) -> Result<u64, MemoryError> {
        let align = (count.next_power_of_two() as u64) * G;
        let pa = self.next.next_multiple_of(align);
        let end = pa + count as u64 * G;
        if end > self.end {
            return Err(MemoryError::OutOfMemory { count });
        }
        self.next = end;
        // The builder relies on fresh granules being zero.
        let mut rmm = self.rmm.borrow_mut();
        let zero = [0u8; GRANULE_SIZE];
        for g in (pa..end).step_by(GRANULE_SIZE) {
            rmm.platform_mut()
                .ns_write(g, &zero)
                .map_err(|_| MemoryError::BadAddress {
                    pa: g,
                    len: GRANULE_SIZE,
                })?;
        }
        Ok(pa)
    }

    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.rmm
            .borrow_mut()
            .platform_mut()
            .ns_write(pa, data)
            .map_err(|_| MemoryError::BadAddress {
                pa,
                len: data.len(),
            })
    }

    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        self.rmm
            .borrow()
            .platform()
            .read_ns(pa, buf)
            .map_err(|_| MemoryError::BadAddress { pa, len })
    }
}
