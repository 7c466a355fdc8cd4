//! Every contract that crosses an Atoll boundary, and nothing else.
//!
//! If two crates agree on bytes, the type lives here: the RMI, RSI, RMM-EL3
//! and Samsung Islet vendor ABIs (function IDs, status codes and the
//! `#[repr(C)]` structures that the host, the realm and the monitor share
//! with the RMM), the measurement descriptors whose bytes are hashed into a
//! realm's RIM, and the messages the RMM core exchanges with its services.
//!
//! Rules this crate keeps:
//!
//! 1. No logic beyond encoding: handlers live in `kernel/` and `services/`.
//! 2. Every structure shared with another world has compile-time asserts on
//!    its size and on every field's offset, next to its definition, so a
//!    layout mistake is a build failure rather than a silent ABI break.
//! 3. Every service message has a bounded encoded size (`MaxSize`), so a
//!    receiver can size its buffer before it reads a byte and reject
//!    anything longer without decoding it.
#![no_std]
#![forbid(unsafe_code)]
// Messages live briefly on the stack on their way to or from the wire;
// boxing large variants would need an allocator in every no_std user.
#![allow(clippy::large_enum_variant)]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "alloc")]
pub mod agent;
pub mod el3;
pub mod hes;
pub mod islet;
pub mod measurement;
pub mod rmi;
pub mod rsi;
pub mod service;
pub mod simvcpu;
pub mod smccc;
pub mod wire;

/// Size of a granule, the unit of memory the RMM tracks and protects.
pub const GRANULE_SIZE: usize = 4096;
/// `log2(GRANULE_SIZE)`.
pub const GRANULE_SHIFT: u32 = 12;

/// Asserts at compile time that `$ty` is `$size` bytes and each listed field
/// sits at the given offset.
#[macro_export]
macro_rules! assert_layout {
    ($ty:ty, size = $size:expr, { $($field:ident @ $off:expr),* $(,)? }) => {
        const _: () = {
            assert!(core::mem::size_of::<$ty>() == $size);
            $( assert!(core::mem::offset_of!($ty, $field) == $off); )*
        };
    };
}
