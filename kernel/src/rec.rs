//! Realm execution contexts: a vCPU's saved state and its pending
//! conversations with the host.

use alloc::vec::Vec;

use ipc_schema::rmi::REC_RUN_NUM_LRS;

use crate::arch::{MemAccess, Resume, VcpuRegs};

/// Attestation progress of a REC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttestState {
    /// No token being produced.
    Idle,
    /// `RSI_ATTESTATION_TOKEN_INIT` was called with this challenge; the
    /// token is produced by the attestation service chunk by chunk.
    InProgress {
        /// The challenge.
        challenge: [u8; 64],
        /// Bytes of the token already handed to the realm.
        offset: usize,
    },
}

/// A RIPAS change the realm asked for (A5.4).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RipasRequest {
    /// Next IPA to change (`ripas_addr`).
    pub addr: u64,
    /// End of the requested range.
    pub top: u64,
    /// Requested RIPAS.
    pub value: u8,
    /// Whether DESTROYED entries may change.
    pub change_destroyed: bool,
    /// The realm waits for the response on its next entry.
    pub pending: bool,
}

/// What the realm must see when it next runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Resume as given.
    Resume(Resume),
    /// The last exit was an emulatable data abort (MMIO) of `access`.
    EmulatableAbort(MemAccess),
    /// The last exit was a non-emulatable abort at an unprotected IPA (the
    /// host may inject an SEA).
    UnprotectedAbort,
    /// A forwarded PSCI call (CPU_ON or AFFINITY_INFO) waits for
    /// `RMI_PSCI_COMPLETE`.
    PsciRequest,
    /// A PSCI result is ready for x0.
    PsciResult(u64),
    /// An `RSI_HOST_CALL` at this IPA waits for the host's answer.
    HostCall(u64),
    /// An `RSI_IPA_STATE_SET` waits for the host's answer.
    RipasChange,
}

/// The contents of a REC granule.
#[derive(Clone, Debug)]
pub struct Rec {
    /// RD of the owning realm.
    pub owner: u64,
    /// `RmiRecMpidr` value.
    pub mpidr: u64,
    /// REC index derived from the MPIDR.
    pub index: u64,
    /// Realm-controlled: may the host enter it.
    pub runnable: bool,
    /// Inside `RMI_REC_ENTER`.
    pub running: bool,
    /// Saved registers.
    pub regs: VcpuRegs,
    /// Auxiliary granules.
    pub aux: Vec<u64>,
    /// Attestation.
    pub attest: AttestState,
    /// What the next entry delivers.
    pub pending: Pending,
    /// RIPAS change bookkeeping.
    pub ripas: RipasRequest,
    /// GIC list registers as last seen.
    pub gic_lrs: [u64; REC_RUN_NUM_LRS],
    /// Host-controlled ICH_HCR bits as last seen.
    pub gic_hcr: u64,
}

/// `RecIndex(mpidr)` for an `RmiRecMpidr` (Aff3 at [31:24]); `None` when
/// reserved bits are set.
pub const fn rec_index_rmi(mpidr: u64) -> Option<u64> {
    ipc_schema::rmi::rec_mpidr::index(mpidr)
}

/// `RecIndex` for an MPIDR_EL1 value a realm passes to PSCI (Aff3 at
/// [39:32]); `None` when it cannot name a REC.
pub const fn rec_index_psci(mpidr: u64) -> Option<u64> {
    if mpidr & !0xFF_00_FF_FF_0F != 0 {
        return None;
    }
    Some(index(
        mpidr & 0xf,
        (mpidr >> 8) & 0xff,
        (mpidr >> 16) & 0xff,
        (mpidr >> 32) & 0xff,
    ))
}

const fn index(aff0: u64, aff1: u64, aff2: u64, aff3: u64) -> u64 {
    aff0 + 16 * aff1 + 4096 * aff2 + 1_048_576 * aff3
}
