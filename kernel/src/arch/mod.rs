//! What the core needs from the machine it runs on.
//!
//! The core is written against [`Platform`]; `host` implements it with a
//! simulated machine so the whole RMM runs in unit tests, and the aarch64
//! layer will implement it with real page tables, the GPT and ERET.

#[cfg(feature = "host")]
pub mod host;

use ipc_schema::el3::DramBank;

/// Physical address spaces a granule can belong to (the GPT's view).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Pas {
    /// Normal world.
    NonSecure,
    /// Secure world.
    Secure,
    /// Realm world.
    Realm,
    /// Root (EL3) only.
    Root,
}

/// A granule protection fault (or an address with no memory behind it) on
/// an access the RMM made on the host's behalf.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Gpf {
    /// The faulting physical address.
    pub pa: u64,
}

/// A failure of the root monitor's GTSI call.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum GtsiError {
    /// The granule is not in the PAS the call moves it from.
    BadPas,
    /// The address is not memory the monitor manages.
    BadAddr,
}

/// A failed call to the root monitor (the RMM-EL3 runtime error codes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum El3Error {
    /// `E_RMM_UNK`: unknown error, or no root of trust behind the monitor.
    Unknown,
    /// `E_RMM_BAD_ADDR`.
    BadAddr,
    /// `E_RMM_BAD_PAS`.
    BadPas,
    /// `E_RMM_NOMEM`.
    NoMem,
    /// `E_RMM_INVAL`.
    Invalid,
    /// `E_RMM_AGAIN`: not ready yet.
    Again,
}

/// Why a realm vCPU stopped running and returned control to the RMM.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The realm executed SMC; x0..x17 are in the vCPU's registers.
    Smc,
    /// The realm executed HVC.
    Hvc,
    /// A load or store the stage-2 translation must decide on.
    MemAccess(MemAccess),
    /// WFI (or WFIT).
    Wfi,
    /// WFE (or WFET).
    Wfe,
    /// A physical interrupt for the host arrived.
    Irq,
    /// The vCPU has nothing more to run (host simulation: its program
    /// returned). Treated as a `PSCI_CPU_OFF` from the realm.
    Halted,
}

/// A realm load or store waiting for stage 2.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemAccess {
    /// The IPA accessed.
    pub ipa: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// Store (true) or load.
    pub write: bool,
    /// The register transferred (ESR.ISS.SRT).
    pub reg: u8,
}

/// How a stopped vCPU resumes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Continue after the trapping instruction (SMC results are in the
    /// registers; a completed load's value is in `MemAccess::reg`).
    Next,
    /// Re-execute the trapping instruction.
    Retry,
    /// Take a synchronous external abort on the trapping access.
    Sea,
    /// Take an undefined-instruction exception (a realm's HVC).
    Undefined,
}

/// Registers of a realm vCPU that the RMM saves and restores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcpuRegs {
    /// x0..x30.
    pub gprs: [u64; 31],
    /// The PC.
    pub pc: u64,
}

/// What a platform needs to run a REC on hardware: its realm's stage 2.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RealmVcpu {
    /// The realm's VMID.
    pub vmid: u16,
    /// The realm's starting RTTs and IPA width.
    pub rtt: crate::rtt::RttRoot,
    /// The REC's `RmiRecMpidr`.
    pub mpidr: u64,
}

/// A vCPU's virtual GIC and timer state after a run, for `RmiRecExit`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuIrqs {
    /// ICH_HCR_EL2, masked to EOIcount and the host's bits.
    pub gic_hcr: u64,
    /// ICH_LR<n>_EL2.
    pub gic_lrs: [u64; ipc_schema::rmi::REC_RUN_NUM_LRS],
    /// ICH_MISR_EL2.
    pub gic_misr: u64,
    /// ICH_VMCR_EL2.
    pub gic_vmcr: u64,
    /// CNTP_CTL_EL0.
    pub cntp_ctl: u64,
    /// CNTP_CVAL_EL0 (minus CNTPOFF_EL2).
    pub cntp_cval: u64,
    /// CNTV_CTL_EL0.
    pub cntv_ctl: u64,
    /// CNTV_CVAL_EL0 (minus CNTVOFF_EL2).
    pub cntv_cval: u64,
}

/// The machine under the core.
pub trait Platform {
    /// DRAM banks: memory the host may delegate (`PaIsDelegable`).
    fn dram(&self) -> &[DramBank];

    /// The PAS a granule currently belongs to.
    fn pas(&self, pa: u64) -> Option<Pas>;

    /// Reads physical memory as the RMM (Realm PAS; may read NS and Realm).
    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf>;

    /// Writes physical memory as the RMM.
    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf>;

    /// Lends RMM-owned memory read-only, for a service that checks it (a
    /// metadata block).
    fn borrow(&self, pa: u64, len: usize) -> Result<&[u8], Gpf>;

