//! Realm descriptions and the build plan derived from them.
//!
//! A realm description says what a realm is: its architectural parameters
//! (IPA width, hash algorithm, SVE, PMU, debug resources, personalization
//! value), its RAM, the images loaded into it and its RECs. Normal-world
//! tools read it from a TOML file (feature `std`, see [`toml`]) or build it
//! in code ([`RealmDescription`] has public fields).
//!
//! [`BuildPlan::new`] validates a description and turns it into the exact,
//! ordered list of RMI operations that build the realm. That order decides
//! the realm's RIM, so the plan is the single source of truth for it: the
//! realm builder (`atoll-rmi-client`) executes the plan against an RMM, and
//! `atoll measure` replays the same plan through the measurement service to
//! predict the RIM. If the two ever disagree, one of them did not follow
//! the plan.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

use alloc::string::String;
use alloc::vec::Vec;

pub use ipc_schema::service::HashAlgo;

pub mod blob;
mod plan;
#[cfg(feature = "std")]
pub mod toml;

pub use plan::{
    block_size, mpidr_of_index, ripas_entries, rtt_config, BuildPlan, RealmCreate, RecCreate,
    RttConfig, Step,
};

/// Size of a granule (page) in a realm's IPA space.
pub const GRANULE: u64 = ipc_schema::GRANULE_SIZE as u64;
/// Smallest IPA width accepted (the reference RMM's minimum).
pub const MIN_S2SZ: u8 = 32;
/// Largest IPA width without LPA2.
pub const MAX_S2SZ: u8 = 48;
/// Largest IPA width with LPA2.
pub const MAX_S2SZ_LPA2: u8 = 52;
/// Most RECs a description may declare. The architecture allows up to
/// 2^15 - 1 (`MAX_RECS_ORDER`), but each REC costs the host a granule plus
/// auxiliary granules and the plan creates them one by one; a description
/// asking for more is almost certainly a mistake.
pub const MAX_RECS: usize = 256;
/// Number of general-purpose registers a REC's initial state can set (x0..x7).
pub const MAX_REC_GPRS: usize = 8;
/// Largest SVE vector-length encoding (`RMI_FEATURES` SVE_VL is 4 bits).
pub const MAX_SVE_VL: u8 = 15;
/// Largest PMU counter count (`RMI_FEATURES` PMU_NUM_CTRS is 5 bits).
pub const MAX_PMU_COUNTERS: u8 = 31;
/// Largest breakpoint/watchpoint encoding (`RMI_FEATURES` fields are 6 bits).
pub const MAX_BPS_WPS: u8 = 63;

/// A realm's architectural parameters: everything that goes into
/// `RmiRealmParams`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmConfig {
    /// Human name, for messages and reference values; not measured.
    pub name: Option<String>,
    /// IPA width in bits (`s2sz`). The lower half of the IPA space is
    /// protected (realm memory), the upper half unprotected (shared).
    pub ipa_width: u8,
    /// Measurement hash algorithm.
    pub hash_algo: HashAlgo,
    /// Realm personalization value; not measured into the RIM but reported
    /// in the token.
    pub rpv: [u8; 64],
    /// Request LPA2 (52-bit IPAs).
    pub lpa2: bool,
    /// SVE vector length encoding (`(VL + 1) * 128` bits); `None` disables SVE.
    pub sve_vl: Option<u8>,
    /// `RmiRealmParams::num_bps`, in the RMI encoding.
    pub num_bps: u8,
    /// `RmiRealmParams::num_wps`, in the RMI encoding.
    pub num_wps: u8,
    /// Number of PMU counters; `None` disables the PMU.
    pub pmu_counters: Option<u8>,
    /// Stage-2 VMID, when the description pins one; otherwise the host picks.
    pub vmid: Option<u16>,
}

/// A range of protected IPA space whose RIPAS becomes RAM at build time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RamRegion {
    /// First IPA.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

