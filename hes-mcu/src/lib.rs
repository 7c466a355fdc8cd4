//! The HES firmware core: device secrets, measured-boot slots, CPAK/RAK/VHUK derivation and platform token signing
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
