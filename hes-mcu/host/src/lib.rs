//! The HES as a host process reached over a socket
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
