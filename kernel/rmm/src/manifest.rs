//! Cold-boot arguments and the boot manifest (v0.3) in the EL3 shared page.

use ipc_schema::el3::{BootManifest, ConsoleInfo, DramBank, MANIFEST_VERSION};
use zerocopy::FromBytes;

/// Boot errors, with the status the RMM reports in BOOT_COMPLETE's x1.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// Unknown error (-1).
    Unknown,
    /// Interface version not supported (-2).
    Version,
    /// Bad CPU count (-3).
    Cpus,
    /// Bad CPU id (-4).
    CpuId,
    /// Bad shared buffer (-5).
    SharedBuffer,
    /// Manifest version not supported (-6).
    ManifestVersion,
    /// Manifest data invalid (-7).
    ManifestData,
}

impl BootError {
    /// The BOOT_COMPLETE status.
    pub fn status(self) -> i64 {
        match self {
            BootError::Unknown => -1,
            BootError::Version => -2,
            BootError::Cpus => -3,
            BootError::CpuId => -4,
            BootError::SharedBuffer => -5,
            BootError::ManifestVersion => -6,
            BootError::ManifestData => -7,
        }
    }
}

/// Most CPUs this RMM supports.
pub const MAX_CPUS: u64 = 1;

/// Checks the cold-boot registers: x0 CPU id, x1 interface version
/// (major 0, minor >= 4), x2 CPU count, x3 shared page (granule-aligned,
/// equal to the expected one).
pub fn check_args(x0: u64, x1: u64, x2: u64, x3: u64, shared: u64) -> Result<(), BootError> {
    let (major, minor) = (x1 >> 16, x1 & 0xFFFF);
    if major != 0 || minor < 4 {
        return Err(BootError::Version);
    }
    if x2 == 0 || x2 > MAX_CPUS {
        return Err(BootError::Cpus);
    }
    if x0 >= x2 {
        return Err(BootError::CpuId);
    }
    if x3 != shared || x3 & 0xFFF != 0 {
        return Err(BootError::SharedBuffer);
    }
    Ok(())
}

/// What the RMM takes from the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The single DRAM bank: base.
    pub dram_base: u64,
    /// The single DRAM bank: size.
    pub dram_size: u64,
    /// The console, if one is described.
    pub console: Option<Console>,
}

/// A manifest console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Console {
    /// MMIO base.
    pub base: u64,
    /// NUL-padded name.
    pub name: [u8; 8],
    /// Baud rate.
    pub baud: u64,
}

fn checksum(num: u64, ptr: u64, words: &[u8]) -> u64 {
    let mut sum = num.wrapping_add(ptr);
    for c in words.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        sum = sum.wrapping_add(u64::from_le_bytes(w));
    }
    sum.wrapping_neg()
}

/// The bytes of `count` elements of `size` at PA `ptr`, which must lie in
/// the shared page `page` at `page_pa`.
fn array(page: &[u8], page_pa: u64, ptr: u64, count: u64, size: usize) -> Result<&[u8], BootError> {
    let len = (count as usize)
        .checked_mul(size)
        .ok_or(BootError::ManifestData)?;
    let off = ptr.checked_sub(page_pa).ok_or(BootError::ManifestData)? as usize;
    let end = off.checked_add(len).ok_or(BootError::ManifestData)?;
    if ptr % 8 != 0 {
        return Err(BootError::ManifestData);
    }
    page.get(off..end).ok_or(BootError::ManifestData)
}

