//! The build plan: the ordered RMI operations that build a realm.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use ipc_schema::rmi::{realm_flags, rec_flags};
use ipc_schema::service::measurement::{MeasuredRealmParams, MeasuredRecParams};
use ipc_schema::service::HashAlgo;

use crate::{DescriptionError, RealmDescription, GRANULE, MAX_REC_GPRS};

/// Where the stage-2 walk starts for a realm, as `RMI_REALM_CREATE` needs it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RttConfig {
    /// `rtt_level_start`.
    pub level_start: i8,
    /// `rtt_num_start`: number of concatenated starting-level RTTs.
    pub num_start: u32,
}

/// The starting RTT level and number of concatenated starting tables for an
/// IPA width (4 KiB granule), or `None` if no valid configuration exists.
///
/// Among the configurations `RttConfigIsValid` accepts, this picks the one
/// with the fewest levels (concatenating up to 16 starting tables), as Linux
/// KVM does: 32-34 bits start at level 2 with 4-16 tables, 35-43 at level 1
/// with 1-16 tables, 44-52 at level 0 with 1-16 tables (49-52 need LPA2).
pub const fn rtt_config(ipa_width: u8) -> Option<RttConfig> {
    let (level_start, num_start) = match ipa_width {
        32..=34 => (2, 1u32 << (ipa_width - 30)),
        35..=39 => (1, 1),
        40..=43 => (1, 1u32 << (ipa_width - 39)),
        44..=48 => (0, 1),
        49..=52 => (0, 1u32 << (ipa_width - 48)),
        _ => return None,
    };
    Some(RttConfig {
        level_start,
        num_start,
    })
}

/// Bytes mapped by one RTT entry at `level` (4 KiB granule): 4 KiB at level
/// 3, 2 MiB at 2, 1 GiB at 1, 512 GiB at 0.
pub const fn block_size(level: i8) -> u64 {
    1u64 << (12 + 9 * (3 - level) as u32)
}

/// `RMI_REALM_CREATE`: the realm's parameters, measured and not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmCreate {
    /// Measurement hash algorithm.
    pub algo: HashAlgo,
    /// The `RmiRealmParams` fields hashed into the initial RIM.
    pub params: MeasuredRealmParams,
    /// Personalization value (not measured).
    pub rpv: [u8; 64],
    /// VMID pinned by the description, if any.
    pub vmid: Option<u16>,
    /// Starting RTT level and count.
    pub rtt: RttConfig,
}

/// `RMI_REC_CREATE` of one REC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecCreate {
    /// REC index (creation order).
    pub index: u32,
    /// `RmiRecParams::mpidr` for that index, in the RMI encoding
    /// (Aff0[3:0], Aff1[15:8], Aff2[23:16], Aff3[31:24]).
    pub mpidr: u64,
    /// The measured fields: flags, pc and x0..x7.
    pub params: MeasuredRecParams,
}

impl RecCreate {
    /// Whether the REC starts runnable (and is measured).
    pub fn runnable(&self) -> bool {
        self.params.flags & rec_flags::RUNNABLE != 0
    }
}

/// One operation of a [`BuildPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// `RMI_REALM_CREATE` (always the first step).
    RealmCreate(&'a RealmCreate),
    /// `RMI_RTT_CREATE` of the RTT at `level` covering `ipa` (aligned to the
    /// parent level's block size).
    RttCreate {
        /// IPA, aligned to `block_size(level - 1)`.
        ipa: u64,
        /// Level of the new RTT.
        level: i8,
    },
    /// `RMI_RTT_INIT_RIPAS` over `[base, top)`, repeated from `out_top`
    /// until it reaches `top`. Every RTT entry in the range is at `level`,
    /// so the RMM measures one RIPAS descriptor per `block_size(level)`.
    InitRipas {
        /// First IPA, aligned to `block_size(level)`.
        base: u64,
        /// End, aligned to `block_size(level)`.
        top: u64,
        /// Level of the RTT entries covering the range.
        level: i8,
    },
    /// `RMI_DATA_CREATE` of one page.
    Data {
        /// IPA of the page.
        ipa: u64,
        /// `RMI_MEASURE_CONTENT`.
        measured: bool,
        /// The page's 4 KiB content.
        content: &'a [u8],
    },
    /// `RMI_REC_AUX_COUNT` + `RMI_REC_CREATE`.
    RecCreate(&'a RecCreate),
    /// `RMI_REALM_ACTIVATE` (always the last step).
    Activate,
}

impl Step<'_> {
    /// The `RMI_DATA_CREATE` flags of a data step.
    pub fn data_flags(measured: bool) -> u64 {
        if measured {
            ipc_schema::rmi::data_flags::MEASURE_CONTENT
        } else {
            0
        }
    }
}

