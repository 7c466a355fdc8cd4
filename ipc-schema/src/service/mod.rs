//! Messages between the RMM core and its services.
//!
//! The core never calls a service's code: it encodes one of these requests
//! with postcard, hands the bytes to a transport, and decodes the answer.
//! Each request type has a compile-time bound on its encoded size
//! ([`MaxSize`]), so both sides size their buffers up front and reject
//! anything longer without decoding it.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

pub mod attestation;
pub mod keys;
pub mod measurement;

/// The services the core can reach. Which service may be called by whom is
/// declared here, once.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, MaxSize,
)]
#[repr(u8)]
pub enum ServiceId {
    /// RIM and REM bookkeeping: [`measurement`].
    Measurement = 1,
    /// Realm tokens: [`attestation`].
    Attestation = 2,
    /// Realm metadata and sealing keys: [`keys`].
    Keys = 3,
}

/// A read-only loan of the caller's memory for the duration of one call,
/// named in a message by its position among the leases passed beside it.
///
/// Bulk data (a 4 KiB page to hash) travels as a lease instead of inside the
/// message, as in Hubris: the in-process transport lends a slice, an
/// isolated EL0 service gets the granule mapped read-only for the call.
/// Nothing is copied and the bound on message sizes stays small.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub struct Lease(pub u8);

/// The memory behind a [`Lease`], as the transport hands it to a service.
#[derive(Debug)]
pub enum LeaseMem<'a> {
    /// Lent read-only.
    Read(&'a [u8]),
    /// Lent for reading and writing (the service fills it).
    Write(&'a mut [u8]),
}

impl LeaseMem<'_> {
    /// The lent bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            LeaseMem::Read(b) => b,
            LeaseMem::Write(b) => b,
        }
    }

    /// The lent bytes if the lease is writable.
    pub fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        match self {
            LeaseMem::Read(_) => None,
            LeaseMem::Write(b) => Some(b),
        }
    }
}

/// Identifies a realm to a service: the PA of its RD granule, which the core
/// guarantees is unique among live realms.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, MaxSize,
)]
pub struct RealmHandle(pub u64);

/// A measurement hash algorithm.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, MaxSize)]
pub enum HashAlgo {
    /// SHA-256, 32-byte digests zero-padded to 64.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl HashAlgo {
    /// From the RMI/RSI encoding (0 SHA-256, 1 SHA-512).
    pub const fn from_rmi(v: u8) -> Option<Self> {
        match v {
            crate::rmi::hash_algo::SHA_256 => Some(Self::Sha256),
            crate::rmi::hash_algo::SHA_512 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The RMI/RSI encoding.
    pub const fn to_rmi(self) -> u8 {
        match self {
            Self::Sha256 => crate::rmi::hash_algo::SHA_256,
            Self::Sha512 => crate::rmi::hash_algo::SHA_512,
        }
    }

    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// The name used in tokens and reference values.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }
}
