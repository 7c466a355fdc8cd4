//! Atoll's EL3 root monitor for QEMU `virt` with RME (docs/qemu-boot.md).
//!
//! Cold boot on CPU 0 (others parked), EL3 MMU, image copy and measured
//! boot through the HES on UART1, GPT and GPC, GIC init, boot manifest,
//! RMM entry at R-EL2, then the NS host at NS-EL2; at run time RMI
//! forwarding between the worlds, the RMM-EL3 interface and PSCI.
//!
//! Everything here touches hardware; the logic is in the library
//! (`atoll_monitor`), tested on the host.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(all(target_arch = "aarch64", target_os = "none"))]
mod el3;

#[cfg(not(all(target_arch = "aarch64", target_os = "none")))]
fn main() {
    eprintln!("atoll-monitor is firmware: build it for aarch64-unknown-none-softfloat");
}
