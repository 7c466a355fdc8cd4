//! RMI_REC_CREATE and RMI_REC_DESTROY (REC_AUX_COUNT is in rmi_misc.rs).

mod support;

use atoll_kernel::arch::Pas;
use atoll_kernel::granule::GranuleState as S;
use atoll_kernel::RmmConfig;
use ipc_schema::rmi::{fid, RmiRecParams, RmiReturn};
use support::*;

/// A REC about to be created: (rec, params_ptr, params).
fn prepared(h: &mut Host, index: u64) -> (u64, u64, RmiRecParams) {
    let p = h.rec_params(index, 0x8000, true);
    let ptr = h.params_page(&p);
    let rec = h.delegated();
    (rec, ptr, p)
}

fn with(h: &mut Host, mut p: RmiRecParams, f: impl FnOnce(&mut RmiRecParams)) -> u64 {
    f(&mut p);
    h.params_page(&p)
}

#[test]
fn create_success_state_and_rim() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let mut p = h.rec_params(0, 0x1234_5000, true);
    p.gprs = [1, 2, 3, 4, 5, 6, 7, 8];
    let ptr = h.params_page(&p);
    let rec = h.delegated();
    let rim0 = h.rim(&realm);
    assert_eq!(h.smc(fid::REC_CREATE, &[realm.rd, rec, ptr])[0], 0);
    let g = h.rmm.granules();
    assert_eq!(g.state(rec), Some(S::Rec));
    assert_eq!(g.state(p.aux[0]), Some(S::RecAux));
    assert_eq!(g.state(p.aux[1]), Some(S::RecAux));
    let r = h.rmm.rec(rec).unwrap();
    assert_eq!(r.owner, realm.rd);
    assert_eq!((r.mpidr, r.index), (0, 0));
    assert!(r.runnable && !r.running);
    assert_eq!(r.regs.pc, 0x1234_5000);
    assert_eq!(&r.regs.gprs[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(r.regs.gprs[8..].iter().all(|&x| x == 0));
    assert_eq!(r.aux, vec![p.aux[0], p.aux[1]]);
    assert_eq!((r.ripas.addr, r.ripas.top), (0, 0));
    let realm_state = h.rmm.realm(realm.rd).unwrap();
    assert_eq!((realm_state.rec_index, realm_state.num_recs), (1, 1));
    let rim1 = h.rim(&realm);
    assert_ne!(rim0, rim1, "a runnable REC is measured");
    // A non-runnable REC is not measured.
    let p = h.rec_params(1, 0x9000, false);
    let ptr = h.params_page(&p);
    let rec1 = h.delegated();
    assert_eq!(h.rmm.rec_create(realm.rd, rec1, ptr), Ok(()));
    assert!(!h.rmm.rec(rec1).unwrap().runnable);
    assert_eq!(h.rmm.rec(rec1).unwrap().mpidr, 1);
    assert_eq!(h.rim(&realm), rim1);
    // Index 16 is Aff1 = 1, Aff0 = 0.
    for i in 2..17 {
        h.create_rec(&realm, i, 0, false);
    }
    assert_eq!(h.rmm.realm(realm.rd).unwrap().num_recs, 17);
}

#[test]
fn create_failures_in_order() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let active = {
        let mut q = h.default_params();
        q.vmid = 2;
        let a = h.create_realm_with(q);
        assert_eq!(h.rmm.realm_activate(a.rd), Ok(()));
        a
    };
    let (rec, ptr, p) = prepared(&mut h, 0);
    let realm_pas = h.delegated();
    let secure = h.params_page(&p);
    h.rmm.platform_mut().set_pas(secure, Pas::Secure);
    let ns = h.alloc();
    let in_use = h.create_rec(&realm, 0, 0, false);
    let (rec1, _, _) = prepared(&mut h, 1);
    let in_use_aux = h.rmm.rec(in_use).unwrap().aux[0];
    let rd = realm.rd;
    let ard = active.rd;
    use RmiReturn as R;
    // (expected, rd, rec, params_ptr); realm `rd` now expects index 1,
    // so `ptr` (index 0) is a valid params page only for `active`.
    let cases = [
        // 1-3 params_*, also ahead of a bad rec and of realm_state.
        (R::INPUT, ard, rec, ptr + 8),
        (R::INPUT, ard, rec + 8, ptr + 8),
        (R::INPUT, ard, rec, DRAM_BASE + DRAM_SIZE),
        (R::INPUT, ard, rec, realm_pas),
        (R::INPUT, ard, rec, secure),
        // 4-6 rec_*, ahead of realm_state (REALM).
        (R::INPUT, ard, rec + 8, ptr),
        (R::INPUT, ard, DRAM_BASE + DRAM_SIZE, ptr),
        (R::INPUT, ard, ns, ptr),
        (R::INPUT, ard, in_use, ptr),
        (R::INPUT, ard, rd, ptr),
        // 7-9 rd_*.
        (R::INPUT, ard + 8, rec, ptr),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, rec, ptr),
        (R::INPUT, realm.rtt_base, rec, ptr),
        (R::INPUT, in_use, rec, ptr),
        // 10 realm_state, ahead of mpidr_index (realm expects 0 == ok; use
        // a params page with index 5).
        (R::REALM, ard, rec, ptr),
    ];
    for (i, (expect, rd, rec, ptr)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        let got = h.rmm.rec_create(rd, rec, ptr);
        assert_eq!(got, Err(expect), "case {i}");
        assert!(before == h.snapshot(), "case {i}");
    }
    let bad_mpidr = with(&mut h, p.clone(), |p| p.mpidr = 5);
    h.fails(R::REALM, |h| h.rmm.rec_create(ard, rec, bad_mpidr));
    // 12 mpidr_index: realm expects index 1.
    let idx0 = with(&mut h, p.clone(), |p| p.mpidr = 0);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, idx0));
    let idx2 = with(&mut h, p.clone(), |p| p.mpidr = 2);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, idx2));
    let reserved = with(&mut h, p.clone(), |p| p.mpidr = 1 | 1 << 4);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, reserved));
    let reserved_hi = with(&mut h, p.clone(), |p| p.mpidr = 1 | 1 << 32);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, reserved_hi));
    // 13 num_aux.
    let p1 = h.rec_params(1, 0, true);
    for n in [0, 1, 3, 16, 17, u64::MAX] {
        let bad = with(&mut h, p1.clone(), |p| p.num_aux = n);
        h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, bad));
    }
    // 14 aux_align.
    let bad = with(&mut h, p1.clone(), |p| p.aux[1] += 8);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, bad));
    // 15 aux_alias: duplicate, or equal to rec.
    let bad = with(&mut h, p1.clone(), |p| p.aux[1] = p.aux[0]);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, bad));
    let bad = with(&mut h, p1.clone(), |p| p.aux[0] = rec1);
    h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, bad));
    // 16 aux_state: undelegated, in use, outside DRAM.
    for a in [ns, in_use_aux, DRAM_BASE + DRAM_SIZE, realm.rtt_base] {
        let bad = with(&mut h, p1.clone(), |p| p.aux[1] = a);
        h.fails(R::INPUT, |h| h.rmm.rec_create(rd, rec1, bad));
    }
    // Entries beyond num_aux are ignored.
    let ok = with(&mut h, p1.clone(), |p| p.aux[5] = 3);
    assert_eq!(h.rmm.rec_create(rd, rec1, ok), Ok(()));
}

