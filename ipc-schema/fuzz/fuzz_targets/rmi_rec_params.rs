//! `RmiRecParams` from arbitrary bytes, handed to the real `RMI_REC_CREATE`
//! of a new realm.
//!
//! Input: one flag byte, then the params page (zero-extended or truncated
//! to a granule). Flag bit 0 fills `aux[..2]` with delegated granules,
//! bit 1 sets `num_aux` to the configured count, bit 2 clears `mpidr`: each
//! gets the fuzzer past one check.
//!
//! Properties: no panic; a created REC has the requested MPIDR, entry point
//! and runnable flag, only the configured number of aux granules, and can
//! be destroyed again.
#![no_main]

use atoll_fuzz::kernel::{exact, Host};
use ipc_schema::rmi::{rec_flags, RmiRecParams};
use libfuzzer_sys::fuzz_target;
use zerocopy::{FromBytes, IntoBytes};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, page)) = data.split_first() else {
        return;
    };
    assert_eq!(
        RmiRecParams::read_from_bytes(page).is_ok(),
        page.len() == 4096
    );
    let page = exact(page, 4096);
    let mut params = RmiRecParams::read_from_bytes(&page).expect("a granule of bytes");
    assert_eq!(params.as_bytes(), &page[..]);

    let mut host = Host::new();
    let realm = host.create_realm_with(Host::default_params());
    let aux_count = u64::from(host.rmm.config().rec_aux_count);
    if flags & 1 != 0 {
        for i in 0..aux_count as usize {
            params.aux[i] = host.delegated();
        }
    }
    if flags & 2 != 0 {
        params.num_aux = aux_count;
    }
    if flags & 4 != 0 {
        params.mpidr = 0;
    }
    let params_pa = host.page(params.as_bytes());
    let rec = host.delegated();
    if host.rmm.rec_create(realm.rd, rec, params_pa).is_ok() {
        assert_eq!(params.num_aux, aux_count);
        let r = host.rmm.rec(rec).expect("created REC is there");
        assert_eq!(r.mpidr, params.mpidr);
        assert_eq!(r.regs.pc, params.pc);
        assert_eq!(r.regs.gprs[..8], params.gprs);
        assert_eq!(r.runnable, params.flags & rec_flags::RUNNABLE != 0);
        assert_eq!(r.aux.len() as u64, aux_count);
        assert_eq!(host.rmm.rec_destroy(rec), Ok(()));
    }
});
