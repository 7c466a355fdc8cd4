//! What a running realm can ask of the RMM: RSI, PSCI and SMCCC_VERSION
//! calls, and loads and stores that stage 2 must decide on.
//!
//! Each call either completes inside the RMM (the realm continues with its
//! results in registers) or becomes a REC exit the host must handle.

mod attest;
mod islet;
mod memory;
mod psci;

use ipc_schema::islet::fid as islet_fid;
use ipc_schema::rmi::{exit_reason, Ripas, RmiRecExit};
use ipc_schema::rsi::{self, fid, status, RsiRealmConfig, HOST_CALL_ALIGN, MEASUREMENT_BYTES};
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};
use ipc_schema::smccc::{self, SMCCC_VERSION, SMCCC_VERSION_1_2, SMC_UNKNOWN, SVE_HINT};
use ipc_schema::wire::BoundedBytes;
use zerocopy::{FromZeros, IntoBytes};

use crate::arch::{Platform, Resume};
use crate::realm::Realm;
use crate::rec::{Pending, Rec, RipasRequest};
use crate::rtt;
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

pub(crate) use memory::Translation;

/// What happens after a trap.
// Short-lived values on the exit path: boxing the host-call registers would
// put an allocation on every REC exit to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// The realm continues.
    Continue(Resume),
    /// The REC exits to the host.
    Exit(Exit),
}

/// A REC exit, before it is written into `RmiRecExit`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // see `Step`
pub(crate) enum Exit {
    /// Synchronous exception (abort or trapped WFx).
    Sync {
        /// ESR_EL2 as reported.
        esr: u64,
        /// FAR (page offset of an emulatable abort).
        far: u64,
        /// HPFAR.
        hpfar: u64,
        /// Write data of an emulatable store.
        gpr0: u64,
    },
    /// IRQ for the host.
    Irq,
    /// PSCI call: function ID and arguments.
    Psci {
        /// x0..x3.
        gprs: [u64; 4],
    },
    /// RIPAS change request.
    RipasChange {
        /// Base.
        base: u64,
        /// Top.
        top: u64,
        /// RIPAS.
        value: u8,
    },
    /// Host call.
    HostCall {
        /// Immediate.
        imm: u16,
        /// x0..x30 from the structure.
        gprs: [u64; 31],
    },
}

impl Exit {
    pub(crate) fn fill(&self, e: &mut RmiRecExit) {
        match *self {
            Exit::Sync {
                esr,
                far,
                hpfar,
                gpr0,
            } => {
                e.exit_reason = exit_reason::SYNC;
                e.esr = esr;
                e.far = far;
                e.hpfar = hpfar;
                e.gprs[0] = gpr0;
            }
            Exit::Irq => e.exit_reason = exit_reason::IRQ,
            Exit::Psci { gprs } => {
                e.exit_reason = exit_reason::PSCI;
                e.gprs[..4].copy_from_slice(&gprs);
            }
            Exit::RipasChange { base, top, value } => {
                e.exit_reason = exit_reason::RIPAS_CHANGE;
                e.ripas_base = base;
                e.ripas_top = top;
                e.ripas_value = value;
            }
            Exit::HostCall { imm, gprs } => {
                e.exit_reason = exit_reason::HOST_CALL;
                e.imm = imm;
                e.gprs = gprs;
            }
        }
    }

    /// The exit for an RMM access to realm memory that stage 2 refuses;
    /// `None` when the realm itself must see the error instead.
    pub(crate) fn from_translation(t: Translation, ipa: u64) -> Option<Exit> {
        match t {
            Translation::Abort { level } | Translation::NsUnmapped { level } => Some(Exit::Sync {
                esr: esr::data_abort(None, level),
                far: 0,
                hpfar: esr::hpfar(ipa),
                gpr0: 0,
            }),
            Translation::Mapped { .. } | Translation::Empty | Translation::OutOfRange => None,
        }
    }
}

/// ESR_EL2 encodings the host sees.
pub(crate) mod esr {
    use crate::arch::MemAccess;

    const EC_SHIFT: u32 = 26;
    const EC_WFX: u64 = 0x01;
    const EC_DABT_LOW: u64 = 0x24;
    const IL: u64 = 1 << 25;
    const ISV: u64 = 1 << 24;
    const SAS_SHIFT: u32 = 22;
    const SRT_SHIFT: u32 = 16;
    const SF: u64 = 1 << 15;
    const WNR: u64 = 1 << 6;
    const DFSC_TRANSLATION: u64 = 0b00_0100;
    const DFSC_PERMISSION: u64 = 0b00_1100;

    /// A trapped WFI (`ti` 0) or WFE (`ti` 1).
    pub(crate) const fn wfx(ti: u64) -> u64 {
        EC_WFX << EC_SHIFT | IL | ti
    }

