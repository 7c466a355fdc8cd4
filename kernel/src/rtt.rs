//! Realm translation tables: entry encoding, level geometry and walks.
//!
//! RTTs live in RTT granules as 512 little-endian u64 entries, so an RTT is
//! real memory that is delegated, scrubbed and accounted like any other
//! granule. The entry encoding is the RMM's own (the aarch64 layer builds
//! the hardware stage-2 tables from it):
//!
//! | bits | field |
//! |---|---|
//! | 2:0 | HIPAS: 0 UNASSIGNED, 1 ASSIGNED, 2 UNASSIGNED_NS, 3 ASSIGNED_NS, 4 TABLE |
//! | 4:3 | RIPAS (protected IPAs): 0 EMPTY, 1 RAM, 2 DESTROYED |
//! | 7:5 | MemAttr[2:0] (ASSIGNED_NS) |
//! | 9:8 | S2AP (ASSIGNED_NS) |
//! | 47:12 | output address (DATA granule, NS PA or next-level RTT) |
//!
//! A zeroed granule is therefore a table of UNASSIGNED, EMPTY entries.

use ipc_schema::rmi::{ns_desc, Ripas};

use crate::arch::Platform;
use crate::GRANULE_U64;

/// Entries per RTT granule.
pub const ENTRIES: u64 = 512;
/// The deepest level.
pub const LEVEL_MAX: i8 = 3;

/// Host IPA state of an entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Hipas {
    /// Protected, no DATA granule.
    Unassigned,
    /// Protected, backed by a DATA granule (or a block of them).
    Assigned,
    /// Unprotected, not mapped.
    UnassignedNs,
    /// Unprotected, mapped to NS memory.
    AssignedNs,
    /// Points to a next-level RTT.
    Table,
}

/// One decoded RTT entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// HIPAS.
    pub hipas: Hipas,
    /// RIPAS (meaningful for protected entries).
    pub ripas: Ripas,
    /// Output address.
    pub addr: u64,
    /// MemAttr[2:0] of an NS mapping.
    pub memattr: u8,
    /// S2AP of an NS mapping.
    pub s2ap: u8,
}

const ADDR_MASK: u64 = 0x0000_FFFF_FFFF_F000;

impl Entry {
    /// An unassigned protected entry with `ripas`.
    pub const fn unassigned(ripas: Ripas) -> Self {
        Self {
            hipas: Hipas::Unassigned,
            ripas,
            addr: 0,
            memattr: 0,
            s2ap: 0,
        }
    }

    /// An unassigned unprotected entry.
    pub const fn unassigned_ns() -> Self {
        Self {
            hipas: Hipas::UnassignedNs,
            ripas: Ripas::Empty,
            addr: 0,
            memattr: 0,
            s2ap: 0,
        }
    }

    /// A table entry.
    pub const fn table(addr: u64) -> Self {
        Self {
            hipas: Hipas::Table,
            ripas: Ripas::Empty,
            addr,
            memattr: 0,
            s2ap: 0,
        }
    }

    /// An assigned protected entry.
    pub const fn assigned(addr: u64, ripas: Ripas) -> Self {
        Self {
            hipas: Hipas::Assigned,
            ripas,
            addr,
            memattr: 0,
            s2ap: 0,
        }
    }

    /// An NS mapping from a host `desc` (already validated).
    pub const fn assigned_ns(desc: u64) -> Self {
        Self {
            hipas: Hipas::AssignedNs,
            ripas: Ripas::Empty,
            addr: desc & ns_desc::ADDR_MASK,
            memattr: ((desc >> ns_desc::MEMATTR_SHIFT) & ns_desc::MEMATTR_MASK) as u8,
            s2ap: ((desc >> ns_desc::S2AP_SHIFT) & ns_desc::S2AP_MASK) as u8,
        }
    }

    /// Whether the entry is live (A5.5: ASSIGNED, ASSIGNED_NS or TABLE).
    pub const fn is_live(&self) -> bool {
        matches!(
            self.hipas,
            Hipas::Assigned | Hipas::AssignedNs | Hipas::Table
        )
    }

    /// Whether the entry makes its RTT live (ASSIGNED or TABLE: NS mappings
    /// do not keep an RTT alive).
    pub const fn keeps_rtt_live(&self) -> bool {
        matches!(self.hipas, Hipas::Assigned | Hipas::Table)
    }

    /// The descriptor value `RMI_RTT_READ_ENTRY` reports for NS mappings.
    pub const fn ns_desc(&self) -> u64 {
        self.addr
            | (self.memattr as u64) << ns_desc::MEMATTR_SHIFT
            | (self.s2ap as u64) << ns_desc::S2AP_SHIFT
    }

    /// Encodes the entry.
    pub const fn encode(&self) -> u64 {
        let hipas = match self.hipas {
            Hipas::Unassigned => 0,
            Hipas::Assigned => 1,
            Hipas::UnassignedNs => 2,
            Hipas::AssignedNs => 3,
            Hipas::Table => 4,
        };
        hipas
            | (self.ripas as u64) << 3
            | (self.memattr as u64 & 0b111) << 5
            | (self.s2ap as u64 & 0b11) << 8
            | (self.addr & ADDR_MASK)
    }

