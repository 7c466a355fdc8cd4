//! The `atoll-fw.bin` image table at flash offset 0x0010_0000
//! (docs/qemu-boot.md): magic "ATOLLFW1", count u32, pad u32, then `count`
//! 64-byte entries {kind u32, flags u32, offset u64, size u64, load u64,
//! signer_id [u8; 32]}, little-endian.

use crate::layout::{
    DTB, FLASH_SIZE, IMAGE_TABLE, KIND_NS_HOST, KIND_RMM, REALM_BASE, SHARED_PAGE,
};

/// Table magic.
pub const MAGIC: [u8; 8] = *b"ATOLLFW1";
/// Bytes of the table header.
pub const HEADER_LEN: usize = 16;
/// Bytes of one entry.
pub const ENTRY_LEN: usize = 64;
/// Most entries the monitor accepts (one RMM, one NS host, room to grow).
pub const MAX_ENTRIES: usize = 8;

/// One image to copy and measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// 1 = RMM, 2 = NS host.
    pub kind: u32,
    /// Offset from the start of flash.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
    /// PA to copy to.
    pub load: u64,
    /// Signer id reported to the HES.
    pub signer_id: [u8; 32],
}

impl Image {
    /// The HES component type for the measurement.
    pub const fn component_type(&self) -> &'static str {
        match self.kind {
            KIND_RMM => "RMM",
            _ => "NS-HOST",
        }
    }
}

/// Why the table was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TableError {
    /// Wrong magic.
    BadMagic,
    /// Count zero or above [`MAX_ENTRIES`], or the table runs off its buffer.
    BadCount,
    /// Entry `n` has an unknown kind or non-zero flags.
    BadEntry(usize),
    /// Entry `n`'s bytes are outside flash or overlap the table.
    BadSource(usize),
    /// Entry `n`'s load range is outside the PAS region its kind may use.
    BadLoad(usize),
    /// More than one image of a kind, or a required kind missing.
    BadSet,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(w)
}

/// Where an image of `kind` may be loaded: `[start, end)`.
pub const fn load_window(kind: u32) -> Option<(u64, u64)> {
    match kind {
        // The RMM lives in the Realm carve-out, below the shared page.
        KIND_RMM => Some((REALM_BASE, SHARED_PAGE)),
        // The NS host goes to NS DRAM above the Realm carve-out.
        KIND_NS_HOST => Some((crate::layout::REALM_END, DTB + crate::layout::DRAM_SIZE)),
        _ => None,
    }
}

