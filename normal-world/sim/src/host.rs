//! The simulator's host loop: what a hypervisor does for a realm.
//!
//! It enters REC 0 with `RMI_REC_ENTER` and handles each REC exit:
//!
//! * IRQ, FIQ, WFI/WFE: nothing to do but check for shutdown and re-enter.
//! * Data abort on a protected IPA (RIPAS RAM, no page yet): populate it
//!   with `RMI_DATA_CREATE_UNKNOWN`, creating RTTs as needed, and re-enter
//!   so the access is retried. Anything the host cannot fix (a DESTROYED
//!   page, an IPA outside the realm's RAM) gets an injected SEA.
//! * Data abort on an unprotected IPA with a valid syndrome: emulated MMIO;
//!   there are no devices, so reads return 0 and writes are dropped.
//! * RIPAS change: accepted and applied with `RMI_RTT_SET_RIPAS` as far as
//!   it goes (creating RTTs where a block must be split).
//! * Host call: [`host_call::CONSOLE_WRITE`] prints; any other immediate is
//!   answered with [`host_call::UNKNOWN`].
//! * PSCI: `CPU_ON`/`AFFINITY_INFO` are completed with
//!   `RMI_PSCI_COMPLETE`; `CPU_OFF` of REC 0 and `SYSTEM_OFF`/`RESET` end
//!   the run.

use std::sync::atomic::Ordering;

use atoll_rmi_client::{HostMemory, RmiError};
use ipc_schema::rmi::{exit_reason, rec_enter_flags, rtt_state, Ripas, RmiRecEnter, RmiRecExit};
use ipc_schema::rmi::{RmiStatus, REC_RUN_EXIT_OFFSET};
use ipc_schema::simvcpu::host_call;
use ipc_schema::smccc::psci;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::{SimError, Simulator};

/// Why [`Simulator::run`] returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// Shutdown was requested (SIGINT/SIGTERM, or the stop flag).
    Stopped,
    /// REC 0 is off: the realm called `PSCI_CPU_OFF`, or the vCPU server
    /// finished (`--once` after its connection closed).
    CpuOff,
    /// The realm called `PSCI_SYSTEM_OFF`.
    SystemOff,
    /// The realm called `PSCI_SYSTEM_RESET`; the simulator does not reboot
    /// realms, so this ends the run too.
    SystemReset,
}

const ESR_EC_SHIFT: u32 = 26;
const ESR_EC_MASK: u64 = 0x3F;
const EC_WFX: u64 = 0x01;
const EC_DABT_LOW: u64 = 0x24;
const ESR_ISV: u64 = 1 << 24;
const GRANULE: u64 = ipc_schema::GRANULE_SIZE as u64;
/// Most RTT levels a single fault can need (levels 1..=3 below the start).
const MAX_RTT_CREATES: usize = 4;

/// PSCI function IDs compare with the SMC32/SMC64 bit folded away.
fn psci_fn(fid: u64) -> u64 {
    fid & !0x4000_0000
}

/// Bytes covered by one RTT entry at `level` (4 KiB granules).
fn entry_size(level: i8) -> u64 {
    1u64 << (12 + 9 * (3 - i64::from(level)))
}

fn rtt_level(err: &RmiError) -> Option<i8> {
    err.status()
        .filter(|r| r.status == RmiStatus::ErrorRtt)
        .map(|r| r.index as i8)
}

/// What the next REC_ENTER carries.
struct Entry {
    flags: u64,
    gprs: [u64; 31],
}

impl Entry {
    fn plain() -> Self {
        Self {
            flags: 0,
            gprs: [0; 31],
        }
    }
}