/// The RTT entries `RMI_RTT_INIT_RIPAS` initialises (and measures) over
/// `[base, top)` when every entry is at `level`: `(entry base, entry top)`.
pub fn ripas_entries(base: u64, top: u64, level: i8) -> impl Iterator<Item = (u64, u64)> {
    let size = block_size(level);
    (0..(top.saturating_sub(base)) / size).map(move |i| {
        let b = base + i * size;
        (b, (b + size).min(top))
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StepRepr {
    RealmCreate,
    RttCreate {
        ipa: u64,
        level: i8,
    },
    InitRipas {
        base: u64,
        top: u64,
        level: i8,
    },
    Data {
        ipa: u64,
        measured: bool,
        image: usize,
        offset: usize,
    },
    RecCreate(usize),
    Activate,
}

/// The deterministic, ordered list of RMI operations that builds a realm
/// from a validated [`RealmDescription`].
///
/// The order (which decides the RIM):
///
/// 1. `REALM_CREATE`.
/// 2. `RTT_CREATE` for every table the RAM regions need down to
///    `ripas_level` (plus level-3 tables for the parts of RAM that do not
///    fill a whole 2 MiB block when `ripas_level` is 2), parents first,
///    in ascending IPA order.
/// 3. `RTT_INIT_RIPAS` over all RAM in ascending IPA order.
/// 4. For each image in ascending IPA order and each of its pages: any
///    missing level-3 `RTT_CREATE`, then `DATA_CREATE`.
/// 5. `REC_CREATE` for each REC in the order listed.
/// 6. `REALM_ACTIVATE`.
///
/// Images and RAM regions are sorted, so listing them in another order in
/// the description does not change the realm or its RIM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildPlan {
    name: Option<String>,
    realm: RealmCreate,
    recs: Vec<RecCreate>,
    /// Image bytes, zero-padded to whole pages.
    images: Vec<Vec<u8>>,
    steps: Vec<StepRepr>,
}

impl BuildPlan {
    /// Validates `desc` and derives its plan.
    pub fn new(desc: &RealmDescription) -> Result<Self, DescriptionError> {
        desc.validate()?;
        let r = &desc.realm;
        let Some(rtt) = rtt_config(r.ipa_width) else {
            // validate() bounds ipa_width to what rtt_config covers.
            return Err(DescriptionError::IpaWidth {
                value: r.ipa_width,
                min: crate::MIN_S2SZ,
                max: crate::MAX_S2SZ_LPA2,
                lpa2: r.lpa2,
            });
        };
        let mut flags = 0;
        if r.lpa2 {
            flags |= realm_flags::LPA2;
        }
        if r.sve_vl.is_some() {
            flags |= realm_flags::SVE;
        }
        if r.pmu_counters.is_some() {
            flags |= realm_flags::PMU;
        }
        let realm = RealmCreate {
            algo: r.hash_algo,
            params: MeasuredRealmParams {
                flags,
                s2sz: r.ipa_width.into(),
                sve_vl: r.sve_vl.unwrap_or(0).into(),
                num_bps: r.num_bps.into(),
                num_wps: r.num_wps.into(),
                pmu_num_ctrs: r.pmu_counters.unwrap_or(0).into(),
                hash_algo: r.hash_algo.to_rmi(),
            },
            rpv: r.rpv,
            vmid: r.vmid,
            rtt,
        };

        let mut b = Builder {
            level_start: rtt.level_start,
            tables: BTreeSet::new(),
            steps: alloc::vec![StepRepr::RealmCreate],
        };

        // RAM: tables, then RIPAS.
        let mut ram = desc.memory.ram.clone();
        ram.sort_by_key(|reg| reg.base);
        let ripas_level = desc.memory.ripas_level;
        let mut ripas = Vec::new();
        for reg in &ram {
            let (base, top) = (reg.base, reg.base + reg.size);
            if ripas_level == 3 {
                b.tables_over(base, top, 3);
                ripas.push((base, top, 3));
                continue;
            }
            // ripas_level 2: 2 MiB entries where RAM fills a block, level-3
            // tables only at unaligned edges (the RMM cannot initialise a
            // partial block entry).
            let l2 = block_size(2);
            b.tables_over(base, top, 2);
            let head_end = base.next_multiple_of(l2).min(top);
            if base % l2 != 0 {
                b.tables_over(base, head_end, 3);
                ripas.push((base, head_end, 3));
            }
            let (mid_base, mid_top) = (base.next_multiple_of(l2), top / l2 * l2);
            if mid_base < mid_top {
                ripas.push((mid_base, mid_top, 2));
            }
            let tail_base = (top / l2 * l2).max(head_end);
            if tail_base < top {
                b.tables_over(tail_base, top, 3);
                ripas.push((tail_base, top, 3));
            }
        }
        for (base, top, level) in ripas {
            b.steps.push(StepRepr::InitRipas { base, top, level });
        }

        // Images.
        let mut order: Vec<usize> = (0..desc.images.len()).collect();
        order.sort_by_key(|&i| desc.images[i].ipa);
        let mut images = Vec::with_capacity(desc.images.len());
        for i in order {
            let img = &desc.images[i];
            let mut data = img.data.clone();
            data.resize(img.padded_len() as usize, 0);
            let index = images.len();
            for offset in (0..data.len()).step_by(GRANULE as usize) {
                let ipa = img.ipa + offset as u64;
                b.tables_over(ipa, ipa + GRANULE, 3);
                b.steps.push(StepRepr::Data {
                    ipa,
                    measured: img.measured,
                    image: index,
                    offset,
                });
            }
            images.push(data);
        }

        // RECs.
        let mut recs = Vec::with_capacity(desc.recs.len());
        for (index, rec) in desc.recs.iter().enumerate() {
            let mut gprs = [0u64; MAX_REC_GPRS];
            gprs[..rec.gprs.len()].copy_from_slice(&rec.gprs);
            let index = index as u32;
            recs.push(RecCreate {
                index,
                mpidr: mpidr_of_index(index),
                params: MeasuredRecParams {
                    flags: if rec.runnable { rec_flags::RUNNABLE } else { 0 },
                    pc: rec.pc,
                    gprs,
                },
            });
            b.steps.push(StepRepr::RecCreate(recs.len() - 1));
        }
        b.steps.push(StepRepr::Activate);

        Ok(Self {
            name: r.name.clone(),
            realm,
            recs,
            images,
            steps: b.steps,
        })
    }

    /// The realm's name, if the description gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The `REALM_CREATE` parameters.
    pub fn realm(&self) -> &RealmCreate {
        &self.realm
    }

    /// The measurement hash algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.realm.algo
    }

    /// The RECs, in creation order.
    pub fn recs(&self) -> &[RecCreate] {
        &self.recs
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Always false: a plan has at least `REALM_CREATE` and `REALM_ACTIVATE`.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps, in the order they must run.
    pub fn steps(&self) -> impl Iterator<Item = Step<'_>> + '_ {
        self.steps.iter().map(move |s| match *s {
            StepRepr::RealmCreate => Step::RealmCreate(&self.realm),
            StepRepr::RttCreate { ipa, level } => Step::RttCreate { ipa, level },
            StepRepr::InitRipas { base, top, level } => Step::InitRipas { base, top, level },
            StepRepr::Data {
                ipa,
                measured,
                image,
                offset,
            } => Step::Data {
                ipa,
                measured,
                content: &self.images[image][offset..offset + GRANULE as usize],
            },
            StepRepr::RecCreate(i) => Step::RecCreate(&self.recs[i]),
            StepRepr::Activate => Step::Activate,
        })
    }

    /// Number of `RTT_CREATE` steps (non-starting RTT granules needed).
    pub fn rtt_count(&self) -> usize {
        self.count(|s| matches!(s, StepRepr::RttCreate { .. }))
    }

    /// Number of `DATA_CREATE` steps (data granules needed).
    pub fn data_page_count(&self) -> usize {
        self.count(|s| matches!(s, StepRepr::Data { .. }))
    }

    /// Number of RIPAS descriptors the build measures.
    pub fn ripas_entry_count(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match *s {
                StepRepr::InitRipas { base, top, level } => (top - base) / block_size(level),
                _ => 0,
            })
            .sum()
    }

    /// Reassembles a plan from its parts; [`crate::blob::decode`] checks
    /// them for consistency first.
    pub(crate) fn from_parts(
        name: Option<String>,
        realm: RealmCreate,
        recs: Vec<RecCreate>,
        images: Vec<Vec<u8>>,
        steps: Vec<StepRepr>,
    ) -> Self {
        Self {
            name,
            realm,
            recs,
            images,
            steps,
        }
    }

    /// The page-padded image bytes data steps refer to.
    pub(crate) fn image_bytes(&self) -> &[Vec<u8>] {
        &self.images
    }

    /// The steps in their stored form.
    pub(crate) fn step_reprs(&self) -> &[StepRepr] {
        &self.steps
    }

    fn count(&self, f: impl Fn(&StepRepr) -> bool) -> usize {
        self.steps.iter().filter(|s| f(s)).count()
    }
}

/// The RMI MPIDR encoding of REC index `i` (`RecIndex` inverted):
/// Aff0 = i[3:0], Aff1 = i[11:4], Aff2 = i[19:12], Aff3 = i[27:20].
pub fn mpidr_of_index(i: u32) -> u64 {
    ipc_schema::rmi::rec_mpidr::of_index(u64::from(i))
}

struct Builder {
    level_start: i8,
    tables: BTreeSet<(i8, u64)>,
    steps: Vec<StepRepr>,
}

impl Builder {
    /// Adds `RTT_CREATE`s so that every IPA in `[base, top)` is covered by
    /// RTTs down to `level`, skipping tables already created.
    fn tables_over(&mut self, base: u64, top: u64, level: i8) {
        if level <= self.level_start {
            return;
        }
        // Each table at `level` covers one entry of `level - 1`.
        let span = block_size(level - 1);
        let mut addr = base / span * span;
        while addr < top {
            for l in self.level_start + 1..=level {
                let ipa = addr / block_size(l - 1) * block_size(l - 1);
                if self.tables.insert((l, ipa)) {
                    self.steps.push(StepRepr::RttCreate { ipa, level: l });
                }
            }
            addr += span;
        }
    }
}
