//! `RsiHostCall` from arbitrary bytes, in realm memory, handed to the real
//! `RSI_HOST_CALL`.
//!
//! Input: a selector byte, then the contents of the realm's DATA pages at
//! IPA 0 and 0x1000 (4096 bytes each, zero-extended), then the registers
//! the host answers with. The selector picks the structure's IPA among
//! aligned offsets in both pages, a misaligned one, RAM with no page and an
//! unprotected address.
//!
//! Properties: no panic; the host-call exit carries exactly the immediate
//! and registers of the structure as `RsiHostCall` reads it, and after the
//! host answers, the structure holds the host's registers with its
//! immediate untouched.
#![no_main]

use atoll_fuzz::kernel::{exact, Host, G};
use atoll_kernel::arch::{Trap, VcpuRegs};
use ipc_schema::rmi::{exit_reason, RmiRecEnter, RmiRecExit, REC_RUN_EXIT_OFFSET};
use ipc_schema::rsi::{self, RsiHostCall};
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const IPAS: [u64; 8] = [0, 0x100, 0xF00, G, G + 0x700, 0x80, 2 * G, 1 << 39];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let page0 = exact(rest, 4096);
    let page1 = exact(rest.get(4096..).unwrap_or(&[]), 4096);
    let answer = exact(rest.get(8192..).unwrap_or(&[]), 31 * 8);
    let ipa = IPAS[usize::from(sel & 7)];

    let mut called = false;
    let guest = Box::new(move |_resume, regs: &mut VcpuRegs| {
        if called {
            return Trap::Irq;
        }
        called = true;
        regs.gprs[0] = rsi::fid::HOST_CALL;
        regs.gprs[1] = ipa;
        Trap::Smc
    });
    let mut host = Host::new();
    let (_realm, rec, data_pa) = host.active_realm([0; 64], &page0, &page1, Some(guest));
    let run = host.page(RmiRecEnter::new_zeroed().as_bytes());

    let _ = host.rmm.rec_enter(rec, run);
    let mut exit = [0u8; 0x800];
    host.read(run + REC_RUN_EXIT_OFFSET as u64, &mut exit);
    let exit = RmiRecExit::read_from_bytes(&exit).expect("exit half");
    if exit.exit_reason != exit_reason::HOST_CALL {
        return;
    }
    let (page, pa) = match ipa / G {
        0 => (&page0, data_pa[0]),
        1 => (&page1, data_pa[1]),
        _ => panic!("host call exit for a structure at {ipa:#x}, outside the DATA pages"),
    };
    let off = (ipa % G) as usize;
    let call = RsiHostCall::read_from_bytes(&page[off..off + 256]).expect("256 bytes");
    assert_eq!(exit.imm, call.imm, "exit immediate");
    assert_eq!(exit.gprs, call.gprs, "exit registers");

    let mut enter = RmiRecEnter::new_zeroed();
    for (g, b) in enter.gprs.iter_mut().zip(answer.chunks(8)) {
        *g = u64::from_le_bytes(b.try_into().expect("8 bytes"));
    }
    host.write(run, enter.as_bytes());
    let _ = host.rmm.rec_enter(rec, run);
    let mut after = [0u8; 256];
    host.read_phys(pa + off as u64, &mut after);
    let after = RsiHostCall::read_from_bytes(&after).expect("256 bytes");
    assert_eq!(
        after.imm, call.imm,
        "the host's answer changed the immediate"
    );
    assert_eq!(after.gprs, enter.gprs, "the host's answer did not land");
});