    /// A stage-2 translation fault; `access` adds the syndrome an emulating
    /// host needs (ISV, size, register, direction).
    pub(crate) fn data_abort(access: Option<MemAccess>, level: i8) -> u64 {
        let mut v = EC_DABT_LOW << EC_SHIFT | IL | (DFSC_TRANSLATION + level.max(0) as u64);
        if let Some(a) = access {
            v |= syndrome(a);
        }
        v
    }

    /// A stage-2 permission fault on an NS mapping.
    pub(crate) fn permission_fault(access: MemAccess, level: i8) -> u64 {
        EC_DABT_LOW << EC_SHIFT | IL | (DFSC_PERMISSION + level.max(0) as u64) | syndrome(access)
    }

    fn syndrome(a: MemAccess) -> u64 {
        let sas = u64::from(a.size.trailing_zeros());
        let mut v = ISV | sas << SAS_SHIFT | u64::from(a.reg) << SRT_SHIFT;
        if a.size == 8 {
            v |= SF;
        }
        if a.write {
            v |= WNR;
        }
        v
    }

    /// HPFAR_EL2: IPA[51:12] in bits [43:4].
    pub(crate) const fn hpfar(ipa: u64) -> u64 {
        (ipa >> 12) << 4
    }
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// Handles an SMC from a running realm.
    pub(crate) fn realm_smc(&mut self, rec: u64, r: &mut Rec) -> Step {
        let x = r.regs.gprs;
        let fid = x[0] & !SVE_HINT;
        if fid == SMCCC_VERSION {
            return done(r, &[SMCCC_VERSION_1_2]);
        }
        if smccc::psci::is_psci(fid) {
            return self.realm_psci(r, fid);
        }
        match fid {
            fid::VERSION => {
                let ok = x[1] == rsi::VERSION_1_0;
                let st = if ok {
                    status::SUCCESS
                } else {
                    status::ERROR_INPUT
                };
                done(r, &[st, rsi::VERSION_1_0, rsi::VERSION_1_0])
            }
            fid::FEATURES => done(r, &[status::SUCCESS, 0]),
            fid::MEASUREMENT_READ => self.rsi_measurement_read(r, x[1]),
            fid::MEASUREMENT_EXTEND => self.rsi_measurement_extend(r),
            fid::ATTEST_TOKEN_INIT => self.rsi_attest_init(r, rec),
            fid::ATTEST_TOKEN_CONTINUE => self.rsi_attest_continue(r, rec),
            fid::REALM_CONFIG => self.rsi_realm_config(r, x[1]),
            fid::IPA_STATE_SET => self.rsi_ipa_state_set(r),
            fid::IPA_STATE_GET => self.rsi_ipa_state_get(r, x[1], x[2]),
            fid::HOST_CALL => self.rsi_host_call(r, x[1]),
            islet_fid::RSI_REALM_METADATA => self.rsi_islet_metadata(r, x[1]),
            islet_fid::RSI_REALM_SEALING_KEY => self.rsi_islet_sealing_key(r, x[1], x[2]),
            _ => done(r, &[SMC_UNKNOWN]),
        }
    }

    fn realm_of(&self, r: &Rec) -> &Realm {
        // A REC's owner outlives it: REALM_DESTROY refuses realms with RECs.
        &self.realms[&r.owner]
    }

    fn rsi_measurement_read(&mut self, r: &mut Rec, index: u64) -> Step {
        if index > 4 {
            return done(r, &[status::ERROR_INPUT]);
        }
        let req = MeasurementRequest::Read {
            realm: Realm::handle(r.owner),
            index: index as u8,
        };
        match self.measure(&req) {
            Ok(MeasurementResponse::Value(v)) => {
                let mut out = [status::SUCCESS; 9];
                for (o, chunk) in out[1..].iter_mut().zip(v.0.chunks(8)) {
                    *o = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                }
                done(r, &out)
            }
            _ => done(r, &[status::ERROR_UNKNOWN]),
        }
    }

    fn rsi_measurement_extend(&mut self, r: &mut Rec) -> Step {
        let x = r.regs.gprs;
        let (index, size) = (x[1], x[2]);
        if index == 0 || index > 4 || size > MEASUREMENT_BYTES as u64 {
            return done(r, &[status::ERROR_INPUT]);
        }
        let mut value = [0u8; MEASUREMENT_BYTES];
        for (chunk, reg) in value.chunks_mut(8).zip(&x[3..11]) {
            chunk.copy_from_slice(&reg.to_le_bytes());
        }
        let Ok(data) = BoundedBytes::new(&value[..size as usize]) else {
            return done(r, &[status::ERROR_INPUT]);
        };
        let req = MeasurementRequest::Extend {
            realm: Realm::handle(r.owner),
            index: index as u8,
            data,
        };
        match self.measure(&req) {
            Ok(MeasurementResponse::Ok) => done(r, &[status::SUCCESS]),
            _ => done(r, &[status::ERROR_UNKNOWN]),
        }
    }

