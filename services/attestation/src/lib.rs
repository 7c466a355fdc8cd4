//! The attestation service: realm tokens signed with the RAK, bound to the HES platform token
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
