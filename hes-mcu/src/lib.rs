//! The HES firmware core: device secrets, measured-boot slots, CPAK/RAK/VHUK
//! derivation and platform token signing.
//!
//! What this crate owns, in the shape of Islet's HES:
//!
//! 1. The device secrets (HUK, GUK), given once from a provisioning blob and
//!    never handed out: only keys derived from them leave ([`secrets`]).
//! 2. The measured-boot slots the boot stages extend, locked at boot-complete.
//! 3. Every key, derived on demand, never stored ([`kdf`]): the CPAK from the
//!    GUK and the BL2 measurement, the realm attestation key (RAK) and
//!    VHUK_M from the boot measurements, VHUK_A from the signer ids.
//! 4. The platform token, signed with the CPAK ([`token`]).
//! 5. The link protocol's server side: [`Hes::handle_frame`] validates a
//!    frame's magic, version, length and CRC before it decodes anything and
//!    answers every malformed frame with a typed error.
//!
//! What it must not do: any I/O (the host program or the firmware shell
//! moves the bytes), any `unsafe`, or any panic on input.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod kdf;
pub mod secrets;
mod slots;
pub mod token;

use alloc::vec::Vec;

use ipc_schema::hes::{
    check_frame, encode_message, EccCurve, FrameHeader, FrameKind, HesError, HesHashAlgo,
    HesRequest, HesResponse, TokenChunk, VhukId, CHALLENGE_MAX, HEADER_LEN, MAGIC, MAX_FRAME,
    P384_POINT_LEN, TOKEN_CHUNK_MAX, TOKEN_MAX,
};
use ipc_schema::wire::{BoundedBytes, Bytes};
use p384::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use zerocopy::FromBytes;

pub use secrets::{DeviceSecrets, ProvisionError};
pub use token::PlatformIdentity;

use crate::slots::{algo_code, Slots};

/// The last platform token signed, so the follow-up chunk requests of one
/// transfer are served from the same bytes without re-signing.
struct CachedToken {
    challenge: BoundedBytes<CHALLENGE_MAX>,
    generation: u64,
    token: Vec<u8>,
    digest: [u8; 32],
}

/// The HES: its secrets, its identity claims, the boot slots and the token
/// being transferred. One instance per device; callers serialize access.
pub struct Hes {
    secrets: DeviceSecrets,
    identity: PlatformIdentity,
    slots: Slots,
    token: Option<CachedToken>,
}

impl Hes {
    /// A freshly booted HES: every slot empty and unlocked.
    pub fn new(secrets: DeviceSecrets, identity: PlatformIdentity) -> Self {
        Self {
            secrets,
            identity,
            slots: Slots::default(),
            token: None,
        }
    }

    /// Answers one decoded request. Every refusal is a typed
    /// [`HesResponse::Error`]; nothing here panics.
    pub fn handle(&mut self, request: &HesRequest) -> HesResponse {
        self.dispatch(request).unwrap_or_else(HesResponse::Error)
    }

    fn dispatch(&mut self, request: &HesRequest) -> Result<HesResponse, HesError> {
        Ok(match request {
            HesRequest::GetRealmKey { curve, hash_algo } => {
                let key = self.realm_key(*curve, *hash_algo)?;
                HesResponse::RealmKey(Bytes(key.to_bytes().into()))
            }
            HesRequest::GetPlatformToken { challenge, offset } => {
                HesResponse::PlatformToken(self.token_chunk(challenge, *offset)?)
            }
            HesRequest::Extend { slot, record, lock } => {
                self.slots.extend(*slot, record, *lock)?;
                HesResponse::Extended
            }
            HesRequest::ReadSlot { slot } => HesResponse::Slot(self.slots.read(*slot)?),
            HesRequest::BootComplete => {
                self.slots.lock_all();
                HesResponse::BootCompleted
            }
            HesRequest::GetVhuk { id } => HesResponse::Vhuk(Bytes(self.vhuk(*id)?)),
            HesRequest::GetCpakPublicKey => {
                HesResponse::CpakPublicKey(Bytes(self.cpak_public_key()?))
            }
        })
    }

    /// Answers one frame with one frame, written to `out`; returns its
    /// length. The frame is checked (magic, version, kind, reserved bytes,
    /// length bound, exact length, CRC) before its payload is decoded, and
    /// the payload must decode to exactly one request with no bytes left
    /// over. The answer echoes the request id when the header was readable
    /// (right magic), else carries id 0.
    pub fn handle_frame(&mut self, frame: &[u8], out: &mut [u8; MAX_FRAME]) -> usize {
        let (id, response) = match check_frame(frame, FrameKind::Request) {
            Ok((header, payload)) => {
                let response = match postcard::take_from_bytes::<HesRequest>(payload) {
                    Ok((request, [])) => self.handle(&request),
                    Ok(_) | Err(_) => HesResponse::Error(HesError::Malformed),
                };
                (header.request_id(), response)
            }
            Err(e) => (echo_id(frame), HesResponse::Error(HesError::Frame(e))),
        };
        encode_message(FrameKind::Response, id, &response, out).unwrap_or_else(|e| {
            // Cannot happen (every response fits a frame by a compile-time
            // assert), but a firmware must answer something rather than stop.
            let fallback = HesResponse::Error(HesError::Frame(e));
            encode_message(FrameKind::Response, id, &fallback, out).unwrap_or(0)
        })
    }

