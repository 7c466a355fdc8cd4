//! The warden <-> realm agent protocol.
//!
//! The warden (normal world) manages the applications inside a realm by
//! talking to the realm's agent, the app-manager. On hardware this runs
//! over a virtio-vsock stream; in simulation over a Unix socket the
//! app-manager listens on. Either way the host is untrusted: the agent
//! treats every request as a hint (which application to fetch from where),
//! and everything security-relevant (signatures, digests, keys) is decided
//! inside the realm.
//!
//! Each message is one frame: an [`AGENT_HEADER_LEN`]-byte header
//! ([`AGENT_MAGIC`], [`AGENT_PROTOCOL_VERSION`], a [`AgentFrameKind`], two
//! zero bytes, the payload length as a little-endian `u32`) and a postcard
//! payload of at most [`MAX_AGENT_PAYLOAD`] bytes. A connection carries one
//! request at a time; every request gets exactly one response.
//!
//! Needs the `alloc` feature: names, paths and tokens are variable-length
//! and bounded by the frame size rather than per field.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::wire::Bytes;

/// First bytes of every frame.
pub const AGENT_MAGIC: [u8; 4] = *b"ATAG";
/// The protocol version this crate speaks.
pub const AGENT_PROTOCOL_VERSION: u8 = 1;
/// Bytes of header before the payload.
pub const AGENT_HEADER_LEN: usize = 12;
/// Largest payload: a status of many applications, or a token (a CCA
/// token is a few KiB).
pub const MAX_AGENT_PAYLOAD: usize = 64 * 1024;
/// Length of an attestation challenge.
pub const CHALLENGE_LEN: usize = 64;

/// Which way a frame goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum AgentFrameKind {
    /// Warden to agent: an [`AgentRequest`].
    Request = 1,
    /// Agent to warden: an [`AgentResponse`].
    Response = 2,
}

/// Why a frame was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AgentFrameError {
    /// Fewer bytes than the header or its length says.
    Truncated,
    /// Not [`AGENT_MAGIC`].
    BadMagic,
    /// Another protocol version.
    UnsupportedVersion,
    /// Not the kind expected.
    BadKind,
    /// The reserved bytes are not zero.
    ReservedNotZero,
    /// The payload length is above [`MAX_AGENT_PAYLOAD`]; nothing more is
    /// read.
    TooLarge,
    /// The payload does not decode.
    Malformed,
    /// The message does not fit in [`MAX_AGENT_PAYLOAD`].
    Encode,
}

impl core::fmt::Display for AgentFrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "truncated frame",
            Self::BadMagic => "not an agent frame (bad magic)",
            Self::UnsupportedVersion => "unsupported agent protocol version",
            Self::BadKind => "unexpected frame kind",
            Self::ReservedNotZero => "reserved header bytes are not zero",
            Self::TooLarge => "frame payload above the limit",
            Self::Malformed => "malformed frame payload",
            Self::Encode => "message too large for a frame",
        })
    }
}

/// An application the warden asks the realm to hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// The application's name: unique in the realm, and part of its data
    /// key, so it must stay the same across updates.
    pub name: String,
    /// The version to install: the image tag in the registry.
    pub version: String,
    /// The registry, `host:port`.
    pub registry: String,
    /// The repository in the registry.
    pub repository: String,
    /// The application's disk: a path in simulation, a device name in a
    /// Linux realm. Its contents are sealed; the host only stores them.
    pub disk: String,
    /// Most bytes the unpacked image may take (the image partition's
    /// size): a bigger image is refused, nothing installed.
    pub image_limit: u64,
    /// Most bytes the application's data may take (the data partition's
    /// size).
    pub data_limit: u64,
}

/// A request from the warden.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentRequest {
    /// Who is there: answered with [`AgentResponse::Hello`].
    Hello,
    /// The applications the realm should hold, replacing the previous list
    /// (an application left out is stopped; its disk is left alone).
    Provision {
        /// The applications.
        apps: Vec<AppSpec>,
    },
    /// Fetch the provisioned version over RA-TLS, verify it and install it
    /// (an update when another version is installed: data is kept).
    InstallApp {
        /// The application.
        name: String,
    },
    /// Start the installed copy (installing first when nothing is).
    StartApp {
        /// The application.
        name: String,
    },
    /// Stop the application and seal its data.
    StopApp {
        /// The application.
        name: String,
    },
    /// The state of every provisioned application.
    Status,
    /// A CCA attestation token for the warden's challenge.
    AttestationToken {
        /// The challenge.
        challenge: Bytes<CHALLENGE_LEN>,
    },
    /// Stop every application, seal its data and exit.
    Shutdown,
}

