//! Realm metadata blocks: create, sign, verify and dump the 432-byte Islet block
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
