//! The RMM image: R-EL2 entry, heap, services, boot, the RMI loop.
//!
//! `unsafe` here is limited to the entry: the assembly stub, the linker
//! symbols of the heap and the shared page's first read. Everything else
//! lives in `atoll-arch-aarch64`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(target_os = "none")]
mod image;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("atoll-rmm is firmware: build it for aarch64-unknown-none-softfloat");
}
