//! The keys service: realm metadata checks and sealing-key derivation.
//!
//! The RMM core reaches it only through
//! [`ipc_schema::service::keys::KeysRequest`]s. It holds what no other part
//! of the RMM should: the HES's two VHUKs (provisioned once at boot) and each
//! realm's verified Islet metadata block. From them it
//!
//! * verifies and stores a realm's metadata (`RMI_ISLET_REALM_SET_METADATA`)
//!   with the very code the vendor's tools use ([`atoll_metadata`]),
//! * tells the core whether a realm may be activated (its RIM and hash
//!   algorithm must be the metadata's),
//! * hands the block back to the realm (`RSI_ISLET_REALM_METADATA`),
//! * derives realm sealing keys (`RSI_ISLET_REALM_SEALING_KEY`), see
//!   [`derive`](mod@derive) for the exact encoding,
//! * forgets a realm at `RMI_REALM_DESTROY`.
//!
//! Metadata is checked only against the key inside it (the upstream rule):
//! the RMM has no list of trusted vendors. That is safe for sealing because
//! the vendor key is always part of the sealing identity, so a block forged
//! with another key yields the forger's keys, never the real vendor's. It
//! is not a statement about who built the realm: relying parties check the
//! vendor key (the CLI's `verify --vendor-key`).
//!
//! [`app`] is the next layer of the key hierarchy, used inside realms by the
//! app-manager.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use atoll_metadata::{Metadata, MetadataError, PublicKey, Rim, TrustAnchor, BLOCK_LEN};
use ipc_schema::service::keys::{
    KeysError, KeysRequest, KeysResponse, MetadataFault, KEY_LEN, REQUEST_MAX,
};
use ipc_schema::service::{LeaseMem, RealmHandle};
use ipc_schema::wire::Bytes;

pub mod app;
pub mod derive;

use derive::{realm_sealing_key, RealmIdentity, SealingError, Vhuks};

/// One realm's verified metadata.
struct RealmEntry {
    handle: RealmHandle,
    /// The block exactly as verified, returned verbatim to the realm.
    block: [u8; BLOCK_LEN],
    metadata: Metadata,
    vendor_key: PublicKey,
}

/// The keys service state.
///
/// Storage for `max_realms` metadata blocks is reserved at construction,
/// so handling a request never allocates (a full table is
/// [`KeysError::NoSpace`]).
pub struct KeysService {
    vhuks: Option<Vhuks>,
    /// Sorted by handle, for binary search.
    realms: Vec<RealmEntry>,
    max_realms: usize,
}

impl KeysService {
    /// A service without VHUKs that holds metadata for at most
    /// `max_realms` realms at once.
    pub fn new(max_realms: usize) -> Self {
        Self {
            vhuks: None,
            realms: Vec::with_capacity(max_realms),
            max_realms,
        }
    }

    /// Number of realms with metadata.
    pub fn realm_count(&self) -> usize {
        self.realms.len()
    }

    /// Whether the VHUKs have been provisioned.
    pub fn is_provisioned(&self) -> bool {
        self.vhuks.is_some()
    }

    /// Handles one request that needs no lease.
    pub fn handle(&mut self, req: KeysRequest) -> KeysResponse {
        self.handle_ref(&req, &mut [])
    }

