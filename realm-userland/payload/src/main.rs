//! The realm payload's entry at R-EL1 (MMU off, so VA = IPA): stack,
//! exception vectors, heap, then [`atoll_realm_payload::run`] over the
//! `smc #0` RSI backend, then PSCI SYSTEM_OFF.
//!
//! Only the bare-metal build (`target_os = "none"`) has a body; on the
//! build machine this is an empty program so `cargo test` in this
//! workspace builds.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
mod bare {
    extern crate alloc;

    use alloc::format;
    use core::arch::{asm, global_asm};
    use core::ptr::{addr_of, addr_of_mut};
    use core::sync::atomic::{AtomicBool, Ordering};

    use atoll_realm_payload::{challenge_from_regs, run, say, PSCI_SYSTEM_OFF};
    use atoll_rsi_client::smc::{Granule, SmcBackend};
    use atoll_rsi_client::RsiClient;
    use linked_list_allocator::LockedHeap;

    const HEAP_SIZE: usize = 64 * 1024;
    /// Tokens are about 1.5-3 KiB; two granules leave room.
    const TOKEN_BUF_SIZE: usize = 8 * 1024;

    #[global_allocator]
    static ALLOCATOR: LockedHeap = LockedHeap::empty();

    static mut HEAP: [u8; HEAP_SIZE] = [0; HEAP_SIZE];
    /// The granule lent to the RMM for RSI buffers in normal operation.
    static mut RSI_GRANULE: Granule = Granule::zeroed();
    /// A second granule, only for the panic and exception paths, so they
    /// never alias the one the normal path holds.
    static mut EMERGENCY_GRANULE: Granule = Granule::zeroed();
    static mut TOKEN_BUF: [u8; TOKEN_BUF_SIZE] = [0; TOKEN_BUF_SIZE];
    /// Set by the first panic or exception; a second one only powers off.
    static EMERGENCY_TAKEN: AtomicBool = AtomicBool::new(false);

    // Entry: the REC starts here with x0..x7 = the challenge (the REC's
    // measured initial registers). Set SP_EL1 to the top of the stack the
    // linker script reserves inside the image, install the vectors and
    // call payload_main with x0..x7 untouched.
    global_asm!(
        r#"
        .section .text.entry, "ax"
        .global _start
    _start:
        adrp    x9, __stack_top
        add     x9, x9, :lo12:__stack_top
        mov     sp, x9
        adrp    x9, payload_vectors
        add     x9, x9, :lo12:payload_vectors
        msr     vbar_el1, x9
        isb
        bl      payload_main
    1:  wfe
        b       1b

        .section .text.vectors, "ax"
        .balign 2048
    payload_vectors:
        .rept 16
        mrs     x0, esr_el1
        mrs     x1, elr_el1
        mrs     x2, far_el1
        b       payload_exception
        .balign 128
        .endr

        // A data word, so .data (which also holds .bss, heap and stack; see
        // link.ld) is PROGBITS and the flat image carries it as zeros.
        .section .data.payload_image, "aw"
        .balign 8
    payload_image_marker:
        .quad 0x41544f4c4c504c44
    "#
    );

    /// Rust entry, from `_start`.
    #[no_mangle]
    extern "C" fn payload_main(
        x0: u64,
        x1: u64,
        x2: u64,
        x3: u64,
        x4: u64,
        x5: u64,
        x6: u64,
        x7: u64,
    ) -> ! {
        // SAFETY: HEAP is used by nothing but the allocator, and this runs
        // once, before anything allocates (single CPU, no interrupts
        // unmasked).
        unsafe {
            ALLOCATOR
                .lock()
                .init(addr_of_mut!(HEAP).cast::<u8>(), HEAP_SIZE);
        }
        let challenge = challenge_from_regs(&[x0, x1, x2, x3, x4, x5, x6, x7]);
        // SAFETY: RSI_GRANULE is borrowed here once and never again (the
        // emergency paths use EMERGENCY_GRANULE); with the MMU off VA = IPA,
        // so its address is its IPA, and it lies inside the payload image,
        // protected RIPAS RAM created by the build plan.
        let backend = unsafe {
            SmcBackend::new(
                &mut *addr_of_mut!(RSI_GRANULE),
                addr_of!(RSI_GRANULE) as u64,
            )
        };
        let mut rsi = RsiClient::new(backend);
        // SAFETY: TOKEN_BUF is borrowed only here, once.
        let token = unsafe { &mut *addr_of_mut!(TOKEN_BUF) };
        if let Err(f) = run(&mut rsi, &challenge, token) {
            say(&mut rsi, &format!("atoll realm payload: failed: {}", f.0));
        }
        system_off(&mut rsi)
    }

