//! The keys service: realm metadata checks and sealing-key derivation
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
