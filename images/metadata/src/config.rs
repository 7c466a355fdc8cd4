//! The YAML realm configuration a vendor writes to describe a block.
//!
//! ```yaml
//! realm_id: com.example.payments   # printable ASCII, 1..=127 bytes
//! version: "1.2.3"                 # or {major: 1, minor: 2, patch: 3}
//! svn: 3
//! hash_algo: sha-256               # or sha-512
//! rim: 8f3c...                     # hex digest; omit when the tool measures it
//! ```
//!
//! Unknown keys are refused, so a typo (`svm: 3`) is an error rather than a
//! block with a default SVN.

use ipc_schema::service::HashAlgo;
use serde::Deserialize;
use serde_yaml::Value;

use crate::{Metadata, MetadataError, RealmId, Rim, Version};

/// Why a configuration could not become a block's fields.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML, or not the expected keys.
    #[error("invalid realm configuration: {0}")]
    Yaml(#[from] serde_yaml::Error),
    /// `version` is neither `"MAJOR.MINOR.PATCH"` nor a map of the three.
    #[error("version: {0}")]
    Version(String),
    /// `hash_algo` is not `sha-256` or `sha-512`.
    #[error("hash_algo: unknown algorithm {0:?} (expected \"sha-256\" or \"sha-512\")")]
    HashAlgo(String),
    /// `rim` is not hex.
    #[error("rim: not hex: {0}")]
    RimHex(#[from] hex::FromHexError),
    /// No RIM in the configuration and none measured.
    #[error(
        "no RIM: give `rim` (and `hash_algo`) in the configuration or measure a realm description"
    )]
    MissingRim,
    /// A RIM in the configuration but no `hash_algo`.
    #[error("rim given without hash_algo")]
    MissingHashAlgo,
    /// Both a RIM in the configuration and a measured one.
    #[error("the configuration has a rim, but the RIM is also being measured: keep one")]
    RimConflict,
    /// The configuration's `hash_algo` differs from the measured realm's.
    #[error("hash_algo is {config} but the measured realm uses {measured}")]
    AlgoConflict {
        /// From the configuration.
        config: &'static str,
        /// From the measurement.
        measured: &'static str,
    },
    /// A field breaks a block rule.
    #[error(transparent)]
    Field(#[from] MetadataError),
}

/// A realm configuration as written (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmConfig {
    /// Realm id.
    pub realm_id: String,
    /// `"MAJOR.MINOR.PATCH"` or `{major, minor, patch}`.
    pub version: Value,
    /// Security version number.
    pub svn: u64,
    /// RIM in hex, if not measured.
    #[serde(default)]
    pub rim: Option<String>,
    /// `sha-256` or `sha-512`.
    #[serde(default)]
    pub hash_algo: Option<String>,
}

impl RealmConfig {
    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Ok(serde_yaml::from_str(text)?)
    }

    /// The block's fields. `measured` is the algorithm and digest of a
    /// measured realm description, used instead of `rim` (giving both is an
    /// error, so it is always clear where the RIM came from).
    pub fn to_metadata(
        &self,
        measured: Option<(HashAlgo, &[u8])>,
    ) -> Result<Metadata, ConfigError> {
        let config_algo = self.hash_algo.as_deref().map(parse_hash_algo).transpose()?;
        let rim = match (&self.rim, measured) {
            (Some(_), Some(_)) => return Err(ConfigError::RimConflict),
            (None, None) => return Err(ConfigError::MissingRim),
            (Some(text), None) => {
                let algo = config_algo.ok_or(ConfigError::MissingHashAlgo)?;
                let digest = hex::decode(text.trim())?;
                Rim::new(algo, &digest)?
            }
            (None, Some((algo, digest))) => {
                if let Some(config) = config_algo.filter(|c| *c != algo) {
                    return Err(ConfigError::AlgoConflict {
                        config: config.name(),
                        measured: algo.name(),
                    });
                }
                Rim::new(algo, digest)?
            }
        };
        Ok(Metadata {
            realm_id: RealmId::new(&self.realm_id)?,
            rim,
            svn: self.svn,
            version: parse_version(&self.version)?,
        })
    }
}

/// `sha-256` / `sha-512`, case-insensitive, dash optional.
pub fn parse_hash_algo(name: &str) -> Result<HashAlgo, ConfigError> {
    match name.to_ascii_lowercase().replace('-', "").as_str() {
        "sha256" => Ok(HashAlgo::Sha256),
        "sha512" => Ok(HashAlgo::Sha512),
        _ => Err(ConfigError::HashAlgo(name.to_string())),
    }
}

/// `"1.2.3"` or `{major: 1, minor: 2, patch: 3}`.
pub fn parse_version(v: &Value) -> Result<Version, ConfigError> {
    const EXPECTED: &str = "expected \"MAJOR.MINOR.PATCH\" or {major, minor, patch}";
    let bad = |why: String| ConfigError::Version(why);
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() != 3 {
                return Err(bad(format!("{s:?}: {EXPECTED}")));
            }
            let num = |p: &str| {
                // u64::from_str accepts a leading '+'; a version does not.
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(format!("{s:?}: {p:?} is not a number")));
                }
                p.parse::<u64>()
                    .map_err(|_| bad(format!("{s:?}: {p} does not fit in 64 bits")))
            };
            Ok(Version {
                major: num(parts[0])?,
                minor: num(parts[1])?,
                patch: num(parts[2])?,
            })
        }
        Value::Mapping(m) => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Parts {
                major: u64,
                minor: u64,
                patch: u64,
            }
            let p: Parts = serde_yaml::from_value(Value::Mapping(m.clone()))
                .map_err(|e| bad(format!("{e}; {EXPECTED}")))?;
            Ok(Version {
                major: p.major,
                minor: p.minor,
                patch: p.patch,
            })
        }
        other => Err(bad(format!("{other:?}: {EXPECTED}"))),
    }
}