    /// Lends RMM-owned memory writable, for a service that fills it (a
    /// realm's token buffer).
    fn lend_mut(&mut self, pa: u64, len: usize) -> Result<&mut [u8], Gpf>;

    /// `RMM_ATTEST_GET_REALM_KEY`: the realm attestation key's private
    /// scalar (P-384, big-endian), from the root of trust.
    fn attest_realm_key(&mut self) -> Result<[u8; 48], El3Error>;

    /// `RMM_ATTEST_GET_PLAT_TOKEN`: the platform token for `challenge`
    /// (a 32-, 48- or 64-byte digest).
    fn attest_platform_token(&mut self, challenge: &[u8]) -> Result<alloc::vec::Vec<u8>, El3Error>;

    /// `RMM_ISLET_GET_VHUK`: VHUK_A (`which` = 1) or VHUK_M (2).
    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], El3Error>;

    /// Lends host memory at `src` (entirely in the NS PAS) read-only and
    /// RMM-owned memory at `dst` writable, together, for a service that
    /// copies one into the other. The ranges must not overlap.
    fn lend_pair(&mut self, src: u64, dst: u64, len: usize) -> Result<(&[u8], &mut [u8]), Gpf>;

    /// Copies host-provided memory at `src` (which must be entirely in the
    /// NS PAS) to RMM-owned memory at `dst`: the single fetch of data the
    /// host could otherwise change under the RMM's feet.
    fn copy_from_ns(&mut self, dst: u64, src: u64, len: usize) -> Result<(), Gpf> {
        check_pas(self, src, len, Pas::NonSecure)?;
        let mut buf = [0u8; 256];
        for off in (0..len).step_by(buf.len()) {
            let n = buf.len().min(len - off);
            self.read(src + off as u64, &mut buf[..n])?;
            self.write(dst + off as u64, &buf[..n])?;
        }
        Ok(())
    }

    /// Reads host-provided memory: fails unless every byte is in the NS PAS,
    /// which stops the host from pointing the RMM at realm memory.
    fn read_ns(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        check_pas(self, pa, buf.len(), Pas::NonSecure)?;
        self.read(pa, buf)
    }

    /// Writes host-provided memory (same rule as [`Platform::read_ns`]).
    fn write_ns(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        check_pas(self, pa, data.len(), Pas::NonSecure)?;
        self.write(pa, data)
    }

    /// Root monitor: moves a granule from the NS to the Realm PAS.
    fn gtsi_delegate(&mut self, pa: u64) -> Result<(), GtsiError>;

    /// Root monitor: moves a granule from the Realm to the NS PAS.
    fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), GtsiError>;

    /// REC `rec` of the realm `realm` describes is about to run (once per
    /// `RMI_REC_ENTER`, before its first [`Platform::run_vcpu`]); the RTTs
    /// may have changed since its last entry. The simulation translates
    /// every access through the RTTs and needs nothing here; the aarch64
    /// layer builds the hardware stage-2 tables from the RTTs.
    fn prepare_vcpu(&mut self, rec: u64, realm: &RealmVcpu) {
        let _ = (rec, realm);
    }

    /// The host's validated `gicv3_hcr` (host bits only) and `gicv3_lrs`
    /// for REC `rec`'s runs in this `RMI_REC_ENTER`. The simulation has no
    /// GIC and ignores them; the aarch64 layer loads them into ICH_*_EL2.
    fn set_vcpu_irqs(
        &mut self,
        rec: u64,
        gic_hcr: u64,
        gic_lrs: &[u64; ipc_schema::rmi::REC_RUN_NUM_LRS],
    ) {
        let _ = (rec, gic_hcr, gic_lrs);
    }

    /// REC `rec`'s GIC and timer state after the runs of this
    /// `RMI_REC_ENTER`, for its exit; `None` (the simulation): the core
    /// reports the host's HCR and LRs back and zero for the rest.
    fn vcpu_irqs(&self, rec: u64) -> Option<VcpuIrqs> {
        let _ = rec;
        None
    }

    /// Runs the vCPU of REC `rec` from `regs` until it traps. `resume` says
    /// how the previous trap ends.
    fn run_vcpu(&mut self, rec: u64, regs: &mut VcpuRegs, resume: Resume) -> Trap;

    /// The REC at `rec` was destroyed: drop whatever runs its vCPU.
    fn vcpu_destroyed(&mut self, rec: u64);
}

fn check_pas<P: Platform + ?Sized>(p: &P, pa: u64, len: usize, want: Pas) -> Result<(), Gpf> {
    let end = pa.checked_add(len as u64).ok_or(Gpf { pa })?;
    let mut g = pa & !(crate::GRANULE as u64 - 1);
    while g < end {
        if p.pas(g) != Some(want) {
            return Err(Gpf { pa: g.max(pa) });
        }
        g += crate::GRANULE as u64;
    }
    Ok(())
}
