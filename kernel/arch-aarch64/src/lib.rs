//! Atoll's aarch64 platform layer: the RMM at R-EL2 on QEMU `virt` with RME.
//!
//! The one crate of the RMM where `unsafe` lives (each block says why it is
//! sound). It implements [`atoll_kernel::arch::Platform`]:
//!
//! * [`mmu`]: the RMM's stage 1 (Realm view of DRAM at VA = PA, NS view at
//!   [`mmu::NS_ALIAS`], device MMIO);
//! * [`pas`]: which granules are Realm or NS (contract layout plus every
//!   successful GTSI call), checked before any host-supplied address is
//!   used; the NS copy routine turns a GPF into an error regardless;
//! * [`el3`]: SMCs to the monitor (GTSI, attestation key and platform
//!   token, VHUKs, RMI completion);
//! * [`stage2`]: hardware stage-2 tables built from the RTTs on every
//!   `REC_ENTER`;
//! * [`vcpu`] and [`platform`]: EL1 state switch, realm entry by ERET and
//!   exits through the EL2 vectors turned back into `Trap`s;
//! * [`vgic`]: the REC's ICH_* list registers, APRs, VMCR and HCR, and
//!   the realm timers' CNTHCTL_EL2 masks, exchanged around each run.
//!
//! The pure parts (stage-2 building, PAS record, exit decoding, resume
//! rules) build and are tested on the host.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

#[cfg(target_arch = "aarch64")]
pub mod asm;
#[cfg(target_arch = "aarch64")]
pub mod console;
#[cfg(target_arch = "aarch64")]
pub mod cpu;
#[cfg(target_arch = "aarch64")]
pub mod el3;
pub mod mmu;
pub mod pas;
#[cfg(target_arch = "aarch64")]
pub mod platform;
pub mod stage2;
pub mod vcpu;
pub mod vgic;

#[cfg(target_arch = "aarch64")]
pub use platform::QemuPlatform;
