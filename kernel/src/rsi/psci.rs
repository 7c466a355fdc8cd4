//! PSCI calls from a realm (RMM spec B6).

use ipc_schema::smccc::psci::{self, status};
use ipc_schema::smccc::SMCCC_VERSION;

use crate::arch::{Platform, Resume};
use crate::realm::RealmState;
use crate::rec::{rec_index_psci, Pending, Rec};
use crate::rsi::{done, Exit, Step};
use crate::services::ServiceTransport;
use crate::Rmm;

/// Folds an SMC64 PSCI function ID onto its SMC32 form.
const fn fold(fid: u64) -> u64 {
    fid & !0x4000_0000
}

/// The PSCI functions `PSCI_FEATURES` reports.
const SUPPORTED: [u64; 8] = [
    psci::VERSION,
    psci::CPU_SUSPEND,
    psci::CPU_OFF,
    psci::CPU_ON,
    psci::AFFINITY_INFO,
    psci::SYSTEM_OFF,
    psci::SYSTEM_RESET,
    psci::FEATURES,
];

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    pub(crate) fn realm_psci(&mut self, r: &mut Rec, fid: u64) -> Step {
        let x = r.regs.gprs;
        match fold(fid) {
            f if f == fold(psci::VERSION) => done(r, &[psci::VERSION_1_1]),
            f if f == fold(psci::FEATURES) => {
                let q = x[1];
                let supported = q >> 32 == 0
                    && (q == SMCCC_VERSION || SUPPORTED.iter().any(|&s| fold(s) == fold(q)));
                done(
                    r,
                    &[if supported {
                        status::SUCCESS
                    } else {
                        status::NOT_SUPPORTED
                    }],
                )
            }
            f if f == fold(psci::CPU_SUSPEND) => {
                r.pending = Pending::PsciResult(status::SUCCESS);
                Step::Exit(Exit::Psci {
                    gprs: [fid, x[1], x[2], x[3]],
                })
            }
            f if f == fold(psci::CPU_OFF) => {
                r.runnable = false;
                r.pending = Pending::Resume(Resume::Next);
                Step::Exit(Exit::Psci {
                    gprs: [fid, 0, 0, 0],
                })
            }
            f if f == fold(psci::CPU_ON) => {
                let (target, entry, context) = (x[1], x[2], x[3]);
                let realm = self.realm_of(r);
                if !realm.is_protected(entry) {
                    return done(r, &[status::INVALID_ADDRESS]);
                }
                let Some(index) = rec_index_psci(target)
                    .filter(|&i| realm.rec_by_index(i).is_some() || i == r.index)
                else {
                    return done(r, &[status::INVALID_PARAMETERS]);
                };
                if index == r.index {
                    return done(r, &[status::ALREADY_ON]);
                }
                r.pending = Pending::PsciRequest;
                Step::Exit(Exit::Psci {
                    gprs: [fid, target, entry, context],
                })
            }
            f if f == fold(psci::AFFINITY_INFO) => {
                let (target, lowest_level) = (x[1], x[2] & 0xFFFF_FFFF);
                let realm = self.realm_of(r);
                if lowest_level != 0 {
                    return done(r, &[status::INVALID_PARAMETERS]);
                }
                let Some(index) = rec_index_psci(target)
                    .filter(|&i| realm.rec_by_index(i).is_some() || i == r.index)
                else {
                    return done(r, &[status::INVALID_PARAMETERS]);
                };
                if index == r.index {
                    return done(r, &[status::SUCCESS]);
                }
                r.pending = Pending::PsciRequest;
                Step::Exit(Exit::Psci {
                    gprs: [fid, target, 0, 0],
                })
            }
            f if f == fold(psci::SYSTEM_OFF) || f == fold(psci::SYSTEM_RESET) => {
                if let Some(realm) = self.realms.get_mut(&r.owner) {
                    realm.state = RealmState::SystemOff;
                }
                Step::Exit(Exit::Psci {
                    gprs: [fid, 0, 0, 0],
                })
            }
            _ => done(r, &[status::NOT_SUPPORTED]),
        }
    }
}
