//! Hardware stage-2 tables built from the RTTs.
//!
//! The RTTs (`atoll_kernel::rtt`) hold the RMM's own encoding of every
//! realm's IPA space; the MMU needs VMSAv8-64 stage-2 descriptors. Before a
//! REC runs, [`Stage2::build`] walks the realm's RTTs and produces a fresh
//! set of hardware tables in RMM memory:
//!
//! * ASSIGNED with RIPAS RAM: a valid leaf (page at level 3, block at
//!   levels 1 and 2) to the DATA granule, Normal write-back (FEAT_S2FWB
//!   encoding), read/write, inner shareable, access flag set;
//! * ASSIGNED_NS: a valid leaf to the host's NS PA with NS (bit 55) set,
//!   the host's MemAttr and S2AP, execute-never;
//! * TABLE: a table descriptor to the hardware copy of the next level;
//! * everything else (UNASSIGNED, UNASSIGNED_NS, ASSIGNED with RIPAS EMPTY
//!   or DESTROYED, a leaf at level 0): invalid, so the access traps to the
//!   RMM, which decides through the RTTs.
//!
//! Everything here is pure logic over a [`RttSource`], so it is unit-tested
//! on the host.

use alloc::boxed::Box;
use alloc::vec::Vec;

use atoll_kernel::rtt::{Entry, Hipas, RttRoot, ENTRIES, LEVEL_MAX};
use ipc_schema::rmi::Ripas;

/// Where RTT granules are read from.
pub trait RttSource {
    /// Reads the 512 entries of the RTT granule at `pa`.
    fn read_rtt(&self, pa: u64, out: &mut [u64; 512]);
}

/// One 4 KiB translation table.
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

/// The starting level: up to 16 concatenated tables, aligned to their
/// combined size as VTTBR_EL2 requires.
#[repr(C, align(65536))]
pub struct RootTables(pub [Table; 16]);

/// Descriptor bits.
pub mod desc {
    /// Valid.
    pub const VALID: u64 = 1 << 0;
    /// Table (levels 0-2) or page (level 3).
    pub const TABLE_OR_PAGE: u64 = 1 << 1;
    /// MemAttr [5:2] = 0b0110: Normal write-back under FEAT_S2FWB.
    pub const MEMATTR_NORMAL_WB: u64 = 0b0110 << 2;
    /// S2AP [7:6] read/write.
    pub const S2AP_RW: u64 = 0b11 << 6;
    /// SH [9:8] inner shareable.
    pub const SH_INNER: u64 = 0b11 << 8;
    /// Access flag.
    pub const AF: u64 = 1 << 10;
    /// XN [54:53] = 0b10: execute-never at EL1 and EL0.
    pub const XN: u64 = 0b10 << 53;
    /// NS (bit 55): the output address is in the Non-secure PAS (Realm
    /// state stage 2).
    pub const NS: u64 = 1 << 55;
    /// Output address [47:12].
    pub const ADDR_MASK: u64 = 0x0000_FFFF_FFFF_F000;
}

/// The hardware descriptor for one RTT entry at `level`, with `next` the
/// address of the hardware table already built for a TABLE entry.
pub fn descriptor(e: &Entry, level: i8, next: Option<u64>) -> u64 {
    let leaf_type = if level == LEVEL_MAX {
        desc::VALID | desc::TABLE_OR_PAGE
    } else {
        desc::VALID
    };
    match e.hipas {
        Hipas::Table => match next {
            Some(t) if level < LEVEL_MAX => {
                desc::VALID | desc::TABLE_OR_PAGE | (t & desc::ADDR_MASK)
            }
            _ => 0,
        },
        Hipas::Assigned if e.ripas == Ripas::Ram && level >= 1 => {
            leaf_type
                | desc::MEMATTR_NORMAL_WB
                | desc::S2AP_RW
                | desc::SH_INNER
                | desc::AF
                | (e.addr & desc::ADDR_MASK)
        }
        Hipas::AssignedNs if level >= 1 => {
            leaf_type
                | u64::from(e.memattr & 0b111) << 2
                | u64::from(e.s2ap & 0b11) << 6
                | desc::SH_INNER
                | desc::AF
                | desc::XN
                | desc::NS
                | (e.addr & desc::ADDR_MASK)
        }
        _ => 0,
    }
}

/// A realm's hardware stage-2 tables.
pub struct Stage2 {
    root: Box<RootTables>,
    tables: Vec<Box<Table>>,
    /// The RTT geometry they were built from.
    pub rtt: RttRoot,
}

fn zeroed<T>() -> Box<T> {
    // Only used with `Table` and `RootTables`: arrays of u64.
    let b: Box<core::mem::MaybeUninit<T>> = Box::new_zeroed();
    // SAFETY: `T` is `Table` or `RootTables`, plain arrays of `u64` for
    // which all-zero bytes are a valid value; `Box::new_zeroed` zeroed
    // every byte.
    unsafe { b.assume_init() }
}

