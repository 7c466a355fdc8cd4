//! The PL011 console on UART0 (GPI ANY: reachable from R-EL2).
//!
//! Polled and stateless: each write waits for room in the FIFO. Lines are
//! prefixed `rmm: ` by [`crate::println!`].

use core::fmt;

/// UART0 base (manifest console 0; device memory in the RMM's stage 1).
pub const UART0: u64 = 0x0900_0000;
const DR: u64 = 0x00;
const FR: u64 = 0x18;
const FR_TXFF: u32 = 1 << 5;

/// Writes one byte to the UART.
pub fn putc(b: u8) {
    let fr = (UART0 + FR) as *const u32;
    let dr = (UART0 + DR) as *mut u32;
    // SAFETY: UART0 is mapped as Device-nGnRE at VA = PA by `mmu::init`
    // (and reachable with the MMU off); FR and DR are 32-bit registers
    // of the PL011 that only this console touches.
    unsafe {
        while core::ptr::read_volatile(fr) & FR_TXFF != 0 {}
        core::ptr::write_volatile(dr, u32::from(b));
    }
}

/// The console as a `fmt::Write` (`\n` becomes `\r\n`).
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                putc(b'\r');
            }
            putc(b);
        }
        Ok(())
    }
}

/// Prints one line prefixed `rmm: `.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::console::Console, "rmm: ");
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