/// Where an application is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppState {
    /// Provisioned, nothing installed on its disk yet.
    NotInstalled,
    /// Installed, not running.
    Installed,
    /// Running.
    Running {
        /// Its process id in the realm.
        pid: u32,
    },
    /// Ran and exited.
    Exited {
        /// Exit code, or `-signal` when a signal ended it.
        code: i32,
    },
    /// The last install or start failed.
    Failed {
        /// Why.
        reason: String,
    },
}

/// What is installed on an application's disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledApp {
    /// The installed version (tag).
    pub version: String,
    /// Digest of the installed image manifest.
    pub manifest_digest: String,
    /// Subject of the vendor certificate that signed it.
    pub vendor: String,
}

/// One application in a [`AgentResponse::Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The application.
    pub name: String,
    /// Its state.
    pub state: AppState,
    /// What is installed, if anything.
    pub installed: Option<InstalledApp>,
}

/// Why a request failed, for the warden to react to; the message says the
/// rest.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentErrorKind {
    /// The request makes no sense (unknown name, bad argument).
    BadRequest,
    /// The registry could not be reached or refused the realm.
    Fetch,
    /// The image failed verification (signature, chain, digests).
    Verify,
    /// Unpacking or installing failed (unsafe layer, size caps, disk).
    Install,
    /// The sealed storage could not be opened (wrong keys, corruption).
    Storage,
    /// The application could not be started or stopped.
    Run,
    /// No token could be obtained.
    Attestation,
    /// Anything else inside the agent.
    Internal,
}

/// The agent's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentResponse {
    /// Answer to [`AgentRequest::Hello`].
    Hello {
        /// The agent's name and version.
        software: String,
    },
    /// The request was carried out.
    Done,
    /// Answer to [`AgentRequest::Status`].
    Status {
        /// Every provisioned application.
        apps: Vec<AppStatus>,
    },
    /// Answer to [`AgentRequest::AttestationToken`].
    Token {
        /// The CCA token (tag 399).
        token: Vec<u8>,
    },
    /// The request failed and changed nothing it could avoid changing.
    Error {
        /// The class of failure.
        kind: AgentErrorKind,
        /// What went wrong, for people.
        message: String,
    },
}

