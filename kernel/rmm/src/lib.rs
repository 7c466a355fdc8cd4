//! The pure parts of the RMM image, tested on the host: the boot arguments
//! and manifest checks, and the in-image service transport.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod manifest;
pub mod transport;
