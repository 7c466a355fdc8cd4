//! A compact, versioned byte form of a [`BuildPlan`], so a host without a
//! file system or a TOML parser (the bare-metal `ns-host`) can carry a plan
//! made by a normal-world tool and execute it with the realm builder.
//!
//! [`encode`] writes a plan; [`decode`] (`no_std` + `alloc`) checks every
//! byte and gives back a [`BuildPlan`] equal to the one encoded, so the
//! existing `RealmBuilder::build(&BuildPlan)` runs it unchanged. Decoding
//! never panics and never allocates more than the input's own size
//! (plus a bounded amount per step), whatever the bytes are.
//!
//! Layout (all integers little-endian, no padding):
//!
//! ```text
//! header   magic "ATOLPLAN" (8) | version u16 (= 1) | flags u16 (= 0) | body_len u32
//! body     name_len u8 | name (UTF-8, name_len bytes; name_len 0xFF = no name)
//!          realm:  algo u8 (RMI encoding) | flags u64 | s2sz u64 | sve_vl u64 |
//!                  num_bps u64 | num_wps u64 | pmu_num_ctrs u64 | rpv [u8; 64] |
//!                  has_vmid u8 | vmid u16 | level_start i8 | num_start u32
//!          recs:   count u32, then per REC: index u32 | mpidr u64 | flags u64 |
//!                  pc u64 | gprs [u64; 8]
//!          images: count u32, then per image: pages u32 | pages * 4096 bytes
//!          steps:  count u32, then per step a tag u8 and its fields:
//!                  0 REALM_CREATE
//!                  1 RTT_CREATE     ipa u64 | level i8
//!                  2 INIT_RIPAS     base u64 | top u64 | level i8
//!                  3 DATA           ipa u64 | measured u8 | image u32 | page u32
//!                  4 REC_CREATE     rec u32
//!                  5 ACTIVATE
//! ```
//!
//! `body_len` is the number of bytes after the 16-byte header; the blob
//! has nothing after the body. A decoded plan also satisfies what the
//! builder and `BuildPlan::steps` rely on: it starts with `REALM_CREATE`,
//! ends with `ACTIVATE`, every index names an existing REC or image page,
//! and levels and ranges are in bounds.

use alloc::string::String;
use alloc::vec::Vec;

use ipc_schema::service::measurement::{MeasuredRealmParams, MeasuredRecParams};
use ipc_schema::service::HashAlgo;

use crate::plan::StepRepr;
use crate::{BuildPlan, RealmCreate, RecCreate, RttConfig, GRANULE, MAX_RECS, MAX_REC_GPRS};

/// First eight bytes of every plan blob.
pub const MAGIC: [u8; 8] = *b"ATOLPLAN";
/// The one format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header (magic, version, flags, body length).
pub const HEADER_LEN: usize = 16;
/// Largest blob accepted or produced: 256 MiB, more than any realm image a
/// host would embed, small enough that a length field cannot make a
/// decoder reserve absurd amounts.
pub const MAX_BLOB_LEN: usize = 256 << 20;
/// Most steps a plan blob may hold.
pub const MAX_STEPS: usize = 1 << 20;
/// Most images a plan blob may hold.
pub const MAX_IMAGES: usize = 64;
/// Longest realm name, in bytes.
pub const MAX_NAME_LEN: usize = 254;

const NO_NAME: u8 = 0xFF;
const PAGE: usize = GRANULE as usize;

