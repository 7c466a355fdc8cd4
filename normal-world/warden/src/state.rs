//! The warden's persistent state: `state.json` in the state directory,
//! replaced atomically after every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An application of a realm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRecord {
    /// Name.
    pub name: String,
    /// Version to run.
    pub version: String,
    /// Registry `host:port`.
    pub registry: String,
    /// Repository.
    pub repository: String,
    /// Image partition bytes.
    pub image_limit: u64,
    /// Data partition bytes.
    pub data_limit: u64,
    /// Whether it should run while the realm runs.
    pub running: bool,
}

/// A realm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealmRecord {
    /// Unique id (random, hex).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The RIM (hex) the description measures to.
    pub rim: String,
    /// Whether it should run (started again after a daemon restart).
    pub running: bool,
    /// Its applications.
    pub apps: Vec<AppRecord>,
}

/// Everything the warden remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Realms by id.
    pub realms: BTreeMap<String, RealmRecord>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// File system.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// The file is not a valid state: refused rather than reset.
    #[error(
        "{path} is corrupt ({reason}); fix or move it away — the warden will not overwrite it"
    )]
    Corrupt {
        /// File.
        path: PathBuf,
        /// Parser's words.
        reason: String,
    },
}

impl State {
    /// The state file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Loads the state (empty when there is none yet).
    pub fn load(dir: &Path) -> Result<Self, StateError> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                version: 1,
                ..Self::default()
            }),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Saves the state atomically.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let path = Self::path(dir);
        let io = |source| StateError::Io {
            path: path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| io(std::io::Error::other(e)))?;
        atoll_atomic_file::write(&path, &bytes).map_err(io)
    }

    /// Finds a realm by id or name.
    pub fn find(&self, key: &str) -> Option<&RealmRecord> {
        self.realms
            .get(key)
            .or_else(|| self.realms.values().find(|r| r.name == key))
    }
}
