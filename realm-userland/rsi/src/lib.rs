//! A typed client for the Realm Services Interface: what code inside a realm
//! uses to ask the RMM for its measurements, attestation tokens, realm
//! configuration, RIPAS changes, host calls, and (Samsung Islet vendor
//! calls) its metadata and sealing keys.
//!
//! [`RsiClient`] turns each RSI command into one or more SMCs and decodes
//! the answer into typed values and typed errors ([`RsiError`]); it never
//! hides a status. It is generic over an [`RsiBackend`], which provides the
//! SMC itself and access to one granule of realm memory that RSI calls take
//! buffers in (the token buffer, the realm-config page, the host-call
//! structure), because how a realm executes `smc` and addresses its own
//! memory depends on where its code runs:
//!
//! * [`smc`] (aarch64 only): bare-metal realm code; the `smc #0`
//!   instruction and a statically allocated granule.
//! * [`sim`] (`std` feature): a realm process in simulation; each SMC and
//!   memory access travels over the simulator's vCPU socket
//!   (`ipc_schema::simvcpu`) and is executed on REC 0 by `atoll-sim`.
//! * Linux guests: not a backend of this crate. A Linux realm's userspace
//!   cannot issue SMCs; the kernel's `arm-cca-guest` driver does, and
//!   exposes attestation through the configfs TSM report interface
//!   (`/sys/kernel/config/tsm/report/<name>/{inblob,outblob,provider}`):
//!   write the 64-byte challenge to `inblob`, read the CCA token from
//!   `outblob`. Measurement extension and the Islet calls need a kernel
//!   module of their own. A Linux backend belongs next to those interfaces
//!   and is left for the Linux realm image work; nothing here pretends to
//!   provide it.
//!
//! The core is `no_std` + `alloc`.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(not(target_arch = "aarch64"), forbid(unsafe_code))]
#![cfg_attr(target_arch = "aarch64", deny(unsafe_code))]

extern crate alloc;

mod client;
mod error;
#[cfg(feature = "std")]
pub mod sim;
#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
pub mod smc;

pub use client::{
    HashAlgorithm, IpaState, IpaStateChange, RealmConfig, RsiClient, RsiVersion, SealingKey,
    MAX_TOKEN_LEN,
};
pub use error::RsiError;
pub use ipc_schema::islet::{sealing_flags, RealmMetadata};
pub use ipc_schema::rmi::Ripas;
pub use ipc_schema::smccc::SmcRegs;

/// Bytes in the granule a backend lends for RSI buffers.
pub const GRANULE_SIZE: usize = ipc_schema::GRANULE_SIZE;

/// Where a realm's SMCs go and the memory its RSI buffers live in.
///
/// RSI commands that move more than registers can hold take the IPA of a
/// granule the realm owns (RIPAS RAM), and the RMM reads or writes it
/// there. A backend lends the client one such granule ([`buffer_ipa`]) and
/// copies bytes in and out of it; the client never holds a pointer into
/// realm memory, so the same client code works where that memory is only
/// reachable through a socket.
///
/// [`buffer_ipa`]: RsiBackend::buffer_ipa
pub trait RsiBackend {
    /// Why the backend could not carry out a request (not an RSI status:
    /// those come back in registers).
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Executes SMC with x0..x17 and returns x0..x17 afterwards.
    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, Self::Error>;

    /// IPA of the granule lent for RSI buffers (4 KiB aligned, protected,
    /// RIPAS RAM).
    fn buffer_ipa(&self) -> u64;

    /// Copies `buf.len()` bytes from the buffer granule at `offset`.
    /// `offset + buf.len()` never exceeds [`GRANULE_SIZE`].
    fn read_buffer(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), Self::Error>;

    /// Copies `data` into the buffer granule at `offset`.
    /// `offset + data.len()` never exceeds [`GRANULE_SIZE`].
    fn write_buffer(&mut self, offset: usize, data: &[u8]) -> Result<(), Self::Error>;
}
