//! `RmiRealmParams` from arbitrary bytes, handed to the real
//! `RMI_REALM_CREATE`.
//!
//! Input: one flag byte, then the params page (zero-extended or truncated
//! to a granule). Flag bit 0 points `rtt_base` at freshly delegated,
//! aligned granules so the fuzzer gets past the RTT checks; bit 1 makes the
//! RD one of the starting RTTs (the alias check).
//!
//! Properties: no panic; a created realm has exactly the requested IPA
//! width, VMID and RPV, and a realm that was just created can be destroyed.
#![no_main]

use atoll_fuzz::kernel::{exact, Host, G};
use ipc_schema::rmi::RmiRealmParams;
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, IntoBytes};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, page)) = data.split_first() else {
        return;
    };
    // The layout reads any bytes of the right length, and only those.
    assert_eq!(
        RmiRealmParams::read_from_bytes(page).is_ok(),
        page.len() == 4096
    );
    let page = exact(page, 4096);
    let mut params = RmiRealmParams::read_from_bytes(&page).expect("a granule of bytes");
    assert_eq!(params.as_bytes(), &page[..]);

    let mut host = Host::new();
    let mut rd = host.delegated();
    if flags & 1 != 0 {
        let n = u64::from(params.rtt_num_start).clamp(1, 16);
        params.rtt_base = host.starting_rtts(n);
        if flags & 2 != 0 {
            rd = params.rtt_base + (u64::from(flags >> 4) % n) * G;
        }
    }
    let params_pa = host.page(params.as_bytes());
    if host.rmm.realm_create(rd, params_pa).is_ok() {
        let realm = host.rmm.realm(rd).expect("created realm is there");
        assert_eq!(u64::from(realm.ipa_width), params.s2sz);
        assert_eq!(realm.vmid, params.vmid);
        assert_eq!(realm.rpv, params.rpv);
        assert_eq!(host.rmm.realm_destroy(rd), Ok(()));
    }
});
