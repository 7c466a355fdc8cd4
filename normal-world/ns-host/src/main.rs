//! ns-host at NS-EL2 (MMU off, so VA = PA): UART0 console, RMI version and
//! features, the realm built from the embedded plan blob with the embedded
//! vendor-signed metadata block, REC 0 served
//! until SYSTEM_OFF, the report lines, PSCI SYSTEM_OFF.
//!
//! Only the bare-metal build (`target_os = "none"`) has a body.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod bare {
    extern crate alloc;

    use core::arch::{asm, global_asm};
    use core::fmt::Write;

    use atoll_ns_host::{
        metadata_line, perf_line, rate, report, Action, ExitHandler, Stop, PERF_DELEGATE_PAIRS,
    };
    use atoll_realm_description::blob;
    use atoll_rmi_client::{BuiltRealm, HostMemory, MemoryError, RealmBuilder, RmiClient};
    use ipc_schema::islet::RealmMetadata;
    use ipc_schema::rmi::{RmiRecEnter, RmiRecExit, REC_RUN_EXIT_OFFSET, VERSION_1_0};
    use ipc_schema::smccc::{psci, SmcConduit, SmcRegs};
    use linked_list_allocator::LockedHeap;
    use zerocopy::{FromBytes, FromZeros, IntoBytes};

    /// The realm's build plan, written by `cargo xtask qemu` (or the
    /// `plan-blob` example of atoll-realm-description) from
    /// images/examples/qemu-realm.toml; the payload is inside it.
    static PLAN: &[u8] = include_bytes!("../../../target/qemu/realm.plan");

    const METADATA_LEN: usize = core::mem::size_of::<RealmMetadata>();

    /// The vendor-signed metadata block for that plan's RIM, written by
    /// `cargo xtask qemu` next to the plan (docs/qemu-boot.md): passed to
    /// the builder, which issues RMI_ISLET_REALM_SET_METADATA before
    /// activating. A block of the wrong size does not compile.
    static METADATA: &[u8; METADATA_LEN] = include_bytes!("../../../target/qemu/realm.metadata");

    /// Delegable NS DRAM (docs/qemu-boot.md) the realm's granules come from.
    const DELEGABLE_BASE: u64 = 0x6100_0000;
    const DELEGABLE_TOP: u64 = 0xC000_0000;
    const GRANULE: u64 = 4096;
    const UART0: usize = 0x0900_0000;
    const VMID: u16 = 1;
    /// GRANULE_DELEGATE + GRANULE_UNDELEGATE pairs timed before the build,
    /// one per granule from DELEGABLE_BASE up (8 MiB, all NS again after).
    const PERF_PAIRS: u64 = 2000;

    #[global_allocator]
    static ALLOCATOR: LockedHeap = LockedHeap::empty();

    extern "C" {
        static __heap_start: u8;
        static __heap_end: u8;
    }

    // Entry at NS-EL2 from the monitor, x0 = DTB. Zero .bss (the flat
    // image does not carry it), set SP_EL2, install vectors, call Rust.
    global_asm!(
        r#"
        .section .text.entry, "ax"
        .global _start
    _start:
        adrp    x9, __bss_start
        add     x9, x9, :lo12:__bss_start
        adrp    x10, __bss_end
        add     x10, x10, :lo12:__bss_end
    1:  cmp     x9, x10
        b.hs    2f
        str     xzr, [x9], #8
        b       1b
    2:  adrp    x9, __stack_top
        add     x9, x9, :lo12:__stack_top
        mov     sp, x9
        adrp    x9, ns_host_vectors
        add     x9, x9, :lo12:ns_host_vectors
        msr     vbar_el2, x9
        isb
        bl      ns_host_main
    3:  wfe
        b       3b

        .section .text.vectors, "ax"
        .balign 2048
    ns_host_vectors:
        .rept 16
        mrs     x0, esr_el2
        mrs     x1, elr_el2
        mrs     x2, far_el2
        b       ns_host_exception
        .balign 128
        .endr
    "#
    );

    /// PL011 UART0, polled.
    struct Uart;

    impl Uart {
        fn putc(&mut self, c: u8) {
            const FR: usize = 0x18;
            const FR_TXFF: u32 = 1 << 5;
            // SAFETY: UART0 is the PL011 of QEMU virt at this fixed MMIO
            // address (NS); with the MMU off it is accessed as Device
            // memory. FR is read-only, DR write-only; nothing else in
            // ns-host touches the UART concurrently (one CPU, no IRQs).
            unsafe {
                while core::ptr::read_volatile((UART0 + FR) as *const u32) & FR_TXFF != 0 {}
                core::ptr::write_volatile(UART0 as *mut u32, u32::from(c));
            }
        }
    }

    impl Write for Uart {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for b in s.bytes() {
                if b == b'\n' {
                    self.putc(b'\r');
                }
                self.putc(b);
            }
            Ok(())
        }
    }

    /// `smc #0` to the monitor (RMI goes on to the RMM).
    struct Smc;

    impl SmcConduit for Smc {
        fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
            let mut r = regs;
            // SAFETY: SMCCC v1.2 SMC with x0..x17 in and out, all declared
            // inout so the compiler treats them as clobbered. The RMM reads
            // and writes only the NS granules whose PAs are passed (owned
            // by HostMem, not aliased by Rust references), so memory is
            // not declared untouched.
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
            r
        }
    }

    /// Delegable NS DRAM with a bump allocator; accessed by PA (MMU off).
    struct HostMem {
        next: u64,
    }

    impl HostMem {
        fn check(pa: u64, len: usize) -> Result<(), MemoryError> {
            let end = pa.checked_add(len as u64);
            match end {
                Some(end) if pa >= DELEGABLE_BASE && end <= DELEGABLE_TOP => Ok(()),
                _ => Err(MemoryError::BadAddress { pa, len }),
            }
        }
    }

    impl HostMemory for HostMem {
        fn alloc_granules(&mut self, count: usize) -> Result<u64, MemoryError> {
            let oom = MemoryError::OutOfMemory { count };
            let align = (count.max(1).next_power_of_two() as u64) * GRANULE;
            let start = self.next.checked_next_multiple_of(align).ok_or(oom)?;
            let len = (count as u64).checked_mul(GRANULE).ok_or(oom)?;
            let end = start.checked_add(len).ok_or(oom)?;
            if end > DELEGABLE_TOP {
                return Err(oom);
            }
            self.next = end;
            // SAFETY: [start, end) is NS DRAM inside the delegable range,
            // handed out once by this bump allocator, and not yet
            // delegated, so the NS world may write it; nothing in Rust
            // references it.
            unsafe { core::ptr::write_bytes(start as *mut u8, 0, len as usize) };
            Ok(start)
        }

        fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), MemoryError> {
            Self::check(pa, data.len())?;
            // SAFETY: the range is inside the delegable NS DRAM (checked);
            // the builder writes only NS granules it did not delegate
            // (scratch pages, REC run pages), which no Rust reference
            // covers.
            unsafe {
                core::ptr::copy_nonoverlapping(data.as_ptr(), pa as *mut u8, data.len());
            }
            Ok(())
        }

        fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            Self::check(pa, buf.len())?;
            // SAFETY: as for write: an NS granule of this host inside the
            // delegable range, not referenced elsewhere.
            unsafe {
                core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len());
            }
            Ok(())
        }
    }

    fn system_off() -> ! {
        let _ = Smc.smc(ipc_schema::smccc::smc_regs(psci::SYSTEM_OFF, &[]));
        loop {
            // SAFETY: waiting only.
            unsafe { asm!("wfe", options(nomem, nostack)) };
        }
    }

    fn fail(uart: &mut Uart, what: core::fmt::Arguments<'_>) -> ! {
        let _ = writeln!(uart, "ns-host: {what}");
        let _ = writeln!(uart, "ATOLL-ERROR {what}");
        let _ = writeln!(uart, "ATOLL-DONE");
        system_off()
    }

    #[no_mangle]
    extern "C" fn ns_host_main(dtb: u64) -> ! {
        let mut uart = Uart;
        // SAFETY: the linker script reserves [__heap_start, __heap_end)
        // for the heap alone; this runs once, before any allocation.
        unsafe {
            let start = core::ptr::addr_of!(__heap_start) as usize;
            let end = core::ptr::addr_of!(__heap_end) as usize;
            ALLOCATOR.lock().init(start as *mut u8, end - start);
        }
        let _ = writeln!(uart, "ns-host: started at NS-EL2, DTB at {dtb:#x}");

        let mut rmi = RmiClient::new(Smc);
        match rmi.version(VERSION_1_0) {
            Ok(v) => {
                let _ = writeln!(
                    uart,
                    "ns-host: RMI version lower {:#x} higher {:#x}",
                    v.lower, v.higher
                );
            }
            Err(e) => fail(&mut uart, format_args!("RMI_VERSION: {e}")),
        }
        match rmi.features(0) {
            Ok(f) => {
                let _ = writeln!(uart, "ns-host: RMI features[0] {f:#x}");
            }
            Err(e) => fail(&mut uart, format_args!("RMI_FEATURES: {e}")),
        }

        measure_delegation(&mut rmi, &mut uart);

        let plan = match blob::decode(PLAN) {
            Ok(p) => p,
            Err(e) => fail(&mut uart, format_args!("embedded realm plan: {e}")),
        };
        let _ = writeln!(
            uart,
            "ns-host: realm plan {:?}: {} steps, {} data pages, {} RTTs",
            plan.name().unwrap_or("(unnamed)"),
            plan.len(),
            plan.data_page_count(),
            plan.rtt_count()
        );

        let mut mem = HostMem {
            next: DELEGABLE_BASE,
        };
        let realm = {
            let mut builder = RealmBuilder::new(&mut rmi, &mut mem)
                .vmid(VMID)
                .metadata(*METADATA);
            match builder.build(&plan) {
                Ok(r) => r,
                Err(e) => fail(&mut uart, format_args!("{e}")),
            }
        };
        drop(plan);
        let _ = writeln!(
            uart,
            "ns-host: realm built with its metadata and activated (RD {:#x}, {} REC(s))",
            realm.rd,
            realm.recs.len()
        );

        let mut handler = ExitHandler::new();
        let stop = run_rec0(&mut rmi, &mut mem, &realm, &mut handler, &mut uart);
        if handler.line_pending() {
            handler.flush_line(&mut uart);
        }
        let _ = writeln!(
            uart,
            "ns-host: realm stopped ({stop:?}) after {} exits",
            handler.exits
        );
        let _ = metadata_line(&mut uart, handler.realm_id.as_deref());
        let token = handler.token_done.then_some(handler.token.as_slice());
        let _ = report(&mut uart, handler.rim.as_deref(), token);
        system_off()
    }

    /// CNTPCT_EL0 (after an ISB, so earlier instructions are done) and
    /// CNTFRQ_EL0.
    fn counter() -> (u64, u64) {
        let (cnt, frq): (u64, u64);
        // SAFETY: reads of the generic timer's counter and frequency,
        // accessible at EL2; no memory or state is touched.
        unsafe {
            asm!(
                "isb",
                "mrs {cnt}, cntpct_el0",
                "mrs {frq}, cntfrq_el0",
                cnt = out(reg) cnt,
                frq = out(reg) frq,
                options(nomem, nostack),
            );
        }
        (cnt, frq)
    }

    /// Times PERF_PAIRS GRANULE_DELEGATE + GRANULE_UNDELEGATE pairs over
    /// distinct NS granules and prints the `ATOLL-PERF` line. Any refused
    /// call is fatal (the granules would otherwise stay delegated).
    fn measure_delegation(rmi: &mut RmiClient<Smc>, uart: &mut Uart) {
        let (start, freq) = counter();
        for i in 0..PERF_PAIRS {
            let pa = DELEGABLE_BASE + i * GRANULE;
            if let Err(e) = rmi.granule_delegate(pa) {
                fail(
                    uart,
                    format_args!("perf: RMI_GRANULE_DELEGATE {pa:#x}: {e}"),
                );
            }
            if let Err(e) = rmi.granule_undelegate(pa) {
                fail(
                    uart,
                    format_args!("perf: RMI_GRANULE_UNDELEGATE {pa:#x}: {e}"),
                );
            }
        }
        let (end, _) = counter();
        let ticks = end.wrapping_sub(start);
        match rate(PERF_PAIRS, ticks, freq) {
            Some(r) => {
                let _ = writeln!(
                    uart,
                    "ns-host: {PERF_PAIRS} GRANULE_DELEGATE+UNDELEGATE pairs in {}.{:06} s \
                     ({ticks} ticks at {freq} Hz)",
                    r.elapsed_us / 1_000_000,
                    r.elapsed_us % 1_000_000
                );
                let _ = perf_line(uart, PERF_DELEGATE_PAIRS, PERF_PAIRS, r);
            }
            None => {
                let _ = writeln!(uart, "ns-host: perf: no rate ({ticks} ticks at {freq} Hz)");
            }
        }
    }

    /// ICH_LR<n>_EL2: State = pending, Group 1, priority 0xA0, vINTID 42.
    const GIC_CHECK_LR: u64 = 1 << 62 | 1 << 60 | 0xA0 << 48 | 42;

    fn run_rec0(
        rmi: &mut RmiClient<Smc>,
        mem: &mut HostMem,
        realm: &BuiltRealm,
        handler: &mut ExitHandler,
        uart: &mut Uart,
    ) -> Stop {
        let Some(rec0) = realm.recs.first() else {
            return Stop::Unexpected("the realm has no REC".into());
        };
        let (rec, run) = (rec0.rec, rec0.run);
        let mut next = (0u64, [0u64; 31]);
        let mut first = true;
        loop {
            let mut enter = RmiRecEnter::new_zeroed();
            enter.flags = next.0;
            enter.gprs = next.1;
            if first {
                // GIC check: a pending Group-1 virtual interrupt in LR0.
                // The payload never enables its virtual CPU interface, so
                // the exit must report LR0 still pending.
                enter.gicv3_lrs[0] = GIC_CHECK_LR;
            }
            if let Err(e) = mem.write(run, enter.as_bytes()) {
                return Stop::Unexpected(alloc::format!("REC run page: {e}"));
            }
            if let Err(e) = rmi.rec_enter(rec, run) {
                return Stop::Unexpected(alloc::format!("RMI_REC_ENTER: {e}"));
            }
            let mut raw = [0u8; 0x800];
            if let Err(e) = mem.read(run + REC_RUN_EXIT_OFFSET as u64, &mut raw) {
                return Stop::Unexpected(alloc::format!("REC run page: {e}"));
            }
            let Ok(exit) = RmiRecExit::read_from_bytes(&raw) else {
                return Stop::Unexpected("short exit record".into());
            };
            if first {
                first = false;
                let _ = writeln!(
                    uart,
                    "ns-host: GIC: LR0 in {:#018x}, exit LR0 {:#018x} hcr {:#x} misr {:#x} \
                     vmcr {:#x}; cntv ctl {:#x} cval {:#x}, cntp ctl {:#x} cval {:#x}",
                    GIC_CHECK_LR,
                    exit.gicv3_lrs[0],
                    exit.gicv3_hcr,
                    exit.gicv3_misr,
                    exit.gicv3_vmcr,
                    exit.cntv_ctl,
                    exit.cntv_cval,
                    exit.cntp_ctl,
                    exit.cntp_cval
                );
                if exit.gicv3_lrs[0] != GIC_CHECK_LR {
                    return Stop::Unexpected(alloc::format!(
                        "GIC: exit LR0 {:#x}, expected the pending LR {GIC_CHECK_LR:#x}",
                        exit.gicv3_lrs[0]
                    ));
                }
            }
            next = match handler.handle(&exit, uart) {
                Action::Enter { flags, gprs } => (flags, gprs),
                Action::SetRipas { base, top } => {
                    let mut at = base;
                    while at < top {
                        match rmi.rtt_set_ripas(realm.rd, rec, at, top) {
                            Ok(reached) if reached > at => at = reached,
                            // No progress or refused: the realm sees how
                            // far the change went.
                            _ => break,
                        }
                    }
                    (0, [0; 31])
                }
                Action::PsciComplete { target_mpidr } => {
                    let Some(target) = realm.recs.iter().find(|r| r.mpidr == target_mpidr) else {
                        return Stop::Unexpected(alloc::format!(
                            "PSCI request for unknown MPIDR {target_mpidr:#x}"
                        ));
                    };
                    if let Err(e) = rmi.psci_complete(rec, target.rec, psci::status::SUCCESS) {
                        return Stop::Unexpected(alloc::format!("RMI_PSCI_COMPLETE: {e}"));
                    }
                    (0, [0; 31])
                }
                Action::Stop(stop) => return stop,
            };
        }
    }

    /// Every exception vector lands here: report and power off.
    #[no_mangle]
    extern "C" fn ns_host_exception(esr: u64, elr: u64, far: u64) -> ! {
        let _ = writeln!(
            Uart,
            "ns-host: exception at EL2: ESR {esr:#x} ELR {elr:#x} FAR {far:#x}"
        );
        let _ = writeln!(Uart, "ATOLL-ERROR ns-host exception");
        let _ = writeln!(Uart, "ATOLL-DONE");
        system_off()
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        let _ = writeln!(Uart, "ns-host: panic: {info}");
        let _ = writeln!(Uart, "ATOLL-ERROR ns-host panic");
        let _ = writeln!(Uart, "ATOLL-DONE");
        system_off()
    }
}
