//! Normal-world memory the realm builder hands to the RMM.

use alloc::vec;
use alloc::vec::Vec;

use ipc_schema::GRANULE_SIZE;

const GRANULE: u64 = GRANULE_SIZE as u64;

/// Why a host memory operation failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// No free run of `count` granules.
    #[error("out of host memory allocating {count} granule(s)")]
    OutOfMemory {
        /// Granules requested.
        count: usize,
    },
    /// An access outside memory this host owns.
    #[error("host memory access at {pa:#x}+{len:#x} is out of range")]
    BadAddress {
        /// Physical address.
        pa: u64,
        /// Length.
        len: usize,
    },
}

/// Physical memory of the normal world, as the realm builder needs it:
/// granules to delegate or to use as parameter and source pages, and byte
/// access to the pages the RMM reads. A bare-metal host implements it over
/// its own RAM; the simulation over its model of physical memory.
pub trait HostMemory {
    /// Allocates `count` physically contiguous NS granules, zeroed, whose
    /// first PA is aligned to `count.next_power_of_two()` granules (so a
    /// run of concatenated starting RTTs is suitably aligned).
    fn alloc_granules(&mut self, count: usize) -> Result<u64, MemoryError>;

    /// Writes `data` at `pa`.
    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), MemoryError>;

    /// Reads `buf.len()` bytes at `pa`.
    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Allocates one zeroed granule.
    fn alloc_granule(&mut self) -> Result<u64, MemoryError> {
        self.alloc_granules(1)
    }
}

/// A [`HostMemory`] over a byte vector standing for the PA range
/// `[base, base + size)`, with a bump allocator. Enough for tests and for a
/// simple host that builds a few realms and never frees.
pub struct BumpMemory {
    base: u64,
    bytes: Vec<u8>,
    next: u64,
}

impl BumpMemory {
    /// `size` bytes of memory at PA `base` (both granule-aligned).
    pub fn new(base: u64, size: usize) -> Self {
        Self {
            base: base & !(GRANULE - 1),
            bytes: vec![0; size & !(GRANULE_SIZE - 1)],
            next: base & !(GRANULE - 1),
        }
    }

    /// The bytes at `[pa, pa + len)`, if inside this memory.
    pub fn slice(&self, pa: u64, len: usize) -> Option<&[u8]> {
        let off = usize::try_from(pa.checked_sub(self.base)?).ok()?;
        self.bytes.get(off..off.checked_add(len)?)
    }

    fn slice_mut(&mut self, pa: u64, len: usize) -> Option<&mut [u8]> {
        let off = usize::try_from(pa.checked_sub(self.base)?).ok()?;
        self.bytes.get_mut(off..off.checked_add(len)?)
    }
}

impl HostMemory for BumpMemory {
    fn alloc_granules(&mut self, count: usize) -> Result<u64, MemoryError> {
        let oom = MemoryError::OutOfMemory { count };
        let align = (count.max(1).next_power_of_two() as u64) * GRANULE;
        let start = self.next.checked_next_multiple_of(align).ok_or(oom)?;
        let len = (count as u64).checked_mul(GRANULE).ok_or(oom)?;
        let end = start.checked_add(len).ok_or(oom)?;
        if end > self.base + self.bytes.len() as u64 {
            return Err(oom);
        }
        self.next = end;
        Ok(start)
    }

    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.slice_mut(pa, data.len())
            .ok_or(MemoryError::BadAddress {
                pa,
                len: data.len(),
            })?
            .copy_from_slice(data);
        Ok(())
    }

    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len();
        buf.copy_from_slice(
            self.slice(pa, len)
                .ok_or(MemoryError::BadAddress { pa, len })?,
        );
        Ok(())
    }
}
