//! `RMI_DATA_CREATE`, `RMI_DATA_CREATE_UNKNOWN`, `RMI_DATA_DESTROY`.

use ipc_schema::rmi::{data_flags, Ripas, RmiReturn};
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};
use ipc_schema::service::{Lease, LeaseMem};

use crate::arch::{Pas, Platform};
use crate::granule::GranuleState;
use crate::realm::{Realm, RealmState};
use crate::rmi::RmiOutput;
use crate::rtt::{self, Entry, Hipas};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm, GRANULE};

/// Highest PA + 1 a realm without LPA2 can map.
const PA_LIMIT_NO_LPA2: u64 = 1 << 48;

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `data_*` and `rd_*` checks shared by both DATA_CREATE commands.
    fn check_data_and_rd(&self, rd: u64, data: u64) -> Result<(), RmiReturn> {
        self.check_granule(data, GranuleState::Delegated)?;
        if data >= PA_LIMIT_NO_LPA2 {
            return Err(RmiReturn::INPUT);
        }
        self.check_granule(rd, GranuleState::Rd)
    }

    fn check_protected_page(realm: &Realm, ipa: u64) -> Result<(), RmiReturn> {
        if !is_granule_aligned(ipa) || !realm.is_protected(ipa) {
            return Err(RmiReturn::INPUT);
        }
        Ok(())
    }

    /// Walks to the level-3 entry of `ipa`, which must be UNASSIGNED.
    fn unassigned_page(&self, realm: &Realm, ipa: u64) -> Result<rtt::Walk, RmiReturn> {
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, rtt::LEVEL_MAX);
        if w.level < rtt::LEVEL_MAX || w.entry.hipas != Hipas::Unassigned {
            return Err(RmiReturn::rtt(w.level));
        }
        Ok(w)
    }

    /// `RMI_DATA_CREATE`: copies a host page into a new DATA granule and
    /// measures it into the RIM.
    pub fn data_create(
        &mut self,
        rd: u64,
        data: u64,
        ipa: u64,
        src: u64,
        flags: u64,
    ) -> Result<(), RmiReturn> {
        if !is_granule_aligned(src)
            || !self.granules.is_delegable(src)
            || self.platform.pas(src) != Some(Pas::NonSecure)
        {
            return Err(RmiReturn::INPUT);
        }
        self.check_data_and_rd(rd, data)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        Self::check_protected_page(realm, ipa)?;
        if flags & !data_flags::MEASURE_CONTENT != 0 {
            return Err(RmiReturn::INPUT);
        }
        if realm.state != RealmState::New {
            return Err(RmiReturn::REALM);
        }
        let w = self.unassigned_page(realm, ipa)?;

        // The host's page is read once. Measured: the measurement service
        // copies it into the (still unreachable) DATA granule and hashes the
        // bytes it wrote in the same pass, so what is measured is exactly
        // what the realm will see. Unmeasured: the core copies it.
        let measured = flags & data_flags::MEASURE_CONTENT != 0;
        let req = MeasurementRequest::Data {
            realm: Realm::handle(rd),
            ipa,
            flags,
            content: measured.then_some(Lease(0)),
            copy_to: measured.then_some(Lease(1)),
        };
        let answer = if measured {
            let (from, to) = self
                .platform
                .lend_pair(src, data, GRANULE)
                .map_err(|_| RmiReturn::INPUT)?;
            let mut leases = [LeaseMem::Read(from), LeaseMem::Write(to)];
            self.buffers
                .measurement(&mut self.services, &req, &mut leases)
        } else {
            self.platform
                .copy_from_ns(data, src, GRANULE)
                .map_err(|_| RmiReturn::INPUT)?;
            self.buffers.measurement(&mut self.services, &req, &mut [])
        };
        if !matches!(answer, Ok(MeasurementResponse::Ok)) {
            self.scrub(data);
            return Err(RmiReturn::INPUT);
        }
        rtt::write_entry(
            &mut self.platform,
            w.entry_pa,
            Entry::assigned(data, Ripas::Ram),
        );
        self.granules.set(data, GranuleState::Data);
        Ok(())
    }

    /// `RMI_DATA_CREATE_UNKNOWN`: a zeroed DATA granule, unmeasured, RIPAS
    /// unchanged.
    pub fn data_create_unknown(&mut self, rd: u64, data: u64, ipa: u64) -> Result<(), RmiReturn> {
        self.check_data_and_rd(rd, data)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        Self::check_protected_page(realm, ipa)?;
        let w = self.unassigned_page(realm, ipa)?;
        // Whatever the granule held (host data, or nothing the realm
        // should rely on) is replaced by zeroes.
        self.scrub(data);
        rtt::write_entry(
            &mut self.platform,
            w.entry_pa,
            Entry::assigned(data, w.entry.ripas),
        );
        self.granules.set(data, GranuleState::Data);
        Ok(())
    }

    /// `RMI_DATA_DESTROY`: takes a page away; RAM becomes DESTROYED so the
    /// realm notices instead of silently reading zeroes.
    pub fn data_destroy(&mut self, rd: u64, ipa: u64) -> RmiOutput {
        if let Err(e) = self.check_granule(rd, GranuleState::Rd) {
            return e.into();
        }
        let Some(realm) = self.realms.get(&rd) else {
            return RmiReturn::INPUT.into();
        };
        if let Err(e) = Self::check_protected_page(realm, ipa) {
            return e.into();
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, rtt::LEVEL_MAX);
        if w.level < rtt::LEVEL_MAX || w.entry.hipas != Hipas::Assigned {
            let top = w.skip_non_live(&self.platform, ipa);
            return RmiOutput::err_with(RmiReturn::rtt(w.level), [0, top, 0, 0]);
        }
        let data = w.entry.addr;
        let ripas = if w.entry.ripas == Ripas::Ram {
            Ripas::Destroyed
        } else {
            w.entry.ripas
        };
        rtt::write_entry(&mut self.platform, w.entry_pa, Entry::unassigned(ripas));
        self.scrub(data);
        self.granules.set(data, GranuleState::Delegated);
        let top = w.skip_non_live(&self.platform, ipa);
        RmiOutput::ok([data, top, 0, 0])
    }
}
