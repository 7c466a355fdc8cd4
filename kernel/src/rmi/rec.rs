//! `RMI_REC_CREATE`, `RMI_REC_DESTROY`, `RMI_REC_AUX_COUNT`.

use alloc::vec::Vec;

use ipc_schema::rmi::{rec_flags, RmiRecParams, RmiReturn, MAX_REC_AUX_GRANULES, REC_RUN_NUM_LRS};
use ipc_schema::service::measurement::{
    MeasuredRecParams, MeasurementRequest, MeasurementResponse,
};
use zerocopy::{FromZeros, IntoBytes};

use crate::arch::{Platform, Resume, VcpuRegs};
use crate::granule::GranuleState;
use crate::realm::{Realm, RealmState};
use crate::rec::{rec_index_rmi, AttestState, Pending, Rec, RipasRequest};
use crate::rmi::RmiOutput;
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_REC_AUX_COUNT`.
    pub fn rec_aux_count(&self, rd: u64) -> RmiOutput {
        match self.check_granule(rd, GranuleState::Rd) {
            Ok(()) => RmiOutput::ok([u64::from(self.config.rec_aux_count), 0, 0, 0]),
            Err(e) => e.into(),
        }
    }

    /// `RMI_REC_CREATE`.
    pub fn rec_create(&mut self, rd: u64, rec: u64, params_ptr: u64) -> Result<(), RmiReturn> {
        let mut params = RmiRecParams::new_zeroed();
        self.read_host_page(params_ptr, params.as_mut_bytes())?;
        let p = params;
        self.check_granule(rec, GranuleState::Delegated)?;
        self.check_granule(rd, GranuleState::Rd)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        if realm.state != RealmState::New {
            return Err(RmiReturn::REALM);
        }
        if realm.num_recs >= (1u64 << self.config.max_recs_order) - 1 {
            return Err(RmiReturn::REALM);
        }
        let index = rec_index_rmi(p.mpidr).ok_or(RmiReturn::INPUT)?;
        if index != realm.rec_index {
            return Err(RmiReturn::INPUT);
        }
        let num_aux = usize::from(self.config.rec_aux_count);
        if p.num_aux != num_aux as u64 {
            return Err(RmiReturn::INPUT);
        }
        let aux = &p.aux[..num_aux.min(MAX_REC_AUX_GRANULES)];
        if aux.iter().any(|&a| !is_granule_aligned(a)) {
            return Err(RmiReturn::INPUT);
        }
        for (i, a) in aux.iter().enumerate() {
            if *a == rec || aux[..i].contains(a) {
                return Err(RmiReturn::INPUT);
            }
        }
        if aux
            .iter()
            .any(|&a| !self.granule_is(a, GranuleState::Delegated))
        {
            return Err(RmiReturn::INPUT);
        }

        let runnable = p.flags & rec_flags::RUNNABLE != 0;
        if runnable {
            let req = MeasurementRequest::Rec {
                realm: Realm::handle(rd),
                params: MeasuredRecParams {
                    flags: p.flags,
                    pc: p.pc,
                    gprs: p.gprs,
                },
            };
            if !matches!(self.measure(&req), Ok(MeasurementResponse::Ok)) {
                return Err(RmiReturn::INPUT);
            }
        }

        let mut gprs = [0; 31];
        gprs[..8].copy_from_slice(&p.gprs);
        let r = Rec {
            owner: rd,
            mpidr: p.mpidr,
            index,
            runnable,
            running: false,
            regs: VcpuRegs { gprs, pc: p.pc },
            aux: aux.to_vec(),
            attest: AttestState::Idle,
            pending: Pending::Resume(Resume::Next),
            ripas: RipasRequest::default(),
            gic_lrs: [0; REC_RUN_NUM_LRS],
            gic_hcr: 0,
        };
        for &a in aux {
            self.granules.set(a, GranuleState::RecAux);
        }
        self.granules.set(rec, GranuleState::Rec);
        self.recs.insert(rec, r);
        let realm = self.realms.get_mut(&rd).ok_or(RmiReturn::INPUT)?;
        realm.rec_index += 1;
        realm.num_recs += 1;
        let slot = index as usize;
        if realm.recs.len() <= slot {
            realm.recs.resize(slot + 1, None);
        }
        realm.recs[slot] = Some(rec);
        Ok(())
    }

    /// `RMI_REC_DESTROY`.
    pub fn rec_destroy(&mut self, rec: u64) -> Result<(), RmiReturn> {
        self.check_granule(rec, GranuleState::Rec)?;
        let r = self.recs.get(&rec).ok_or(RmiReturn::INPUT)?;
        if r.running {
            return Err(RmiReturn::REC);
        }
        let r = self.recs.remove(&rec).ok_or(RmiReturn::INPUT)?;
        let granules: Vec<u64> = core::iter::once(rec).chain(r.aux.iter().copied()).collect();
        for g in granules {
            self.scrub(g);
            self.granules.set(g, GranuleState::Delegated);
        }
        if let Some(realm) = self.realms.get_mut(&r.owner) {
            realm.num_recs -= 1;
            if let Some(slot) = realm.recs.get_mut(r.index as usize) {
                *slot = None;
            }
        }
        self.attest_forget(rec);
        self.platform.vcpu_destroyed(rec);
        Ok(())
    }
}
