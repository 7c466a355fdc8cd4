//! The RMM's record of which DRAM granules are in the Realm PAS.
//!
//! The monitor's GPT is the authority, but the RMM cannot read it; it
//! starts from the contract's layout (docs/qemu-boot.md: the RMM carve-out
//! is Realm, the rest of DRAM Non-secure) and follows every
//! GTSI_DELEGATE/UNDELEGATE that succeeds. Host-supplied addresses are
//! checked against this record before the RMM touches them; the NS copy
//! routine also survives a GPF should the record ever be wrong.

use alloc::vec;
use alloc::vec::Vec;

use atoll_kernel::arch::Pas;

/// One bit per granule of a DRAM range: set = Realm PAS, clear = NS.
pub struct PasMap {
    base: u64,
    size: u64,
    bits: Vec<u64>,
}

impl PasMap {
    /// Every granule of `[base, base + size)` Non-secure, except those in
    /// `realm` ranges (clipped to the bank).
    pub fn new(base: u64, size: u64, realm: &[(u64, u64)]) -> Self {
        let granules = (size / 4096) as usize;
        let mut m = Self {
            base,
            size,
            bits: vec![0; granules.div_ceil(64)],
        };
        for &(start, end) in realm {
            let mut g = start.max(base) & !0xFFF;
            while g < end.min(base + size) {
                m.set(g, Pas::Realm);
                g += 4096;
            }
        }
        m
    }

    fn index(&self, pa: u64) -> Option<usize> {
        (pa >= self.base && pa - self.base < self.size).then(|| ((pa - self.base) / 4096) as usize)
    }

    /// The PAS of the granule holding `pa`, `None` outside DRAM.
    pub fn get(&self, pa: u64) -> Option<Pas> {
        let i = self.index(pa)?;
        Some(if self.bits[i / 64] >> (i % 64) & 1 == 1 {
            Pas::Realm
        } else {
            Pas::NonSecure
        })
    }

    /// Records that the granule holding `pa` moved to `pas` (Realm or NS).
    pub fn set(&mut self, pa: u64, pas: Pas) {
        if let Some(i) = self.index(pa) {
            if pas == Pas::Realm {
                self.bits[i / 64] |= 1 << (i % 64);
            } else {
                self.bits[i / 64] &= !(1 << (i % 64));
            }
        }
    }

    /// Whether every granule of `[pa, pa + len)` is in `pas`.
    pub fn all(&self, pa: u64, len: usize, pas: Pas) -> bool {
        let Some(end) = pa.checked_add(len as u64) else {
            return false;
        };
        let mut g = pa & !0xFFF;
        while g < end {
            if self.get(g) != Some(pas) {
                return false;
            }
            g += 4096;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_layout_and_updates() {
        let mut m = PasMap::new(0x4000_0000, 0x8000_0000, &[(0x4010_0000, 0x4190_0000)]);
        assert_eq!(m.get(0x4000_0000), Some(Pas::NonSecure));
        assert_eq!(m.get(0x4010_0000), Some(Pas::Realm));
        assert_eq!(m.get(0x418F_FFFF), Some(Pas::Realm));
        assert_eq!(m.get(0x4190_0000), Some(Pas::NonSecure));
        assert_eq!(m.get(0xBFFF_F000), Some(Pas::NonSecure));
        assert_eq!(m.get(0xC000_0000), None);
        assert_eq!(m.get(0x3FFF_F000), None);
        m.set(0x5000_0000, Pas::Realm);
        assert!(!m.all(0x4FFF_F800, 0x1000, Pas::NonSecure));
        assert!(m.all(0x5000_0000, 4096, Pas::Realm));
        m.set(0x5000_0000, Pas::NonSecure);
        assert!(m.all(0x4FFF_F800, 0x1000, Pas::NonSecure));
        assert!(!m.all(u64::MAX - 10, 20, Pas::NonSecure));
        assert!(!m.all(0xBFFF_F000, 0x2000, Pas::NonSecure));
    }
}