    /// Handles one request with the memory the caller lends for it
    /// (`leases`, indexed by [`ipc_schema::service::Lease`]).
    pub fn handle_ref(&mut self, req: &KeysRequest, leases: &mut [LeaseMem<'_>]) -> KeysResponse {
        match self.dispatch(req, leases) {
            Ok(resp) => resp,
            Err(e) => KeysResponse::Error(e),
        }
    }

    /// Decodes a postcard-encoded [`KeysRequest`] from `req`, handles it and
    /// encodes the [`KeysResponse`] into `resp`, returning the number of
    /// bytes written.
    ///
    /// Anything that is not exactly one valid request of at most
    /// [`REQUEST_MAX`] bytes is answered with `Error(Malformed)`. Returns 0
    /// only if `resp` is too small for the answer (size it with
    /// [`ipc_schema::service::keys::RESPONSE_MAX`]). Never panics.
    pub fn handle_bytes(
        &mut self,
        req: &[u8],
        leases: &mut [LeaseMem<'_>],
        resp: &mut [u8],
    ) -> usize {
        let answer = match decode_request(req) {
            Some(request) => self.handle_ref(&request, leases),
            None => KeysResponse::Error(KeysError::Malformed),
        };
        postcard::to_slice(&answer, resp).map_or(0, |out| out.len())
    }

    fn find(&self, realm: RealmHandle) -> Result<usize, usize> {
        self.realms.binary_search_by(|r| r.handle.cmp(&realm))
    }

    fn entry(&self, realm: RealmHandle) -> Option<&RealmEntry> {
        self.find(realm).ok().map(|i| &self.realms[i])
    }

    fn dispatch(
        &mut self,
        req: &KeysRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<KeysResponse, KeysError> {
        match req {
            KeysRequest::Provision { vhuk_a, vhuk_m } => {
                if self.vhuks.is_some() {
                    return Err(KeysError::AlreadyProvisioned);
                }
                if vhuk_a.0 == [0; KEY_LEN] || vhuk_m.0 == [0; KEY_LEN] {
                    return Err(KeysError::ZeroKey);
                }
                self.vhuks = Some(Vhuks {
                    a: vhuk_a.0,
                    m: vhuk_m.0,
                });
                Ok(KeysResponse::Ok)
            }
            KeysRequest::SetMetadata { realm, block } => {
                let bytes = leases
                    .get(usize::from(block.0))
                    .map(LeaseMem::bytes)
                    .filter(|b| b.len() == BLOCK_LEN)
                    .ok_or(KeysError::Malformed)?;
                let at = match self.find(*realm) {
                    Ok(_) => return Err(KeysError::MetadataExists),
                    Err(at) => at,
                };
                if self.realms.len() >= self.max_realms {
                    return Err(KeysError::NoSpace);
                }
                // Copy once, then verify and keep that copy: the lender
                // cannot change what is stored after it was checked.
                let mut copy = [0u8; BLOCK_LEN];
                copy.copy_from_slice(bytes);
                let verified = atoll_metadata::verify(&copy, TrustAnchor::EmbeddedKeyOnly)
                    .map_err(|e| KeysError::InvalidMetadata(fault(e)))?;
                self.realms.insert(
                    at,
                    RealmEntry {
                        handle: *realm,
                        block: copy,
                        metadata: verified.metadata,
                        vendor_key: verified.public_key,
                    },
                );
                Ok(KeysResponse::Ok)
            }
            KeysRequest::CheckActivation { realm, algo, rim } => {
                let rim = Rim::new(*algo, &rim.0).map_err(|_| KeysError::Malformed)?;
                if let Some(e) = self.entry(*realm) {
                    if e.metadata.rim.algo() != rim.algo() {
                        return Err(KeysError::AlgoMismatch);
                    }
                    if e.metadata.rim != rim {
                        return Err(KeysError::RimMismatch);
                    }
                }
                Ok(KeysResponse::Ok)
            }
            KeysRequest::GetMetadata { realm, out } => {
                let dst = leases
                    .get_mut(usize::from(out.0))
                    .and_then(LeaseMem::bytes_mut)
                    .filter(|b| b.len() == BLOCK_LEN)
                    .ok_or(KeysError::Malformed)?;
                let i = self.find(*realm).map_err(|_| KeysError::NoMetadata)?;
                dst.copy_from_slice(&self.realms[i].block);
                Ok(KeysResponse::Ok)
            }
            KeysRequest::SealingKey {
                realm,
                flags,
                svn,
                algo,
                rim,
            } => {
                let rim = Rim::new(*algo, &rim.0).map_err(|_| KeysError::Malformed)?;
                let vhuks = self.vhuks.as_ref().ok_or(KeysError::NotProvisioned)?;
                let identity = self.entry(*realm).map(|e| RealmIdentity {
                    vendor_key: &e.vendor_key,
                    metadata: &e.metadata,
                });
                let key =
                    realm_sealing_key(vhuks, *flags, *svn, &rim, identity).map_err(
                        |e| match e {
                            SealingError::UndefinedFlags(_) => KeysError::UndefinedFlags,
                            SealingError::NoMetadata => KeysError::NoMetadata,
                            SealingError::SvnTooHigh { .. } => KeysError::SvnTooHigh,
                            SealingError::AlgoMismatch => KeysError::AlgoMismatch,
                            SealingError::Encoding => KeysError::Malformed,
                        },
                    )?;
                Ok(KeysResponse::SealingKey(Bytes(key.0)))
            }
            KeysRequest::Destroy { realm } => {
                if let Ok(i) = self.find(*realm) {
                    self.realms.remove(i);
                }
                Ok(KeysResponse::Ok)
            }
        }
    }
}

/// The metadata crate's error, reduced to the wire's [`MetadataFault`].
fn fault(e: MetadataError) -> MetadataFault {
    match e {
        MetadataError::Length { .. } => MetadataFault::Length,
        MetadataError::FmtVersion(_) => MetadataFault::FmtVersion,
        MetadataError::RealmIdEmpty
        | MetadataError::RealmIdTooLong { .. }
        | MetadataError::RealmIdNotAscii { .. }
        | MetadataError::RealmIdPadding => MetadataFault::RealmId,
        MetadataError::HashAlgo(_) => MetadataFault::HashAlgo,
        MetadataError::RimLength { .. } | MetadataError::RimPadding { .. } => MetadataFault::Rim,
        MetadataError::PublicKey => MetadataFault::PublicKey,
        MetadataError::SignatureEncoding
        | MetadataError::BadSignature
        | MetadataError::UntrustedKey => MetadataFault::Signature,
    }
}

/// Decodes exactly one request; `None` for oversized input, invalid
/// encodings and trailing bytes.
fn decode_request(bytes: &[u8]) -> Option<KeysRequest> {
    if bytes.len() > REQUEST_MAX {
        return None;
    }
    match postcard::take_from_bytes::<KeysRequest>(bytes) {
        Ok((req, [])) => Some(req),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