/// Why bytes are not a plan blob (or a plan cannot be written as one).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The bytes end before a field does.
    #[error("plan blob truncated")]
    Truncated,
    /// The first eight bytes are not [`MAGIC`].
    #[error("not a plan blob (bad magic)")]
    BadMagic,
    /// A format version other than [`VERSION`].
    #[error("plan blob version {0} is not supported (expected {VERSION})")]
    UnsupportedVersion(u16),
    /// Flags that this version does not define.
    #[error("plan blob flags {0:#x} are not defined")]
    UnknownFlags(u16),
    /// The blob or a count in it is above its bound.
    #[error("plan blob {0} above its limit")]
    TooLarge(&'static str),
    /// Bytes after the body.
    #[error("bytes after the plan blob's body")]
    TrailingBytes,
    /// A field whose value is not allowed.
    #[error("plan blob field {0} is invalid")]
    Invalid(&'static str),
    /// The steps do not form a plan the builder can run.
    #[error("plan blob steps are inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Writes `plan` as a blob.
///
/// Fails only when the plan is beyond the format's bounds (a name longer
/// than [`MAX_NAME_LEN`], more than [`MAX_IMAGES`] images, more than
/// [`MAX_STEPS`] steps, or a blob over [`MAX_BLOB_LEN`]).
pub fn encode(plan: &BuildPlan) -> Result<Vec<u8>, BlobError> {
    let mut w = Vec::new();
    w.extend_from_slice(&MAGIC);
    w.extend_from_slice(&VERSION.to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes());
    w.extend_from_slice(&0u32.to_le_bytes()); // body_len, patched below

    match plan.name() {
        Some(name) if name.len() > MAX_NAME_LEN => return Err(BlobError::TooLarge("name")),
        Some(name) => {
            w.push(name.len() as u8);
            w.extend_from_slice(name.as_bytes());
        }
        None => w.push(NO_NAME),
    }

    let r = plan.realm();
    w.push(r.algo.to_rmi());
    for v in [
        r.params.flags,
        r.params.s2sz,
        r.params.sve_vl,
        r.params.num_bps,
        r.params.num_wps,
        r.params.pmu_num_ctrs,
    ] {
        put_u64(&mut w, v);
    }
    w.extend_from_slice(&r.rpv);
    w.push(r.vmid.is_some() as u8);
    w.extend_from_slice(&r.vmid.unwrap_or(0).to_le_bytes());
    w.push(r.rtt.level_start as u8);
    put_u32(&mut w, r.rtt.num_start);

    let recs = plan.recs();
    if recs.len() > MAX_RECS {
        return Err(BlobError::TooLarge("REC count"));
    }
    put_u32(&mut w, recs.len() as u32);
    for rec in recs {
        put_u32(&mut w, rec.index);
        put_u64(&mut w, rec.mpidr);
        put_u64(&mut w, rec.params.flags);
        put_u64(&mut w, rec.params.pc);
        for g in rec.params.gprs {
            put_u64(&mut w, g);
        }
    }

    let images = plan.image_bytes();
    if images.len() > MAX_IMAGES {
        return Err(BlobError::TooLarge("image count"));
    }
    put_u32(&mut w, images.len() as u32);
    for img in images {
        // BuildPlan pads every image to whole pages.
        let pages = u32::try_from(img.len() / PAGE).map_err(|_| BlobError::TooLarge("image"))?;
        put_u32(&mut w, pages);
        w.extend_from_slice(img);
        if w.len() > MAX_BLOB_LEN {
            return Err(BlobError::TooLarge("blob"));
        }
    }

    let steps = plan.step_reprs();
    if steps.len() > MAX_STEPS {
        return Err(BlobError::TooLarge("step count"));
    }
    put_u32(&mut w, steps.len() as u32);
    for s in steps {
        match *s {
            StepRepr::RealmCreate => w.push(0),
            StepRepr::RttCreate { ipa, level } => {
                w.push(1);
                put_u64(&mut w, ipa);
                w.push(level as u8);
            }
            StepRepr::InitRipas { base, top, level } => {
                w.push(2);
                put_u64(&mut w, base);
                put_u64(&mut w, top);
                w.push(level as u8);
            }
            StepRepr::Data {
                ipa,
                measured,
                image,
                offset,
            } => {
                w.push(3);
                put_u64(&mut w, ipa);
                w.push(measured as u8);
                put_u32(&mut w, image as u32);
                put_u32(&mut w, (offset / PAGE) as u32);
            }
            StepRepr::RecCreate(i) => {
                w.push(4);
                put_u32(&mut w, i as u32);
            }
            StepRepr::Activate => w.push(5),
        }
    }
    if w.len() > MAX_BLOB_LEN {
        return Err(BlobError::TooLarge("blob"));
    }
    let body_len = (w.len() - HEADER_LEN) as u32;
    w[12..16].copy_from_slice(&body_len.to_le_bytes());
    Ok(w)
}

/// Reads a blob back into the [`BuildPlan`] it was written from.
pub fn decode(bytes: &[u8]) -> Result<BuildPlan, BlobError> {
    if bytes.len() > MAX_BLOB_LEN {
        return Err(BlobError::TooLarge("blob"));
    }
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(BlobError::BadMagic);
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(BlobError::UnsupportedVersion(version));
    }
    let flags = r.u16()?;
    if flags != 0 {
        return Err(BlobError::UnknownFlags(flags));
    }
    let body_len = r.u32()? as usize;
    match (bytes.len() - HEADER_LEN).cmp(&body_len) {
        core::cmp::Ordering::Less => return Err(BlobError::Truncated),
        core::cmp::Ordering::Greater => return Err(BlobError::TrailingBytes),
        core::cmp::Ordering::Equal => {}
    }

    let name = match r.u8()? {
        NO_NAME => None,
        n => {
            let raw = r.take(n.into())?;
            Some(String::from(
                core::str::from_utf8(raw).map_err(|_| BlobError::Invalid("name"))?,
            ))
        }
    };

    let algo = HashAlgo::from_rmi(r.u8()?).ok_or(BlobError::Invalid("hash algorithm"))?;
    let mut p = [0u64; 6];
    for v in &mut p {
        *v = r.u64()?;
    }
    let mut rpv = [0u8; 64];
    rpv.copy_from_slice(r.take(64)?);
    let vmid = match (r.u8()?, r.u16()?) {
        (0, 0) => None,
        (1, v) => Some(v),
        _ => return Err(BlobError::Invalid("vmid")),
    };
    let level_start = r.u8()? as i8;
    if !(-1..=3).contains(&level_start) {
        return Err(BlobError::Invalid("rtt level_start"));
    }
    let num_start = r.u32()?;
    if !(1..=16).contains(&num_start) {
        return Err(BlobError::Invalid("rtt num_start"));
    }
    let realm = RealmCreate {
        algo,
        params: MeasuredRealmParams {
            flags: p[0],
            s2sz: p[1],
            sve_vl: p[2],
            num_bps: p[3],
            num_wps: p[4],
            pmu_num_ctrs: p[5],
            hash_algo: algo.to_rmi(),
        },
        rpv,
        vmid,
        rtt: RttConfig {
            level_start,
            num_start,
        },
    };

    let rec_count = r.u32()? as usize;
    if rec_count > MAX_RECS {
        return Err(BlobError::TooLarge("REC count"));
    }
    let mut recs = Vec::with_capacity(rec_count);
    for _ in 0..rec_count {
        let index = r.u32()?;
        let mpidr = r.u64()?;
        let flags = r.u64()?;
        let pc = r.u64()?;
        let mut gprs = [0u64; MAX_REC_GPRS];
        for g in &mut gprs {
            *g = r.u64()?;
        }
        recs.push(RecCreate {
            index,
            mpidr,
            params: MeasuredRecParams { flags, pc, gprs },
        });
    }

    let image_count = r.u32()? as usize;
    if image_count > MAX_IMAGES {
        return Err(BlobError::TooLarge("image count"));
    }
    let mut images = Vec::with_capacity(image_count);
    for _ in 0..image_count {
        let pages = r.u32()? as usize;
        // take() checks the bytes are there before anything is allocated.
        let len = pages.checked_mul(PAGE).ok_or(BlobError::Truncated)?;
        images.push(r.take(len)?.to_vec());
    }

    let step_count = r.u32()? as usize;
    if step_count > MAX_STEPS {
        return Err(BlobError::TooLarge("step count"));
    }
    // Every step takes at least its tag byte, so a count beyond the bytes
    // left is refused before reserving anything.
    if step_count > r.remaining() {
        return Err(BlobError::Truncated);
    }
    let mut steps = Vec::with_capacity(step_count);
    for _ in 0..step_count {
        let step = match r.u8()? {
            0 => StepRepr::RealmCreate,
            1 => {
                let ipa = r.u64()?;
                let level = level(r.u8()?)?;
                StepRepr::RttCreate { ipa, level }
            }
            2 => {
                let base = r.u64()?;
                let top = r.u64()?;
                let level = level(r.u8()?)?;
                if top < base {
                    return Err(BlobError::Invalid("RIPAS range"));
                }
                StepRepr::InitRipas { base, top, level }
            }
            3 => {
                let ipa = r.u64()?;
                let measured = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(BlobError::Invalid("measured flag")),
                };
                let image = r.u32()? as usize;
                let page = r.u32()? as usize;
                let pages = images
                    .get(image)
                    .map(|i| i.len() / PAGE)
                    .ok_or(BlobError::Inconsistent("data step names a missing image"))?;
                if page >= pages {
                    return Err(BlobError::Inconsistent("data step beyond its image"));
                }
                StepRepr::Data {
                    ipa,
                    measured,
                    image,
                    offset: page * PAGE,
                }
            }
            4 => {
                let i = r.u32()? as usize;
                if i >= recs.len() {
                    return Err(BlobError::Inconsistent("REC step names a missing REC"));
                }
                StepRepr::RecCreate(i)
            }
            5 => StepRepr::Activate,
            _ => return Err(BlobError::Invalid("step tag")),
        };
        steps.push(step);
    }
    if r.remaining() != 0 {
        return Err(BlobError::TrailingBytes);
    }

    let first = steps.first();
    let last = steps.last();
    if first != Some(&StepRepr::RealmCreate) {
        return Err(BlobError::Inconsistent("first step is not REALM_CREATE"));
    }
    if last != Some(&StepRepr::Activate) || steps.len() < 2 {
        return Err(BlobError::Inconsistent("last step is not ACTIVATE"));
    }
    let middle = &steps[1..steps.len() - 1];
    if middle
        .iter()
        .any(|s| matches!(s, StepRepr::RealmCreate | StepRepr::Activate))
    {
        return Err(BlobError::Inconsistent(
            "REALM_CREATE or ACTIVATE in the middle",
        ));
    }

    Ok(BuildPlan::from_parts(name, realm, recs, images, steps))
}

