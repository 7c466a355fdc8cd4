//! `RSI_ATTESTATION_TOKEN_INIT` and `RSI_ATTESTATION_TOKEN_CONTINUE`.
//!
//! The core keeps the per-REC state machine and validates the realm's
//! arguments; producing and signing the token is the attestation service's
//! job. Until that service is wired in, CONTINUE reports the
//! specification's IMPDEF token-generation failure (`RSI_ERROR_UNKNOWN`).

use ipc_schema::rsi::{status, CHALLENGE_BYTES};

use crate::arch::Platform;
use crate::rec::{AttestState, Rec};
use crate::rsi::{done, Step, Translation, MAX_TOKEN_SIZE};
use crate::services::ServiceTransport;
use crate::{is_granule_aligned, Rmm, GRANULE_U64};

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    pub(crate) fn rsi_attest_init(&mut self, r: &mut Rec) -> Step {
        let mut challenge = [0u8; CHALLENGE_BYTES];
        for (chunk, reg) in challenge.chunks_mut(8).zip(&r.regs.gprs[1..9]) {
            chunk.copy_from_slice(&reg.to_le_bytes());
        }
        r.attest = AttestState::InProgress {
            challenge,
            offset: 0,
        };
        done(r, &[status::SUCCESS, MAX_TOKEN_SIZE])
    }

    pub(crate) fn rsi_attest_continue(&mut self, r: &mut Rec) -> Step {
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
        if !matches!(r.attest, AttestState::InProgress { .. }) {
            return done(r, &[status::ERROR_STATE]);
        }
        match self.translate(r.owner, addr) {
            Translation::Mapped { .. } => {
                // No attestation service in this build: the token cannot be
                // produced. The request stays in progress so a retry after
                // the service appears behaves as the specification says.
                done(r, &[status::ERROR_UNKNOWN, 0])
            }
            t => self.buffer_fault(r, t, addr),
        }
    }
}
