//! The firmware image proper (target `aarch64-unknown-none-softfloat`).

extern crate alloc;

use core::arch::global_asm;

use atoll_arch_aarch64::{asm, cpu, el3, mmu, println, QemuPlatform};
use atoll_kernel::{Rmm, RmmConfig};
use atoll_rmm::manifest::{self, BootError};
use atoll_rmm::transport::InImageTransport;
use ipc_schema::el3::{fid, DramBank};
use linked_list_allocator::LockedHeap;

/// The EL3 shared page (boot manifest at offset 0).
const SHARED: u64 = 0x418F_F000;
/// The Realm carve-out: the image, its stack and heap, and the shared page.
const CARVE_OUT: (u64, u64) = (0x4010_0000, 0x4190_0000);

// Cold entry at 0x4010_0000, EL2h, MMU off, DAIF masked, x0..x3 from EL3.
global_asm!(
    r#"
.section .text.entry, "ax"
.global _start
_start:
    adrp x9, __stack_top
    add x9, x9, :lo12:__stack_top
    mov sp, x9
    adrp x9, __bss_start
    add x9, x9, :lo12:__bss_start
    adrp x10, __bss_end
    add x10, x10, :lo12:__bss_end
1:  cmp x9, x10
    b.hs 2f
    str xzr, [x9], #8
    b 1b
2:  bl rmm_entry
3:  wfi
    b 3b
"#
);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

extern "C" {
    static __heap_start: u8;
    static __heap_end: u8;
}

fn fail(e: BootError) -> ! {
    println!("boot failed: {:?} ({})", e, e.status());
    el3::call(fid::BOOT_COMPLETE, &[e.status() as u64]);
    cpu::park()
}

#[no_mangle]
extern "C" fn rmm_entry(x0: u64, x1: u64, x2: u64, x3: u64) -> ! {
    mmu::init();
    asm::install_vectors();
    println!(
        "Atoll RMM {} (cpu {}, interface {}.{}, {} cpus, shared page {:#x})",
        env!("CARGO_PKG_VERSION"),
        x0,
        x1 >> 16,
        x1 & 0xFFFF,
        x2,
        x3
    );
    if let Err(e) = manifest::check_args(x0, x1, x2, x3, SHARED) {
        fail(e);
    }

    // The linker script places `__heap_start..__heap_end` inside the Realm
    // carve-out after the image, bss and stack.
    let (heap, heap_end) = (
        core::ptr::addr_of!(__heap_start) as *mut u8,
        core::ptr::addr_of!(__heap_end) as usize,
    );
    let heap_size = heap_end - heap as usize;
    // SAFETY: a region of RMM-owned memory that nothing else uses, handed to
    // the allocator once, before any allocation.
    unsafe { ALLOCATOR.lock().init(heap, heap_size) };
    println!(
        "heap {:#x}..{:#x} ({} KiB)",
        heap as usize,
        heap_end,
        heap_size / 1024
    );

    let mut page = alloc::vec![0u8; 4096];
    // SAFETY: the shared page is Realm PAS, mapped VA = PA by `mmu::init`,
    // and belongs to the RMM until its first call to the monitor.
    unsafe { core::ptr::copy_nonoverlapping(SHARED as *const u8, page.as_mut_ptr(), 4096) };
    let m = match manifest::parse(&page, SHARED) {
        Ok(m) => m,
        Err(e) => fail(e),
    };
    println!("manifest: DRAM {:#x}+{:#x}", m.dram_base, m.dram_size);
    if let Some(c) = &m.console {
        if c.base != atoll_arch_aarch64::console::UART0 {
            println!(
                "manifest console at {:#x}; this RMM prints on UART0",
                c.base
            );
        }
    }

    let f = cpu::features();
    let config = RmmConfig {
        max_ipa_width: 48,
        num_bps: f.bps,
        num_wps: f.wps,
        gic_num_lrs: f.lrs.min(16),
        vmid16: f.vmid16,
        ..RmmConfig::default()
    };
    println!(
        "features: {} bps, {} wps, {} LRs, vmid16 {}",
        f.bps, f.wps, f.lrs, f.vmid16
    );
    let bank = DramBank {
        base: m.dram_base,
        size: m.dram_size,
    };
    let platform = QemuPlatform::new(bank, CARVE_OUT.0, CARVE_OUT.1, SHARED);
    let mut rmm = Rmm::new(platform, InImageTransport::new(), config);

    let (attestation, keys) = rmm.boot();
    match attestation {
        Ok(()) => println!("attestation: RAK and platform token provisioned"),
        Err(e) => println!("attestation unavailable: {e:?}"),
    }
    match keys {
        Ok(()) => println!("keys: VHUKs provisioned"),
        Err(e) => println!("keys unavailable: {e:?}"),
    }

    println!("boot complete, serving RMI");
    let mut req = el3::call(fid::BOOT_COMPLETE, &[0]);
    loop {
        let mut regs = [0u64; 18];
        regs[..8].copy_from_slice(&req);
        let out = rmm.handle_rmi(regs);
        req = el3::call(fid::RMI_REQ_COMPLETE, &out[..5]);
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("PANIC: {info}");
    cpu::park()
}