fn level(v: u8) -> Result<i8, BlobError> {
    let l = v as i8;
    if (-1..=3).contains(&l) {
        Ok(l)
    } else {
        Err(BlobError::Invalid("RTT level"))
    }
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        let end = self.at.checked_add(n).ok_or(BlobError::Truncated)?;
        let s = self.bytes.get(self.at..end).ok_or(BlobError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BlobError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, BlobError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, BlobError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, BlobError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, BlobError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, MemoryConfig, RamRegion, RealmConfig, RealmDescription, RecConfig};
    use alloc::vec;

    fn desc(ripas_level: i8, name: Option<&str>, vmid: Option<u16>) -> RealmDescription {
        RealmDescription {
            realm: RealmConfig {
                name: name.map(String::from),
                ipa_width: 33,
                hash_algo: HashAlgo::Sha256,
                rpv: [7; 64],
                lpa2: false,
                sve_vl: None,
                num_bps: 2,
                num_wps: 3,
                pmu_counters: None,
                vmid,
            },
            memory: MemoryConfig {
                ram: vec![
                    RamRegion {
                        base: 0,
                        size: 2 << 20,
                    },
                    RamRegion {
                        base: 0x40_0000,
                        size: 0x3000,
                    },
                ],
                ripas_level,
            },
            images: vec![
                Image {
                    name: "a".into(),
                    ipa: 0,
                    data: (0..9000u32).map(|i| i as u8).collect(),
                    measured: true,
                },
                Image {
                    name: "b".into(),
                    ipa: 0x40_1000,
                    data: vec![0xEE; 10],
                    measured: false,
                },
            ],
            recs: vec![
                RecConfig {
                    pc: 0,
                    gprs: vec![0xA5A5_A5A5_A5A5_A5A5; 8],
                    runnable: true,
                },
                RecConfig {
                    pc: 0x1000,
                    gprs: vec![],
                    runnable: false,
                },
            ],
        }
    }

    fn plans() -> Vec<BuildPlan> {
        vec![
            BuildPlan::new(&desc(3, Some("qemu-realm"), None)).unwrap(),
            BuildPlan::new(&desc(2, None, Some(5))).unwrap(),
        ]
    }

    #[test]
    fn round_trip() {
        for plan in plans() {
            let blob = encode(&plan).unwrap();
            assert_eq!(&blob[..8], &MAGIC);
            let back = decode(&blob).unwrap();
            assert_eq!(back, plan);
            assert!(back.steps().eq(plan.steps()));
            assert_eq!(encode(&back).unwrap(), blob);
        }
    }

    #[test]
    fn header_checks() {
        let blob = encode(&plans()[0]).unwrap();
        let mut b = blob.clone();
        b[0] ^= 1;
        assert_eq!(decode(&b), Err(BlobError::BadMagic));
        let mut b = blob.clone();
        b[8] = 2;
        assert_eq!(decode(&b), Err(BlobError::UnsupportedVersion(2)));
        let mut b = blob.clone();
        b[10] = 1;
        assert_eq!(decode(&b), Err(BlobError::UnknownFlags(1)));
        let mut b = blob.clone();
        b.push(0);
        assert_eq!(decode(&b), Err(BlobError::TrailingBytes));
        assert_eq!(decode(&blob[..blob.len() - 1]), Err(BlobError::Truncated));
        assert_eq!(decode(&[]), Err(BlobError::Truncated));
    }

    #[test]
    fn every_truncation_is_refused() {
        let blob = encode(&plans()[1]).unwrap();
        for n in 0..blob.len() {
            assert!(decode(&blob[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }

    /// Flipping any single byte (body length patched to stay consistent)
    /// either still decodes or is refused; it never panics, and whatever
    /// decodes can be iterated, which is what the builder does.
    #[test]
    fn byte_flips_never_panic() {
        let blob = encode(&plans()[0]).unwrap();
        for i in 0..blob.len() {
            for x in [0x01u8, 0x80, 0xFF] {
                let mut b = blob.clone();
                b[i] ^= x;
                if let Ok(plan) = decode(&b) {
                    assert!(plan.steps().count() >= 2);
                }
            }
        }
    }

    #[test]
    fn inconsistent_steps_are_refused() {
        let plan = plans()[0].clone();
        let steps_at = |blob: &[u8]| {
            // The step count sits right after the images.
            let count = plan.len() as u32;
            let mut i = blob.len();
            // Find the last occurrence of the count followed by tag 0.
            loop {
                i -= 1;
                if blob[i..].starts_with(&count.to_le_bytes()) && blob.get(i + 4) == Some(&0) {
                    return i + 4;
                }
            }
        };
        let blob = encode(&plan).unwrap();
        let at = steps_at(&blob);
        // First step not REALM_CREATE.
        let mut b = blob.clone();
        b[at] = 5;
        assert!(matches!(decode(&b), Err(BlobError::Inconsistent(_))));
        // Last step not ACTIVATE.
        let mut b = blob.clone();
        let last = b.len() - 1;
        b[last] = 0;
        assert!(matches!(decode(&b), Err(BlobError::Inconsistent(_))));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let blob = encode(&plans()[0]).unwrap();
        let mut b = blob[..HEADER_LEN].to_vec();
        b.push(NO_NAME);
        b.push(0); // sha-256
        b.extend_from_slice(&[0; 48 + 64]);
        b.extend_from_slice(&[0, 0, 0, 2]); // no vmid, level 2
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // no RECs
        b.extend_from_slice(&1u32.to_le_bytes()); // one image
        b.extend_from_slice(&u32::MAX.to_le_bytes()); // of 2^32 - 1 pages
        let body = (b.len() - HEADER_LEN) as u32;
        b[12..16].copy_from_slice(&body.to_le_bytes());
        assert_eq!(decode(&b), Err(BlobError::Truncated));
    }

    #[test]
    fn random_bytes_never_panic() {
        // A small xorshift generator: deterministic, no dev-dependency.
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let blob = encode(&plans()[1]).unwrap();
        for _ in 0..2000 {
            let len = (next() % 600) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the time start from a valid header so decoding goes deeper.
            if next() % 2 == 0 && b.len() >= HEADER_LEN {
                b[..HEADER_LEN].copy_from_slice(&blob[..HEADER_LEN]);
                let body = (b.len() - HEADER_LEN) as u32;
                b[12..16].copy_from_slice(&body.to_le_bytes());
            }
            let _ = decode(&b);
        }
        // Random corruption of a valid blob at several points.
        for _ in 0..2000 {
            let mut b = blob.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            if let Ok(plan) = decode(&b) {
                let _ = plan.steps().count();
            }
        }
    }
}
