//! `RMI_RTT_INIT_RIPAS` and `RMI_RTT_SET_RIPAS`.

use ipc_schema::rmi::{Ripas, RmiReturn};
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};

use crate::arch::Platform;
use crate::granule::GranuleState;
use crate::realm::{Realm, RealmState};
use crate::rmi::RmiOutput;
use crate::rtt::{self, Hipas};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm, GRANULE_U64};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_RTT_INIT_RIPAS`: marks unassigned entries RAM before activation,
    /// measuring each entry processed (so the RIM depends on how deep the
    /// host built the RTTs, as RMM 1.0 specifies).
    pub fn rtt_init_ripas(&mut self, rd: u64, base: u64, top: u64) -> RmiOutput {
        if let Err(e) = self.check_granule(rd, GranuleState::Rd) {
            return e.into();
        }
        let Some(realm) = self.realms.get(&rd) else {
            return RmiReturn::INPUT.into();
        };
        if top <= base {
            return RmiReturn::INPUT.into();
        }
        // top_bound: `top - 4 KB` as an integer, so a `top` below 4 KB is
        // protected here and fails top_gran_align later, never wraps.
        if !realm.is_protected(top.saturating_sub(GRANULE_U64)) {
            return RmiReturn::INPUT.into();
        }
        if realm.state != RealmState::New {
            return RmiReturn::REALM.into();
        }
        let w = rtt::walk(&self.platform, &realm.rtt, base, rtt::LEVEL_MAX);
        if !rtt::is_level_aligned(base, w.level) || w.entry.hipas != Hipas::Unassigned {
            return RmiReturn::rtt(w.level).into();
        }
        if !is_granule_aligned(top) {
            return RmiReturn::INPUT.into();
        }
        let size = rtt::entry_size(w.level);
        let mut addr = base;
        let mut changed = alloc::vec::Vec::new();
        while addr < w.table_top && addr + size <= top {
            let pa = w.entry_pa_for(addr);
            let e = rtt::read_entry(&self.platform, pa);
            if e.hipas != Hipas::Unassigned {
                break;
            }
            changed.push((addr, pa, e));
            addr += size;
        }
        if addr == base {
            return RmiReturn::rtt(w.level).into();
        }
        // Measure first: if the service fails nothing has changed.
        let handle = Realm::handle(rd);
        for (i, &(entry_base, _, _)) in changed.iter().enumerate() {
            let req = MeasurementRequest::Ripas {
                realm: handle,
                base: entry_base,
                top: entry_base + size,
            };
            if !matches!(self.measure(&req), Ok(MeasurementResponse::Ok)) {
                // Entries already measured stay consistent with the RTT:
                // apply them, report progress up to here.
                return if i == 0 {
                    RmiReturn::INPUT.into()
                } else {
                    self.apply_init(&changed[..i], size)
                };
            }
        }
        self.apply_init(&changed, size)
    }

    fn apply_init(&mut self, entries: &[(u64, u64, rtt::Entry)], size: u64) -> RmiOutput {
        for &(_, pa, mut e) in entries {
            e.ripas = Ripas::Ram;
            rtt::write_entry(&mut self.platform, pa, e);
        }
        let top = entries.last().map_or(0, |&(a, _, _)| a + size);
        RmiOutput::ok([top, 0, 0, 0])
    }

    /// `RMI_RTT_SET_RIPAS`: applies part of a RIPAS change the realm asked
    /// for with `RSI_IPA_STATE_SET`.
    pub fn rtt_set_ripas(&mut self, rd: u64, rec: u64, base: u64, top: u64) -> RmiOutput {
        if let Err(e) = self.check_granule(rd, GranuleState::Rd) {
            return e.into();
        }
        if let Err(e) = self.check_granule(rec, GranuleState::Rec) {
            return e.into();
        }
        let Some(r) = self.recs.get(&rec) else {
            return RmiReturn::INPUT.into();
        };
        if r.running || r.owner != rd {
            return RmiReturn::REC.into();
        }
        if top <= base {
            return RmiReturn::INPUT.into();
        }
        let req = r.ripas;
        if base != req.addr {
            return RmiReturn::INPUT.into();
        }
        if top > req.top {
            return RmiReturn::INPUT.into();
        }
        let Some(realm) = self.realms.get(&rd) else {
            return RmiReturn::INPUT.into();
        };
        let Some(value) = Ripas::from_u8(req.value) else {
            return RmiReturn::INPUT.into();
        };
        let w = rtt::walk(&self.platform, &realm.rtt, base, rtt::LEVEL_MAX);
        if !rtt::is_level_aligned(base, w.level) && w.entry.ripas != value {
            return RmiReturn::rtt(w.level).into();
        }
        if !is_granule_aligned(top) {
            return RmiReturn::INPUT.into();
        }
        let size = rtt::entry_size(w.level);
        let mut addr = base;
        while addr < w.table_top && addr < top {
            let pa = w.entry_pa_for(addr);
            let mut e = rtt::read_entry(&self.platform, pa);
            let entry_base = rtt::align_down(addr, w.level);
            let entry_top = entry_base + size;
            if e.hipas == Hipas::Table {
                break;
            }
            if e.ripas != value {
                let partial = entry_base != addr || entry_top > top;
                let blocked = e.ripas == Ripas::Destroyed && !req.change_destroyed;
                if partial || blocked {
                    break;
                }
                e.ripas = value;
                rtt::write_entry(&mut self.platform, pa, e);
            }
            addr = entry_top.min(top);
        }
        if addr == base {
            return RmiReturn::rtt(w.level).into();
        }
        if let Some(r) = self.recs.get_mut(&rec) {
            r.ripas.addr = addr;
        }
        RmiOutput::ok([addr, 0, 0, 0])
    }
}