impl Simulator {
    /// Runs the realm until shutdown or until it stops.
    pub fn run(&mut self) -> Result<RunEnd, SimError> {
        let rec = self.realm.recs[0].rec;
        let run = self.realm.recs[0].run;
        let mut next = Entry::plain();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(RunEnd::Stopped);
            }
            let mut enter = RmiRecEnter::new_zeroed();
            enter.flags = next.flags;
            enter.gprs = next.gprs;
            self.mem.write(run, enter.as_bytes())?;
            self.rmi
                .rec_enter(rec, run)
                .map_err(|source| SimError::Rmi {
                    what: "RMI_REC_ENTER",
                    source,
                })?;
            let failures = self.platform.rmm().platform_mut().take_guest_failures();
            if let Some(msg) = failures.into_iter().next() {
                return Err(SimError::Guest(msg));
            }
            let mut raw = [0u8; 0x800];
            self.mem.read(run + REC_RUN_EXIT_OFFSET as u64, &mut raw)?;
            let exit = RmiRecExit::read_from_bytes(&raw)
                .map_err(|_| SimError::UnexpectedExit("short exit record".into()))?;
            next = match exit.exit_reason {
                exit_reason::IRQ | exit_reason::FIQ => Entry::plain(),
                exit_reason::SYNC => self.sync_exit(&exit)?,
                exit_reason::HOST_CALL => self.host_call(&exit)?,
                exit_reason::RIPAS_CHANGE => self.ripas_change(rec, &exit)?,
                exit_reason::PSCI => match self.psci(rec, &exit)? {
                    Ok(entry) => entry,
                    Err(end) => return Ok(end),
                },
                other => {
                    return Err(SimError::UnexpectedExit(format!(
                        "exit reason {other} (esr {:#x})",
                        exit.esr
                    )))
                }
            };
        }
    }

    fn sync_exit(&mut self, exit: &RmiRecExit) -> Result<Entry, SimError> {
        let ec = (exit.esr >> ESR_EC_SHIFT) & ESR_EC_MASK;
        match ec {
            EC_WFX => Ok(Entry::plain()),
            EC_DABT_LOW if exit.esr & ESR_ISV != 0 => {
                // Emulated MMIO: there are no devices, so a read returns 0
                // (gprs[0]) and a write is dropped.
                Ok(Entry {
                    flags: rec_enter_flags::EMUL_MMIO,
                    gprs: [0; 31],
                })
            }
            EC_DABT_LOW => {
                let ipa = (exit.hpfar >> 4) << 12;
                if self.populate(ipa)? {
                    Ok(Entry::plain())
                } else {
                    Ok(Entry {
                        flags: rec_enter_flags::INJECT_SEA,
                        gprs: [0; 31],
                    })
                }
            }
            _ => Err(SimError::UnexpectedExit(format!(
                "synchronous exception, ESR {:#x}",
                exit.esr
            ))),
        }
    }

    fn in_ram(&self, ipa: u64) -> bool {
        self.ram
            .iter()
            .any(|r| ipa >= r.base && ipa - r.base < r.size)
    }

    fn delegated_granule(&mut self) -> Result<u64, SimError> {
        let g = self.mem.alloc_granules(1)?;
        self.rmi
            .granule_delegate(g)
            .map_err(|source| SimError::Rmi {
                what: "RMI_GRANULE_DELEGATE",
                source,
            })?;
        Ok(g)
    }

    /// Creates the RTT below `level` covering `ipa`.
    fn create_rtt(&mut self, ipa: u64, level: i8) -> Result<(), SimError> {
        let rtt = self.delegated_granule()?;
        let base = ipa & !(entry_size(level) - 1);
        self.rmi
            .rtt_create(self.realm.rd, rtt, base, i64::from(level) + 1)
            .map_err(|source| SimError::Rmi {
                what: "RMI_RTT_CREATE",
                source,
            })
    }

    /// Gives the realm a zeroed page at `ipa` if it is RAM the realm has
    /// not touched yet; `false` if the host cannot fix the fault.
    fn populate(&mut self, ipa: u64) -> Result<bool, SimError> {
        let ipa = ipa & !(GRANULE - 1);
        if !self.in_ram(ipa) {
            return Ok(false);
        }
        let rd = self.realm.rd;
        let entry = self
            .rmi
            .rtt_read_entry(rd, ipa, 3)
            .map_err(|source| SimError::Rmi {
                what: "RMI_RTT_READ_ENTRY",
                source,
            })?;
        if entry.state != rtt_state::UNASSIGNED || entry.ripas != Ripas::Ram as u64 {
            return Ok(false);
        }
        let data = self.delegated_granule()?;
        for _ in 0..MAX_RTT_CREATES {
            match self.rmi.data_create_unknown(rd, data, ipa) {
                Ok(()) => return Ok(true),
                Err(e) => match rtt_level(&e) {
                    Some(level) if level < 3 => self.create_rtt(ipa, level)?,
                    _ => {
                        return Err(SimError::Rmi {
                            what: "RMI_DATA_CREATE_UNKNOWN",
                            source: e,
                        })
                    }
                },
            }
        }
        Err(SimError::UnexpectedExit(format!(
            "no RTT path to {ipa:#x} after {MAX_RTT_CREATES} RTT_CREATEs"
        )))
    }

    fn host_call(&mut self, exit: &RmiRecExit) -> Result<Entry, SimError> {
        let mut gprs = exit.gprs;
        match exit.imm {
            host_call::CONSOLE_WRITE => {
                let len = (gprs[0] as usize).min(host_call::CONSOLE_MAX);
                let mut bytes = Vec::with_capacity(host_call::CONSOLE_MAX);
                for r in &gprs[1..31] {
                    bytes.extend_from_slice(&r.to_le_bytes());
                }
                self.console
                    .write_all(&bytes[..len])
                    .and_then(|()| self.console.flush())
                    .map_err(SimError::Console)?;
                gprs[0] = len as u64;
            }
            _ => gprs[0] = host_call::UNKNOWN,
        }
        Ok(Entry { flags: 0, gprs })
    }

    /// Accepts the change and applies it as far as the RMM lets it go; the
    /// realm sees how far that was.
    fn ripas_change(&mut self, rec: u64, exit: &RmiRecExit) -> Result<Entry, SimError> {
        let (rd, top) = (self.realm.rd, exit.ripas_top);
        let mut addr = exit.ripas_base;
        // RTTs created since the last progress: bounds the splits one
        // address can need, so a confused RMM cannot keep the host busy.
        let mut splits = 0;
        while addr < top {
            match self.rmi.rtt_set_ripas(rd, rec, addr, top) {
                Ok(reached) if reached > addr => {
                    addr = reached;
                    splits = 0;
                }
                Ok(_) => break,
                Err(e) => match rtt_level(&e) {
                    // A block only partly covered: split it and go on.
                    Some(level) if level < 3 && splits < MAX_RTT_CREATES => {
                        self.create_rtt(addr, level)?;
                        splits += 1;
                    }
                    // DESTROYED without permission, or nothing applicable:
                    // the realm sees the progress so far.
                    _ => break,
                },
            }
        }
        Ok(Entry::plain())
    }

    /// `Ok(Ok(entry))` to keep running, `Ok(Err(end))` when the realm is off.
    fn psci(&mut self, rec: u64, exit: &RmiRecExit) -> Result<Result<Entry, RunEnd>, SimError> {
        let fid = exit.gprs[0];
        let f = psci_fn(fid);
        if f == psci_fn(psci::CPU_OFF) {
            return Ok(Err(RunEnd::CpuOff));
        }
        if f == psci_fn(psci::SYSTEM_OFF) {
            return Ok(Err(RunEnd::SystemOff));
        }
        if f == psci_fn(psci::SYSTEM_RESET) {
            return Ok(Err(RunEnd::SystemReset));
        }
        if f == psci_fn(psci::CPU_ON) || f == psci_fn(psci::AFFINITY_INFO) {
            let target_mpidr = exit.gprs[1];
            let target = self
                .realm
                .recs
                .iter()
                .find(|r| r.mpidr == target_mpidr)
                .map(|r| r.rec)
                .ok_or_else(|| {
                    SimError::UnexpectedExit(format!(
                        "PSCI {fid:#x} for unknown MPIDR {target_mpidr:#x}"
                    ))
                })?;
            self.rmi
                .psci_complete(rec, target, psci::status::SUCCESS)
                .map_err(|source| SimError::Rmi {
                    what: "RMI_PSCI_COMPLETE",
                    source,
                })?;
        }
        // CPU_SUSPEND and the completed requests: run on.
        Ok(Ok(Entry::plain()))
    }
}

#[cfg(test)]
mod tests {
    use super::entry_size;

    #[test]
    fn entry_sizes() {
        assert_eq!(entry_size(3), 4096);
        assert_eq!(entry_size(2), 2 << 20);
        assert_eq!(entry_size(1), 1 << 30);
        assert_eq!(entry_size(0), 1 << 39);
    }
}
