//! The RMM's own translation regime (EL2, E2H = 0, TTBR0_EL2).
//!
//! 39-bit VA, 4 KiB granule, one level-1 table of 1 GiB blocks:
//!
//! | VA | PA | attributes |
//! |---|---|---|
//! | 0 - 1 GiB | same | Device-nGnRE, XN (UARTs, GIC, ...) |
//! | 1 - 3 GiB | same | Normal WB, **Realm PAS** (NS = 0): the RMM image, heap, delegated granules |
//! | `NS_ALIAS` + 1 - 3 GiB | 1 - 3 GiB | Normal WB, XN, **NS PAS** (NS = 1): host buffers |
//!
//! Host-owned memory is therefore read with NS = 1 and realm granules with
//! NS = 0, as the GPC requires (a wrong PAS is a GPF).
//! Not done yet: finer-grained permissions (W^X over the image).

#[cfg(target_arch = "aarch64")]
use core::cell::UnsafeCell;

#[cfg(target_arch = "aarch64")]
use crate::cpu::{dsb_sy, isb};

/// VA offset of the Non-secure view of DRAM.
pub const NS_ALIAS: u64 = 0x40_0000_0000;

#[cfg(target_arch = "aarch64")]
#[repr(C, align(4096))]
struct L1(UnsafeCell<[u64; 512]>);

#[cfg(target_arch = "aarch64")]
// SAFETY: written once by `init` on the boot CPU before anything else runs
// (one CPU), read only by the MMU afterwards.
unsafe impl Sync for L1 {}

#[cfg(target_arch = "aarch64")]
static L1_TABLE: L1 = L1(UnsafeCell::new([0; 512]));

const BLOCK: u64 = 0b01;
const ATTR_NORMAL: u64 = 0 << 2;
const ATTR_DEVICE: u64 = 1 << 2;
const NS: u64 = 1 << 5;
/// AP[1] is RES1 in a one-privilege-level regime.
const AP_RES1: u64 = 1 << 6;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54;

#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
/// MAIR_EL2: index 0 Normal WB RWA, index 1 Device-nGnRE.
const MAIR: u64 = 0x04FF;
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
/// TCR_EL2: T0SZ 25, IRGN0/ORGN0 WBWA, SH0 inner, TG0 4K, PS 40 bits,
/// RES1 bits 23 and 31.
const TCR: u64 = 25 | 1 << 8 | 1 << 10 | 3 << 12 | 2 << 16 | 1 << 23 | 1 << 31;
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
/// SCTLR_EL2 RES1 bits (E2H = 0) plus M, C, I.
const SCTLR: u64 = 0x30C5_0830 | 1 | 1 << 2 | 1 << 12;

/// The level-1 descriptors (pure, for tests and `init`).
pub fn descriptors() -> [u64; 512] {
    let mut t = [0u64; 512];
    t[0] = BLOCK | ATTR_DEVICE | AP_RES1 | AF | XN;
    for gb in 1..3u64 {
        let pa = gb << 30;
        t[gb as usize] = BLOCK | ATTR_NORMAL | AP_RES1 | SH_INNER | AF | pa;
        t[((NS_ALIAS >> 30) + gb) as usize] =
            BLOCK | ATTR_NORMAL | NS | AP_RES1 | SH_INNER | AF | XN | pa;
    }
    t
}

#[cfg(target_arch = "aarch64")]
/// Builds the table and turns the MMU and caches on. Call once, first.
pub fn init() {
    let t = descriptors();
    // SAFETY: single CPU, nothing else uses the table yet; the MMU is off.
    unsafe { *L1_TABLE.0.get() = t };
    let base = L1_TABLE.0.get() as u64;
    dsb_sy();
    crate::msr!("mair_el2", MAIR);
    crate::msr!("tcr_el2", TCR);
    crate::msr!("ttbr0_el2", base);
    isb();
    // SAFETY: invalidates EL2 TLB entries only; the MMU is still off.
    unsafe { core::arch::asm!("tlbi alle2", "dsb sy", "isb", options(nostack)) };
    // VA = PA for everything the RMM runs from, so execution continues.
    crate::msr!("sctlr_el2", SCTLR);
    isb();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_realm_view_and_ns_alias() {
        let t = descriptors();
        // UART0 in the device block.
        assert_eq!(t[0] & 0b11, BLOCK);
        assert_eq!(t[0] & (7 << 2), ATTR_DEVICE);
        // DRAM 1-3 GiB at VA = PA, Realm PAS (NS = 0).
        assert_eq!(t[1] & !0xFFF & ((1 << 48) - 1), 0x4000_0000);
        assert_eq!(t[1] & NS, 0);
        assert_eq!(t[2] & !0xFFF & ((1 << 48) - 1), 0x8000_0000);
        // The NS alias of the same PAs with NS = 1, never executable.
        let i = (NS_ALIAS >> 30) as usize;
        assert_eq!(t[i + 1] & !0xFFF & ((1 << 48) - 1), 0x4000_0000);
        assert_ne!(t[i + 1] & NS, 0);
        assert_ne!(t[i + 1] & XN, 0);
        assert_eq!(t.iter().filter(|&&d| d != 0).count(), 5);
    }
}
