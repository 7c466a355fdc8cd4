//! The measurement service: each realm's RIM and REMs.
//!
//! The RMM core tells this service what happened to a realm, in the order it
//! happened (`REALM_CREATE`, `DATA_CREATE`, `REC_CREATE`, `RTT_INIT_RIPAS`,
//! `RSI_MEASUREMENT_EXTEND`), and asks it for slot values. All hashing lives
//! here so the core stays free of crypto, and so normal-world tools
//! (`atoll measure`) can compute a realm's expected RIM with the very same
//! code the RMM runs.
//!
//! The rules are those of RMM specification v1.0:
//!
//! * `REALM_CREATE`: RIM = H(zeroed 4 KiB `RmiRealmParams` holding only
//!   flags, s2sz, sve_vl, num_bps, num_wps, pmu_num_ctrs and hash_algo).
//! * `DATA_CREATE`: RIM = H(DATA descriptor {rim, ipa, flags, content}),
//!   content = H(page) when the content is measured, else zero.
//! * `REC_CREATE` of a runnable REC: RIM = H(REC descriptor {rim,
//!   H(zeroed `RmiRecParams` holding only flags, pc and gprs)}).
//! * `RTT_INIT_RIPAS`, per RTT entry: RIM = H(RIPAS descriptor {rim, base, top}).
//! * `MEASUREMENT_EXTEND`: REM[i] = H(REM[i][..digest_len] || data).
//!
//! Every slot is 64 bytes; SHA-256 results are zero-padded.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;

use ipc_schema::measurement::{
    desc_type, DataDescriptor, RecDescriptor, RipasDescriptor, DESCRIPTOR_LEN,
};
use ipc_schema::rmi::{rec_flags, RmiRealmParams, RmiRecParams};
use ipc_schema::service::measurement::{
    MeasuredRealmParams, MeasuredRecParams, MeasurementError, MeasurementRequest,
    MeasurementResponse, REQUEST_MAX,
};
use ipc_schema::service::{HashAlgo, Lease, LeaseMem, RealmHandle};
use ipc_schema::wire::Bytes;
use ipc_schema::GRANULE_SIZE;
use sha2::{Digest, Sha256, Sha512};
use zerocopy::{FromZeros, IntoBytes};

/// Number of measurement slots per realm: the RIM and four REMs.
pub const NUM_SLOTS: usize = 5;
/// Size of one slot; shorter digests are zero-padded to it.
pub const SLOT_SIZE: usize = 64;
/// Index of the RIM among the slots.
pub const RIM_INDEX: usize = 0;

/// One slot value, zero-padded to [`SLOT_SIZE`].
pub type Slot = [u8; SLOT_SIZE];

/// Hashes the concatenation of `parts` with `algo`, zero-padded to 64 bytes.
///
/// Public so that tools and tests outside the RMM hash exactly as the
/// service does (same padding, same algorithm selection).
pub fn hash(algo: HashAlgo, parts: &[&[u8]]) -> Slot {
    let mut out = [0u8; SLOT_SIZE];
    match algo {
        HashAlgo::Sha256 => {
            let mut h = Sha256::new();
            for p in parts {
                h.update(p);
            }
            out[..32].copy_from_slice(&h.finalize());
        }
        HashAlgo::Sha512 => {
            let mut h = Sha512::new();
            for p in parts {
                h.update(p);
            }
            out.copy_from_slice(&h.finalize());
        }
    }
    out
}

/// The initial RIM of a realm (`RimInit`): the hash of a zeroed
/// `RmiRealmParams` page into which only the measured fields are copied.
/// The RPV, VMID and RTT fields are deliberately left out.
pub fn rim_init(algo: HashAlgo, params: &MeasuredRealmParams) -> Slot {
    let mut page = RmiRealmParams::new_zeroed();
    page.flags = params.flags;
    page.s2sz = params.s2sz;
    page.sve_vl = params.sve_vl;
    page.num_bps = params.num_bps;
    page.num_wps = params.num_wps;
    page.pmu_num_ctrs = params.pmu_num_ctrs;
    page.hash_algo = params.hash_algo;
    hash(algo, &[page.as_bytes()])
}