/// The realm's memory layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryConfig {
    /// RAM regions (RIPAS RAM from the start).
    pub ram: Vec<RamRegion>,
    /// How deep the RTTs are built before `RMI_RTT_INIT_RIPAS` runs: 2 (each
    /// 2 MiB block covered by a region is one entry, and one RIPAS
    /// measurement) or 3 (every 4 KiB page is one entry). The RMM measures
    /// each RTT entry it initialises, so this changes the RIM.
    pub ripas_level: i8,
}

/// An image loaded into the realm with `RMI_DATA_CREATE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Name for messages (the file name when read from TOML).
    pub name: String,
    /// IPA of the first byte; page-aligned.
    pub ipa: u64,
    /// The bytes; the last page is zero-padded.
    pub data: Vec<u8>,
    /// Whether page contents are hashed into the RIM
    /// (`RMI_MEASURE_CONTENT`). Unmeasured pages still contribute their IPA.
    pub measured: bool,
}

impl Image {
    /// Size of the image rounded up to whole pages.
    pub fn padded_len(&self) -> u64 {
        (self.data.len() as u64).div_ceil(GRANULE) * GRANULE
    }
}

/// A REC (virtual CPU). RECs are created in the order listed; the n-th gets
/// MPIDR index n, as the specification requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecConfig {
    /// Entry point IPA.
    pub pc: u64,
    /// Initial x0..x7 (missing registers are zero).
    pub gprs: Vec<u64>,
    /// Whether the REC starts runnable. Only runnable RECs are measured;
    /// others wait for `PSCI_CPU_ON`.
    pub runnable: bool,
}

/// A complete realm description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmDescription {
    /// Architectural parameters.
    pub realm: RealmConfig,
    /// Memory layout.
    pub memory: MemoryConfig,
    /// Images, in load order.
    pub images: Vec<Image>,
    /// RECs, in creation order.
    pub recs: Vec<RecConfig>,
}

