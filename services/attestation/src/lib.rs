//! The attestation service: realm tokens, signed with the realm
//! attestation key (RAK) and bound to the platform token the HES issued
//! for that key.
//!
//! It holds the RAK and the platform token; the RMM core holds neither and
//! reaches this service only through `ipc_schema::service::attestation`
//! messages. Per REC it keeps one token in progress:
//!
//! 1. `Init`: the claims are encoded at once (the realm learns the exact
//!    token size), nothing is signed yet.
//! 2. The first `Continue` signs (the one expensive step) and hands out no
//!    bytes: the realm sees `RSI_INCOMPLETE` and calls again, so the core
//!    never spends more than one signature per call.
//! 3. Later `Continue`s copy the next chunk of the tag-399 token into the
//!    realm's buffer (a writable lease) until it has all of it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use atoll_cca_token::{
    encode_collection, HashAlgo as TokenHash, RakForm, RealmClaims, RealmPublicKey, UnsignedToken,
};
use ipc_schema::service::attestation::{
    AttestationError, AttestationRequest, AttestationResponse, RealmClaimsInput, RecHandle,
    MAX_TOKEN_SIZE, REQUEST_MAX,
};
use ipc_schema::service::{HashAlgo, Lease, LeaseMem};
use ipc_schema::wire::{BoundedBytes, Bytes};
use ipc_schema::GRANULE_SIZE;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{Signature, SigningKey};

/// Length of an ES384 signature (raw r || s).
const ES384_SIGNATURE_LEN: usize = 96;

/// Where one REC's token is.
// Sessions live in a table reserved up front; boxing would allocate per INIT.
#[allow(clippy::large_enum_variant)]
enum Stage {
    /// Claims encoded, waiting to be signed.
    Unsigned(UnsignedToken),
    /// The whole token, `delivered` bytes of it handed out.
    Signed { token: Vec<u8>, delivered: usize },
}

struct Session {
    rec: RecHandle,
    stage: Stage,
}

/// The service's state.
pub struct AttestationService {
    rak: Option<(SigningKey, RealmPublicKey)>,
    platform_token: Option<Vec<u8>>,
    sessions: Vec<Session>,
    max_sessions: usize,
}

impl AttestationService {
    /// A service with room for `max_sessions` tokens in progress at once.
    pub fn new(max_sessions: usize) -> Self {
        Self {
            rak: None,
            platform_token: None,
            sessions: Vec::with_capacity(max_sessions),
            max_sessions,
        }
    }

