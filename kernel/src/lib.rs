//! Atoll's EL2 core: the part of the Realm Management Monitor that must be
//! trusted with every realm's memory.
//!
//! What the core does:
//!
//! 1. Tracks the state of every granule of delegable memory (undelegated,
//!    delegated, RD, REC, REC_AUX, DATA, RTT, metadata) and moves granules
//!    between the Non-secure and Realm PAS only through the root monitor.
//! 2. Keeps each realm's lifecycle (NEW, ACTIVE, SYSTEM_OFF), its realm
//!    translation tables (RTTs) and its RECs, and answers every RMI v1.0
//!    command with the specification's status, checking failure conditions
//!    in the specification's priority order and changing nothing on failure.
//! 3. Runs RECs, answering RSI v1.0, PSCI and SMCCC_VERSION calls from the
//!    realm and turning everything else into REC exits for the host.
//!
//! What the core refuses to do:
//!
//! * Cryptography and policy. Measurement (and later attestation, key
//!   derivation and the HES link) run as services reached only through
//!   `ipc_schema::service` messages over a [`services::ServiceTransport`];
//!   a failing service is an error for the caller, never a crash here.
//! * Trusting host memory twice. Params pages and `RmiRecRun` are copied
//!   into RMM memory once, through [`arch::Platform::read_ns`], which refuses
//!   any granule that is not in the Non-secure PAS.
//! * Knowing what machine it runs on. [`arch::Platform`] hides memory, the
//!   GPT, the root monitor and vCPU execution; `arch::host` simulates them
//!   so every line here runs in host tests.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod arch;
pub mod boot;
pub mod granule;
pub mod realm;
pub mod rec;
pub mod rmi;
pub mod rmm;
pub mod rsi;
pub mod rtt;
pub mod services;

pub use rmm::{Rmm, RmmConfig};

/// Size of a granule.
pub const GRANULE: usize = ipc_schema::GRANULE_SIZE;
/// Granule size as a `u64` for address arithmetic.
pub const GRANULE_U64: u64 = GRANULE as u64;

/// Whether `addr` is granule-aligned.
pub const fn is_granule_aligned(addr: u64) -> bool {
    addr & (GRANULE_U64 - 1) == 0
}
