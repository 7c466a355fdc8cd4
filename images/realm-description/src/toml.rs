//! Reading realm descriptions from TOML files.
//!
//! ```toml
//! [realm]
//! name = "hello-realm"          # optional, for messages and reference values
//! ipa_width = 40                # s2sz; "s2sz" is accepted as an alias
//! hash_algo = "sha-256"         # or "sha-512"
//! rpv = "00112233..."           # optional, up to 64 bytes of hex, zero-padded
//! lpa2 = false                  # optional, 52-bit IPAs
//! sve_vl = 1                    # optional; present = SVE enabled
//! num_bps = 1                   # optional, RmiRealmParams encoding, default 1
//! num_wps = 1                   # optional, RmiRealmParams encoding, default 1
//! pmu_counters = 4              # optional; present = PMU enabled
//! vmid = 7                      # optional; otherwise the host picks one
//!
//! [memory]
//! ripas_level = 3               # required: 2 or 3, changes the RIM
//! ram = [ { base = 0x4000_0000, size = "4MiB" } ]
//!
//! [[image]]
//! path = "hello.bin"            # relative to this file
//! ipa = 0x4000_0000
//! measured = true               # optional, default true
//!
//! [[rec]]
//! pc = 0x4000_0000
//! gprs = [0x4020_0000]          # optional, x0..x7; "0xA5A5_A5A5_A5A5_A5A5"
//!                               # as a string for values above i64::MAX
//! runnable = true               # optional, default true
//! ```
//!
//! Unknown keys are errors, so a typo cannot silently change a realm.

