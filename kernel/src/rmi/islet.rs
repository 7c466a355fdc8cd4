//! Samsung Islet's realm metadata, kept compatible: `RMI_ISLET_REALM_SET_METADATA`
//! and the activation check it implies.
//!
//! The core moves bytes and granule states; checking the vendor's
//! signature and comparing measurements is the keys service's job.

use ipc_schema::rmi::RmiReturn;
use ipc_schema::service::keys::{KeysRequest, KeysResponse, METADATA_LEN};
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};
use ipc_schema::service::{Lease, LeaseMem};

use crate::arch::{Pas, Platform};
use crate::granule::GranuleState;
use crate::realm::{Realm, RealmState};
use crate::services::ServiceTransport;
use crate::{Rmm, GRANULE, GRANULE_U64};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RMI_ISLET_REALM_SET_METADATA`: `rd`, a delegated `granule` to keep
    /// the block in, and the NS PA of the 432-byte block. Once per realm,
    /// only while it is NEW; the block must carry a valid vendor signature.
    pub fn islet_set_metadata(&mut self, rd: u64, granule: u64, src: u64) -> Result<(), RmiReturn> {
        self.check_granule(rd, GranuleState::Rd)?;
        let realm = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?;
        if realm.state != RealmState::New {
            return Err(RmiReturn::REALM);
        }
        if realm.metadata.is_some() {
            return Err(RmiReturn::INPUT);
        }
        self.check_granule(granule, GranuleState::Delegated)?;
        // The block must lie inside one NS granule.
        let end = src
            .checked_add(METADATA_LEN as u64)
            .ok_or(RmiReturn::INPUT)?;
        if (src & !(GRANULE_U64 - 1)) != ((end - 1) & !(GRANULE_U64 - 1))
            || self.platform.pas(src) != Some(Pas::NonSecure)
        {
            return Err(RmiReturn::INPUT);
        }
        // Fetched once, into RMM-owned memory, then lent to the keys
        // service from there.
        self.platform
            .copy_from_ns(granule, src, METADATA_LEN)
            .map_err(|_| RmiReturn::INPUT)?;
        let block = self
            .platform
            .borrow(granule, METADATA_LEN)
            .map_err(|_| RmiReturn::INPUT)?;
        let req = KeysRequest::SetMetadata {
            realm: Realm::handle(rd),
            block: Lease(0),
        };
        let answer = self
            .buffers
            .keys(&mut self.services, &req, &mut [LeaseMem::Read(block)]);
        if !matches!(answer, Ok(KeysResponse::Ok)) {
            self.scrub(granule);
            return Err(RmiReturn::INPUT);
        }
        self.granules.set(granule, GranuleState::Metadata);
        if let Some(realm) = self.realms.get_mut(&rd) {
            realm.metadata = Some(granule);
        }
        Ok(())
    }

    /// The realm's RIM, zero-padded, from the measurement service.
    pub(crate) fn rim_of(&mut self, rd: u64) -> Option<[u8; 64]> {
        let req = MeasurementRequest::Read {
            realm: Realm::handle(rd),
            index: 0,
        };
        match self.measure(&req) {
            Ok(MeasurementResponse::Value(v)) => Some(v.0),
            _ => None,
        }
    }

    /// Activation of a realm with metadata: its RIM and hash algorithm must
    /// be the ones the vendor signed.
    pub(crate) fn check_activation(&mut self, rd: u64) -> Result<(), RmiReturn> {
        let algo = self.realms.get(&rd).ok_or(RmiReturn::INPUT)?.hash_algo;
        let rim = self.rim_of(rd).ok_or(RmiReturn::REALM)?;
        let req = KeysRequest::CheckActivation {
            realm: Realm::handle(rd),
            algo,
            rim: ipc_schema::wire::Bytes(rim),
        };
        match self.buffers.keys(&mut self.services, &req, &mut []) {
            Ok(KeysResponse::Ok) => Ok(()),
            _ => Err(RmiReturn::REALM),
        }
    }

    /// Tells the keys service a realm is gone.
    pub(crate) fn forget_metadata(&mut self, rd: u64) {
        let req = KeysRequest::Destroy {
            realm: Realm::handle(rd),
        };
        let _ = self.buffers.keys(&mut self.services, &req, &mut []);
    }
}

const _: () = assert!(METADATA_LEN <= GRANULE);
