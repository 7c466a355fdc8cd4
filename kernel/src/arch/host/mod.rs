//! The host arch layer: a simulated Arm CCA machine.
//!
//! * physical memory, one flat DRAM bank, allocated lazily by the OS;
//! * a granule protection table (one PAS per granule) that every access on
//!   behalf of the normal world is checked against;
//! * a root monitor answering GTSI_DELEGATE/UNDELEGATE by flipping GPT
//!   entries (and refusing granules in the wrong PAS, as EL3 does);
//! * realm vCPUs run as host threads executing test-supplied programs
//!   ([`vcpu`]), whose SMCs and memory accesses trap into the RMM exactly as
//!   a realm's would, so tests script realms instruction by instruction.

pub mod threads;
pub mod transport;
pub mod vcpu;

use std::vec;
use std::vec::Vec;

use ipc_schema::el3::DramBank;
use zerocopy::FromZeros;

use super::{El3Error, Gpf, GtsiError, Pas, Platform, Resume, Trap, VcpuRegs};
use crate::GRANULE;

pub use threads::{ServiceFactory, ThreadTransport};

pub use transport::{LocalTransport, ServiceHandler};
pub use vcpu::{GuestProgram, InlineGuest, RealmCpu, Sea};

/// What the simulated root monitor asks the root of trust (the HES) for.
pub trait RootOfTrust: Send {
    /// The realm attestation key's private scalar.
    fn realm_key(&mut self) -> Result<[u8; 48], El3Error>;
    /// The platform token for `challenge`.
    fn platform_token(&mut self, challenge: &[u8]) -> Result<Vec<u8>, El3Error>;
    /// VHUK_A (1) or VHUK_M (2).
    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], El3Error>;
}

/// A simulated machine: DRAM, the GPT, the root monitor and realm vCPUs.
pub struct SimMachine {
    banks: [DramBank; 1],
    mem: Vec<u8>,
    gpt: Vec<Pas>,
    vcpus: vcpu::Vcpus,
    root: Option<std::boxed::Box<dyn RootOfTrust>>,
}

impl SimMachine {
    /// A machine with `size` bytes of DRAM at `base`, all of it Non-secure.
    ///
    /// # Panics
    /// If `base` or `size` is not granule-aligned or `size` is zero: machine
    /// geometry is the test author's choice, not input.
    pub fn new(base: u64, size: u64) -> Self {
        assert!(base % GRANULE as u64 == 0 && size % GRANULE as u64 == 0 && size > 0);
        let granules = (size / GRANULE as u64) as usize;
        let mut bank = DramBank::new_zeroed();
        bank.base = base;
        bank.size = size;
        Self {
            banks: [bank],
            mem: vec![0; size as usize],
            gpt: vec![Pas::NonSecure; granules],
            vcpus: vcpu::Vcpus::default(),
            root: None,
        }
    }

    fn index(&self, pa: u64) -> Option<usize> {
        let off = pa.checked_sub(self.banks[0].base)?;
        (off < self.banks[0].size).then_some((off / GRANULE as u64) as usize)
    }

    fn range(&self, pa: u64, len: usize) -> Result<core::ops::Range<usize>, Gpf> {
        let off = pa.checked_sub(self.banks[0].base).ok_or(Gpf { pa })?;
        let end = off.checked_add(len as u64).ok_or(Gpf { pa })?;
        if end > self.banks[0].size {
            return Err(Gpf { pa });
        }
        Ok(off as usize..end as usize)
    }

    /// Gives a granule to another world (e.g. Secure) so tests can check the
    /// RMM refuses it. Only the test harness, acting as firmware, does this.
    pub fn set_pas(&mut self, pa: u64, pas: Pas) {
        let i = self.index(pa).expect("set_pas outside DRAM");
        self.gpt[i] = pas;
    }

    /// A normal-world read: faults on any granule outside the NS PAS, as
    /// the hardware's granule protection check would.
    pub fn ns_read(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        self.read_ns(pa, buf)
    }

    /// A normal-world write (same rule as [`SimMachine::ns_read`]).
    pub fn ns_write(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        self.write_ns(pa, data)
    }

    /// Connects the root monitor to a root of trust (an HES).
    pub fn set_root_of_trust(&mut self, root: std::boxed::Box<dyn RootOfTrust>) {
        self.root = Some(root);
    }