/// The `content` field of a REC descriptor: the hash of a zeroed
/// `RmiRecParams` page holding only flags, pc and gprs (MPIDR and the
/// auxiliary granules are not measured).
pub fn rec_content(algo: HashAlgo, params: &MeasuredRecParams) -> Slot {
    let mut page = RmiRecParams::new_zeroed();
    page.flags = params.flags;
    page.pc = params.pc;
    page.gprs = params.gprs;
    hash(algo, &[page.as_bytes()])
}

/// Bytes copied per step of [`copy_and_hash`]: small enough to stay in L1
/// between the copy and the hash, large enough to amortise the calls.
const COPY_CHUNK: usize = 512;

/// Copies `from` into `to` and hashes what was copied, in one pass: each
/// chunk is read from `from` once, into a buffer that is both written out
/// and hashed, so the digest is of exactly the bytes written even if `from`
/// changes concurrently, and the source is fetched from memory once.
pub fn copy_and_hash(algo: HashAlgo, from: &[u8], to: &mut [u8]) -> Slot {
    fn run<D: Digest>(mut h: D, from: &[u8], to: &mut [u8]) -> D {
        let mut buf = [0u8; COPY_CHUNK];
        for (src, dst) in from.chunks(COPY_CHUNK).zip(to.chunks_mut(COPY_CHUNK)) {
            let b = &mut buf[..src.len()];
            b.copy_from_slice(src);
            dst.copy_from_slice(b);
            h.update(&*b);
        }
        h
    }
    let mut out = [0u8; SLOT_SIZE];
    match algo {
        HashAlgo::Sha256 => out[..32].copy_from_slice(&run(Sha256::new(), from, to).finalize()),
        HashAlgo::Sha512 => out.copy_from_slice(&run(Sha512::new(), from, to).finalize()),
    }
    out
}

/// The measurement slots of one realm.
#[derive(Clone)]
struct RealmSlots {
    handle: RealmHandle,
    algo: HashAlgo,
    slots: [Slot; NUM_SLOTS],
}

impl RealmSlots {
    fn rim(&self) -> &Slot {
        &self.slots[RIM_INDEX]
    }

    fn set_rim(&mut self, value: Slot) {
        self.slots[RIM_INDEX] = value;
    }

    fn extend_data(&mut self, ipa: u64, flags: u64, content: Option<Slot>) {
        let mut d = DataDescriptor::new_zeroed();
        d.desc_type = desc_type::DATA;
        d.len = DESCRIPTOR_LEN;
        d.rim = *self.rim();
        d.ipa = ipa;
        d.flags = flags;
        if let Some(content) = content {
            d.content = content;
        }
        let rim = hash(self.algo, &[d.as_bytes()]);
        self.set_rim(rim);
    }

    fn extend_rec(&mut self, params: &MeasuredRecParams) {
        let mut d = RecDescriptor::new_zeroed();
        d.desc_type = desc_type::REC;
        d.len = DESCRIPTOR_LEN;
        d.rim = *self.rim();
        d.content = rec_content(self.algo, params);
        let rim = hash(self.algo, &[d.as_bytes()]);
        self.set_rim(rim);
    }

    fn extend_ripas(&mut self, base: u64, top: u64) {
        let mut d = RipasDescriptor::new_zeroed();
        d.desc_type = desc_type::RIPAS;
        d.len = DESCRIPTOR_LEN;
        d.rim = *self.rim();
        d.base = base;
        d.top = top;
        let rim = hash(self.algo, &[d.as_bytes()]);
        self.set_rim(rim);
    }

    fn extend_rem(&mut self, index: usize, data: &[u8]) {
        let len = self.algo.digest_len();
        let value = hash(self.algo, &[&self.slots[index][..len], data]);
        self.slots[index] = value;
    }
}

/// The measurement service state: the slots of up to `max_realms` realms.
///
/// All storage is reserved at construction, so handling a request never
/// allocates: an RMM cannot recover from an allocation failure in the middle
/// of an RMI command, and a full table is reported as
/// [`MeasurementError::NoSpace`] instead.
pub struct MeasurementService {
    /// Sorted by handle, for binary search.
    realms: Vec<RealmSlots>,
    max_realms: usize,
}

