//! EL3 stage-1 translation tables (4 KiB granule, 39-bit VA, start at L1).
//!
//! * VA = PA for the first GB, 2 MiB blocks from one L2 table: flash
//!   read-only executable, secure RAM read-write, the rest device memory;
//!   all Root PAS (NSE=1, NS=0).
//! * VA = PA for DRAM 0x4000_0000..0xC000_0000, 1 GB blocks, NS PAS
//!   (NSE=0, NS=1), never executable: the NS host image, the DTB.
//! * VA = PA + [`REALM_ALIAS_OFFSET`] for 0x4000_0000..0x8000_0000, one
//!   1 GB block, Realm PAS (NSE=1, NS=1): the RMM image and the shared page.
//! * Everything else unmapped.

use crate::layout::{
    DRAM_BASE, DRAM_SIZE, FLASH_BASE, FLASH_SIZE, REALM_ALIAS_OFFSET, SECURE_RAM_BASE,
    SECURE_RAM_SIZE,
};

/// MAIR_EL3: attr0 Device-nGnRnE, attr1 Normal WB RA WA inner/outer.
pub const MAIR: u64 = 0xFF << 8; // attr0 = 0x00
/// TCR_EL3: T0SZ=25, IRGN0=ORGN0=WB-RA-WA, SH0=inner, TG0=4K, PS=40 bits,
/// RES1 bits 23 and 31.
pub const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 23) | (1 << 31);
/// SCTLR_EL3 with MMU, D-cache, I-cache and SP alignment checks on.
pub const SCTLR_MMU_ON: u64 = 0x30C5_0830 | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12);

const VALID_BLOCK: u64 = 0b01;
const TABLE: u64 = 0b11;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
const NS: u64 = 1 << 5;
const AP_RO: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const NSE: u64 = 1 << 11;
const XN: u64 = 1 << 54;

/// Output PAS of a mapping.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Pas {
    /// NSE=1, NS=0.
    Root,
    /// NSE=0, NS=1.
    NonSecure,
    /// NSE=1, NS=1.
    Realm,
}

impl Pas {
    const fn bits(self) -> u64 {
        match self {
            Self::Root => NSE,
            Self::NonSecure => NS,
            Self::Realm => NSE | NS,
        }
    }
}

/// What a mapping holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Normal memory, read-only, executable.
    Code,
    /// Normal memory, read-write, not executable.
    Data,
    /// Device-nGnRnE, read-write, not executable.
    Device,
}

/// A block descriptor for `pa` (aligned to the block size).
pub const fn block(pa: u64, kind: Kind, pas: Pas) -> u64 {
    let attrs = match kind {
        Kind::Code => ATTR_NORMAL | SH_INNER | AP_RO,
        Kind::Data => ATTR_NORMAL | SH_INNER | XN,
        Kind::Device => ATTR_DEVICE | XN,
    };
    pa | attrs | AF | pas.bits() | VALID_BLOCK
}

/// Fills the tables: `l1` (512 entries) and `l2` (512 entries for the first
/// GB, at PA `l2_pa`).
pub fn build(l1: &mut [u64; 512], l2: &mut [u64; 512], l2_pa: u64) {
    l1.fill(0);
    for (i, e) in l2.iter_mut().enumerate() {
        let pa = (i as u64) << 21;
        *e = if (FLASH_BASE..FLASH_BASE + FLASH_SIZE).contains(&pa) {
            block(pa, Kind::Code, Pas::Root)
        } else if (SECURE_RAM_BASE..SECURE_RAM_BASE + SECURE_RAM_SIZE).contains(&pa) {
            block(pa, Kind::Data, Pas::Root)
        } else {
            block(pa, Kind::Device, Pas::Root)
        };
    }
    l1[0] = (l2_pa & 0x0000_FFFF_FFFF_F000) | TABLE;
    let mut pa = DRAM_BASE;
    while pa < DRAM_BASE + DRAM_SIZE {
        l1[(pa >> 30) as usize] = block(pa, Kind::Data, Pas::NonSecure);
        pa += 1 << 30;
    }
    let alias = DRAM_BASE + REALM_ALIAS_OFFSET;
    l1[(alias >> 30) as usize] = block(DRAM_BASE, Kind::Data, Pas::Realm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables() {
        let mut l1 = [0u64; 512];
        let mut l2 = [0u64; 512];
        build(&mut l1, &mut l2, 0x0E00_4000);
        assert_eq!(l1[0], 0x0E00_4003);
        // NS DRAM: NS=1, NSE=0, XN, AF, inner shareable, attr 1.
        assert_eq!(l1[1], 0x0040_0000_4000_0000 | 0x725);
        assert_eq!(l1[2], 0x0040_0000_8000_0000 | 0x725);
        assert_eq!(l1[3], 0);
        // Realm alias at VA 0x1_4000_0000 -> PA 0x4000_0000, NSE|NS.
        assert_eq!(l1[5], 0x0040_0000_4000_0000 | 0xF25);
        // Flash: Root, RO, executable.
        assert_eq!(l2[0], 0xF85);
        // UART block: device, Root, XN.
        assert_eq!(l2[0x0900_0000 >> 21], 0x0040_0000_0900_0C01);
        // Secure RAM: data, Root.
        assert_eq!(l2[0x0E00_0000 >> 21], 0x0040_0000_0E00_0F05);
        assert_eq!(l2[0x0EE0_0000 >> 21] & 0xFFF, 0xF05);
    }

    #[test]
    fn registers() {
        assert_eq!(TCR, 0x8082_3519);
        assert_eq!(SCTLR_MMU_ON, 0x30C5_183D);
    }
}
