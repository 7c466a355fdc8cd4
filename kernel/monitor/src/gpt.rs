//! Granule Protection Table layout and transitions (rme-bringup.md §2).
//!
//! Geometry: PPS = 40 bits (1 TB), L0GPTSZ = 30 (1 GB per L0 entry),
//! 4 KiB granules. The first 4 GB have L1 tables (16384 entries of 16 GPIs
//! each per GB); everything above is an L0 block of GPI ANY, so it can never
//! be delegated.

use crate::layout::{
    DRAM_BASE, DRAM_SIZE, GRANULE, REALM_BASE, REALM_END, SECURE_RAM_BASE, SECURE_RAM_SIZE,
};

/// GPI values.
pub mod gpi {
    /// No access.
    pub const NO_ACCESS: u8 = 0x0;
    /// Secure PAS.
    pub const SECURE: u8 = 0x8;
    /// Non-secure PAS.
    pub const NS: u8 = 0x9;
    /// Root PAS.
    pub const ROOT: u8 = 0xA;
    /// Realm PAS.
    pub const REALM: u8 = 0xB;
    /// Any PAS.
    pub const ANY: u8 = 0xF;
}

/// Protected physical address size in bits (PPS = 2).
pub const PPS_BITS: u32 = 40;
/// Bits covered by one L0 entry (L0GPTSZ = 0).
pub const L0_SHIFT: u32 = 30;
/// L0 entries.
pub const L0_ENTRIES: usize = 1 << (PPS_BITS - L0_SHIFT);
/// L0 regions that get an L1 table (the first 4 GB).
pub const L1_TABLES: usize = 4;
/// Entries in one L1 table (one per 64 KiB).
pub const L1_ENTRIES_PER_TABLE: usize = 1 << (L0_SHIFT - 12 - 4);
/// Bytes of one L1 table.
pub const L1_TABLE_BYTES: u64 = (L1_ENTRIES_PER_TABLE * 8) as u64;
/// All L1 entries, for the 4 GB with tables.
pub const L1_ENTRIES: usize = L1_TABLES * L1_ENTRIES_PER_TABLE;
/// End of the PA range covered by L1 tables (granular, delegable).
pub const L1_COVERED_END: u64 = (L1_TABLES as u64) << L0_SHIFT;

/// GPCCR_EL3 without the enable bit: PPS=2 (40 bits), IRGN=ORGN=WB-RA-WA,
/// SH=inner, PGS=4 KB.
pub const GPCCR_BASE: u64 = 0x2 | (1 << 8) | (1 << 10) | (3 << 12);
/// GPCCR_EL3.GPC.
pub const GPCCR_GPC: u64 = 1 << 16;

/// GPTBR_EL3 for an L0 table at `l0_pa`.
pub const fn gptbr(l0_pa: u64) -> u64 {
    (l0_pa >> 12) & ((1 << 40) - 1)
}

/// An L0 block descriptor with one GPI for the whole GB.
pub const fn l0_block(gpi: u8) -> u64 {
    ((gpi as u64) << 4) | 0x1
}

/// An L0 table descriptor pointing at an L1 table.
pub const fn l0_table(l1_pa: u64) -> u64 {
    (l1_pa & 0x000F_FFFF_FFFF_F000) | 0x3
}

/// An L1 granules descriptor with the same GPI in all 16 nibbles.
pub const fn l1_uniform(gpi: u8) -> u64 {
    (gpi as u64 & 0xF) * 0x1111_1111_1111_1111
}

/// Where a granule's GPI lives: index into the concatenated L1 tables and
/// the nibble within the entry. `None` outside the L1-covered range.
pub const fn l1_position(pa: u64) -> Option<(usize, u32)> {
    if pa >= L1_COVERED_END {
        return None;
    }
    let entry = (pa >> 16) as usize; // table * 16384 + PA[29:16]
    let nibble = ((pa >> 12) & 0xF) as u32;
    Some((entry, nibble))
}

/// Fills the L0 table: L1 tables for the first 4 GB (at `l1_base`, one
/// after the other), ANY blocks above.
pub fn init_l0(l0: &mut [u64], l1_base: u64) {
    for (i, e) in l0.iter_mut().enumerate() {
        *e = if i < L1_TABLES {
            l0_table(l1_base + i as u64 * L1_TABLE_BYTES)
        } else {
            l0_block(gpi::ANY)
        };
    }
}

