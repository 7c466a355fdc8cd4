//! Devices and architectural operations: PL011 UARTs, PL061 power GPIO,
//! the EL3 MMU, cache and PA-space maintenance, GPC enable, GICv3 init.

use core::arch::asm;
use core::fmt;

use atoll_monitor::{gpt, layout, mmu};

use super::ctx::mrs;

fn mmio_read(addr: u64) -> u32 {
    // SAFETY: `addr` is one of the device registers of this module, mapped
    // Device-nGnRnE by the EL3 tables (or MMU off: Device by default).
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn mmio_write(addr: u64, v: u32) {
    // SAFETY: as in `mmio_read`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

const UART_DR: u64 = 0x00;
const UART_FR: u64 = 0x18;
const UART_LCRH: u64 = 0x2C;
const UART_CR: u64 = 0x30;
const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;

/// The console on UART0 (shared with the RMM and the NS host; the monitor
/// only writes).
pub struct Console;

impl Console {
    fn putc(b: u8) {
        while mmio_read(layout::UART0 + UART_FR) & FR_TXFF != 0 {}
        mmio_write(layout::UART0 + UART_DR, b as u32);
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                Self::putc(b'\r');
            }
            Self::putc(b);
        }
        Ok(())
    }
}

/// Prints a console line prefixed `el3: `.
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::el3::hw::Console, "el3: ");
        let _ = writeln!($crate::el3::hw::Console, $($arg)*);
    }};
}
pub(crate) use println;

/// The counter in nanoseconds-ish ticks and its frequency.
fn counter() -> (u64, u64) {
    (mrs!("cntpct_el0"), mrs!("cntfrq_el0"))
}

/// Why the HES UART failed.
#[derive(Debug)]
pub enum UartError {
    /// No byte within the timeout.
    Timeout,
    /// Framing, parity, break or overrun error on a received byte.
    Line(u32),
}

impl fmt::Display for UartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => write!(f, "HES UART timeout"),
            Self::Line(e) => write!(f, "HES UART line error {e:#x}"),
        }
    }
}

/// The HES link: the secure PL011 UART1, polled, 8N1.
pub struct HesUart {
    timeout_s: u64,
}

impl HesUart {
    /// Programs UART1 (8 bits, FIFOs, TX and RX on). QEMU ignores the
    /// baud rate; the TCP bridge carries bytes as they come.
    pub fn new() -> Self {
        let base = layout::UART1;
        mmio_write(base + UART_CR, 0);
        mmio_write(base + UART_LCRH, (3 << 5) | (1 << 4));
        mmio_write(base + UART_CR, (1 << 9) | (1 << 8) | 1);
        // Drain anything stale.
        while mmio_read(base + UART_FR) & FR_RXFE == 0 {
            let _ = mmio_read(base + UART_DR);
        }
        Self { timeout_s: 30 }
    }
}

impl atoll_hes_link::Transport for HesUart {
    type Error = UartError;

    fn write_all(&mut self, buf: &[u8]) -> Result<(), UartError> {
        for &b in buf {
            while mmio_read(layout::UART1 + UART_FR) & FR_TXFF != 0 {}
            mmio_write(layout::UART1 + UART_DR, b as u32);
        }
        Ok(())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), UartError> {
        let (start, freq) = counter();
        let limit = self.timeout_s.saturating_mul(freq);
        for b in buf.iter_mut() {
            while mmio_read(layout::UART1 + UART_FR) & FR_RXFE != 0 {
                if counter().0.wrapping_sub(start) > limit {
                    return Err(UartError::Timeout);
                }
            }
            let dr = mmio_read(layout::UART1 + UART_DR);
            if dr & 0xF00 != 0 {
                return Err(UartError::Line(dr >> 8));
            }
            *b = dr as u8;
        }
        Ok(())
    }
}

