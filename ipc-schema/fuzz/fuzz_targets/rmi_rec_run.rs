//! `RmiRecRun` from arbitrary bytes, handed to the real `RMI_REC_ENTER`.
//!
//! Input: a guest script byte, then run pages of 4096 bytes each (the last
//! zero-extended). An active realm's REC runs a guest that takes, in turn,
//! the traps the script names (a host call, an MMIO load or store, WFI, an
//! interrupt, a RIPAS change request, power-off), so the run pages meet
//! every kind of pending exit (host-call results, emulated MMIO, injected
//! aborts, RIPAS responses). Each run page is written and entered once.
//!
//! Properties: no panic; the RMM never touches the entry half of the run
//! page, and the exit half it writes reads back as an `RmiRecExit`.
#![no_main]

use atoll_fuzz::kernel::{exact, Host, G};
use atoll_kernel::arch::{MemAccess, Trap};
use ipc_schema::rmi::{RmiRecExit, RmiRecRun, REC_RUN_EXIT_OFFSET};
use ipc_schema::rsi;
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, IntoBytes};

/// Most run pages one input enters.
const MAX_ENTERS: usize = 8;

fuzz_target!(|data: &[u8]| {
    let Some((&script, pages)) = data.split_first() else {
        return;
    };
    let mut step = 0u32;
    let guest = Box::new(move |_resume, regs: &mut atoll_kernel::arch::VcpuRegs| {
        let op = (script >> ((step % 4) * 2)) & 3;
        let alt = step % 8 >= 4;
        step += 1;
        match (op, alt) {
            (0, false) => {
                regs.gprs[0] = rsi::fid::HOST_CALL;
                regs.gprs[1] = 0;
                Trap::Smc
            }
            (0, true) => {
                regs.gprs[0] = rsi::fid::IPA_STATE_SET;
                regs.gprs[1] = 2 * G;
                regs.gprs[2] = 4 * G;
                regs.gprs[3] = 1;
                regs.gprs[4] = 0;
                Trap::Smc
            }
            (1, alt) => Trap::MemAccess(MemAccess {
                ipa: (1 << 39) | 0x10,
                size: 4,
                write: alt,
                reg: 3,
            }),
            (2, false) => Trap::Wfi,
            (2, true) => Trap::Halted,
            _ => Trap::Irq,
        }
    });
    let mut host = Host::new();
    let (_realm, rec, _) = host.active_realm([0; 64], &[1; 64], &[2; 64], Some(guest));
    let run = host.alloc();
    for chunk in pages.chunks(4096).take(MAX_ENTERS) {
        let page = exact(chunk, 4096);
        let parsed = RmiRecRun::read_from_bytes(&page).expect("a granule of bytes");
        assert_eq!(parsed.as_bytes(), &page[..]);
        host.write(run, &page);
        let _ = host.rmm.rec_enter(rec, run);
        let mut after = vec![0u8; 4096];
        host.read(run, &mut after);
        assert_eq!(
            after[..REC_RUN_EXIT_OFFSET],
            page[..REC_RUN_EXIT_OFFSET],
            "REC_ENTER wrote into the entry half of the run page"
        );
        RmiRecExit::read_from_bytes(&after[REC_RUN_EXIT_OFFSET..]).expect("exit half");
    }
});