    fn rsi_realm_config(&mut self, r: &mut Rec, addr: u64) -> Step {
        let realm = self.realm_of(r);
        if !is_granule_aligned(addr) || !realm.is_protected(addr) {
            return done(r, &[status::ERROR_INPUT]);
        }
        let mut cfg = RsiRealmConfig::new_zeroed();
        cfg.ipa_width = u64::from(realm.ipa_width);
        cfg.hash_algo = realm.hash_algo.to_rmi();
        cfg.rpv = realm.rpv;
        match self.translate(r.owner, addr) {
            Translation::Mapped { pa, .. } => {
                let _ = self.platform.write(pa, cfg.as_bytes());
                done(r, &[status::SUCCESS])
            }
            t => self.buffer_fault(r, t, addr),
        }
    }

    /// An RSI buffer that stage 2 refuses: EMPTY is the realm's error, an
    /// unmapped page is the host's to fix (the SMC is re-executed after).
    pub(crate) fn buffer_fault(&mut self, r: &mut Rec, t: Translation, ipa: u64) -> Step {
        match Exit::from_translation(t, ipa) {
            Some(exit) => {
                r.pending = Pending::Resume(Resume::Retry);
                Step::Exit(exit)
            }
            None => done(r, &[status::ERROR_INPUT]),
        }
    }

    fn rsi_ipa_state_set(&mut self, r: &mut Rec) -> Step {
        let x = r.regs.gprs;
        let (base, top, ripas, flags) = (x[1], x[2], x[3], x[4]);
        let realm = self.realm_of(r);
        if !is_granule_aligned(base) || !is_granule_aligned(top) || top <= base {
            return done(r, &[status::ERROR_INPUT]);
        }
        if !realm.range_is_protected(base, top) {
            return done(r, &[status::ERROR_INPUT]);
        }
        if ripas != Ripas::Empty as u64 && ripas != Ripas::Ram as u64 {
            return done(r, &[status::ERROR_INPUT]);
        }
        r.ripas = RipasRequest {
            addr: base,
            top,
            value: ripas as u8,
            change_destroyed: flags & rsi::ipa_state_flags::CHANGE_DESTROYED != 0,
            pending: true,
        };
        r.pending = Pending::RipasChange;
        Step::Exit(Exit::RipasChange {
            base,
            top,
            value: ripas as u8,
        })
    }

    fn rsi_ipa_state_get(&mut self, r: &mut Rec, base: u64, top: u64) -> Step {
        let realm = self.realm_of(r);
        if !is_granule_aligned(base) || !is_granule_aligned(top) || top <= base {
            return done(r, &[status::ERROR_INPUT]);
        }
        if !realm.range_is_protected(base, top) {
            return done(r, &[status::ERROR_INPUT]);
        }
        let root = realm.rtt;
        let first = rtt::walk(&self.platform, &root, base, rtt::LEVEL_MAX);
        let ripas = first.entry.ripas;
        let mut addr = base;
        while addr < top {
            let w = rtt::walk(&self.platform, &root, addr, rtt::LEVEL_MAX);
            if w.entry.ripas != ripas {
                break;
            }
            addr = (rtt::align_down(addr, w.level) + rtt::entry_size(w.level)).min(top);
        }
        done(r, &[status::SUCCESS, addr, ripas as u64])
    }

    fn rsi_host_call(&mut self, r: &mut Rec, addr: u64) -> Step {
        let realm = self.realm_of(r);
        if addr % HOST_CALL_ALIGN != 0 || !realm.is_protected(addr) {
            return done(r, &[status::ERROR_INPUT]);
        }
        match self.translate(r.owner, addr) {
            Translation::Mapped { pa, .. } => {
                let mut raw = [0u8; 256];
                let _ = self.platform.read(pa, &mut raw);
                let imm = u16::from_le_bytes([raw[0], raw[1]]);
                let mut gprs = [0u64; 31];
                for (g, chunk) in gprs.iter_mut().zip(raw[8..].chunks(8)) {
                    *g = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                }
                r.pending = Pending::HostCall(addr);
                Step::Exit(Exit::HostCall { imm, gprs })
            }
            t => self.buffer_fault(r, t, addr),
        }
    }
}

/// Completes a call inside the RMM: `values` go to x0.., the realm
/// continues after the SMC.
pub(crate) fn done(r: &mut Rec, values: &[u64]) -> Step {
    r.regs.gprs[..values.len()].copy_from_slice(values);
    Step::Continue(Resume::Next)
}
