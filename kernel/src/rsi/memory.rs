//! Stage 2 as the RMM sees it: translating realm IPAs through the RTTs,
//! for the realm's own loads and stores and for RSI buffers.

use ipc_schema::rmi::Ripas;

use crate::arch::{MemAccess, Platform, Resume};
use crate::rec::{Pending, Rec};
use crate::rsi::{esr, Exit, Step};
use crate::rtt::{self, Hipas};
use crate::services::ServiceTransport;
use crate::Rmm;

/// S2AP bit allowing reads.
const S2AP_READ: u8 = 0b01;
/// S2AP bit allowing writes.
const S2AP_WRITE: u8 = 0b10;

/// Where an IPA leads.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Translation {
    /// Mapped to `pa`.
    Mapped {
        /// Physical address of the IPA (offset included).
        pa: u64,
        /// An unprotected (NS) mapping.
        ns: bool,
        /// S2AP of an NS mapping.
        s2ap: u8,
        /// The mapping's level.
        level: i8,
    },
    /// RIPAS EMPTY: the realm takes an SEA.
    Empty,
    /// Protected, RAM but unassigned, or DESTROYED: the host must act.
    Abort {
        /// Level where the walk stopped.
        level: i8,
    },
    /// Unprotected and unmapped: emulated MMIO.
    NsUnmapped {
        /// Level where the walk stopped.
        level: i8,
    },
    /// Beyond the IPA space.
    OutOfRange,
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// Translates `ipa` of the realm at `rd`.
    pub(crate) fn translate(&self, rd: u64, ipa: u64) -> Translation {
        let Some(realm) = self.realms.get(&rd) else {
            return Translation::OutOfRange;
        };
        if !realm.ipa_in_range(ipa) {
            return Translation::OutOfRange;
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, rtt::LEVEL_MAX);
        let e = w.entry;
        let offset = ipa & (rtt::entry_size(w.level) - 1);
        if realm.is_protected(ipa) {
            match (e.hipas, e.ripas) {
                (_, Ripas::Empty) => Translation::Empty,
                (Hipas::Assigned, Ripas::Ram) => Translation::Mapped {
                    pa: e.addr + offset,
                    ns: false,
                    s2ap: 0b11,
                    level: w.level,
                },
                _ => Translation::Abort { level: w.level },
            }
        } else if e.hipas == Hipas::AssignedNs {
            Translation::Mapped {
                pa: e.addr + offset,
                ns: true,
                s2ap: e.s2ap,
                level: w.level,
            }
        } else {
            Translation::NsUnmapped { level: w.level }
        }
    }

    /// A realm load or store.
    pub(crate) fn realm_access(&mut self, r: &mut Rec, a: MemAccess) -> Step {
        let size = u64::from(a.size);
        if !matches!(a.size, 1 | 2 | 4 | 8) || a.ipa % size != 0 || a.reg > 30 {
            return Step::Continue(Resume::Sea);
        }
        match self.translate(r.owner, a.ipa) {
            Translation::Mapped {
                pa,
                ns,
                s2ap,
                level,
            } => {
                let need = if a.write { S2AP_WRITE } else { S2AP_READ };
                if ns && s2ap & need == 0 {
                    r.pending = Pending::EmulatableAbort(a);
                    return Step::Exit(Exit::Sync {
                        esr: esr::permission_fault(a, level),
                        far: a.ipa & 0xfff,
                        hpfar: esr::hpfar(a.ipa),
                        gpr0: if a.write {
                            r.regs.gprs[usize::from(a.reg)]
                        } else {
                            0
                        },
                    });
                }
                let mut buf = [0u8; 8];
                let n = a.size as usize;
                let ok = if a.write {
                    buf.copy_from_slice(&r.regs.gprs[usize::from(a.reg)].to_le_bytes());
                    if ns {
                        self.platform.write_ns(pa, &buf[..n])
                    } else {
                        self.platform.write(pa, &buf[..n])
                    }
                } else {
                    let res = if ns {
                        self.platform.read_ns(pa, &mut buf[..n])
                    } else {
                        self.platform.read(pa, &mut buf[..n])
                    };
                    if res.is_ok() {
                        r.regs.gprs[usize::from(a.reg)] = u64::from_le_bytes(buf);
                    }
                    res
                };
                // An NS mapping the host pointed at non-NS memory: the
                // granule protection check faults the realm's access.
                Step::Continue(if ok.is_ok() {
                    Resume::Next
                } else {
                    Resume::Sea
                })
            }
            Translation::Empty | Translation::OutOfRange => Step::Continue(Resume::Sea),
            Translation::Abort { level } => {
                r.pending = Pending::Resume(Resume::Retry);
                Step::Exit(Exit::Sync {
                    esr: esr::data_abort(None, level),
                    far: 0,
                    hpfar: esr::hpfar(a.ipa),
                    gpr0: 0,
                })
            }
            Translation::NsUnmapped { level } => {
                r.pending = Pending::EmulatableAbort(a);
                Step::Exit(Exit::Sync {
                    esr: esr::data_abort(Some(a), level),
                    far: a.ipa & 0xfff,
                    hpfar: esr::hpfar(a.ipa),
                    gpr0: if a.write {
                        r.regs.gprs[usize::from(a.reg)]
                    } else {
                        0
                    },
                })
            }
        }
    }
}
