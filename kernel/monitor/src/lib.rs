//! The logic of Atoll's EL3 root monitor, kept free of `unsafe` and of
//! assembly so it can be unit-tested on the host: the platform layout, GPT
//! index math and granule transitions, EL3 translation tables, the boot
//! manifest, the firmware image table, SMC routing, the platform-token
//! chunking state and the heap allocator's bookkeeping.
//!
//! `main.rs` (aarch64 only) is the part that touches hardware.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod bump;
pub mod gpt;
pub mod imgtable;
pub mod layout;
pub mod manifest;
pub mod mmu;
pub mod smc;
pub mod token;