/// The GPI of the granule at `pa`.
pub fn get_gpi(l1: &[u64], pa: u64) -> Option<u8> {
    let (entry, nibble) = l1_position(pa)?;
    Some(((l1[entry] >> (nibble * 4)) & 0xF) as u8)
}

/// Sets the GPI of the granule at `pa` (no barriers: the caller does them).
pub fn set_gpi(l1: &mut [u64], pa: u64, value: u8) -> Option<()> {
    let (entry, nibble) = l1_position(pa)?;
    let shift = nibble * 4;
    l1[entry] = (l1[entry] & !(0xF << shift)) | ((value as u64 & 0xF) << shift);
    Some(())
}

/// Sets every granule of `[start, end)` (granule aligned) to `value`,
/// whole entries at a time where 64 KiB aligned.
pub fn set_range(l1: &mut [u64], start: u64, end: u64, value: u8) {
    let mut pa = start;
    while pa < end {
        if pa % 0x1_0000 == 0 && end - pa >= 0x1_0000 {
            if let Some((entry, _)) = l1_position(pa) {
                l1[entry] = l1_uniform(value);
            }
            pa += 0x1_0000;
        } else {
            let _ = set_gpi(l1, pa, value);
            pa += GRANULE;
        }
    }
}

/// Fills the L1 tables with the contract's PAS layout: ANY by default (MMIO,
/// flash), Root for secure RAM (monitor data and the GPT), NS for DRAM,
/// Realm for the RMM carve-out and the shared page.
pub fn init_l1(l1: &mut [u64]) {
    l1.fill(l1_uniform(gpi::ANY));
    set_range(
        l1,
        SECURE_RAM_BASE,
        SECURE_RAM_BASE + SECURE_RAM_SIZE,
        gpi::ROOT,
    );
    set_range(l1, DRAM_BASE, DRAM_BASE + DRAM_SIZE, gpi::NS);
    set_range(l1, REALM_BASE, REALM_END, gpi::REALM);
}

/// Why a granule transition was refused (RMM-EL3 error codes).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// Unaligned, or outside the L1-covered (delegable) range: BAD_ADDR.
    BadAddr,
    /// The granule is not in the expected source PAS: BAD_PAS.
    BadPas,
}

impl TransitionError {
    /// The RMM-EL3 status code.
    pub const fn status(self) -> i64 {
        match self {
            Self::BadAddr => ipc_schema::el3::status::BAD_ADDR,
            Self::BadPas => ipc_schema::el3::status::BAD_PAS,
        }
    }
}

/// Checks that the granule at `pa` may move from `from` to another PAS.
pub fn check_transition(l1: &[u64], pa: u64, from: u8) -> Result<(), TransitionError> {
    if pa % GRANULE != 0 {
        return Err(TransitionError::BadAddr);
    }
    match get_gpi(l1, pa) {
        None => Err(TransitionError::BadAddr),
        Some(g) if g != from => Err(TransitionError::BadPas),
        Some(_) => Ok(()),
    }
}

/// Operand of `DC CIPAPA` for the cache line at `pa` in PAS `gpi` (NS or
/// Realm): PA with NS in bit 63 and NSE in bit 62.
pub const fn papa_operand(pa: u64, gpi_value: u8) -> u64 {
    let pas = match gpi_value {
        gpi::REALM => 0b11 << 62,
        gpi::NS => 0b10 << 62,
        gpi::ROOT => 0b01 << 62,
        _ => 0,
    };
    pa | pas
}