    /// Handles one request, with the memory lent for it.
    pub fn handle(
        &mut self,
        req: &AttestationRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> AttestationResponse {
        match self.dispatch(req, leases) {
            Ok(r) => r,
            Err(e) => AttestationResponse::Error(e),
        }
    }

    /// Decodes a request, handles it and encodes the answer into `resp`,
    /// returning its length (0 only if `resp` is too small). Never panics.
    pub fn handle_bytes(
        &mut self,
        req: &[u8],
        leases: &mut [LeaseMem<'_>],
        resp: &mut [u8],
    ) -> usize {
        let answer = match decode(req) {
            Some(r) => self.handle(&r, leases),
            None => AttestationResponse::Error(AttestationError::Malformed),
        };
        postcard::to_slice(&answer, resp).map_or(0, |o| o.len())
    }

    fn dispatch(
        &mut self,
        req: &AttestationRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<AttestationResponse, AttestationError> {
        match req {
            AttestationRequest::ProvisionRak { scalar } => self.provision_rak(scalar),
            AttestationRequest::ProvisionPlatformToken { token } => {
                self.provision_platform_token(*token, leases)
            }
            AttestationRequest::Init {
                rec,
                challenge,
                claims,
                ..
            } => self.init(*rec, challenge, claims),
            AttestationRequest::Continue {
                rec,
                buffer,
                offset,
                size,
            } => self.continue_token(
                *rec,
                *buffer,
                usize::from(*offset),
                usize::from(*size),
                leases,
            ),
            AttestationRequest::Abort { rec } => {
                self.sessions.retain(|s| s.rec != *rec);
                Ok(AttestationResponse::Ok)
            }
        }
    }

    fn provision_rak(
        &mut self,
        scalar: &Bytes<48>,
    ) -> Result<AttestationResponse, AttestationError> {
        if self.rak.is_some() {
            return Err(AttestationError::AlreadyProvisioned);
        }
        let key = SigningKey::from_slice(&scalar.0).map_err(|_| AttestationError::BadKey)?;
        let public = p384::PublicKey::from(key.verifying_key());
        let claim =
            RealmPublicKey::new(&public, RakForm::CoseKey).map_err(|_| AttestationError::BadKey)?;
        let challenge = binding(&claim);
        self.rak = Some((key, claim));
        Ok(AttestationResponse::RakBinding { challenge })
    }

    fn provision_platform_token(
        &mut self,
        lease: Lease,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<AttestationResponse, AttestationError> {
        let (_, claim) = self.rak.as_ref().ok_or(AttestationError::NotProvisioned)?;
        if self.platform_token.is_some() {
            return Err(AttestationError::AlreadyProvisioned);
        }
        let bytes = leases
            .get(usize::from(lease.0))
            .ok_or(AttestationError::BadLease)?
            .bytes();
        if bytes.len() > MAX_TOKEN_SIZE / 2 {
            return Err(AttestationError::BadPlatformToken);
        }
        let token = atoll_cca_token::decode_platform_token(bytes)
            .map_err(|_| AttestationError::BadPlatformToken)?;
        // A platform token for some other key would make every realm token
        // fail its binding check: refuse it here, loudly, at boot.
        if token.claims.challenge != binding(claim).as_slice() {
            return Err(AttestationError::BadPlatformToken);
        }
        self.platform_token = Some(bytes.to_vec());
        Ok(AttestationResponse::Ok)
    }

    fn init(
        &mut self,
        rec: RecHandle,
        challenge: &Bytes<64>,
        input: &RealmClaimsInput,
    ) -> Result<AttestationResponse, AttestationError> {
        let (_, claim) = self.rak.as_ref().ok_or(AttestationError::NotProvisioned)?;
        let platform = self
            .platform_token
            .as_ref()
            .ok_or(AttestationError::NotProvisioned)?;
        let (algo, len) = match input.hash_algo {
            HashAlgo::Sha256 => (TokenHash::Sha256, 32),
            HashAlgo::Sha512 => (TokenHash::Sha512, 64),
        };
        let claims = RealmClaims::new(
            challenge.0,
            input.rpv.0,
            claim.public_key(),
            algo,
            input.rim.0[..len].to_vec(),
            core::array::from_fn(|i| input.rems[i].0[..len].to_vec()),
        )
        .map_err(|_| AttestationError::SigningFailed)?;
        let unsigned = claims
            .unsigned_token()
            .map_err(|_| AttestationError::SigningFailed)?;
        // The exact size: the signature has a fixed length, so assembling a
        // placeholder gives the final layout.
        let placeholder = UnsignedToken::new(
            claims
                .encode()
                .map_err(|_| AttestationError::SigningFailed)?,
            unsigned.algorithm(),
        )
        .assemble(&[0; ES384_SIGNATURE_LEN])
        .map_err(|_| AttestationError::SigningFailed)?;
        let token_len = encode_collection(platform, &placeholder)
            .map_err(|_| AttestationError::SigningFailed)?
            .len();
        if token_len > MAX_TOKEN_SIZE {
            return Err(AttestationError::SigningFailed);
        }
        let stage = Stage::Unsigned(unsigned);
        if let Some(s) = self.sessions.iter_mut().find(|s| s.rec == rec) {
            s.stage = stage;
        } else if self.sessions.len() < self.max_sessions {
            self.sessions.push(Session { rec, stage });
        } else {
            return Err(AttestationError::NoSpace);
        }
        Ok(AttestationResponse::Initialised {
            token_len: token_len as u32,
        })
    }

    fn continue_token(
        &mut self,
        rec: RecHandle,
        buffer: Lease,
        offset: usize,
        size: usize,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<AttestationResponse, AttestationError> {
        let at = self
            .sessions
            .iter()
            .position(|s| s.rec == rec)
            .ok_or(AttestationError::NoSession)?;
        let buf = leases
            .get_mut(usize::from(buffer.0))
            .and_then(LeaseMem::bytes_mut)
            .filter(|b| b.len() == GRANULE_SIZE)
            .ok_or(AttestationError::BadLease)?;
        let dst = offset
            .checked_add(size)
            .and_then(|end| buf.get_mut(offset..end))
            .ok_or(AttestationError::BadLease)?;
        match &mut self.sessions[at].stage {
            Stage::Unsigned(unsigned) => {
                let (key, _) = self.rak.as_ref().ok_or(AttestationError::NotProvisioned)?;
                let platform = self
                    .platform_token
                    .as_ref()
                    .ok_or(AttestationError::NotProvisioned)?;
                let signature: Signature = key
                    .try_sign(&unsigned.to_be_signed())
                    .map_err(|_| AttestationError::SigningFailed)?;
                let unsigned = core::mem::replace(
                    unsigned,
                    UnsignedToken::new(Vec::new(), unsigned.algorithm()),
                );
                let realm = unsigned
                    .assemble(&signature.to_bytes())
                    .map_err(|_| AttestationError::SigningFailed)?;
                let token = encode_collection(platform, &realm)
                    .map_err(|_| AttestationError::SigningFailed)?;
                self.sessions[at].stage = Stage::Signed {
                    token,
                    delivered: 0,
                };
                Ok(AttestationResponse::Progress {
                    written: 0,
                    done: false,
                })
            }
            Stage::Signed { token, delivered } => {
                let n = dst.len().min(token.len() - *delivered);
                dst[..n].copy_from_slice(&token[*delivered..*delivered + n]);
                *delivered += n;
                let done = *delivered == token.len();
                if done {
                    self.sessions.remove(at);
                }
                Ok(AttestationResponse::Progress {
                    written: n as u32,
                    done,
                })
            }
        }
    }
}

/// The platform token's challenge for a RAK claim: SHA-256 of the claim's
/// encoded bytes (claim 44240 says "sha-256").
fn binding(claim: &RealmPublicKey) -> BoundedBytes<64> {
    let digest = TokenHash::Sha256.digest(claim.encoded());
    BoundedBytes::new(&digest).expect("a SHA-256 digest fits in 64 bytes")
}

fn decode(bytes: &[u8]) -> Option<AttestationRequest> {
    if bytes.len() > REQUEST_MAX {
        return None;
    }
    match postcard::take_from_bytes::<AttestationRequest>(bytes) {
        Ok((r, [])) => Some(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
