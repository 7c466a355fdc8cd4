//! Boot manifest v0.3 in the EL3 <-> RMM shared page (cca-abi.md).
//!
//! Layout in the page: the [`BootManifest`] at 0, the DRAM bank array at
//! 0x40, the console array at 0x80. Pointers are PAs (the RMM maps the page
//! at its PA).

use ipc_schema::el3::{BootManifest, ConsoleInfo, DramBank, MANIFEST_VERSION};
use zerocopy::{FromZeros, IntoBytes};

use crate::layout::{DRAM_BASE, DRAM_SIZE, UART0};

/// Offset of the DRAM bank array in the shared page.
pub const BANKS_OFFSET: usize = 0x40;
/// Offset of the console array in the shared page.
pub const CONSOLES_OFFSET: usize = 0x80;

/// Checksum of a manifest list: the two's-complement negative of the sum of
/// the count, the pointer and every 64-bit word of the array.
pub fn checksum(count: u64, ptr: u64, words: &[u8]) -> u64 {
    let sum = words
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
        .fold(count.wrapping_add(ptr), u64::wrapping_add);
    sum.wrapping_neg()
}

/// The console the contract names: UART0, PL011, 115200 baud.
pub fn console() -> ConsoleInfo {
    let mut c = ConsoleInfo::new_zeroed();
    c.base = UART0;
    c.map_pages = 1;
    c.name[..5].copy_from_slice(b"pl011");
    c.clk_in_hz = 1;
    c.baud_rate = 115_200;
    c.flags = 0;
    c
}

/// Writes the manifest into `page` (the shared page, at PA `page_pa`),
/// zeroing the rest of the page.
pub fn build(page: &mut [u8], page_pa: u64) {
    page.fill(0);
    let bank = DramBank {
        base: DRAM_BASE,
        size: DRAM_SIZE,
    };
    let con = console();
    let banks_pa = page_pa + BANKS_OFFSET as u64;
    let cons_pa = page_pa + CONSOLES_OFFSET as u64;

    let mut m = BootManifest::new_zeroed();
    m.version = MANIFEST_VERSION;
    m.plat_data = 0;
    m.plat_dram.num_banks = 1;
    m.plat_dram.banks = banks_pa;
    m.plat_dram.checksum = checksum(1, banks_pa, bank.as_bytes());
    m.plat_console.num_consoles = 1;
    m.plat_console.consoles = cons_pa;
    m.plat_console.checksum = checksum(1, cons_pa, con.as_bytes());

    let mb = m.as_bytes();
    page[..mb.len()].copy_from_slice(mb);
    let bb = bank.as_bytes();
    page[BANKS_OFFSET..BANKS_OFFSET + bb.len()].copy_from_slice(bb);
    let cb = con.as_bytes();
    page[CONSOLES_OFFSET..CONSOLES_OFFSET + cb.len()].copy_from_slice(cb);
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    fn word(page: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(page[off..off + 8].try_into().unwrap())
    }

    #[test]
    fn manifest_in_page() {
        let mut page = vec![0xAAu8; 4096];
        build(&mut page, 0x418F_F000);
        let m = BootManifest::read_from_bytes(&page[..64]).unwrap();
        assert_eq!(m.version, 3);
        assert_eq!(m.plat_dram.num_banks, 1);
        assert_eq!(m.plat_dram.banks, 0x418F_F040);
        assert_eq!(m.plat_console.consoles, 0x418F_F080);
        assert_eq!(word(&page, 0x40), 0x4000_0000);
        assert_eq!(word(&page, 0x48), 0x8000_0000);
        assert_eq!(word(&page, 0x80), 0x0900_0000);
        assert_eq!(&page[0x90..0x98], b"pl011\0\0\0");
        assert_eq!(word(&page, 0xA0), 115_200);
        // Sum of everything checked plus the checksum is zero.
        let s = 1u64
            .wrapping_add(m.plat_dram.banks)
            .wrapping_add(word(&page, 0x40))
            .wrapping_add(word(&page, 0x48))
            .wrapping_add(m.plat_dram.checksum);
        assert_eq!(s, 0);
        let mut s = 1u64.wrapping_add(m.plat_console.consoles);
        for i in 0..6 {
            s = s.wrapping_add(word(&page, 0x80 + i * 8));
        }
        assert_eq!(s.wrapping_add(m.plat_console.checksum), 0);
        assert!(page[0xB0..].iter().all(|&b| b == 0));
    }
}
