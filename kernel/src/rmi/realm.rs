//! `RMI_REALM_CREATE`, `RMI_REALM_ACTIVATE`, `RMI_REALM_DESTROY`.

use alloc::vec::Vec;

use ipc_schema::rmi::{realm_flags, Ripas, RmiRealmParams, RmiReturn};
use ipc_schema::service::measurement::{
    MeasuredRealmParams, MeasurementRequest, MeasurementResponse,
};
use ipc_schema::service::HashAlgo;
use zerocopy::{FromZeros, IntoBytes};

use crate::arch::Platform;
use crate::granule::GranuleState;
use crate::realm::{Realm, RealmState};
use crate::rtt::{self, Entry, RttRoot};
use crate::services::ServiceTransport;
use crate::{Rmm, GRANULE_U64};

/// Smallest IPA width a realm may have.
const MIN_IPA_WIDTH: u64 = 32;

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_REALM_CREATE`.
    pub fn realm_create(&mut self, rd: u64, params_ptr: u64) -> Result<(), RmiReturn> {
        let mut params = RmiRealmParams::new_zeroed();
        self.read_host_page(params_ptr, params.as_mut_bytes())?;
        let p = params;

        // params_valid: encodings.
        let hash_algo = HashAlgo::from_rmi(p.hash_algo).ok_or(RmiReturn::INPUT)?;
        if p.flags & !realm_flags::MASK != 0 || p.num_bps == 0 || p.num_wps == 0 {
            return Err(RmiReturn::INPUT);
        }
        // params_supp: against RMI_FEATURES.
        let c = self.config;
        if p.flags & (realm_flags::LPA2 | realm_flags::SVE | realm_flags::PMU) != 0
            || p.s2sz < MIN_IPA_WIDTH
            || p.s2sz > u64::from(c.max_ipa_width)
            || p.num_bps > u64::from(c.num_bps)
            || p.num_wps > u64::from(c.num_wps)
        {
            return Err(RmiReturn::INPUT);
        }
        let num_start = u64::from(p.rtt_num_start);
        let rtt_end = p
            .rtt_base
            .wrapping_add(num_start.saturating_sub(1) * GRANULE_U64);
        // alias
        if num_start > 0 && rd >= p.rtt_base && rd <= rtt_end {
            return Err(RmiReturn::INPUT);
        }
        // rd_align, rd_bound, rd_state
        self.check_granule(rd, GranuleState::Delegated)?;
        // rtt_align
        if num_start == 0 || p.rtt_base % (num_start * GRANULE_U64) != 0 {
            return Err(RmiReturn::INPUT);
        }
        // rtt_num_level
        if rtt::start_config(p.s2sz, p.rtt_level_start) != Some(p.rtt_num_start) {
            return Err(RmiReturn::INPUT);
        }
        // rtt_state
        let starting: Vec<u64> = (0..num_start)
            .map(|i| p.rtt_base + i * GRANULE_U64)
            .collect();
        if starting
            .iter()
            .any(|&g| !self.granule_is(g, GranuleState::Delegated))
        {
            return Err(RmiReturn::INPUT);
        }
        // vmid_valid
        if (!c.vmid16 && p.vmid > 0xff) || self.vmids.contains(&p.vmid) {
            return Err(RmiReturn::INPUT);
        }

        let measured = MeasuredRealmParams {
            flags: p.flags,
            s2sz: p.s2sz,
            sve_vl: p.sve_vl,
            num_bps: p.num_bps,
            num_wps: p.num_wps,
            pmu_num_ctrs: p.pmu_num_ctrs,
            hash_algo: p.hash_algo,
        };
        let req = MeasurementRequest::RealmCreate {
            realm: Realm::handle(rd),
            algo: hash_algo,
            params: measured,
        };
        if !matches!(self.measure(&req), Ok(MeasurementResponse::Ok)) {
            // A measurement service that cannot start this realm's RIM
            // means the realm cannot be attested: refuse it, change nothing.
            return Err(RmiReturn::INPUT);
        }

        let realm = Realm {
            state: RealmState::New,
            ipa_width: p.s2sz as u8,
            lpa2: false,
            hash_algo,
            rtt: RttRoot {
                base: p.rtt_base,
                level: p.rtt_level_start as i8,
                num: p.rtt_num_start,
                ipa_width: p.s2sz as u8,
            },
            vmid: p.vmid,
            rpv: p.rpv,
            rec_index: 0,
            recs: Vec::new(),
            num_recs: 0,
            metadata: None,
        };
        // Starting RTTs: every entry written, protected ones UNASSIGNED and
        // EMPTY, unprotected ones (and those past the IPA space)
        // UNASSIGNED_NS.
        let size = rtt::entry_size(realm.rtt.level);
        let unprotected = 1u64 << (realm.ipa_width - 1);
        for i in 0..realm.rtt.entries() {
            let entry = if i * size < unprotected {
                Entry::unassigned(Ripas::Empty)
            } else {
                Entry::unassigned_ns()
            };
            rtt::write_entry(&mut self.platform, p.rtt_base + i * 8, entry);
        }
        for g in starting {
            self.granules.set(g, GranuleState::Rtt);
        }
        self.granules.set(rd, GranuleState::Rd);
        self.vmids.insert(p.vmid);
        self.realms.insert(rd, realm);
        Ok(())
    }

    /// `RMI_REALM_ACTIVATE`: freezes the RIM and lets RECs run.
    pub fn realm_activate(&mut self, rd: u64) -> Result<(), RmiReturn> {
        self.check_granule(rd, GranuleState::Rd)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        if realm.state != RealmState::New {
            return Err(RmiReturn::REALM);
        }
        if realm.metadata.is_some() {
            // Islet: a realm with metadata runs only if it is the realm the
            // vendor signed for (same RIM, same hash algorithm).
            self.check_activation(rd)?;
        }
        if let Some(realm) = self.realms.get_mut(&rd) {
            realm.state = RealmState::Active;
        }
        Ok(())
    }

    /// `RMI_REALM_DESTROY`: only once nothing of the realm is left.
    pub fn realm_destroy(&mut self, rd: u64) -> Result<(), RmiReturn> {
        self.check_granule(rd, GranuleState::Rd)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        if realm.num_recs != 0 || self.starting_rtt_live(&realm.rtt) {
            return Err(RmiReturn::REALM);
        }
        let root = realm.rtt;
        let vmid = realm.vmid;
        if let Some(md) = realm.metadata {
            self.forget_metadata(rd);
            self.scrub(md);
            self.granules.set(md, GranuleState::Delegated);
        }
        // The core's state is authoritative: a measurement service that has
        // already forgotten the realm must not keep the host from getting
        // its memory back.
        let _ = self.measure(&MeasurementRequest::Destroy {
            realm: Realm::handle(rd),
        });
        for i in 0..u64::from(root.num) {
            let g = root.base + i * GRANULE_U64;
            self.scrub(g);
            self.granules.set(g, GranuleState::Delegated);
        }
        self.scrub(rd);
        self.granules.set(rd, GranuleState::Delegated);
        self.vmids.remove(&vmid);
        self.realms.remove(&rd);
        Ok(())
    }

    /// `RealmIsLive`'s RTT half: a starting RTT with an ASSIGNED or TABLE
    /// entry.
    fn starting_rtt_live(&self, root: &RttRoot) -> bool {
        (0..root.entries())
            .any(|i| rtt::read_entry(&self.platform, root.base + i * 8).keeps_rtt_live())
    }
}