/// Address of a table as the MMU sees it: the RMM maps its own memory
/// VA = PA, so a table's address is its physical address.
fn table_addr(t: &Table) -> u64 {
    core::ptr::from_ref(t) as u64
}

impl Stage2 {
    /// Builds the tables for the realm whose starting RTTs `rtt` describes.
    pub fn build<S: RttSource>(src: &S, rtt: &RttRoot) -> Self {
        let mut s = Self {
            root: zeroed(),
            tables: Vec::new(),
            rtt: *rtt,
        };
        let num = (rtt.num as usize).clamp(1, 16);
        let mut root = zeroed::<RootTables>();
        for i in 0..num {
            let pa = rtt.base + (i as u64) * 4096;
            s.fill(src, pa, rtt.level, &mut root.0[i]);
        }
        s.root = root;
        s
    }

    fn fill<S: RttSource>(&mut self, src: &S, rtt_pa: u64, level: i8, out: &mut Table) {
        let mut raw = [0u64; 512];
        src.read_rtt(rtt_pa, &mut raw);
        for (i, &v) in raw.iter().enumerate().take(ENTRIES as usize) {
            let e = Entry::decode(v);
            let next = if e.hipas == Hipas::Table && level < LEVEL_MAX {
                let mut t = zeroed::<Table>();
                self.fill(src, e.addr, level + 1, &mut t);
                let a = table_addr(&t);
                self.tables.push(t);
                Some(a)
            } else {
                None
            };
            out.0[i] = descriptor(&e, level, next);
        }
    }

    /// Base address of the starting-level tables (VTTBR_EL2.BADDR).
    pub fn root_addr(&self) -> u64 {
        table_addr(&self.root.0[0])
    }

    /// Number of tables below the starting level.
    pub fn table_count(&self) -> usize {
        self.tables.len()
    }

    fn table_at(&self, addr: u64) -> Option<&Table> {
        self.root
            .0
            .iter()
            .chain(self.tables.iter().map(|t| &**t))
            .find(|t| table_addr(t) == addr)
    }

    /// Walks the hardware tables as the MMU would: the leaf descriptor for
    /// `ipa` and its level, or `None` when the walk meets an invalid one.
    pub fn walk(&self, ipa: u64) -> Option<(u64, i8)> {
        let mut level = self.rtt.level;
        let shift = |l: i8| 12 + 9 * (3 - l as u32);
        let idx = ipa >> shift(level);
        let mut table = self.root.0.get((idx / ENTRIES) as usize)?;
        let mut d = table.0[(idx % ENTRIES) as usize];
        loop {
            if d & desc::VALID == 0 {
                return None;
            }
            if level == LEVEL_MAX || d & desc::TABLE_OR_PAGE == 0 {
                return Some((d, level));
            }
            table = self.table_at(d & desc::ADDR_MASK)?;
            level += 1;
            d = table.0[((ipa >> shift(level)) & (ENTRIES - 1)) as usize];
        }
    }
}

/// VTCR_EL2 for a realm: 4 KiB granule, T0SZ from the IPA width, SL0 from
/// the starting level, write-back inner shareable walks, 48-bit PS, 16-bit
/// VMIDs, RES1 bit 31.
pub fn vtcr(ipa_width: u8, start_level: i8) -> u64 {
    let t0sz = 64 - u64::from(ipa_width);
    let sl0: u64 = match start_level {
        0 => 2,
        1 => 1,
        _ => 0,
    };
    t0sz | sl0 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | 5 << 16 | 1 << 19 | 1 << 31
}