use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::{
    DescriptionError, HashAlgo, Image, MemoryConfig, RamRegion, RealmConfig, RealmDescription,
    RecConfig,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    realm: RawRealm,
    memory: RawMemory,
    #[serde(default)]
    image: Vec<RawImage>,
    #[serde(default)]
    rec: Vec<RawRec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    name: Option<String>,
    #[serde(alias = "s2sz")]
    ipa_width: i64,
    hash_algo: String,
    rpv: Option<String>,
    #[serde(default)]
    lpa2: bool,
    sve_vl: Option<i64>,
    num_bps: Option<i64>,
    num_wps: Option<i64>,
    pmu_counters: Option<i64>,
    vmid: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    ripas_level: i64,
    ram: Vec<RawRam>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRam {
    base: u64,
    size: Size,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    path: PathBuf,
    ipa: u64,
    #[serde(default = "yes")]
    measured: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRec {
    pc: u64,
    #[serde(default)]
    gprs: Vec<Reg>,
    #[serde(default = "yes")]
    runnable: bool,
}

fn yes() -> bool {
    true
}

/// A 64-bit register value: a TOML integer (which holds at most
/// `i64::MAX`), or a string `"0x..."` (underscores allowed) or decimal
/// digits for values with the top bit set, such as `"0xA5A5_A5A5_A5A5_A5A5"`.
struct Reg(u64);

impl<'de> Deserialize<'de> for Reg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Reg;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(
                    "a register value: an integer or a string like \"0xA5A5_A5A5_A5A5_A5A5\"",
                )
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Reg, E> {
                u64::try_from(v)
                    .map(Reg)
                    .map_err(|_| E::custom("a register value cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Reg, E> {
                Ok(Reg(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Reg, E> {
                let t: String = v.chars().filter(|c| *c != '_').collect();
                let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                    Some(hex) if !hex.is_empty() && hex.len() <= 16 => {
                        u64::from_str_radix(hex, 16).ok()
                    }
                    Some(_) => None,
                    None => t.parse::<u64>().ok(),
                };
                parsed
                    .map(Reg)
                    .ok_or_else(|| E::custom(format_args!("invalid register value {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A size: an integer number of bytes or a string such as `"2MiB"`.
enum Size {
    Bytes(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a size in bytes or a string like \"2MiB\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size::Bytes)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size::Bytes(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                Ok(Size::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `"4096"`, `"0x1000"`, `"64K"`, `"2 MiB"`, `"1G"` (K, M, G and T
/// are binary multiples, with or without `i`/`B`).
pub fn parse_size(text: &str) -> Option<u64> {
    let t: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .collect();
    let split = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        (u64::from_str_radix(&hex[..end], 16).ok()?, &hex[end..])
    } else {
        let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        (t[..end].parse::<u64>().ok()?, &t[end..])
    };
    let (n, suffix) = split;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

fn narrow<T: TryFrom<i64>>(field: &'static str, v: i64, max: i64) -> Result<T, DescriptionError> {
    T::try_from(v).map_err(|_| DescriptionError::ParamRange {
        field,
        value: v,
        min: 0,
        max,
    })
}

/// Parses and validates a description; image paths are relative to
/// `base_dir`.
pub fn from_str(text: &str, base_dir: &Path) -> Result<RealmDescription, DescriptionError> {
    let raw: RawFile = ::toml::from_str(text)
        .map_err(|e| DescriptionError::Syntax(e.to_string().trim().into()))?;

    let r = raw.realm;
    let hash_algo = match r.hash_algo.to_ascii_lowercase().as_str() {
        "sha-256" | "sha256" => HashAlgo::Sha256,
        "sha-512" | "sha512" => HashAlgo::Sha512,
        _ => return Err(DescriptionError::UnknownHashAlgo(r.hash_algo)),
    };
    let mut rpv = [0u8; 64];
    if let Some(text) = &r.rpv {
        let text = text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(text).map_err(|e| DescriptionError::BadHex {
            field: "realm.rpv",
            reason: e.to_string(),
        })?;
        if bytes.len() > rpv.len() {
            return Err(DescriptionError::RpvTooLong(bytes.len()));
        }
        rpv[..bytes.len()].copy_from_slice(&bytes);
    }
    let realm = RealmConfig {
        name: r.name,
        ipa_width: narrow("ipa_width", r.ipa_width, u8::MAX.into())?,
        hash_algo,
        rpv,
        lpa2: r.lpa2,
        sve_vl: r
            .sve_vl
            .map(|v| narrow("sve_vl", v, crate::MAX_SVE_VL.into()))
            .transpose()?,
        num_bps: narrow("num_bps", r.num_bps.unwrap_or(1), crate::MAX_BPS_WPS.into())?,
        num_wps: narrow("num_wps", r.num_wps.unwrap_or(1), crate::MAX_BPS_WPS.into())?,
        pmu_counters: r
            .pmu_counters
            .map(|v| narrow("pmu_counters", v, crate::MAX_PMU_COUNTERS.into()))
            .transpose()?,
        vmid: r
            .vmid
            .map(|v| narrow("vmid", v, u16::MAX.into()))
            .transpose()?,
    };

    let ripas_level = i8::try_from(raw.memory.ripas_level)
        .map_err(|_| DescriptionError::RipasLevel(raw.memory.ripas_level))?;
    let mut ram = Vec::with_capacity(raw.memory.ram.len());
    for (i, reg) in raw.memory.ram.into_iter().enumerate() {
        let size = match reg.size {
            Size::Bytes(n) => n,
            Size::Text(t) => parse_size(&t).ok_or_else(|| DescriptionError::BadSize {
                field: std::format!("memory.ram[{i}].size"),
                value: t,
            })?,
        };
        ram.push(RamRegion {
            base: reg.base,
            size,
        });
    }

    let mut images = Vec::with_capacity(raw.image.len());
    for img in raw.image {
        let path = base_dir.join(&img.path);
        let data = std::fs::read(&path).map_err(|e| DescriptionError::Io {
            path: path.clone(),
            message: e.to_string(),
        })?;
        images.push(Image {
            name: img.path.display().to_string(),
            ipa: img.ipa,
            data,
            measured: img.measured,
        });
    }

    let recs = raw
        .rec
        .into_iter()
        .map(|r| RecConfig {
            pc: r.pc,
            gprs: r.gprs.into_iter().map(|g| g.0).collect(),
            runnable: r.runnable,
        })
        .collect();

    let desc = RealmDescription {
        realm,
        memory: MemoryConfig { ram, ripas_level },
        images,
        recs,
    };
    desc.validate()?;
    Ok(desc)
}

/// Reads, parses and validates the description at `path`, loading its
/// images relative to the file's directory.
pub fn load(path: &Path) -> Result<RealmDescription, DescriptionError> {
    let text = std::fs::read_to_string(path).map_err(|e| DescriptionError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    from_str(&text, dir)
}

impl RealmDescription {
    /// Reads, parses and validates a TOML description: see [`load`].
    pub fn load(path: &Path) -> Result<Self, DescriptionError> {
        load(path)
    }
}