    /// Decodes an entry. RTT memory is only ever written by the core, so an
    /// undefined value means corruption; it decodes as UNASSIGNED/EMPTY
    /// rather than panicking, which a realm can only lose by.
    pub const fn decode(v: u64) -> Self {
        let hipas = match v & 0b111 {
            1 => Hipas::Assigned,
            2 => Hipas::UnassignedNs,
            3 => Hipas::AssignedNs,
            4 => Hipas::Table,
            _ => Hipas::Unassigned,
        };
        let ripas = match Ripas::from_u8(((v >> 3) & 0b11) as u8) {
            Some(r) => r,
            None => Ripas::Empty,
        };
        Self {
            hipas,
            ripas,
            addr: v & ADDR_MASK,
            memattr: ((v >> 5) & 0b111) as u8,
            s2ap: ((v >> 8) & 0b11) as u8,
        }
    }
}

/// Size of the IPA range one entry at `level` maps.
pub const fn entry_size(level: i8) -> u64 {
    1u64 << level_shift(level)
}

/// log2 of [`entry_size`].
pub const fn level_shift(level: i8) -> u32 {
    (12 + 9 * (3 - level as i32)) as u32
}

/// `AddrIsRttLevelAligned`.
pub const fn is_level_aligned(addr: u64, level: i8) -> bool {
    level >= -1 && level <= LEVEL_MAX && addr & (entry_size(level) - 1) == 0
}

/// Aligns `addr` down to `level`.
pub const fn align_down(addr: u64, level: i8) -> u64 {
    addr & !(entry_size(level) - 1)
}

/// Where a walk stopped.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The level reached.
    pub level: i8,
    /// PA of the entry.
    pub entry_pa: u64,
    /// The entry.
    pub entry: Entry,
    /// First IPA mapped by the table holding the entry.
    pub table_base: u64,
    /// One past the last IPA mapped by the table holding the entry.
    pub table_top: u64,
    /// PA of the first entry of that table.
    pub table_pa: u64,
}

/// A realm's starting-level geometry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RttRoot {
    /// PA of the first starting-level RTT.
    pub base: u64,
    /// The starting level.
    pub level: i8,
    /// Number of concatenated starting-level RTTs.
    pub num: u32,
    /// The realm's IPA width: walks never look past `2^ipa_width`.
    pub ipa_width: u8,
}

impl RttRoot {
    /// Entries across all starting-level RTTs.
    pub const fn entries(&self) -> u64 {
        ENTRIES * self.num as u64
    }
}

/// Reads the entry at `pa`.
pub fn read_entry<P: Platform>(p: &P, pa: u64) -> Entry {
    let mut b = [0u8; 8];
    // RTT granules are RMM-owned memory inside DRAM; a failing read cannot
    // happen for a PA the granule table says is an RTT.
    let _ = p.read(pa, &mut b);
    Entry::decode(u64::from_le_bytes(b))
}

/// Writes the entry at `pa`.
pub fn write_entry<P: Platform>(p: &mut P, pa: u64, e: Entry) {
    let _ = p.write(pa, &e.encode().to_le_bytes());
}

/// `RttWalk(rd, ipa, level)`: from the starting RTTs down to `level` or to
/// the first entry that is not a table. `ipa` is below `2^ipa_width`.
pub fn walk<P: Platform>(p: &P, root: &RttRoot, ipa: u64, level: i8) -> Walk {
    let mut lvl = root.level;
    let idx = ipa >> level_shift(lvl);
    // Concatenated starting tables are separate RTTs: the walk result (and
    // so every `top` derived from it) covers only the one holding `ipa`.
    let table = idx / ENTRIES;
    let mut table_pa = root.base + table * TABLE_BYTES;
    let mut table_base = (table * ENTRIES) << level_shift(lvl);
    let mut table_top = (table_base + (ENTRIES << level_shift(lvl))).min(1 << root.ipa_width);
    let mut entry_pa = table_pa + (idx % ENTRIES) * 8;
    loop {
        let entry = read_entry(p, entry_pa);
        if lvl >= level || entry.hipas != Hipas::Table {
            return Walk {
                level: lvl,
                entry_pa,
                entry,
                table_base,
                table_top,
                table_pa,
            };
        }
        lvl += 1;
        table_pa = entry.addr;
        table_base = align_down(ipa, lvl - 1);
        table_top = table_base + entry_size(lvl - 1);
        entry_pa = table_pa + ((ipa >> level_shift(lvl)) & (ENTRIES - 1)) * 8;
    }
}

impl Walk {
    /// PA of the entry mapping `ipa` in the same table.
    pub fn entry_pa_for(&self, ipa: u64) -> u64 {
        self.table_pa + ((ipa - self.table_base) >> level_shift(self.level)) * 8
    }

    /// `RttSkipNonLiveEntries`: `ipa` itself if its entry is live, else the
    /// base of the next live entry in this table, else the table's end.
    pub fn skip_non_live<P: Platform>(&self, p: &P, ipa: u64) -> u64 {
        let size = entry_size(self.level);
        let mut addr = align_down(ipa, self.level);
        while addr < self.table_top {
            if read_entry(p, self.entry_pa_for(addr)).is_live() {
                return addr.max(ipa);
            }
            addr += size;
        }
        self.table_top
    }
}

/// Starting-table geometry for an IPA width (4 KB granule, no LPA2):
/// `RttConfigIsValid`. Returns the level and number of concatenated tables.
pub const fn start_config(s2sz: u64, level: i64) -> Option<u32> {
    match level {
        0 if s2sz >= 40 && s2sz <= 48 => Some(1),
        1 if s2sz >= 32 && s2sz <= 39 => Some(1),
        1 if s2sz >= 40 && s2sz <= 43 => Some(1 << (s2sz - 39)),
        2 if s2sz >= 32 && s2sz <= 34 => Some(1 << (s2sz - 30)),
        _ => None,
    }
}

/// Granules of RTT memory per table.
pub const TABLE_BYTES: u64 = GRANULE_U64;