    fn system_off<B: atoll_rsi_client::RsiBackend>(rsi: &mut RsiClient<B>) -> ! {
        let _ = rsi.raw_call(PSCI_SYSTEM_OFF, &[]);
        loop {
            // SAFETY: `wfe` only waits; the host should never enter this
            // REC again after SYSTEM_OFF.
            unsafe { asm!("wfe", options(nomem, nostack)) };
        }
    }

    /// A client over the emergency granule, once; `None` on the second
    /// emergency (which then only powers off).
    fn emergency_client() -> Option<RsiClient<SmcBackend>> {
        if EMERGENCY_TAKEN.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the flag above lets this borrow EMERGENCY_GRANULE only
        // once; its address is its IPA (MMU off) inside the image.
        let backend = unsafe {
            SmcBackend::new(
                &mut *addr_of_mut!(EMERGENCY_GRANULE),
                addr_of!(EMERGENCY_GRANULE) as u64,
            )
        };
        Some(RsiClient::new(backend))
    }

    fn raw_system_off() -> ! {
        let mut regs = [0u64; 18];
        regs[0] = PSCI_SYSTEM_OFF;
        // SAFETY: PSCI SYSTEM_OFF through `smc #0`: x0 in, x0..x3 may be
        // clobbered; no memory is passed.
        unsafe {
            asm!("smc #0", inout("x0") regs[0] => _, out("x1") _, out("x2") _, out("x3") _,
                 options(nomem, nostack));
        }
        loop {
            // SAFETY: waiting only.
            unsafe { asm!("wfe", options(nomem, nostack)) };
        }
    }

    /// Every exception vector lands here: report and power off.
    #[no_mangle]
    extern "C" fn payload_exception(esr: u64, elr: u64, far: u64) -> ! {
        match emergency_client() {
            Some(mut rsi) => {
                // Formatting without the heap: the allocator may be what
                // faulted.
                let mut line = [0u8; 96];
                let n = fmt_exception(&mut line, esr, elr, far);
                let _ = rsi.console_write(&line[..n]);
                system_off(&mut rsi)
            }
            None => raw_system_off(),
        }
    }

    fn fmt_exception(out: &mut [u8; 96], esr: u64, elr: u64, far: u64) -> usize {
        let mut n = 0;
        let mut put = |s: &[u8]| {
            out[n..n + s.len()].copy_from_slice(s);
            n += s.len();
        };
        put(b"atoll realm payload: exception esr ");
        put(&hex64(esr));
        put(b" elr ");
        put(&hex64(elr));
        put(b" far ");
        put(&hex64(far));
        put(b"\n");
        n
    }

    fn hex64(v: u64) -> [u8; 16] {
        let mut s = [0u8; 16];
        for (i, c) in s.iter_mut().enumerate() {
            let d = (v >> (60 - 4 * i)) & 0xF;
            *c = b"0123456789abcdef"[d as usize];
        }
        s
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        match emergency_client() {
            Some(mut rsi) => {
                say(&mut rsi, &format!("atoll realm payload: panic: {info}"));
                system_off(&mut rsi)
            }
            None => raw_system_off(),
        }
    }
}
