//! Samsung Islet's realm calls: `RSI_ISLET_REALM_METADATA` and
//! `RSI_ISLET_REALM_SEALING_KEY`, answered by the keys service.

use ipc_schema::rsi::status;
use ipc_schema::service::keys::{KeysError, KeysRequest, KeysResponse, METADATA_LEN};
use ipc_schema::service::{Lease, LeaseMem};
use ipc_schema::wire::Bytes;

use crate::arch::Platform;
use crate::realm::Realm;
use crate::rec::Rec;
use crate::rsi::{done, Step, Translation};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// `RSI_ISLET_REALM_METADATA`: x1 = IPA of a granule the block is
    /// copied to.
    pub(crate) fn rsi_islet_metadata(&mut self, r: &mut Rec, addr: u64) -> Step {
        if !is_granule_aligned(addr) || !self.realm_of(r).is_protected(addr) {
            return done(r, &[status::ERROR_INPUT]);
        }
        if self.realm_of(r).metadata.is_none() {
            return done(r, &[status::ERROR_STATE]);
        }
        let pa = match self.translate(r.owner, addr) {
            Translation::Mapped { pa, .. } => pa,
            t => return self.buffer_fault(r, t, addr),
        };
        let req = KeysRequest::GetMetadata {
            realm: Realm::handle(r.owner),
            out: Lease(0),
        };
        let Ok(out) = self.platform.lend_mut(pa, METADATA_LEN) else {
            return done(r, &[status::ERROR_UNKNOWN]);
        };
        match self
            .buffers
            .keys(&mut self.services, &req, &mut [LeaseMem::Write(out)])
        {
            Ok(KeysResponse::Ok) => done(r, &[status::SUCCESS]),
            _ => done(r, &[status::ERROR_UNKNOWN]),
        }
    }

    /// `RSI_ISLET_REALM_SEALING_KEY`: x1 flags, x2 svn; the 32-byte key in
    /// x1..x4.
    pub(crate) fn rsi_islet_sealing_key(&mut self, r: &mut Rec, flags: u64, svn: u64) -> Step {
        let Some(rim) = self.rim_of(r.owner) else {
            return done(r, &[status::ERROR_UNKNOWN]);
        };
        let req = KeysRequest::SealingKey {
            realm: Realm::handle(r.owner),
            flags,
            svn,
            algo: self.realm_of(r).hash_algo,
            rim: Bytes(rim),
        };
        match self.buffers.keys(&mut self.services, &req, &mut []) {
            Ok(KeysResponse::SealingKey(key)) => {
                let mut out = [status::SUCCESS; 5];
                for (o, chunk) in out[1..].iter_mut().zip(key.0.chunks(8)) {
                    *o = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                }
                done(r, &out)
            }
            Ok(KeysResponse::Error(KeysError::UndefinedFlags | KeysError::SvnTooHigh)) => {
                done(r, &[status::ERROR_INPUT])
            }
            Ok(KeysResponse::Error(KeysError::NoMetadata)) => done(r, &[status::ERROR_STATE]),
            _ => done(r, &[status::ERROR_UNKNOWN]),
        }
    }
}
