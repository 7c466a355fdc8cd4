//! The Arm CCA attestation token: encoding, decoding, verification and appraisal
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
