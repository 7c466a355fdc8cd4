//! The simulated machine, its RMM and the services behind it, as the
//! normal-world host sees them: the RMM behind an SMC conduit and the
//! machine's NS memory behind [`HostMemory`], so the realm builder that
//! will drive hardware drives the simulation unchanged.
//!
//! The conduit and the memory share one machine, so both hold it through
//! `Rc<RefCell<_>>`; everything here runs on the simulator's host thread.

use std::cell::RefCell;
use std::rc::Rc;

use atoll_attestation::AttestationService;
use atoll_kernel::arch::host::{RootOfTrust, SimMachine, ThreadTransport};
use atoll_kernel::arch::Platform as _;
use atoll_kernel::boot::BootError;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_keys::KeysService;
use atoll_measurement::MeasurementService;
use atoll_rmi_client::{HostMemory, MemoryError};
use ipc_schema::service::ServiceId;
use ipc_schema::smccc::{SmcConduit, SmcRegs};
use ipc_schema::GRANULE_SIZE;

/// The RMM over the simulated machine.
pub type SimRmm = Rmm<SimMachine, ThreadTransport>;

/// Realms each service keeps state for.
const MAX_REALMS: usize = 64;

/// Wires every service the RMM reaches into its transport, each isolated
/// on a thread of its own (restarted if it crashes), and the root monitor
/// to its root of trust.
///
/// This is the one place the platform's trusted services are assembled:
/// measurement, attestation and keys, and the HES as the machine's root of
/// trust (`SimMachine::set_root_of_trust`), after which [`boot`] provisions
/// the attestation key, platform token and VHUKs. Without a root of trust
/// the RMM answers what it specifies for such a platform: token requests
/// and sealing keys fail with `RSI_ERROR_UNKNOWN`.
pub fn setup_services(
    machine: &mut SimMachine,
    root: Option<Box<dyn RootOfTrust>>,
) -> ThreadTransport {
    if let Some(root) = root {
        machine.set_root_of_trust(root);
    }
    let mut transport = ThreadTransport::default();
    transport.register(
        ServiceId::Measurement,
        Box::new(|| {
            let mut svc = MeasurementService::new(MAX_REALMS);
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp)))
        }),
    );
    transport.register(
        ServiceId::Attestation,
        Box::new(|| {
            let mut svc = AttestationService::new(MAX_REALMS);
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp)))
        }),
    );
    transport.register(
        ServiceId::Keys,
        Box::new(|| {
            let mut svc = KeysService::new(MAX_REALMS);
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp)))
        }),
    );
    transport
}

/// Cold-boot work after the RMM exists and before any realm is built: the
/// RMM's provisioning from the root of trust (`Rmm::boot`: the attestation
/// key and platform token, then the VHUKs), when [`setup_services`]
/// connected one. Without one there is nothing to provision, and realms
/// run without attestation or sealing keys.
fn boot(rmm: &mut SimRmm, has_root_of_trust: bool) -> Result<(), BootError> {
    if has_root_of_trust {
        let (attestation, keys) = rmm.boot();
        attestation.and(keys)?;
    }
    Ok(())
}

/// A simulated platform: machine, RMM and services, shared between the RMI
/// conduit, the host's memory view and the REC run loop.
#[derive(Clone)]
pub struct SimPlatform {
    rmm: Rc<RefCell<SimRmm>>,
}

impl SimPlatform {
    /// A machine with `size` bytes of DRAM at `base` (granule-aligned, as
    /// [`SimMachine::new`] requires), its services and the RMM, booted
    /// against `root` (an HES whose boot is complete, see
    /// [`crate::hes::boot_hes`]) if there is one.
    pub fn new(
        base: u64,
        size: u64,
        root: Option<Box<dyn RootOfTrust>>,
    ) -> Result<Self, BootError> {
        let mut machine = SimMachine::new(base, size);
        let has_root_of_trust = root.is_some();
        let transport = setup_services(&mut machine, root);
        let mut rmm = Rmm::new(machine, transport, RmmConfig::default());
        boot(&mut rmm, has_root_of_trust)?;
        Ok(Self {
            rmm: Rc::new(RefCell::new(rmm)),
        })
    }

    /// The RMM, for direct access by the host loop.
    pub fn rmm(&self) -> std::cell::RefMut<'_, SimRmm> {
        self.rmm.borrow_mut()
    }

    /// Normal-world memory of this machine, allocated bottom-up from
    /// `base` (everything the host allocates starts NS).
    pub fn host_memory(&self, base: u64, size: u64) -> SimMemory {
        SimMemory {
            rmm: self.rmm.clone(),
            next: base,
            end: base + size,
        }
    }
}

impl SmcConduit for SimPlatform {
    fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
        self.rmm.borrow_mut().handle_rmi(regs)
    }
}

/// NS memory of a [`SimPlatform`], as [`HostMemory`]: a bump allocator,
/// since the simulator never gives a realm's granules back.
pub struct SimMemory {
    rmm: Rc<RefCell<SimRmm>>,
    next: u64,
    end: u64,
}

const G: u64 = GRANULE_SIZE as u64;

impl SimMemory {
    /// NS memory still unallocated, in bytes.
    pub fn remaining(&self) -> u64 {
        self.end - self.next
    }
}

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