/// Encodes `msg` as one frame.
pub fn encode_frame<T: Serialize>(
    kind: AgentFrameKind,
    msg: &T,
) -> Result<Vec<u8>, AgentFrameError> {
    let mut frame = Vec::with_capacity(AGENT_HEADER_LEN + 256);
    frame.extend_from_slice(&AGENT_MAGIC);
    frame.push(AGENT_PROTOCOL_VERSION);
    frame.push(kind as u8);
    frame.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let frame = postcard::to_extend(msg, frame).map_err(|_| AgentFrameError::Encode)?;
    let len = frame.len() - AGENT_HEADER_LEN;
    if len > MAX_AGENT_PAYLOAD {
        return Err(AgentFrameError::Encode);
    }
    let mut frame = frame;
    frame[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(frame)
}

/// Checks a header and returns the payload length that follows it.
pub fn decode_header(
    header: &[u8; AGENT_HEADER_LEN],
    expected: AgentFrameKind,
) -> Result<usize, AgentFrameError> {
    if header[..4] != AGENT_MAGIC {
        return Err(AgentFrameError::BadMagic);
    }
    if header[4] != AGENT_PROTOCOL_VERSION {
        return Err(AgentFrameError::UnsupportedVersion);
    }
    if header[5] != expected as u8 {
        return Err(AgentFrameError::BadKind);
    }
    if header[6..8] != [0, 0] {
        return Err(AgentFrameError::ReservedNotZero);
    }
    let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if len > MAX_AGENT_PAYLOAD {
        return Err(AgentFrameError::TooLarge);
    }
    Ok(len)
}

/// Decodes a whole request frame.
pub fn decode_request(frame: &[u8]) -> Result<AgentRequest, AgentFrameError> {
    decode(frame, AgentFrameKind::Request)
}

/// Decodes a whole response frame.
pub fn decode_response(frame: &[u8]) -> Result<AgentResponse, AgentFrameError> {
    decode(frame, AgentFrameKind::Response)
}

fn decode<T: for<'de> Deserialize<'de>>(
    frame: &[u8],
    kind: AgentFrameKind,
) -> Result<T, AgentFrameError> {
    let header: &[u8; AGENT_HEADER_LEN] = frame
        .get(..AGENT_HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(AgentFrameError::Truncated)?;
    let len = decode_header(header, kind)?;
    let body = &frame[AGENT_HEADER_LEN..];
    if body.len() != len {
        return Err(AgentFrameError::Truncated);
    }
    let (msg, rest) = postcard::take_from_bytes(body).map_err(|_| AgentFrameError::Malformed)?;
    if !rest.is_empty() {
        return Err(AgentFrameError::Malformed);
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn sample_requests() -> Vec<AgentRequest> {
        vec![
            AgentRequest::Hello,
            AgentRequest::Provision {
                apps: vec![AppSpec {
                    name: "counter".to_string(),
                    version: "1.0".to_string(),
                    registry: "127.0.0.1:5001".to_string(),
                    repository: "acme/counter".to_string(),
                    disk: "/var/lib/warden/disk".to_string(),
                    image_limit: 256 << 20,
                    data_limit: 64 << 20,
                }],
            },
            AgentRequest::InstallApp {
                name: "counter".to_string(),
            },
            AgentRequest::StartApp {
                name: "counter".to_string(),
            },
            AgentRequest::StopApp {
                name: "counter".to_string(),
            },
            AgentRequest::Status,
            AgentRequest::AttestationToken {
                challenge: Bytes([7; CHALLENGE_LEN]),
            },
            AgentRequest::Shutdown,
        ]
    }

    #[test]
    fn requests_round_trip() {
        for req in sample_requests() {
            let frame = encode_frame(AgentFrameKind::Request, &req).unwrap();
            assert_eq!(decode_request(&frame).unwrap(), req);
            // A request is not a response.
            assert_eq!(decode_response(&frame), Err(AgentFrameError::BadKind));
        }
    }

    #[test]
    fn responses_round_trip() {
        let responses = vec![
            AgentResponse::Hello {
                software: "atoll-app-manager 0.1.0".to_string(),
            },
            AgentResponse::Done,
            AgentResponse::Status {
                apps: vec![AppStatus {
                    name: "counter".to_string(),
                    state: AppState::Exited { code: -9 },
                    installed: Some(InstalledApp {
                        version: "1.0".to_string(),
                        manifest_digest: "sha256:00".to_string(),
                        vendor: "CN=Acme".to_string(),
                    }),
                }],
            },
            AgentResponse::Token {
                token: vec![0xd9, 0x01, 0x8f],
            },
            AgentResponse::Error {
                kind: AgentErrorKind::Verify,
                message: "bad".to_string(),
            },
        ];
        for resp in responses {
            let frame = encode_frame(AgentFrameKind::Response, &resp).unwrap();
            assert_eq!(decode_response(&frame).unwrap(), resp);
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let good = encode_frame(AgentFrameKind::Request, &AgentRequest::Status).unwrap();
        assert_eq!(decode_request(&good[..5]), Err(AgentFrameError::Truncated));
        let mut bad = good.clone();
        bad[0] ^= 1;
        assert_eq!(decode_request(&bad), Err(AgentFrameError::BadMagic));
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(
            decode_request(&bad),
            Err(AgentFrameError::UnsupportedVersion)
        );
        let mut bad = good.clone();
        bad[6] = 1;
        assert_eq!(decode_request(&bad), Err(AgentFrameError::ReservedNotZero));
        let mut bad = good.clone();
        bad[8..12].copy_from_slice(&(MAX_AGENT_PAYLOAD as u32 + 1).to_le_bytes());
        assert_eq!(decode_request(&bad), Err(AgentFrameError::TooLarge));
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(decode_request(&bad), Err(AgentFrameError::Truncated));
        let mut bad = good;
        bad[AGENT_HEADER_LEN] = 0xff;
        assert_eq!(decode_request(&bad), Err(AgentFrameError::Malformed));
    }

    #[test]
    fn oversized_message_is_an_encode_error() {
        let resp = AgentResponse::Token {
            token: vec![0; MAX_AGENT_PAYLOAD + 1],
        };
        assert_eq!(
            encode_frame(AgentFrameKind::Response, &resp),
            Err(AgentFrameError::Encode)
        );
    }
}
