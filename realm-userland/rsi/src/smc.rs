//! The bare-metal backend: realm code running at EL1 on aarch64 issues
//! `smc #0` itself, and lends a granule of its own memory for buffers.

use core::arch::asm;

use ipc_schema::smccc::SmcRegs;

use crate::{RsiBackend, GRANULE_SIZE};

/// A 4 KiB-aligned granule of realm memory for RSI buffers.
#[repr(C, align(4096))]
pub struct Granule(pub [u8; GRANULE_SIZE]);

impl Granule {
    /// All zero; for a `static`.
    pub const fn zeroed() -> Self {
        Self([0; GRANULE_SIZE])
    }
}

/// Why a buffer access was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SmcError {
    /// Offset and length reach beyond the granule.
    #[error("access outside the buffer granule")]
    OutOfBounds,
}

/// `smc #0` plus a granule the realm owns.
pub struct SmcBackend {
    buffer: &'static mut Granule,
    ipa: u64,
}

impl SmcBackend {
    /// A backend lending `buffer`, which the realm's stage 1 maps at IPA
    /// `ipa`, to the RMM.
    ///
    /// # Safety
    ///
    /// `ipa` must be the IPA of `buffer` (the RMM writes tokens, the realm
    /// config and host-call results there while Rust believes `buffer` is
    /// borrowed only by this backend: any other IPA would let the RMM write
    /// memory Rust has lent elsewhere), and that IPA must be protected,
    /// RIPAS RAM memory of this realm.
    pub unsafe fn new(buffer: &'static mut Granule, ipa: u64) -> Self {
        Self { buffer, ipa }
    }

    fn range(offset: usize, len: usize) -> Result<core::ops::Range<usize>, SmcError> {
        match offset.checked_add(len) {
            Some(end) if end <= GRANULE_SIZE => Ok(offset..end),
            _ => Err(SmcError::OutOfBounds),
        }
    }
}

impl RsiBackend for SmcBackend {
    type Error = SmcError;

    fn smc(&mut self, regs: SmcRegs) -> Result<SmcRegs, SmcError> {
        let mut r = regs;
        // SAFETY: SMCCC v1.2 `smc #0` with arguments and results in
        // x0..x17; every one of them is declared inout, so the compiler
        // assumes all are clobbered, and x18 (the platform register) and
        // the stack are untouched by the RMM. The call may write realm
        // memory only through IPAs passed in registers, i.e. the buffer
        // granule this backend exclusively borrows (see `new`), so memory
        // is not declared untouched (no `nomem`).
        unsafe {
            asm!(
                "smc #0",
                inout("x0") r[0], inout("x1") r[1], inout("x2") r[2], inout("x3") r[3],
                inout("x4") r[4], inout("x5") r[5], inout("x6") r[6], inout("x7") r[7],
                inout("x8") r[8], inout("x9") r[9], inout("x10") r[10], inout("x11") r[11],
                inout("x12") r[12], inout("x13") r[13], inout("x14") r[14], inout("x15") r[15],
                inout("x16") r[16], inout("x17") r[17],
                options(nostack),
            );
        }
        Ok(r)
    }

    fn buffer_ipa(&self) -> u64 {
        self.ipa
    }

    fn read_buffer(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), SmcError> {
        let range = Self::range(offset, buf.len())?;
        buf.copy_from_slice(&self.buffer.0[range]);
        Ok(())
    }

    fn write_buffer(&mut self, offset: usize, data: &[u8]) -> Result<(), SmcError> {
        let range = Self::range(offset, data.len())?;
        self.buffer.0[range].copy_from_slice(data);
        Ok(())
    }
}
