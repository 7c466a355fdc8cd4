//! `RSI_ATTESTATION_TOKEN_INIT` and `RSI_ATTESTATION_TOKEN_CONTINUE`.
//!
//! The core keeps the per-REC state machine, validates the realm's
//! arguments and gathers what the token says about the realm (its
//! measurements from the measurement service, its RPV and hash algorithm);
//! building and signing the token is the attestation service's job. Each
//! CONTINUE does one bounded step of that work or copies the next chunk
//! into the realm's buffer, so a long signature never holds the CPU for
//! the whole token (the realm sees `RSI_INCOMPLETE` and calls again).

use ipc_schema::rsi::{status, CHALLENGE_BYTES};
use ipc_schema::service::attestation::{
    AttestationError, AttestationRequest, AttestationResponse, RealmClaimsInput, RecHandle,
};
use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};
use ipc_schema::service::{Lease, LeaseMem};
use ipc_schema::wire::Bytes;

use crate::arch::Platform;
use crate::realm::Realm;
use crate::rec::{AttestState, Rec};
use crate::rsi::{done, Step, Translation};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm, GRANULE, GRANULE_U64};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// The realm's five measurement slots, from the measurement service.
    fn measurements(&mut self, rd: u64) -> Option<[Bytes<64>; 5]> {
        let mut out: [Bytes<64>; 5] = core::array::from_fn(|_| Bytes::zeroed());
        for (i, slot) in out.iter_mut().enumerate() {
            let req = MeasurementRequest::Read {
                realm: Realm::handle(rd),
                index: i as u8,
            };
            match self.measure(&req) {
                Ok(MeasurementResponse::Value(v)) => *slot = v,
                _ => return None,
            }
        }
        Some(out)
    }

    pub(crate) fn rsi_attest_init(&mut self, r: &mut Rec, rec: u64) -> Step {
        let mut challenge = [0u8; CHALLENGE_BYTES];
        for (chunk, reg) in challenge.chunks_mut(8).zip(&r.regs.gprs[1..9]) {
            chunk.copy_from_slice(&reg.to_le_bytes());
        }
        // INIT abandons any token in progress, whatever happens next.
        r.attest = AttestState::Idle;
        let Some([rim, rem1, rem2, rem3, rem4]) = self.measurements(r.owner) else {
            return done(r, &[status::ERROR_UNKNOWN]);
        };
        let realm = self.realm_of(r);
        let claims = RealmClaimsInput {
            hash_algo: realm.hash_algo,
            rpv: Bytes(realm.rpv),
            rim,
            rems: [rem1, rem2, rem3, rem4],
        };
        let req = AttestationRequest::Init {
            rec: RecHandle(rec),
            realm: Realm::handle(r.owner),
            challenge: Bytes(challenge),
            claims,
        };
        match self.buffers.attestation(&mut self.services, &req, &mut []) {
            Ok(AttestationResponse::Initialised { token_len }) => {
                r.attest = AttestState::InProgress {
                    challenge,
                    offset: 0,
                };
                done(r, &[status::SUCCESS, u64::from(token_len)])
            }
            _ => done(r, &[status::ERROR_UNKNOWN]),
        }
    }

    pub(crate) fn rsi_attest_continue(&mut self, r: &mut Rec, rec: u64) -> Step {
        let x = r.regs.gprs;
        let (addr, offset, size) = (x[1], x[2], x[3]);
        if !is_granule_aligned(addr) || !self.realm_of(r).is_protected(addr) {
            return done(r, &[status::ERROR_INPUT]);
        }
        if offset >= GRANULE_U64 {
            return done(r, &[status::ERROR_INPUT]);
        }
        match offset.checked_add(size) {
            Some(end) if end <= GRANULE_U64 => {}
            _ => return done(r, &[status::ERROR_INPUT]),
        }
        let AttestState::InProgress { .. } = r.attest else {
            return done(r, &[status::ERROR_STATE]);
        };
        let pa = match self.translate(r.owner, addr) {
            Translation::Mapped { pa, .. } => pa,
            t => return self.buffer_fault(r, t, addr),
        };
        let req = AttestationRequest::Continue {
            rec: RecHandle(rec),
            buffer: Lease(0),
            offset: offset as u16,
            size: size as u16,
        };
        let Ok(buffer) = self.platform.lend_mut(pa, GRANULE) else {
            return done(r, &[status::ERROR_UNKNOWN]);
        };
        let answer =
            self.buffers
                .attestation(&mut self.services, &req, &mut [LeaseMem::Write(buffer)]);
        match answer {
            Ok(AttestationResponse::Progress {
                written,
                done: finished,
            }) => {
                if let AttestState::InProgress { offset, .. } = &mut r.attest {
                    *offset += written as usize;
                }
                if finished {
                    r.attest = AttestState::Idle;
                    done(r, &[status::SUCCESS, u64::from(written)])
                } else {
                    done(r, &[status::INCOMPLETE, u64::from(written)])
                }
            }
            Ok(AttestationResponse::Error(AttestationError::NoSession)) | Err(_) | Ok(_) => {
                // The service lost the token (restarted) or failed: this
                // token cannot be finished; the realm must start again.
                r.attest = AttestState::Idle;
                done(r, &[status::ERROR_UNKNOWN, 0])
            }
        }
    }

    /// Tells the attestation service a REC is gone.
    pub(crate) fn attest_forget(&mut self, rec: u64) {
        let req = AttestationRequest::Abort {
            rec: RecHandle(rec),
        };
        let _ = self.buffers.attestation(&mut self.services, &req, &mut []);
    }
}