/// Drives a line of the secure PL061 high (line 0 powers off, 1 resets).
fn gpio_pulse(line: u32) -> ! {
    let base = layout::SECURE_GPIO;
    let bit = 1u32 << line;
    let dir = mmio_read(base + 0x400);
    mmio_write(base + 0x400, dir | bit);
    // GPIODATA is addressed through a mask in address bits [9:2].
    mmio_write(base + ((bit as u64) << 2), 0);
    mmio_write(base + ((bit as u64) << 2), bit);
    loop {
        // SAFETY: waiting for the power controller.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// PSCI SYSTEM_OFF.
pub fn system_off() -> ! {
    println!("system off");
    gpio_pulse(0)
}

/// PSCI SYSTEM_RESET.
pub fn system_reset() -> ! {
    println!("system reset");
    gpio_pulse(1)
}

/// A 4 KiB-aligned page-table page.
#[repr(C, align(4096))]
pub struct Table(pub [u64; 512]);

/// Builds the EL3 tables in `l1`/`l2` and turns the MMU and caches on.
pub fn enable_mmu(l1: &mut Table, l2: &mut Table) {
    let l2_pa = l2 as *const Table as u64;
    mmu::build(&mut l1.0, &mut l2.0, l2_pa);
    let ttbr = l1 as *const Table as u64;
    // SAFETY: the tables map the monitor's code, data and stack at their
    // PAs (identity), so execution continues unchanged after SCTLR.M = 1;
    // TLBs are invalidated before the tables are used.
    unsafe {
        asm!(
            "dsb sy",
            "msr mair_el3, {mair}",
            "msr tcr_el3, {tcr}",
            "msr ttbr0_el3, {ttbr}",
            "isb",
            "tlbi alle3",
            "dsb sy",
            "isb",
            "msr sctlr_el3, {sctlr}",
            "isb",
            mair = in(reg) mmu::MAIR,
            tcr = in(reg) mmu::TCR,
            ttbr = in(reg) ttbr,
            sctlr = in(reg) mmu::SCTLR_MMU_ON,
            options(nostack)
        );
    }
}

fn dcache_line() -> u64 {
    4 << ((mrs!("ctr_el0") >> 16) & 0xF)
}

/// Cleans and invalidates `[va, va + len)` to the point of coherency.
pub fn clean_inval_dcache(va: u64, len: u64) {
    let line = dcache_line();
    let mut a = va & !(line - 1);
    while a < va + len {
        // SAFETY: cache maintenance by VA on a range mapped by the caller.
        unsafe { asm!("dc civac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += line;
    }
    // SAFETY: barriers.
    unsafe {
        asm!(
            "dsb sy",
            "ic iallu",
            "dsb sy",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// `DC CIPAPA` over one granule in the PAS of `gpi_value`, then `dsb osh`.
fn cipapa_granule(pa: u64, gpi_value: u8) {
    let line = dcache_line();
    let mut off = 0;
    while off < layout::GRANULE {
        let op = gpt::papa_operand(pa + off, gpi_value);
        // SAFETY: DC CIPAPA (sys #6, c7, c14, #1) only cleans/invalidates
        // caches by physical address; EL3 may issue it on any PA.
        unsafe { asm!("sys #6, c7, c14, #1, {}", in(reg) op, options(nostack, preserves_flags)) };
        off += line;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb osh", options(nostack, preserves_flags)) };
}

/// `dsb oshst`, `TLBI RPALOS` for the granule, `dsb osh`.
fn tlbi_granule(pa: u64) {
    let op = gpt::rpalos_operand(pa);
    // SAFETY: TLBI RPALOS (sys #6, c8, c4, #7) invalidates cached GPT
    // entries for one granule; EL3 only.
    unsafe {
        asm!(
            "dsb oshst",
            "sys #6, c8, c4, #7, {}",
            "dsb osh",
            "isb",
            in(reg) op,
            options(nostack, preserves_flags)
        )
    };
}

/// The GPT L0 and L1 tables at their fixed PAs in secure RAM.
pub struct Gpt;

impl Gpt {
    /// The L0 table.
    fn l0(&mut self) -> &mut [u64] {
        // SAFETY: 8 KiB at GPT_L0 in secure RAM is reserved for the L0 table
        // by the contract, mapped read-write (Root) by the EL3 tables, and
        // only ever accessed through `Gpt`, of which one exists.
        unsafe { core::slice::from_raw_parts_mut(layout::GPT_L0 as *mut u64, gpt::L0_ENTRIES) }
    }

    /// The concatenated L1 tables.
    pub fn l1(&mut self) -> &mut [u64] {
        // SAFETY: 512 KiB from GPT_L1 in secure RAM hold the four L1 tables,
        // as for `l0`.
        unsafe { core::slice::from_raw_parts_mut(layout::GPT_L1 as *mut u64, gpt::L1_ENTRIES) }
    }

    /// Builds the tables and enables GPC (rme-bringup.md §2.4).
    pub fn build_and_enable(&mut self) {
        gpt::init_l0(self.l0(), layout::GPT_L1);
        gpt::init_l1(self.l1());
        clean_inval_dcache(layout::GPT_L0, (gpt::L0_ENTRIES * 8) as u64);
        clean_inval_dcache(layout::GPT_L1, (gpt::L1_ENTRIES * 8) as u64);
        // SAFETY: the tables above are complete and cleaned; GPTBR/GPCCR are
        // EL3 registers; the sequence is the guide's (TF-A gpt_enable). The
        // monitor's own memory is Root and the devices ANY, so nothing EL3
        // touches faults once GPC is on.
        unsafe {
            asm!(
                "dsb ishst",
                "msr S3_6_C2_C1_4, {gptbr}",
                "msr S3_6_C2_C1_6, {off}",
                "isb",
                "sys #6, c8, c1, #4",
                "dsb sy",
                "isb",
                "msr S3_6_C2_C1_6, {on}",
                "isb",
                "sys #6, c8, c1, #4",
                "dsb sy",
                "isb",
                gptbr = in(reg) gpt::gptbr(layout::GPT_L0),
                off = in(reg) gpt::GPCCR_BASE,
                on = in(reg) gpt::GPCCR_BASE | gpt::GPCCR_GPC,
                options(nostack)
            )
        };
    }

    /// GPCCR_EL3 as read back.
    pub fn gpccr(&self) -> u64 {
        mrs!("S3_6_C2_C1_6")
    }

    /// NS -> Realm (rme-bringup.md §2.6).
    pub fn delegate(&mut self, pa: u64) -> Result<(), gpt::TransitionError> {
        gpt::check_transition(self.l1(), pa, gpt::gpi::NS)?;
        cipapa_granule(pa, gpt::gpi::REALM);
        self.write(pa, gpt::gpi::REALM);
        cipapa_granule(pa, gpt::gpi::NS);
        Ok(())
    }

    /// Realm -> NS (rme-bringup.md §2.6).
    pub fn undelegate(&mut self, pa: u64) -> Result<(), gpt::TransitionError> {
        gpt::check_transition(self.l1(), pa, gpt::gpi::REALM)?;
        self.write(pa, gpt::gpi::NO_ACCESS);
        cipapa_granule(pa, gpt::gpi::REALM);
        cipapa_granule(pa, gpt::gpi::NS);
        self.write(pa, gpt::gpi::NS);
        Ok(())
    }

    fn write(&mut self, pa: u64, value: u8) {
        let l1 = self.l1();
        let _ = gpt::set_gpi(l1, pa, value);
        if let Some((entry, _)) = gpt::l1_position(pa) {
            let va = &l1[entry] as *const u64 as u64;
            // SAFETY: clean the changed descriptor to PoC for the walker.
            unsafe { asm!("dc cvac, {}", in(reg) va, options(nostack, preserves_flags)) };
        }
        tlbi_granule(pa);
    }
}

/// GICv3 init for the NS world (rme-bringup.md §5.5): affinity routing,
/// every interrupt Group 1 NS, redistributor of CPU 0 awake, system
/// register interfaces enabled for EL3 and EL2.
pub fn gic_init() {
    let d = layout::GICD;
    const CTLR_RWP: u32 = 1 << 31;
    mmio_write(d, (1 << 4) | (1 << 5));
    while mmio_read(d) & CTLR_RWP != 0 {}
    let lines = (mmio_read(d + 0x4) & 0x1F) + 1;
    for n in 1..lines as u64 {
        mmio_write(d + 0x80 + 4 * n, !0);
        mmio_write(d + 0xD00 + 4 * n, 0);
    }
    mmio_write(d, (1 << 4) | (1 << 5) | 0b111);
    while mmio_read(d) & CTLR_RWP != 0 {}

    let r = layout::GICR;
    let waker = mmio_read(r + 0x14);
    mmio_write(r + 0x14, waker & !(1 << 1));
    while mmio_read(r + 0x14) & (1 << 2) != 0 {}
    let sgi = r + 0x1_0000;
    mmio_write(sgi + 0x80, !0);
    mmio_write(sgi + 0xD00, 0);

    // SAFETY: ICC_SRE_EL3/EL2 = SRE|DFB|DIB|Enable, ICC_IGRPEN1_EL3 = both
    // groups: enabling the system register interface the worlds use.
    unsafe {
        asm!(
            "msr S3_6_C12_C12_5, {sre}",
            "isb",
            "msr S3_4_C12_C9_5, {sre}",
            "isb",
            "msr S3_6_C12_C12_7, {grp}",
            "isb",
            sre = in(reg) 0xFu64,
            grp = in(reg) 0b11u64,
            options(nostack)
        )
    };
}