/// Why a realm description was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DescriptionError {
    /// The file could not be read.
    #[cfg(feature = "std")]
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        message: String,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("invalid realm description: {0}")]
    Syntax(String),
    /// A hash algorithm other than sha-256 or sha-512.
    #[error("unknown hash algorithm {0:?} (expected \"sha-256\" or \"sha-512\")")]
    UnknownHashAlgo(String),
    /// A hex string that is not valid hex.
    #[error("{field}: invalid hex: {reason}")]
    BadHex {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An RPV longer than 64 bytes.
    #[error("realm.rpv is {0} bytes; the personalization value holds at most 64")]
    RpvTooLong(usize),
    /// A size string that cannot be parsed.
    #[error("{field}: invalid size {value:?} (use a number of bytes or e.g. \"2MiB\", \"64K\")")]
    BadSize {
        /// Which field.
        field: String,
        /// The text.
        value: String,
    },
    /// IPA width out of range.
    #[error("realm.ipa_width {value} is out of range {min}..={max}{}", if *.lpa2 { "" } else { " (set lpa2 = true for more than 48 bits)" })]
    IpaWidth {
        /// Requested width.
        value: u8,
        /// Minimum.
        min: u8,
        /// Maximum for this LPA2 setting.
        max: u8,
        /// Whether LPA2 was requested.
        lpa2: bool,
    },
    /// A parameter outside what its RMI encoding can hold.
    #[error("realm.{field} = {value} is out of range {min}..={max}")]
    ParamRange {
        /// Which parameter.
        field: &'static str,
        /// Its value.
        value: i64,
        /// Minimum.
        min: i64,
        /// Maximum.
        max: i64,
    },
    /// `ripas_level` other than 2 or 3.
    #[error("memory.ripas_level must be 2 or 3, not {0}")]
    RipasLevel(i64),
    /// No RAM at all.
    #[error("memory.ram is empty: a realm needs RAM")]
    NoRam,
    /// A RAM region of size zero.
    #[error("memory.ram[{0}] has size 0")]
    EmptyRam(usize),
    /// A RAM region not on a page boundary.
    #[error("memory.ram[{index}] (base {base:#x}, size {size:#x}) is not 4 KiB aligned")]
    UnalignedRam {
        /// Region index.
        index: usize,
        /// Base.
        base: u64,
        /// Size.
        size: u64,
    },
    /// A RAM region reaching into the unprotected half of the IPA space.
    #[error("memory.ram[{index}] ends at {top:#x}, beyond the protected IPA space (top {limit:#x} for ipa_width {ipa_width})")]
    RamNotProtected {
        /// Region index.
        index: usize,
        /// End of the region.
        top: u128,
        /// First unprotected IPA.
        limit: u64,
        /// The IPA width.
        ipa_width: u8,
    },
    /// Two RAM regions overlap.
    #[error("memory.ram[{first}] and memory.ram[{second}] overlap")]
    RamOverlap {
        /// One region.
        first: usize,
        /// The other.
        second: usize,
    },
    /// An image with no bytes.
    #[error("image {0:?} is empty")]
    EmptyImage(String),
    /// An image IPA not on a page boundary.
    #[error("image {name:?}: ipa {ipa:#x} is not 4 KiB aligned")]
    UnalignedImage {
        /// The image.
        name: String,
        /// Its IPA.
        ipa: u64,
    },
    /// An image reaching into the unprotected half of the IPA space.
    #[error(
        "image {name:?} ({ipa:#x}..{top:#x}) lies beyond the protected IPA space (top {limit:#x})"
    )]
    ImageNotProtected {
        /// The image.
        name: String,
        /// Its IPA.
        ipa: u64,
        /// Its end (page-padded).
        top: u128,
        /// First unprotected IPA.
        limit: u64,
    },
    /// An image not entirely inside one RAM region.
    #[error("image {name:?} ({ipa:#x}..{top:#x}) is not inside a RAM region")]
    ImageOutsideRam {
        /// The image.
        name: String,
        /// Its IPA.
        ipa: u64,
        /// Its end (page-padded).
        top: u128,
    },
    /// Two images share a page.
    #[error("images {first:?} and {second:?} overlap")]
    ImageOverlap {
        /// One image.
        first: String,
        /// The other.
        second: String,
    },
    /// No REC.
    #[error("the realm has no [[rec]]: it could never run")]
    NoRecs,
    /// More RECs than [`MAX_RECS`].
    #[error("{count} RECs declared; at most {max} are supported")]
    TooManyRecs {
        /// Declared.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// More than eight initial registers.
    #[error("rec[{index}] sets {count} gprs; only x0..x7 can be set")]
    TooManyGprs {
        /// REC index.
        index: usize,
        /// Registers given.
        count: usize,
    },
    /// An entry point that is not 4-byte aligned.
    #[error("rec[{index}]: pc {pc:#x} is not 4-byte aligned")]
    UnalignedPc {
        /// REC index.
        index: usize,
        /// The pc.
        pc: u64,
    },
    /// A runnable REC whose entry point is not inside any image.
    #[error(
        "rec[{index}]: pc {pc:#x} is not inside any image, so the REC would start in empty memory"
    )]
    PcOutsideImages {
        /// REC index.
        index: usize,
        /// The pc.
        pc: u64,
    },
}

