//! Bookkeeping of the monitor's heap: a bump arena that rewinds whenever no
//! allocation is live. The only allocations are the HES link's platform
//! token buffers, which are freed before the SMC that needed them returns,
//! so the arena never grows across calls.

/// Arena state: `[start, end)` and the next free address.
#[derive(Debug)]
pub struct Arena {
    start: usize,
    end: usize,
    next: usize,
    live: usize,
}

impl Arena {
    /// An arena over `[start, end)`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end,
            next: start,
            live: 0,
        }
    }

    /// An address for `size` bytes aligned to `align` (a power of two), or
    /// `None` when the arena is exhausted.
    pub fn alloc(&mut self, size: usize, align: usize) -> Option<usize> {
        let base = self.next.checked_add(align - 1)? & !(align - 1);
        let end = base.checked_add(size)?;
        if end > self.end {
            return None;
        }
        self.next = end;
        self.live += 1;
        Some(base)
    }

    /// Releases one allocation; rewinds when none is left.
    pub fn dealloc(&mut self) {
        self.live = self.live.saturating_sub(1);
        if self.live == 0 {
            self.next = self.start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bump_and_rewind() {
        let mut a = Arena::new(0x1000, 0x2000);
        let x = a.alloc(10, 8).unwrap();
        assert_eq!(x, 0x1000);
        let y = a.alloc(16, 16).unwrap();
        assert_eq!(y, 0x1010);
        assert!(a.alloc(0x1000, 8).is_none());
        a.dealloc();
        assert_eq!(a.alloc(8, 8), Some(0x1020));
        a.dealloc();
        a.dealloc();
        assert_eq!(a.alloc(8, 8), Some(0x1000));
    }
}