/// Parses and validates the manifest in `page` (the shared page at PA
/// `page_pa`): version 0.3 or a later 0.x, checksums, pointers inside the
/// page, exactly one non-empty granule-aligned DRAM bank, at most one
/// console.
pub fn parse(page: &[u8], page_pa: u64) -> Result<Manifest, BootError> {
    let (m, _) = BootManifest::read_from_prefix(page).map_err(|_| BootError::ManifestData)?;
    let (major, minor) = (m.version >> 16, m.version & 0xFFFF);
    if major != MANIFEST_VERSION >> 16 || minor < MANIFEST_VERSION & 0xFFFF {
        return Err(BootError::ManifestVersion);
    }
    let d = &m.plat_dram;
    if d.num_banks != 1 {
        return Err(BootError::ManifestData);
    }
    let banks = array(page, page_pa, d.banks, d.num_banks, 16)?;
    if checksum(d.num_banks, d.banks, banks) != d.checksum {
        return Err(BootError::ManifestData);
    }
    let (dram, _) = DramBank::read_from_prefix(banks).map_err(|_| BootError::ManifestData)?;
    if dram.size == 0
        || (dram.base | dram.size) & 0xFFF != 0
        || dram.base.checked_add(dram.size).is_none()
    {
        return Err(BootError::ManifestData);
    }
    let c = &m.plat_console;
    let console = match c.num_consoles {
        0 => None,
        1 => {
            let bytes = array(page, page_pa, c.consoles, 1, 48)?;
            if checksum(c.num_consoles, c.consoles, bytes) != c.checksum {
                return Err(BootError::ManifestData);
            }
            let (c, _) =
                ConsoleInfo::read_from_prefix(bytes).map_err(|_| BootError::ManifestData)?;
            Some(Console {
                base: c.base,
                name: c.name,
                baud: c.baud_rate,
            })
        }
        _ => return Err(BootError::ManifestData),
    };
    Ok(Manifest {
        dram_base: dram.base,
        dram_size: dram.size,
        console,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PA: u64 = 0x418F_F000;

    fn put(page: &mut [u8], off: usize, v: u64) {
        page[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The monitor's manifest per docs/qemu-boot.md.
    fn contract() -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[0..4].copy_from_slice(&3u32.to_le_bytes());
        // Banks at +0x100, console at +0x200.
        let (base, size) = (0x4000_0000u64, 0x8000_0000u64);
        put(&mut p, 0x100, base);
        put(&mut p, 0x108, size);
        put(&mut p, 16, 1);
        put(&mut p, 24, PA + 0x100);
        put(&mut p, 32, (1 + PA + 0x100 + base + size).wrapping_neg());
        let console = [
            0x0900_0000u64,
            1,
            u64::from_le_bytes(*b"pl011\0\0\0"),
            1,
            115200,
            0,
        ];
        for (i, w) in console.iter().enumerate() {
            put(&mut p, 0x200 + 8 * i, *w);
        }
        let sum = console
            .iter()
            .fold(1 + PA + 0x200, |a, w| a.wrapping_add(*w));
        put(&mut p, 40, 1);
        put(&mut p, 48, PA + 0x200);
        put(&mut p, 56, sum.wrapping_neg());
        p
    }

    #[test]
    fn contract_manifest_parses() {
        let m = parse(&contract(), PA).unwrap();
        assert_eq!((m.dram_base, m.dram_size), (0x4000_0000, 0x8000_0000));
        let c = m.console.unwrap();
        assert_eq!(
            (c.base, c.baud, &c.name[..5]),
            (0x0900_0000, 115200, &b"pl011"[..])
        );
    }

    #[test]
    fn bad_manifests_are_refused() {
        let mut p = contract();
        p[0] = 2;
        assert_eq!(parse(&p, PA), Err(BootError::ManifestVersion));
        let mut p = contract();
        p[2] = 1; // 1.3
        assert_eq!(parse(&p, PA), Err(BootError::ManifestVersion));
        let mut p = contract();
        put(&mut p, 0x108, 0x8000_1000);
        assert_eq!(parse(&p, PA), Err(BootError::ManifestData), "dram checksum");
        let mut p = contract();
        put(&mut p, 0x218, 2);
        assert_eq!(
            parse(&p, PA),
            Err(BootError::ManifestData),
            "console checksum"
        );
        let mut p = contract();
        put(&mut p, 24, 0x4000_0000);
        assert_eq!(
            parse(&p, PA),
            Err(BootError::ManifestData),
            "banks outside the page"
        );
        let mut p = contract();
        put(&mut p, 24, PA + 0xFF8);
        assert_eq!(
            parse(&p, PA),
            Err(BootError::ManifestData),
            "banks past the page"
        );
        let mut p = contract();
        put(&mut p, 16, 0);
        assert_eq!(parse(&p, PA), Err(BootError::ManifestData), "no bank");
        assert_eq!(parse(&p[..10], PA), Err(BootError::ManifestData));
        // A later minor version is accepted.
        let mut p = contract();
        p[0] = 5;
        assert!(parse(&p, PA).is_ok());
    }

    #[test]
    fn boot_args() {
        assert_eq!(check_args(0, 0x4, 1, PA, PA), Ok(()));
        assert_eq!(check_args(0, 0x3, 1, PA, PA), Err(BootError::Version));
        assert_eq!(check_args(0, 0x1_0004, 1, PA, PA), Err(BootError::Version));
        assert_eq!(check_args(0, 0x4, 0, PA, PA), Err(BootError::Cpus));
        assert_eq!(check_args(0, 0x4, 2, PA, PA), Err(BootError::Cpus));
        assert_eq!(check_args(1, 0x4, 1, PA, PA), Err(BootError::CpuId));
        assert_eq!(
            check_args(0, 0x4, 1, PA + 8, PA),
            Err(BootError::SharedBuffer)
        );
        assert_eq!(BootError::ManifestData.status(), -7);
    }
}
