//! CLI <-> daemon: one JSON [`Request`] per frame, one JSON [`Response`]
//! back; a frame is a big-endian `u32` length and that many bytes.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Largest frame (a console log is the biggest answer).
pub const MAX_FRAME: usize = 16 << 20;

/// What the CLI asks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Creates a realm from a description and its metadata block.
    CreateRealm {
        /// Name (default: the description's realm name).
        name: Option<String>,
        /// The realm description (TOML).
        description: PathBuf,
        /// The vendor-signed metadata block.
        metadata: PathBuf,
    },
    /// Every realm.
    ListRealms,
    /// One realm in detail (applications' status from its agent).
    InspectRealm {
        /// Name or id.
        realm: String,
    },
    /// Starts a realm.
    StartRealm {
        /// Name or id.
        realm: String,
    },
    /// Stops a realm (its applications' data sealed first).
    StopRealm {
        /// Name or id.
        realm: String,
    },
    /// Stops and starts a realm.
    RebootRealm {
        /// Name or id.
        realm: String,
    },
    /// Removes a realm and its disks.
    DestroyRealm {
        /// Name or id.
        realm: String,
        /// Stop it first if it runs.
        force: bool,
    },
    /// Adds an application (and its disk) to a realm.
    CreateApplication {
        /// Name or id.
        realm: String,
        /// Application name.
        name: String,
        /// Version (the image tag).
        version: String,
        /// Registry `host:port` (its RA-TLS listener).
        registry: String,
        /// Repository (default: the name).
        repository: Option<String>,
        /// Image partition size, MiB.
        image_size_mb: u64,
        /// Data partition size, MiB.
        data_size_mb: u64,
    },
    /// Starts an application (installing it first when needed).
    StartApplication {
        /// Name or id.
        realm: String,
        /// Application.
        name: String,
    },
    /// Stops an application.
    StopApplication {
        /// Name or id.
        realm: String,
        /// Application.
        name: String,
    },
    /// Installs another version, keeping the data.
    UpdateApplication {
        /// Name or id.
        realm: String,
        /// Application.
        name: String,
        /// New version.
        version: String,
    },
    /// An attestation token from the realm for a challenge.
    FetchAttestationToken {
        /// Name or id.
        realm: String,
        /// 64 bytes, hex.
        challenge: String,
    },
    /// The realm's console log.
    Console {
        /// Name or id.
        realm: String,
    },
}

/// The daemon's answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    /// Whether it worked.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The result.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    /// Success with data.
    pub fn ok(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            error: None,
            data,
        }
    }

    /// Failure.
    pub fn err(e: impl std::fmt::Display) -> Self {
        Self {
            ok: false,
            error: Some(format!("{e:#}")),
            data: serde_json::Value::Null,
        }
    }
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other("message too large"));
    }
    w.write_all(&(body.len() as u32).to_be_bytes())?;
    w.write_all(&body)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
