//! RTT management: `RMI_RTT_CREATE`, `RMI_RTT_DESTROY`, `RMI_RTT_FOLD`,
//! `RMI_RTT_READ_ENTRY`, `RMI_RTT_MAP_UNPROTECTED`, `RMI_RTT_UNMAP_UNPROTECTED`.

use ipc_schema::rmi::{ns_desc, rtt_state, Ripas, RmiReturn};

use crate::arch::Platform;
use crate::granule::GranuleState;
use crate::realm::Realm;
use crate::rmi::RmiOutput;
use crate::rtt::{self, Entry, Hipas};
use crate::services::ServiceTransport;
use crate::Rmm;

/// Highest PA + 1 without LPA2.
const PA_LIMIT_NO_LPA2: u64 = 1 << 48;

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `rd_*` checks, then the realm.
    fn realm_for(&self, rd: u64) -> Result<&Realm, RmiReturn> {
        self.check_granule(rd, GranuleState::Rd)?;
        self.realms.get(&rd).ok_or(RmiReturn::INPUT)
    }

    /// `level_bound`, `ipa_align`, `ipa_bound` for commands that name a
    /// child RTT at `level` (create, destroy, fold): the level is below the
    /// starting level, the IPA aligned to the parent's entry.
    fn check_child_level(realm: &Realm, ipa: u64, level: u64) -> Result<i8, RmiReturn> {
        let level = i8::try_from(level as i64).map_err(|_| RmiReturn::INPUT)?;
        if level <= realm.rtt.level || level > rtt::LEVEL_MAX {
            return Err(RmiReturn::INPUT);
        }
        if !rtt::is_level_aligned(ipa, level - 1) || !realm.ipa_in_range(ipa) {
            return Err(RmiReturn::INPUT);
        }
        Ok(level)
    }

    /// `RMI_RTT_CREATE`: splits the parent entry into a new table whose
    /// entries inherit the parent's state.
    pub fn rtt_create(
        &mut self,
        rd: u64,
        rtt_pa: u64,
        ipa: u64,
        level: u64,
    ) -> Result<(), RmiReturn> {
        let realm = self.realm_for(rd)?;
        let level = Self::check_child_level(realm, ipa, level)?;
        self.check_granule(rtt_pa, GranuleState::Delegated)?;
        if rtt_pa >= PA_LIMIT_NO_LPA2 {
            return Err(RmiReturn::INPUT);
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, level - 1);
        if w.level < level - 1 || w.entry.hipas == Hipas::Table {
            return Err(RmiReturn::rtt(w.level));
        }
        let parent = w.entry;
        let child_size = rtt::entry_size(level);
        for i in 0..rtt::ENTRIES {
            let mut child = parent;
            if matches!(parent.hipas, Hipas::Assigned | Hipas::AssignedNs) {
                child.addr = parent.addr + i * child_size;
            }
            rtt::write_entry(&mut self.platform, rtt_pa + i * 8, child);
        }
        rtt::write_entry(&mut self.platform, w.entry_pa, Entry::table(rtt_pa));
        self.granules.set(rtt_pa, GranuleState::Rtt);
        Ok(())
    }

    /// `RMI_RTT_DESTROY`: removes an RTT with nothing live in it.
    pub fn rtt_destroy(&mut self, rd: u64, ipa: u64, level: u64) -> RmiOutput {
        let (w, level, protected) = match self.parent_table(rd, ipa, level) {
            Ok(x) => x,
            Err(out) => return out,
        };
        let child = w.entry.addr;
        let live = (0..rtt::ENTRIES)
            .any(|i| rtt::read_entry(&self.platform, child + i * 8).keeps_rtt_live());
        if live {
            return RmiOutput::err_with(RmiReturn::rtt(level), [0, ipa, 0, 0]);
        }
        let parent = if protected {
            Entry::unassigned(Ripas::Destroyed)
        } else {
            Entry::unassigned_ns()
        };
        rtt::write_entry(&mut self.platform, w.entry_pa, parent);
        self.scrub(child);
        self.granules.set(child, GranuleState::Delegated);
        let top = w.skip_non_live(&self.platform, ipa);
        RmiOutput::ok([child, top, 0, 0])
    }

    /// Shared prefix of DESTROY and FOLD: checks through `rtte_state`,
    /// returning the walk to the parent TABLE entry.
    fn parent_table(
        &self,
        rd: u64,
        ipa: u64,
        level: u64,
    ) -> Result<(rtt::Walk, i8, bool), RmiOutput> {
        let realm = self.realm_for(rd)?;
        let level = Self::check_child_level(realm, ipa, level)?;
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, level - 1);
        if w.level < level - 1 || w.entry.hipas != Hipas::Table {
            let top = w.skip_non_live(&self.platform, ipa);
            return Err(RmiOutput::err_with(RmiReturn::rtt(w.level), [0, top, 0, 0]));
        }
        Ok((w, level, realm.is_protected(ipa)))
    }

    /// `RMI_RTT_FOLD`: replaces a homogeneous RTT by one parent entry.
    pub fn rtt_fold(&mut self, rd: u64, ipa: u64, level: u64) -> RmiOutput {
        let (w, level, _) = match self.parent_table(rd, ipa, level) {
            Ok(x) => x,
            Err(out) => return RmiOutput::from(out.ret),
        };
        let child = w.entry.addr;
        let Some(folded) = self.fold_entry(child, level) else {
            return RmiReturn::rtt(level).into();
        };
        rtt::write_entry(&mut self.platform, w.entry_pa, folded);
        self.scrub(child);
        self.granules.set(child, GranuleState::Delegated);
        RmiOutput::ok([child, 0, 0, 0])
    }

    /// The entry a homogeneous RTT at `level` folds into (A5.5.6).
    fn fold_entry(&self, table: u64, level: i8) -> Option<Entry> {
        let first = rtt::read_entry(&self.platform, table);
        let size = rtt::entry_size(level);
        let block_capable = level >= 2;
        match first.hipas {
            Hipas::Table => return None,
            Hipas::Assigned | Hipas::AssignedNs => {
                if !block_capable || first.addr % rtt::entry_size(level - 1) != 0 {
                    return None;
                }
            }
            Hipas::Unassigned | Hipas::UnassignedNs => {}
        }
        for i in 1..rtt::ENTRIES {
            let e = rtt::read_entry(&self.platform, table + i * 8);
            let same = match first.hipas {
                Hipas::Unassigned => e.hipas == Hipas::Unassigned && e.ripas == first.ripas,
                Hipas::UnassignedNs => e.hipas == Hipas::UnassignedNs,
                Hipas::Assigned => {
                    e.hipas == Hipas::Assigned
                        && e.ripas == first.ripas
                        && e.addr == first.addr + i * size
                }
                Hipas::AssignedNs => {
                    e.hipas == Hipas::AssignedNs
                        && e.memattr == first.memattr
                        && e.s2ap == first.s2ap
                        && e.addr == first.addr + i * size
                }
                Hipas::Table => false,
            };
            if !same {
                return None;
            }
        }
        Some(first)
    }

    /// `RMI_RTT_READ_ENTRY`.
    pub fn rtt_read_entry(&self, rd: u64, ipa: u64, level: u64) -> RmiOutput {
        let realm = match self.realm_for(rd) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let Ok(level) = i8::try_from(level as i64) else {
            return RmiReturn::INPUT.into();
        };
        if level < realm.rtt.level || level > rtt::LEVEL_MAX {
            return RmiReturn::INPUT.into();
        }
        if !rtt::is_level_aligned(ipa, level) || !realm.ipa_in_range(ipa) {
            return RmiReturn::INPUT.into();
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, level);
        let e = w.entry;
        let (state, desc) = match e.hipas {
            Hipas::Unassigned | Hipas::UnassignedNs => (rtt_state::UNASSIGNED, 0),
            Hipas::Assigned => (rtt_state::ASSIGNED, e.addr),
            Hipas::AssignedNs => (rtt_state::ASSIGNED, e.ns_desc()),
            Hipas::Table => (rtt_state::TABLE, e.addr),
        };
        let ripas = match e.hipas {
            Hipas::Unassigned | Hipas::Assigned if realm.is_protected(ipa) => e.ripas as u64,
            _ => Ripas::Empty as u64,
        };
        RmiOutput::ok([w.level as i64 as u64, state, desc, ripas])
    }

    /// `RttDescriptorIsValidForUnprotected`.
    fn ns_desc_valid(desc: u64) -> bool {
        desc & !ns_desc::HOST_MASK == 0
            && (desc >> ns_desc::MEMATTR_SHIFT) & ns_desc::MEMATTR_MASK != ns_desc::MEMATTR_RESERVED
    }

    /// `level_bound`, `ipa_align`, `ipa_bound` for MAP/UNMAP_UNPROTECTED.
    fn check_unprotected(realm: &Realm, level: u64) -> Result<i8, RmiReturn> {
        let level = match level {
            1..=3 => level as i8,
            _ => return Err(RmiReturn::INPUT),
        };
        if level < realm.rtt.level {
            return Err(RmiReturn::INPUT);
        }
        Ok(level)
    }

    /// `RMI_RTT_MAP_UNPROTECTED`: maps NS memory into the unprotected half.
    pub fn rtt_map_unprotected(
        &mut self,
        rd: u64,
        ipa: u64,
        level: u64,
        desc: u64,
    ) -> Result<(), RmiReturn> {
        if !Self::ns_desc_valid(desc) {
            return Err(RmiReturn::INPUT);
        }
        let realm = self.realm_for(rd)?;
        let level = Self::check_unprotected(realm, level)?;
        let addr = desc & ns_desc::ADDR_MASK;
        if !rtt::is_level_aligned(addr, level) || addr >= PA_LIMIT_NO_LPA2 {
            return Err(RmiReturn::INPUT);
        }
        if !rtt::is_level_aligned(ipa, level) || !realm.ipa_in_range(ipa) || realm.is_protected(ipa)
        {
            return Err(RmiReturn::INPUT);
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, level);
        if w.level < level || w.entry.hipas != Hipas::UnassignedNs {
            return Err(RmiReturn::rtt(w.level));
        }
        rtt::write_entry(&mut self.platform, w.entry_pa, Entry::assigned_ns(desc));
        Ok(())
    }

    /// `RMI_RTT_UNMAP_UNPROTECTED`.
    pub fn rtt_unmap_unprotected(&mut self, rd: u64, ipa: u64, level: u64) -> RmiOutput {
        let realm = match self.realm_for(rd) {
            Ok(r) => r,
            Err(e) => return e.into(),
        };
        let level = match Self::check_unprotected(realm, level) {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        if !rtt::is_level_aligned(ipa, level) || !realm.ipa_in_range(ipa) || realm.is_protected(ipa)
        {
            return RmiReturn::INPUT.into();
        }
        let w = rtt::walk(&self.platform, &realm.rtt, ipa, level);
        if w.level < level || w.entry.hipas != Hipas::AssignedNs {
            let top = w.skip_non_live(&self.platform, ipa);
            return RmiOutput::err_with(RmiReturn::rtt(w.level), [top, 0, 0, 0]);
        }
        rtt::write_entry(&mut self.platform, w.entry_pa, Entry::unassigned_ns());
        let top = w.skip_non_live(&self.platform, ipa);
        RmiOutput::ok([top, 0, 0, 0])
    }
}