/// VTTBR_EL2: table base and 16-bit VMID.
pub fn vttbr(root: u64, vmid: u16) -> u64 {
    (root & 0x0000_FFFF_FFFF_FFFE) | u64::from(vmid) << 48
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Mem(BTreeMap<u64, [u64; 512]>);

    impl RttSource for Mem {
        fn read_rtt(&self, pa: u64, out: &mut [u64; 512]) {
            *out = self.0.get(&pa).copied().unwrap_or([0; 512]);
        }
    }

    impl Mem {
        fn set(&mut self, rtt: u64, idx: usize, e: Entry) {
            self.0.entry(rtt).or_insert([0; 512])[idx] = e.encode();
        }
    }

    const ROOT: u64 = 0x8000_0000;
    const L2: u64 = 0x8000_1000;
    const L3: u64 = 0x8000_2000;

    fn root33() -> RttRoot {
        // 33-bit IPA, start level 1, two concatenated... no: level 1 covers
        // 39 bits with one table.
        RttRoot {
            base: ROOT,
            level: 1,
            num: 1,
            ipa_width: 33,
        }
    }

    #[test]
    fn empty_rtts_map_nothing() {
        let s = Stage2::build(&Mem::default(), &root33());
        assert_eq!(s.walk(0), None);
        assert_eq!(s.walk(0x1_0000_0000), None);
        assert_eq!(s.table_count(), 0);
        assert_eq!(s.root_addr() % 65536, 0);
    }

    #[test]
    fn assigned_ram_page_and_ns_mapping() {
        let mut m = Mem::default();
        m.set(ROOT, 0, Entry::table(L2));
        m.set(ROOT, 4, Entry::table(0x8000_3000)); // IPA 4 GiB: unprotected half
        m.set(L2, 1, Entry::table(L3));
        m.set(L3, 0, Entry::assigned(0x4200_0000, Ripas::Ram));
        m.set(L3, 1, Entry::assigned(0x4200_1000, Ripas::Empty));
        m.set(L3, 2, Entry::assigned(0x4200_2000, Ripas::Destroyed));
        m.set(L3, 3, Entry::unassigned(Ripas::Ram));
        // NS block at level 2: MemAttr 0b101, S2AP read-only.
        let ns = 0x6100_0000 | 0b101 << 2 | 0b01 << 6;
        m.set(0x8000_3000, 0, Entry::assigned_ns(ns));
        let s = Stage2::build(&m, &root33());
        assert_eq!(s.table_count(), 3);

        let (d, l) = s.walk(0x20_0000).unwrap();
        assert_eq!(l, 3);
        assert_eq!(d & desc::ADDR_MASK, 0x4200_0000);
        assert_eq!(d & 0b11, 0b11);
        assert_eq!(d & desc::NS, 0);
        assert_eq!(d & (0b1111 << 2), desc::MEMATTR_NORMAL_WB);
        assert_eq!(d & desc::S2AP_RW, desc::S2AP_RW);
        assert_ne!(d & desc::AF, 0);
        assert_eq!(s.walk(0x20_0fff).unwrap().0, d);
        // RIPAS EMPTY / DESTROYED and unassigned: invalid.
        assert_eq!(s.walk(0x20_1000), None);
        assert_eq!(s.walk(0x20_2000), None);
        assert_eq!(s.walk(0x20_3000), None);
        // Nothing at level 2 index 0.
        assert_eq!(s.walk(0x0), None);

        let (d, l) = s.walk(0x1_0000_0000 + 0x1234).unwrap();
        assert_eq!(l, 2);
        assert_eq!(d & 0b11, 0b01, "block");
        assert_eq!(d & desc::ADDR_MASK, 0x6100_0000);
        assert_ne!(d & desc::NS, 0);
        assert_eq!(d & desc::XN, desc::XN);
        assert_eq!((d >> 2) & 0b1111, 0b101);
        assert_eq!((d >> 6) & 0b11, 0b01);
    }

    #[test]
    fn ram_block_at_level_2_and_no_leaf_at_level_0() {
        let mut m = Mem::default();
        m.set(ROOT, 0, Entry::table(L2));
        m.set(L2, 3, Entry::assigned(0x4400_0000, Ripas::Ram));
        let s = Stage2::build(&m, &root33());
        let (d, l) = s.walk(0x60_0000 + 0x1_2345).unwrap();
        assert_eq!((l, d & 0b11), (2, 0b01));
        assert_eq!(d & desc::ADDR_MASK, 0x4400_0000);

        let mut m = Mem::default();
        m.set(ROOT, 0, Entry::assigned(0x0, Ripas::Ram));
        let r = RttRoot {
            base: ROOT,
            level: 0,
            num: 1,
            ipa_width: 48,
        };
        assert_eq!(Stage2::build(&m, &r).walk(0), None);
    }

    #[test]
    fn concatenated_start_tables() {
        // 42-bit IPA at level 1: 8 concatenated tables.
        let mut m = Mem::default();
        let r = RttRoot {
            base: ROOT,
            level: 1,
            num: 8,
            ipa_width: 42,
        };
        m.set(ROOT + 5 * 4096, 7, Entry::assigned(0x8000_0000, Ripas::Ram));
        let s = Stage2::build(&m, &r);
        let ipa = (5 * 512 + 7) << 30;
        let (d, l) = s.walk(ipa).unwrap();
        assert_eq!((l, d & desc::ADDR_MASK), (1, 0x8000_0000));
        assert_eq!(s.walk(7 << 30), None);
    }

    #[test]
    fn vtcr_values() {
        // The guide's tested value for a 33-bit IPA at level 1, with our
        // 48-bit PS and VS instead of PS = 40 bits.
        assert_eq!(vtcr(33, 1), 0x8002_355F & !(7 << 16) | 5 << 16 | 1 << 19);
        assert_eq!(vtcr(48, 0) & 0x3F, 16);
        assert_eq!((vtcr(48, 0) >> 6) & 3, 2);
        assert_eq!(vttbr(0x4180_0000, 3), 0x0003_0000_4180_0000);
    }
}