impl MeasurementService {
    /// A service that tracks at most `max_realms` realms at once.
    pub fn new(max_realms: usize) -> Self {
        Self {
            realms: Vec::with_capacity(max_realms),
            max_realms,
        }
    }

    /// Number of realms currently tracked.
    pub fn realm_count(&self) -> usize {
        self.realms.len()
    }

    /// Maximum number of realms tracked at once.
    pub fn max_realms(&self) -> usize {
        self.max_realms
    }

    /// The hash algorithm of a tracked realm, if any.
    pub fn algo(&self, realm: RealmHandle) -> Option<HashAlgo> {
        self.find(realm).ok().map(|i| self.realms[i].algo)
    }

    /// Handles one request that needs no lease. Convenience for in-process
    /// callers; see [`MeasurementService::handle_ref`].
    pub fn handle(&mut self, req: MeasurementRequest) -> MeasurementResponse {
        self.handle_ref(&req, &mut [])
    }

    /// Handles one request with the memory the caller lends for it
    /// (`leases`, indexed by [`ipc_schema::service::Lease`]).
    pub fn handle_ref(
        &mut self,
        req: &MeasurementRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> MeasurementResponse {
        match self.dispatch(req, leases) {
            Ok(resp) => resp,
            Err(e) => MeasurementResponse::Error(e),
        }
    }

    /// Decodes a postcard-encoded [`MeasurementRequest`] from `req`, handles
    /// it and encodes the [`MeasurementResponse`] into `resp`, returning the
    /// number of bytes written.
    ///
    /// Anything that is not exactly one valid request of at most
    /// [`REQUEST_MAX`] bytes is answered with
    /// `MeasurementResponse::Error(Malformed)`. Returns 0 only if `resp` is
    /// too small for the answer (size it with
    /// [`ipc_schema::service::measurement::RESPONSE_MAX`]). Never panics.
    pub fn handle_bytes(
        &mut self,
        req: &[u8],
        leases: &mut [LeaseMem<'_>],
        resp: &mut [u8],
    ) -> usize {
        let answer = match decode_request(req) {
            Some(request) => self.handle_ref(&request, leases),
            None => MeasurementResponse::Error(MeasurementError::Malformed),
        };
        postcard::to_slice(&answer, resp).map_or(0, |out| out.len())
    }

    fn find(&self, realm: RealmHandle) -> Result<usize, usize> {
        self.realms.binary_search_by(|r| r.handle.cmp(&realm))
    }

    fn realm_mut(&mut self, realm: RealmHandle) -> Result<&mut RealmSlots, MeasurementError> {
        match self.find(realm) {
            Ok(i) => Ok(&mut self.realms[i]),
            Err(_) => Err(MeasurementError::UnknownRealm),
        }
    }

    fn dispatch(
        &mut self,
        req: &MeasurementRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<MeasurementResponse, MeasurementError> {
        match req {
            MeasurementRequest::RealmCreate {
                realm,
                algo,
                params,
            } => {
                // The algorithm used and the one written into the measured
                // page must agree, or the RIM would attest to a lie.
                if HashAlgo::from_rmi(params.hash_algo) != Some(*algo) {
                    return Err(MeasurementError::AlgoMismatch);
                }
                let at = match self.find(*realm) {
                    Ok(_) => return Err(MeasurementError::RealmExists),
                    Err(at) => at,
                };
                if self.realms.len() >= self.max_realms {
                    return Err(MeasurementError::NoSpace);
                }
                let mut slots = [[0u8; SLOT_SIZE]; NUM_SLOTS];
                slots[RIM_INDEX] = rim_init(*algo, params);
                self.realms.insert(
                    at,
                    RealmSlots {
                        handle: *realm,
                        algo: *algo,
                        slots,
                    },
                );
                Ok(MeasurementResponse::Ok)
            }
            MeasurementRequest::Data {
                realm,
                ipa,
                flags,
                content,
                copy_to,
            } => {
                let algo = self.realm_mut(*realm)?.algo;
                let content = match (content, copy_to) {
                    (None, None) => None,
                    (Some(from), None) => {
                        let page = page_lease(leases, *from)?.bytes();
                        Some(hash(algo, &[page]))
                    }
                    (Some(from), Some(to)) => {
                        let (from, to) = lease_pair(leases, *from, *to)?;
                        Some(copy_and_hash(algo, from, to))
                    }
                    (None, Some(_)) => return Err(MeasurementError::Malformed),
                };
                self.realm_mut(*realm)?.extend_data(*ipa, *flags, content);
                Ok(MeasurementResponse::Ok)
            }
            MeasurementRequest::Rec { realm, params } => {
                let r = self.realm_mut(*realm)?;
                // The specification extends the RIM only for RECs that start
                // runnable; enforcing it here means a caller that reports
                // every REC_CREATE still gets the right RIM.
                if params.flags & rec_flags::RUNNABLE != 0 {
                    r.extend_rec(params);
                }
                Ok(MeasurementResponse::Ok)
            }
            MeasurementRequest::Ripas { realm, base, top } => {
                let r = self.realm_mut(*realm)?;
                r.extend_ripas(*base, *top);
                Ok(MeasurementResponse::Ok)
            }
            MeasurementRequest::Extend { realm, index, data } => {
                let r = self.realm_mut(*realm)?;
                let index = usize::from(*index);
                if index == RIM_INDEX || index >= NUM_SLOTS {
                    return Err(MeasurementError::BadIndex);
                }
                r.extend_rem(index, data.as_slice());
                Ok(MeasurementResponse::Ok)
            }
            MeasurementRequest::Read { realm, index } => {
                let r = self.realm_mut(*realm)?;
                let index = usize::from(*index);
                if index >= NUM_SLOTS {
                    return Err(MeasurementError::BadIndex);
                }
                Ok(MeasurementResponse::Value(Bytes(r.slots[index])))
            }
            MeasurementRequest::Destroy { realm } => match self.find(*realm) {
                Ok(i) => {
                    self.realms.remove(i);
                    Ok(MeasurementResponse::Ok)
                }
                Err(_) => Err(MeasurementError::UnknownRealm),
            },
        }
    }
}

/// The page-sized lease `lease`.
fn page_lease<'l, 'a>(
    leases: &'l mut [LeaseMem<'a>],
    lease: Lease,
) -> Result<&'l mut LeaseMem<'a>, MeasurementError> {
    match leases.get_mut(usize::from(lease.0)) {
        Some(l) if l.bytes().len() == GRANULE_SIZE => Ok(l),
        _ => Err(MeasurementError::Malformed),
    }
}

/// Two distinct page-sized leases: a source and a writable destination.
fn lease_pair<'l>(
    leases: &'l mut [LeaseMem<'_>],
    from: Lease,
    to: Lease,
) -> Result<(&'l [u8], &'l mut [u8]), MeasurementError> {
    let (f, t) = (usize::from(from.0), usize::from(to.0));
    if f == t || f.max(t) >= leases.len() {
        return Err(MeasurementError::Malformed);
    }
    let (lo, hi) = leases.split_at_mut(f.max(t));
    let (a, b) = (&mut lo[f.min(t)], &mut hi[0]);
    let (src, dst) = if f < t { (a, b) } else { (b, a) };
    let src = src.bytes();
    let dst = dst.bytes_mut().ok_or(MeasurementError::Malformed)?;
    if src.len() != GRANULE_SIZE || dst.len() != GRANULE_SIZE {
        return Err(MeasurementError::Malformed);
    }
    Ok((src, dst))
}

/// Decodes exactly one request; `None` for oversized input, invalid
/// encodings and trailing bytes.
fn decode_request(bytes: &[u8]) -> Option<MeasurementRequest> {
    if bytes.len() > REQUEST_MAX {
        return None;
    }
    match postcard::take_from_bytes::<MeasurementRequest>(bytes) {
        Ok((req, [])) => Some(req),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