#[test]
fn num_recs_limit() {
    let mut h = Host::with_config(RmmConfig {
        max_recs_order: 2,
        ..RmmConfig::default()
    });
    let realm = h.create_realm();
    let recs: Vec<u64> = (0..3).map(|i| h.create_rec(&realm, i, 0, true)).collect();
    let (rec, ptr, p) = prepared(&mut h, 3);
    h.fails(RmiReturn::REALM, |h| h.rmm.rec_create(realm.rd, rec, ptr));
    // num_recs beats mpidr_index and num_aux.
    let bad = with(&mut h, p.clone(), |p| {
        p.mpidr = 9;
        p.num_aux = 0;
    });
    h.fails(RmiReturn::REALM, |h| h.rmm.rec_create(realm.rd, rec, bad));
    // rd_state beats num_recs.
    h.fails(RmiReturn::INPUT, |h| {
        h.rmm.rec_create(realm.rd + 8, rec, ptr)
    });
    // Destroying one frees a slot; the index keeps counting.
    assert_eq!(h.rmm.rec_destroy(recs[1]), Ok(()));
    let idx1 = with(&mut h, p.clone(), |p| p.mpidr = 1);
    h.fails(RmiReturn::INPUT, |h| h.rmm.rec_create(realm.rd, rec, idx1));
    assert_eq!(h.rmm.rec_create(realm.rd, rec, ptr), Ok(()));
    assert_eq!(h.rmm.realm(realm.rd).unwrap().rec_index, 4);
}

#[test]
fn destroy_success() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let rec = h.create_rec(&realm, 0, 0, true);
    let aux = h.rmm.rec(rec).unwrap().aux.clone();
    assert_eq!(h.rmm.realm_activate(realm.rd), Ok(()));
    let rim = h.rim(&realm);
    assert_eq!(h.smc(fid::REC_DESTROY, &[rec])[0], 0);
    assert!(h.rmm.rec(rec).is_none());
    for pa in std::iter::once(rec).chain(aux) {
        assert_eq!(h.rmm.granules().state(pa), Some(S::Delegated));
        assert!(h.raw_read(pa).iter().all(|&b| b == 0));
    }
    let r = h.rmm.realm(realm.rd).unwrap();
    assert_eq!((r.num_recs, r.rec_index), (0, 1));
    assert_eq!(h.rim(&realm), rim);
    assert_eq!(h.rmm.realm_destroy(realm.rd), Ok(()));
}

#[test]
fn destroy_failures() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let rec = h.create_rec(&realm, 0, 0, true);
    let aux = h.rmm.rec(rec).unwrap().aux[0];
    let delegated = h.delegated();
    let ns = h.alloc();
    for pa in [
        rec + 8,
        rec + 0x800,
        DRAM_BASE + DRAM_SIZE,
        0,
        ns,
        delegated,
        aux,
        realm.rd,
        realm.rtt_base,
    ] {
        h.fails(RmiReturn::INPUT, |h| h.rmm.rec_destroy(pa));
    }
}