impl RealmDescription {
    /// Checks every rule a description must satisfy before it can be built.
    /// [`BuildPlan::new`] calls it; it is public so editors and tools can
    /// report problems without building a plan.
    pub fn validate(&self) -> Result<(), DescriptionError> {
        let r = &self.realm;
        let max = if r.lpa2 { MAX_S2SZ_LPA2 } else { MAX_S2SZ };
        if r.ipa_width < MIN_S2SZ || r.ipa_width > max {
            return Err(DescriptionError::IpaWidth {
                value: r.ipa_width,
                min: MIN_S2SZ,
                max,
                lpa2: r.lpa2,
            });
        }
        let range = |field, value: u8, min: u8, max: u8| {
            if value < min || value > max {
                Err(DescriptionError::ParamRange {
                    field,
                    value: value.into(),
                    min: min.into(),
                    max: max.into(),
                })
            } else {
                Ok(())
            }
        };
        // 0 is a reserved encoding for both (RmiRealmParamsIsValid).
        range("num_bps", r.num_bps, 1, MAX_BPS_WPS)?;
        range("num_wps", r.num_wps, 1, MAX_BPS_WPS)?;
        if let Some(vl) = r.sve_vl {
            range("sve_vl", vl, 0, MAX_SVE_VL)?;
        }
        if let Some(n) = r.pmu_counters {
            range("pmu_counters", n, 0, MAX_PMU_COUNTERS)?;
        }

        let m = &self.memory;
        if m.ripas_level != 2 && m.ripas_level != 3 {
            return Err(DescriptionError::RipasLevel(m.ripas_level.into()));
        }
        let limit = self.protected_limit();
        if m.ram.is_empty() {
            return Err(DescriptionError::NoRam);
        }
        for (index, region) in m.ram.iter().enumerate() {
            if region.size == 0 {
                return Err(DescriptionError::EmptyRam(index));
            }
            if region.base % GRANULE != 0 || region.size % GRANULE != 0 {
                return Err(DescriptionError::UnalignedRam {
                    index,
                    base: region.base,
                    size: region.size,
                });
            }
            let top = u128::from(region.base) + u128::from(region.size);
            if top > u128::from(limit) {
                return Err(DescriptionError::RamNotProtected {
                    index,
                    top,
                    limit,
                    ipa_width: r.ipa_width,
                });
            }
        }
        for (i, a) in m.ram.iter().enumerate() {
            for (j, b) in m.ram.iter().enumerate().skip(i + 1) {
                if a.base < b.base + b.size && b.base < a.base + a.size {
                    return Err(DescriptionError::RamOverlap {
                        first: i,
                        second: j,
                    });
                }
            }
        }

        for img in &self.images {
            if img.data.is_empty() {
                return Err(DescriptionError::EmptyImage(img.name.clone()));
            }
            if img.ipa % GRANULE != 0 {
                return Err(DescriptionError::UnalignedImage {
                    name: img.name.clone(),
                    ipa: img.ipa,
                });
            }
            let top = u128::from(img.ipa) + u128::from(img.padded_len());
            if top > u128::from(limit) {
                return Err(DescriptionError::ImageNotProtected {
                    name: img.name.clone(),
                    ipa: img.ipa,
                    top,
                    limit,
                });
            }
            // Both ends are below the protected limit now, so no overflow.
            let top = top as u64;
            if !m
                .ram
                .iter()
                .any(|reg| reg.base <= img.ipa && top <= reg.base + reg.size)
            {
                return Err(DescriptionError::ImageOutsideRam {
                    name: img.name.clone(),
                    ipa: img.ipa,
                    top: top.into(),
                });
            }
        }
        for (i, a) in self.images.iter().enumerate() {
            for b in self.images.iter().skip(i + 1) {
                if a.ipa < b.ipa + b.padded_len() && b.ipa < a.ipa + a.padded_len() {
                    return Err(DescriptionError::ImageOverlap {
                        first: a.name.clone(),
                        second: b.name.clone(),
                    });
                }
            }
        }

        if self.recs.is_empty() {
            return Err(DescriptionError::NoRecs);
        }
        if self.recs.len() > MAX_RECS {
            return Err(DescriptionError::TooManyRecs {
                count: self.recs.len(),
                max: MAX_RECS,
            });
        }
        for (index, rec) in self.recs.iter().enumerate() {
            if rec.gprs.len() > MAX_REC_GPRS {
                return Err(DescriptionError::TooManyGprs {
                    index,
                    count: rec.gprs.len(),
                });
            }
            if rec.pc % 4 != 0 {
                return Err(DescriptionError::UnalignedPc { index, pc: rec.pc });
            }
            if rec.runnable
                && !self
                    .images
                    .iter()
                    .any(|img| img.ipa <= rec.pc && rec.pc < img.ipa + img.padded_len())
            {
                return Err(DescriptionError::PcOutsideImages { index, pc: rec.pc });
            }
        }
        Ok(())
    }

    /// First IPA of the unprotected half: `2^(ipa_width - 1)`.
    pub fn protected_limit(&self) -> u64 {
        1u64 << (self.realm.ipa_width.clamp(1, 64) - 1)
    }
}

#[cfg(test)]
mod tests;