/// Parses and checks the table. `table` holds the flash bytes from
/// [`IMAGE_TABLE`] on (at least the header and entries). Exactly one RMM and
/// one NS host are required.
pub fn parse(table: &[u8]) -> Result<([Option<Image>; MAX_ENTRIES], usize), TableError> {
    if table.len() < HEADER_LEN || table[..8] != MAGIC {
        return Err(TableError::BadMagic);
    }
    let count = u32_at(table, 8) as usize;
    if count == 0 || count > MAX_ENTRIES || table.len() < HEADER_LEN + count * ENTRY_LEN {
        return Err(TableError::BadCount);
    }
    let table_end = IMAGE_TABLE + (HEADER_LEN + count * ENTRY_LEN) as u64;
    let mut out: [Option<Image>; MAX_ENTRIES] = Default::default();
    let (mut rmm, mut ns) = (0, 0);
    for (i, slot) in out.iter_mut().enumerate().take(count) {
        let e = &table[HEADER_LEN + i * ENTRY_LEN..HEADER_LEN + (i + 1) * ENTRY_LEN];
        let kind = u32_at(e, 0);
        let flags = u32_at(e, 4);
        let (offset, size, load) = (u64_at(e, 8), u64_at(e, 16), u64_at(e, 24));
        let mut signer_id = [0u8; 32];
        signer_id.copy_from_slice(&e[32..64]);
        let Some((lo, hi)) = load_window(kind) else {
            return Err(TableError::BadEntry(i));
        };
        if flags != 0 {
            return Err(TableError::BadEntry(i));
        }
        match offset.checked_add(size) {
            Some(end) if size > 0 && offset >= table_end && end <= FLASH_SIZE => {}
            _ => return Err(TableError::BadSource(i)),
        }
        match load.checked_add(size) {
            Some(end) if load >= lo && end <= hi && load % 4096 == 0 => {}
            _ => return Err(TableError::BadLoad(i)),
        }
        if kind == KIND_RMM {
            rmm += 1;
        } else {
            ns += 1;
        }
        *slot = Some(Image {
            kind,
            offset,
            size,
            load,
            signer_id,
        });
    }
    if rmm != 1 || ns != 1 {
        return Err(TableError::BadSet);
    }
    Ok((out, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: u32, offset: u64, size: u64, load: u64) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&kind.to_le_bytes());
        e.extend_from_slice(&0u32.to_le_bytes());
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        e.extend_from_slice(&load.to_le_bytes());
        e.extend_from_slice(&[kind as u8; 32]);
        e
    }

    fn table(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut t = b"ATOLLFW1".to_vec();
        t.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        for e in entries {
            t.extend_from_slice(e);
        }
        t
    }

    #[test]
    fn good_table() {
        let t = table(&[
            entry(1, 0x10_1000, 0x2000, 0x4010_0000),
            entry(2, 0x10_3000, 0x1000, 0x6000_0000),
        ]);
        let (imgs, n) = parse(&t).unwrap();
        assert_eq!(n, 2);
        let r = imgs[0].as_ref().unwrap();
        assert_eq!(
            (r.kind, r.offset, r.size, r.load),
            (1, 0x10_1000, 0x2000, 0x4010_0000)
        );
        assert_eq!(r.signer_id, [1; 32]);
        assert_eq!(r.component_type(), "RMM");
        assert_eq!(imgs[1].as_ref().unwrap().component_type(), "NS-HOST");
    }

    #[test]
    fn refusals() {
        let ok_ns = entry(2, 0x10_3000, 0x1000, 0x6000_0000);
        let mut t = table(&[entry(1, 0x10_1000, 0x2000, 0x4010_0000), ok_ns.clone()]);
        t[0] = b'X';
        assert_eq!(parse(&t), Err(TableError::BadMagic));
        assert_eq!(parse(&table(&[])), Err(TableError::BadCount));
        assert_eq!(
            parse(&table(&[entry(3, 0x10_1000, 0x10, 0x4010_0000)])),
            Err(TableError::BadEntry(0))
        );
        // RMM over the shared page.
        assert_eq!(
            parse(&table(&[
                entry(1, 0x10_1000, 0x2000, 0x418F_E000),
                ok_ns.clone()
            ])),
            Err(TableError::BadLoad(0))
        );
        // NS host into the Realm carve-out.
        assert_eq!(
            parse(&table(&[
                entry(1, 0x10_1000, 0x2000, 0x4010_0000),
                entry(2, 0x10_3000, 0x1000, 0x4100_0000)
            ])),
            Err(TableError::BadLoad(1))
        );
        // Source overlapping the table / past flash / overflowing.
        assert_eq!(
            parse(&table(&[
                entry(1, 0x10_0000, 0x2000, 0x4010_0000),
                ok_ns.clone()
            ])),
            Err(TableError::BadSource(0))
        );
        assert_eq!(
            parse(&table(&[
                entry(1, 0x3FF_F000, 0x2000, 0x4010_0000),
                ok_ns.clone()
            ])),
            Err(TableError::BadSource(0))
        );
        assert_eq!(
            parse(&table(&[entry(1, u64::MAX, 2, 0x4010_0000), ok_ns.clone()])),
            Err(TableError::BadSource(0))
        );
        // Two NS hosts, no RMM.
        assert_eq!(
            parse(&table(&[ok_ns.clone(), ok_ns])),
            Err(TableError::BadSet)
        );
    }
}