    /// The CPAK: P-384, from the GUK and the BL2 measurement (slot 0), so a
    /// different BL2 gives a different platform identity.
    pub fn cpak(&self) -> Result<SigningKey, HesError> {
        let bl2 = self.slots.read(0).map_err(|_| HesError::NoBl2Measurement)?;
        let secret = kdf::derive_p384(
            self.secrets.guk(),
            kdf::label::CPAK,
            bl2.record.measurement.as_slice(),
        )
        .ok_or(HesError::Crypto)?;
        Ok(SigningKey::from(secret))
    }

    /// The CPAK public key, SEC1 uncompressed (`0x04 || x || y`).
    pub fn cpak_public_key(&self) -> Result<[u8; P384_POINT_LEN], HesError> {
        sec1_point(&self.cpak()?)
    }

    /// `0x01 || SHA-256(CPAK public key, SEC1 uncompressed)`: claim 256.
    pub fn instance_id(&self) -> Result<[u8; 33], HesError> {
        Ok(instance_id(&self.cpak_public_key()?))
    }

    /// The delegated realm attestation key: from the HUK and every boot
    /// measurement, so the RMM gets a key only the measured boot chain on
    /// this device can have. The curve and binding hash are in the context
    /// so each combination has its own key.
    pub fn realm_key(
        &self,
        curve: EccCurve,
        hash_algo: HesHashAlgo,
    ) -> Result<p384::SecretKey, HesError> {
        let EccCurve::P384 = curve;
        if self.slots.populated().next().is_none() {
            return Err(HesError::NoMeasurements);
        }
        let mut context = [0u8; 34];
        context[0] = 0; // ECC_CURVE_P384
        context[1] = algo_code(hash_algo);
        context[2..].copy_from_slice(&self.slots.measurement_digest());
        kdf::derive_p384(self.secrets.huk(), kdf::label::RAK, &context).ok_or(HesError::Crypto)
    }

    /// VHUK_A (signer ids) or VHUK_M (measurements), from the HUK.
    pub fn vhuk(&self, id: VhukId) -> Result<[u8; 32], HesError> {
        if self.slots.populated().next().is_none() {
            return Err(HesError::NoMeasurements);
        }
        let (label, context) = match id {
            VhukId::A => (kdf::label::VHUK_A, self.slots.signer_digest()),
            VhukId::M => (kdf::label::VHUK_M, self.slots.measurement_digest()),
        };
        kdf::derive_key32(self.secrets.huk(), label, &context).ok_or(HesError::Crypto)
    }

    /// The whole platform token for `challenge` (32, 48 or 64 bytes).
    pub fn platform_token(&mut self, challenge: &[u8]) -> Result<&[u8], HesError> {
        let challenge = BoundedBytes::new(challenge).map_err(|_| HesError::BadChallengeLength)?;
        Ok(&self.cached_token(&challenge)?.token)
    }

    fn cached_token(
        &mut self,
        challenge: &BoundedBytes<CHALLENGE_MAX>,
    ) -> Result<&CachedToken, HesError> {
        if !matches!(challenge.as_slice().len(), 32 | 48 | 64) {
            return Err(HesError::BadChallengeLength);
        }
        let generation = self.slots.generation();
        let fresh = self
            .token
            .as_ref()
            .is_some_and(|t| t.generation == generation && &t.challenge == challenge);
        if !fresh {
            let cpak = self.cpak()?;
            let instance_id = instance_id(&sec1_point(&cpak)?);
            let token = token::platform_token(
                &cpak,
                &self.identity,
                &instance_id,
                challenge.as_slice(),
                &self.slots,
            )?;
            if token.len() > TOKEN_MAX {
                return Err(HesError::TokenTooLarge);
            }
            self.token = Some(CachedToken {
                challenge: challenge.clone(),
                generation,
                digest: Sha256::digest(&token).into(),
                token,
            });
        }
        self.token.as_ref().ok_or(HesError::Crypto)
    }

    fn token_chunk(
        &mut self,
        challenge: &BoundedBytes<CHALLENGE_MAX>,
        offset: u32,
    ) -> Result<TokenChunk, HesError> {
        let cached = self.cached_token(challenge)?;
        let total = cached.token.len();
        let start = usize::try_from(offset).map_err(|_| HesError::BadOffset)?;
        if start >= total {
            return Err(HesError::BadOffset);
        }
        let end = total.min(start + TOKEN_CHUNK_MAX);
        let data =
            BoundedBytes::new(&cached.token[start..end]).map_err(|_| HesError::TokenTooLarge)?;
        // total <= TOKEN_MAX, which fits a u32 (asserted in ipc-schema).
        Ok(TokenChunk {
            total_len: total as u32,
            offset,
            remaining: (total - end) as u32,
            digest: Bytes(cached.digest),
            data,
        })
    }
}

/// `0x01 || SHA-256(point)`.
fn instance_id(cpak_public: &[u8; P384_POINT_LEN]) -> [u8; 33] {
    let mut id = [0u8; 33];
    id[0] = 0x01;
    id[1..].copy_from_slice(&Sha256::digest(cpak_public));
    id
}

/// A key's public point, SEC1 uncompressed.
fn sec1_point(key: &SigningKey) -> Result<[u8; P384_POINT_LEN], HesError> {
    let point = key.verifying_key().to_encoded_point(false);
    point.as_bytes().try_into().map_err(|_| HesError::Crypto)
}

/// The request id to echo in an error answer: only from a header whose
/// magic shows it was meant for us; 0 otherwise.
fn echo_id(frame: &[u8]) -> u32 {
    match FrameHeader::read_from_prefix(frame) {
        Ok((h, _)) if frame.len() >= HEADER_LEN && h.magic == MAGIC => h.request_id(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