    /// Installs the program that the vCPU of the REC at `rec` runs the first
    /// time it is entered.
    pub fn attach_guest(&mut self, rec: u64, program: GuestProgram) {
        self.vcpus.attach(rec, program);
    }

    /// Installs a state-machine guest on the REC at `rec` (see
    /// [`InlineGuest`]).
    pub fn attach_inline_guest(&mut self, rec: u64, guest: InlineGuest) {
        self.vcpus.attach_inline(rec, guest);
    }

    /// Panic messages of guest programs that failed (an assertion inside a
    /// scripted realm), drained.
    pub fn take_guest_failures(&mut self) -> Vec<std::string::String> {
        self.vcpus.take_failures()
    }
}

impl Platform for SimMachine {
    fn dram(&self) -> &[DramBank] {
        &self.banks
    }

    fn pas(&self, pa: u64) -> Option<Pas> {
        self.index(pa).map(|i| self.gpt[i])
    }

    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        let r = self.range(pa, buf.len())?;
        buf.copy_from_slice(&self.mem[r]);
        Ok(())
    }

    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        let r = self.range(pa, data.len())?;
        self.mem[r].copy_from_slice(data);
        Ok(())
    }

    fn borrow(&self, pa: u64, len: usize) -> Result<&[u8], Gpf> {
        let r = self.range(pa, len)?;
        Ok(&self.mem[r])
    }

    fn lend_mut(&mut self, pa: u64, len: usize) -> Result<&mut [u8], Gpf> {
        let r = self.range(pa, len)?;
        Ok(&mut self.mem[r])
    }

    fn attest_realm_key(&mut self) -> Result<[u8; 48], El3Error> {
        self.root.as_mut().ok_or(El3Error::Unknown)?.realm_key()
    }

    fn attest_platform_token(&mut self, challenge: &[u8]) -> Result<Vec<u8>, El3Error> {
        self.root
            .as_mut()
            .ok_or(El3Error::Unknown)?
            .platform_token(challenge)
    }

    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], El3Error> {
        self.root.as_mut().ok_or(El3Error::Unknown)?.vhuk(which)
    }

    fn lend_pair(&mut self, src: u64, dst: u64, len: usize) -> Result<(&[u8], &mut [u8]), Gpf> {
        if (src..src.saturating_add(len as u64))
            .step_by(GRANULE)
            .any(|g| self.pas(g) != Some(Pas::NonSecure))
        {
            return Err(Gpf { pa: src });
        }
        let from = self.range(src, len)?;
        let to = self.range(dst, len)?;
        if from.start < to.end && to.start < from.end {
            return Err(Gpf { pa: dst });
        }
        if from.start < to.start {
            let (lo, hi) = self.mem.split_at_mut(to.start);
            Ok((&lo[from], &mut hi[..len]))
        } else {
            let (lo, hi) = self.mem.split_at_mut(from.start);
            Ok((&hi[..len], &mut lo[to]))
        }
    }

    fn copy_from_ns(&mut self, dst: u64, src: u64, len: usize) -> Result<(), Gpf> {
        if (src..src.saturating_add(len as u64))
            .step_by(GRANULE)
            .any(|g| self.pas(g) != Some(Pas::NonSecure))
        {
            return Err(Gpf { pa: src });
        }
        let from = self.range(src, len)?;
        let to = self.range(dst, len)?;
        self.mem.copy_within(from, to.start);
        Ok(())
    }

    fn gtsi_delegate(&mut self, pa: u64) -> Result<(), GtsiError> {
        let i = self.index(pa).ok_or(GtsiError::BadAddr)?;
        if self.gpt[i] != Pas::NonSecure {
            return Err(GtsiError::BadPas);
        }
        self.gpt[i] = Pas::Realm;
        Ok(())
    }

    fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), GtsiError> {
        let i = self.index(pa).ok_or(GtsiError::BadAddr)?;
        if self.gpt[i] != Pas::Realm {
            return Err(GtsiError::BadPas);
        }
        self.gpt[i] = Pas::NonSecure;
        Ok(())
    }

    fn run_vcpu(&mut self, rec: u64, regs: &mut VcpuRegs, resume: Resume) -> Trap {
        self.vcpus.run(rec, regs, resume)
    }

    fn vcpu_destroyed(&mut self, rec: u64) {
        self.vcpus.destroy(rec);
    }
}