/// Operand of `TLBI RPALOS` for one 4 KiB granule (SIZE = 0).
pub const fn rpalos_operand(pa: u64) -> u64 {
    (pa >> 12) & ((1 << 44) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<u64> {
        let mut l1 = vec![0u64; L1_ENTRIES];
        init_l1(&mut l1);
        l1
    }

    #[test]
    fn geometry_matches_the_contract() {
        assert_eq!(L0_ENTRIES * 8, 8 * 1024);
        assert_eq!(L1_TABLE_BYTES, 128 * 1024);
        assert_eq!(GPCCR_BASE | GPCCR_GPC, 0x0001_3502);
        assert_eq!(gptbr(0x0EEF_E000), 0x0EEFE);
        // L1 tables must be aligned to their size.
        assert_eq!(crate::layout::GPT_L1 % L1_TABLE_BYTES, 0);
        assert_eq!(crate::layout::GPT_L0 % 8192, 0);
    }

    #[test]
    fn l0_table_and_blocks() {
        let mut l0 = vec![0u64; L0_ENTRIES];
        init_l0(&mut l0, 0x0EF0_0000);
        assert_eq!(l0[0], 0x0EF0_0003);
        assert_eq!(l0[3], 0x0EF6_0003);
        assert_eq!(l0[4], 0xF1);
        assert_eq!(l0[1023], 0xF1);
    }

    #[test]
    fn index_math() {
        assert_eq!(l1_position(0), Some((0, 0)));
        assert_eq!(l1_position(0x1000), Some((0, 1)));
        assert_eq!(l1_position(0x1_0000), Some((1, 0)));
        assert_eq!(l1_position(0x4000_0000), Some((16384, 0)));
        assert_eq!(l1_position(0x418F_F000), Some((16384 + 0x18F, 0xF)));
        assert_eq!(l1_position(0xFFFF_F000), Some((4 * 16384 - 1, 0xF)));
        assert_eq!(l1_position(0x1_0000_0000), None);
    }

    #[test]
    fn contract_layout() {
        let l1 = tables();
        let g = |pa| get_gpi(&l1, pa).unwrap();
        assert_eq!(g(0x0), gpi::ANY);
        assert_eq!(g(0x0900_0000), gpi::ANY);
        assert_eq!(g(0x0E00_0000), gpi::ROOT);
        assert_eq!(g(0x0EEF_E000), gpi::ROOT);
        assert_eq!(g(0x0EFF_F000), gpi::ROOT);
        assert_eq!(g(0x0F00_0000), gpi::ANY);
        assert_eq!(g(0x4000_0000), gpi::NS);
        assert_eq!(g(0x400F_F000), gpi::NS);
        assert_eq!(g(0x4010_0000), gpi::REALM);
        assert_eq!(g(0x418F_F000), gpi::REALM);
        assert_eq!(g(0x4190_0000), gpi::NS);
        assert_eq!(g(0x6000_0000), gpi::NS);
        assert_eq!(g(0xBFFF_F000), gpi::NS);
        assert_eq!(g(0xC000_0000), gpi::ANY);
        assert_eq!(g(0xFFFF_F000), gpi::ANY);
    }

    #[test]
    fn single_granule_changes() {
        let mut l1 = tables();
        assert_eq!(check_transition(&l1, 0x4190_1000, gpi::NS), Ok(()));
        set_gpi(&mut l1, 0x4190_1000, gpi::REALM).unwrap();
        assert_eq!(get_gpi(&l1, 0x4190_1000), Some(gpi::REALM));
        assert_eq!(get_gpi(&l1, 0x4190_0000), Some(gpi::NS));
        assert_eq!(get_gpi(&l1, 0x4190_2000), Some(gpi::NS));
        assert_eq!(
            check_transition(&l1, 0x4190_1000, gpi::NS),
            Err(TransitionError::BadPas)
        );
        assert_eq!(
            check_transition(&l1, 0x4190_1008, gpi::NS),
            Err(TransitionError::BadAddr)
        );
        assert_eq!(
            check_transition(&l1, 0x1_0000_0000, gpi::NS),
            Err(TransitionError::BadAddr)
        );
        assert_eq!(
            check_transition(&l1, 0x0E00_0000, gpi::NS),
            Err(TransitionError::BadPas)
        );
    }

    #[test]
    fn unaligned_range_edges() {
        let mut l1 = vec![l1_uniform(gpi::ANY); L1_ENTRIES];
        set_range(&mut l1, 0x4000_3000, 0x4002_1000, gpi::NS);
        assert_eq!(get_gpi(&l1, 0x4000_2000), Some(gpi::ANY));
        assert_eq!(get_gpi(&l1, 0x4000_3000), Some(gpi::NS));
        assert_eq!(get_gpi(&l1, 0x4002_0000), Some(gpi::NS));
        assert_eq!(get_gpi(&l1, 0x4002_1000), Some(gpi::ANY));
    }

    #[test]
    fn operands() {
        assert_eq!(papa_operand(0x4190_0000, gpi::REALM), 0xC000_0000_4190_0000);
        assert_eq!(papa_operand(0x4190_0000, gpi::NS), 0x8000_0000_4190_0000);
        assert_eq!(rpalos_operand(0x4190_1000), 0x41901);
    }
}
