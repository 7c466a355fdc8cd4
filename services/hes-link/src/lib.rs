//! The HES link client used by the root monitor and the RMM
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
