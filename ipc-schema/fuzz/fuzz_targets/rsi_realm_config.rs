//! `RsiRealmConfig` from arbitrary bytes: a realm page of arbitrary
//! contents handed to the real `RSI_REALM_CONFIG`.
//!
//! Input: a selector byte, then the realm's RPV (64 bytes) and the previous
//! contents of the realm's DATA page at IPA 0 (zero-extended). The selector
//! picks the IPA the realm passes (the page, a misaligned address, RAM with
//! no page, an unprotected address).
//!
//! Properties: no panic; the layout reads exactly one granule; when the
//! call succeeds, the whole page is the realm's configuration (IPA width,
//! hash algorithm, RPV) with every other byte zero, whatever it held.
#![no_main]

use atoll_fuzz::kernel::{exact, Host, G};
use atoll_kernel::arch::{Trap, VcpuRegs};
use ipc_schema::rmi::RmiRecEnter;
use ipc_schema::rsi::{self, RsiRealmConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Mutex};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const IPAS: [u64; 4] = [0, 0x80, 2 * G, 1 << 39];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let rpv: [u8; 64] = exact(rest, 64).try_into().expect("64 bytes");
    let page = exact(rest.get(64..).unwrap_or(&[]), 4096);
    assert_eq!(
        RsiRealmConfig::read_from_bytes(rest.get(64..).unwrap_or(&[])).is_ok(),
        rest.len() == 64 + 4096
    );
    let before = RsiRealmConfig::read_from_bytes(&page).expect("a granule of bytes");
    assert_eq!(before.as_bytes(), &page[..]);
    let ipa = IPAS[usize::from(sel & 3)];

    let status = Arc::new(Mutex::new(None));
    let seen = status.clone();
    let mut called = false;
    let guest = Box::new(move |_resume, regs: &mut VcpuRegs| {
        if called {
            *seen.lock().unwrap() = Some(regs.gprs[0]);
            return Trap::Irq;
        }
        called = true;
        regs.gprs[0] = rsi::fid::REALM_CONFIG;
        regs.gprs[1] = ipa;
        Trap::Smc
    });
    let mut host = Host::new();
    let (_realm, rec, data_pa) = host.active_realm(rpv, &page, &[], Some(guest));
    let run = host.page(RmiRecEnter::new_zeroed().as_bytes());
    let _ = host.rmm.rec_enter(rec, run);

    let mut after = vec![0u8; 4096];
    host.read_phys(data_pa[0], &mut after);
    if *status.lock().unwrap() == Some(rsi::status::SUCCESS) {
        assert_eq!(ipa, 0, "RSI_REALM_CONFIG succeeded at {ipa:#x}");
        let mut expected = RsiRealmConfig::new_zeroed();
        expected.ipa_width = 40;
        expected.hash_algo = rsi::hash_algo::SHA_256;
        expected.rpv = rpv;
        assert_eq!(after, expected.as_bytes(), "config page");
    } else {
        assert_eq!(after, page, "a failed RSI_REALM_CONFIG changed the page");
    }
});
