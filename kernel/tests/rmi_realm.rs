//! RMI_REALM_CREATE, RMI_REALM_ACTIVATE, RMI_REALM_DESTROY.

mod support;

use atoll_kernel::arch::Pas;
use atoll_kernel::granule::GranuleState as S;
use atoll_kernel::realm::RealmState;
use atoll_kernel::rtt::Hipas;
use atoll_kernel::RmmConfig;
use ipc_schema::rmi::{self, fid, Ripas, RmiRealmParams, RmiReturn};
use support::*;

/// Prepares everything a REALM_CREATE needs; returns (rd, params_ptr, p).
fn prepared(h: &mut Host, mut p: RmiRealmParams) -> (u64, u64, RmiRealmParams) {
    p.rtt_base = h.starting_rtts(u64::from(p.rtt_num_start.max(1)));
    let rd = h.delegated();
    let params = h.params_page(&p);
    (rd, params, p)
}

type Edit = Box<dyn Fn(&mut RmiRealmParams)>;

#[track_caller]
fn create_fails(h: &mut Host, p: RmiRealmParams) {
    let (rd, params, _) = prepared(h, p);
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd, params));
}

#[test]
fn create_success_state() {
    let mut h = Host::new();
    let mut p = h.default_params();
    p.rpv = [9; 64];
    p.vmid = 77;
    let (rd, params, p) = prepared(&mut h, p);
    assert_eq!(h.smc(fid::REALM_CREATE, &[rd, params])[0], 0);
    let g = h.rmm.granules();
    assert_eq!(g.state(rd), Some(S::Rd));
    assert_eq!(g.state(p.rtt_base), Some(S::Rtt));
    assert_eq!(g.state(p.rtt_base + G), Some(S::Rtt));
    assert_eq!(g.count(S::Rtt), 2);
    let r = h.rmm.realm(rd).unwrap();
    assert_eq!(r.state, RealmState::New);
    assert_eq!(r.ipa_width, 40);
    assert_eq!(r.vmid, 77);
    assert_eq!(r.rpv, [9; 64]);
    assert_eq!((r.rec_index, r.num_recs), (0, 0));
    assert_eq!((r.rtt.base, r.rtt.level, r.rtt.num), (p.rtt_base, 1, 2));
    let realm = RealmRef {
        rd,
        rtt_base: p.rtt_base,
        ipa_width: 40,
        start_level: 1,
    };
    // Protected starting entries: UNASSIGNED/EMPTY; unprotected: UNASSIGNED_NS.
    for i in 0..1024u64 {
        let e = h.raw_entry(&realm, i << 30, 1);
        if i < 512 {
            assert_eq!((e.hipas, e.ripas), (Hipas::Unassigned, Ripas::Empty), "{i}");
        } else {
            assert_eq!(e.hipas, Hipas::UnassignedNs, "{i}");
        }
    }
    assert_eq!(h.entry(&realm, 0, 1), (1, 0, 0, 0));
    assert_ne!(h.rim(&realm), [0; 64]);
}

#[test]
fn rim_measures_only_the_measured_params() {
    let mut h = Host::new();
    let a = h.create_realm();
    let mut p = h.default_params();
    p.vmid = 2;
    p.rpv = [1; 64];
    let b = h.create_realm_with(p);
    assert_eq!(
        h.rim(&a),
        h.rim(&b),
        "vmid, rpv and rtt_base are not measured"
    );
    let mut p = h.default_params();
    p.vmid = 3;
    p.s2sz = 39;
    p.rtt_num_start = 1;
    let c = h.create_realm_with(p);
    assert_ne!(h.rim(&a), h.rim(&c), "s2sz is measured");
    let mut p = h.default_params();
    p.vmid = 4;
    p.hash_algo = rmi::hash_algo::SHA_512;
    let d = h.create_realm_with(p);
    assert_ne!(h.rim(&a), h.rim(&d));
    let mut p = h.default_params();
    p.vmid = 5;
    p.num_bps = 3;
    let e = h.create_realm_with(p);
    assert_ne!(h.rim(&a), h.rim(&e), "num_bps is measured");
}

#[test]
fn create_params_pointer_failures() {
    let mut h = Host::new();
    let p = h.default_params();
    let (rd, params, _) = prepared(&mut h, p.clone());
    let realm_pas = h.delegated();
    let secure = h.params_page(&p);
    h.rmm.platform_mut().set_pas(secure, Pas::Secure);
    for ptr in [
        params + 8,                // params_align
        0x1000,                    // params_bound
        DRAM_BASE + DRAM_SIZE,     // params_bound
        realm_pas,                 // params_pas: a delegated granule
        secure,                    // params_pas: Secure
        DRAM_BASE + DRAM_SIZE + 8, // align + bound
    ] {
        h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd, ptr));
    }
    // Params pointer failure beats a bad rd.
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd + 1, realm_pas));
}

#[test]
fn create_params_valid_and_supported() {
    let mut h = Host::new();
    let d = h.default_params();
    let c = *h.rmm.config();
    let cases: Vec<(&str, Edit)> = vec![
        ("hash_algo 2", Box::new(|p| p.hash_algo = 2)),
        ("hash_algo 0xff", Box::new(|p| p.hash_algo = 0xff)),
        ("flags reserved bit", Box::new(|p| p.flags = 1 << 3)),
        ("flags high bit", Box::new(|p| p.flags = 1 << 63)),
        ("num_bps 0", Box::new(|p| p.num_bps = 0)),
        ("num_wps 0", Box::new(|p| p.num_wps = 0)),
        (
            "lpa2 unsupported",
            Box::new(|p| p.flags = rmi::realm_flags::LPA2),
        ),
        (
            "sve unsupported",
            Box::new(|p| p.flags = rmi::realm_flags::SVE),
        ),
        (
            "pmu unsupported",
            Box::new(|p| p.flags = rmi::realm_flags::PMU),
        ),
        ("s2sz 0", Box::new(|p| p.s2sz = 0)),
        ("s2sz 31", Box::new(|p| p.s2sz = 31)),
        ("s2sz 49", Box::new(|p| p.s2sz = 49)),
        ("s2sz huge", Box::new(|p| p.s2sz = u64::MAX)),
        (
            "num_bps too big",
            Box::new(move |p| p.num_bps = u64::from(c.num_bps) + 1),
        ),
        (
            "num_wps too big",
            Box::new(move |p| p.num_wps = u64::from(c.num_wps) + 1),
        ),
        ("num_bps huge", Box::new(|p| p.num_bps = u64::MAX)),
        // Two at once: still INPUT.
        (
            "hash + s2sz",
            Box::new(|p| {
                p.hash_algo = 7;
                p.s2sz = 60;
            }),
        ),
    ];
    for (what, f) in cases {
        let mut p = d.clone();
        f(&mut p);
        let (rd, params, _) = prepared(&mut h, p);
        let before = h.snapshot();
        assert_eq!(
            h.rmm.realm_create(rd, params),
            Err(RmiReturn::INPUT),
            "{what}"
        );
        assert!(before == h.snapshot(), "{what}");
    }
    // The limits themselves are accepted.
    let mut p = d.clone();
    p.num_bps = u64::from(c.num_bps);
    p.num_wps = u64::from(c.num_wps);
    p.vmid = 10;
    h.create_realm_with(p);
    let mut p = d.clone();
    p.s2sz = 48;
    p.rtt_level_start = 0;
    p.rtt_num_start = 1;
    p.vmid = 11;
    h.create_realm_with(p);
    // A smaller platform IPA width lowers the limit.
    let mut h = Host::with_config(RmmConfig {
        max_ipa_width: 40,
        ..RmmConfig::default()
    });
    let mut p = h.default_params();
    p.s2sz = 41;
    p.rtt_num_start = 4;
    create_fails(&mut h, p);
}

#[test]
fn create_alias_and_rd_failures() {
    let mut h = Host::new();
    let p = h.default_params();
    let (rd, params, p) = prepared(&mut h, p);
    let mut q = h.default_params();
    q.vmid = 9;
    let other = h.create_realm_with(q);
    let ns = h.alloc();
    for bad_rd in [
        p.rtt_base,            // alias: first starting RTT
        p.rtt_base + G,        // alias: second starting RTT
        rd + 8,                // rd_align
        DRAM_BASE + DRAM_SIZE, // rd_bound
        0,                     // rd_bound
        ns,                    // rd_state: undelegated
        other.rd,              // rd_state: already an RD
        other.rtt_base,        // rd_state: an RTT
    ] {
        h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(bad_rd, params));
    }
    assert_eq!(h.rmm.realm_create(rd, params), Ok(()));
}

#[test]
fn create_rtt_base_failures() {
    let mut h = Host::new();
    // rtt_align: two tables, 4 KB but not 8 KB aligned.
    let mut p = h.default_params();
    let base = h.alloc_aligned(3, 2 * G) + G;
    h.delegate(base);
    h.delegate(base + G);
    p.rtt_base = base;
    let rd = h.delegated();
    let params = h.params_page(&p);
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd, params));
    // rtt_state: one starting table not delegated / already in use.
    let used = h.create_realm();
    for second_state in ["undelegated", "rd"] {
        let mut p = h.default_params();
        p.vmid = 20;
        let base = h.alloc_aligned(2, 2 * G);
        h.delegate(base);
        if second_state == "rd" {
            // Can't make base+G an RD without a realm; use the used realm's
            // RTT as the first table instead.
            p.rtt_base = used.rtt_base;
        } else {
            p.rtt_base = base;
        }
        let rd = h.delegated();
        let params = h.params_page(&p);
        h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd, params));
    }
    // rtt_state: outside DRAM.
    let mut p = h.default_params();
    p.vmid = 21;
    p.rtt_base = DRAM_BASE + DRAM_SIZE;
    let rd = h.delegated();
    let params = h.params_page(&p);
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_create(rd, params));
}

#[test]
fn rtt_config_is_valid_table() {
    let mut h = Host::with_size(96 << 20, RmmConfig::default());
    // (level, s2sz, num_start, valid)
    let mut cases = vec![];
    for s2sz in 40..=48 {
        cases.push((0, s2sz, 1, true));
        cases.push((0, s2sz, 2, false));
    }
    cases.push((0, 39, 1, false));
    for s2sz in 32..=39 {
        cases.push((1, s2sz, 1, true));
        cases.push((1, s2sz, 2, false));
    }
    for s2sz in 40..=43 {
        cases.push((1, s2sz, 1 << (s2sz - 39), true));
        cases.push((1, s2sz, 1, false));
        cases.push((1, s2sz, 1 << (s2sz - 38), false));
    }
    cases.push((1, 44, 32, false));
    for s2sz in 32..=34 {
        cases.push((2, s2sz, 1 << (s2sz - 30), true));
        cases.push((2, s2sz, 1, false));
    }
    cases.push((2, 35, 16, false));
    cases.push((3, 32, 1, false));
    cases.push((3, 32, 16, false));
    cases.push((-1, 48, 1, false));
    cases.push((4, 40, 1, false));
    cases.push((1, 40, 0, false));
    for (level, s2sz, num, valid) in cases {
        let mut p = h.default_params();
        p.s2sz = s2sz;
        p.rtt_level_start = level;
        p.rtt_num_start = num;
        let (rd, params, p) = prepared(&mut h, p);
        let before = h.snapshot();
        let r = h.rmm.realm_create(rd, params);
        if valid {
            assert_eq!(r, Ok(()), "L{level} s2sz {s2sz} num {num}");
            assert_eq!(h.rmm.realm(rd).unwrap().rtt.num, num);
            for i in 0..u64::from(num) {
                assert_eq!(h.rmm.granules().state(p.rtt_base + i * G), Some(S::Rtt));
            }
            // Destroy it so the VMID and memory can be reused.
            assert_eq!(h.rmm.realm_destroy(rd), Ok(()));
        } else {
            assert_eq!(r, Err(RmiReturn::INPUT), "L{level} s2sz {s2sz} num {num}");
            assert!(before == h.snapshot());
        }
    }
}

#[test]
fn vmid_validity_and_reuse() {
    let mut h = Host::new();
    let a = h.create_realm(); // vmid 1
    let p = h.default_params();
    create_fails(&mut h, p.clone()); // vmid 1 in use
    assert_eq!(h.rmm.realm_destroy(a.rd), Ok(()));
    let b = h.create_realm_with(p.clone()); // reusable after destroy
    assert_eq!(h.rmm.realm(b.rd).unwrap().vmid, 1);
    let mut q = p.clone();
    q.vmid = 0xffff;
    h.create_realm_with(q);

    let mut h = Host::with_config(RmmConfig {
        vmid16: false,
        ..RmmConfig::default()
    });
    let mut q = h.default_params();
    q.vmid = 0x100;
    create_fails(&mut h, q.clone());
    q.vmid = 0xff;
    h.create_realm_with(q);
}

#[test]
fn activate() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.data(&realm, 0, &[1; 4096], true);
    let rim = h.rim(&realm);
    let delegated = h.delegated();
    for rd in [
        realm.rd + 8,          // rd_align
        DRAM_BASE + DRAM_SIZE, // rd_bound
        delegated,             // rd_state
        realm.rtt_base,        // rd_state
    ] {
        h.fails(RmiReturn::INPUT, |h| h.rmm.realm_activate(rd));
    }
    assert_eq!(h.smc(fid::REALM_ACTIVATE, &[realm.rd])[0], 0);
    assert_eq!(h.rmm.realm(realm.rd).unwrap().state, RealmState::Active);
    assert_eq!(h.rim(&realm), rim, "activation does not change the RIM");
    // realm_state: already active.
    h.fails(RmiReturn::REALM, |h| h.rmm.realm_activate(realm.rd));
    // rd_align beats realm_state.
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_activate(realm.rd + 1));
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_activate(realm.rd + G / 2));
}

#[test]
fn destroy_returns_every_granule() {
    let mut h = Host::new();
    let realm = h.create_realm();
    assert_eq!(h.rmm.realm_activate(realm.rd), Ok(()));
    // Unprotected mappings in the starting RTT do not make the realm live.
    assert_eq!(
        h.rmm.rtt_map_unprotected(realm.rd, 1 << 39, 1, 0x4000_0000),
        Ok(())
    );
    assert_eq!(h.smc(fid::REALM_DESTROY, &[realm.rd])[0], 0);
    assert!(h.rmm.realm(realm.rd).is_none());
    let g = h.rmm.granules();
    for pa in [realm.rd, realm.rtt_base, realm.rtt_base + G] {
        assert_eq!(g.state(pa), Some(S::Delegated));
        assert!(
            h.raw_read(pa).iter().all(|&b| b == 0),
            "{pa:#x} not scrubbed"
        );
    }
    assert_eq!(g.count(S::Rd) + g.count(S::Rtt), 0);
    for pa in [realm.rd, realm.rtt_base] {
        assert_eq!(h.rmm.granule_undelegate(pa), Ok(()));
    }
}

#[test]
fn destroy_failures_and_liveness() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let delegated = h.delegated();
    for rd in [
        realm.rd + 8,
        0,
        DRAM_BASE + DRAM_SIZE,
        delegated,
        realm.rtt_base,
    ] {
        h.fails(RmiReturn::INPUT, |h| h.rmm.realm_destroy(rd));
    }
    // Live: a TABLE entry in a starting RTT.
    h.rtts_to(&realm, 0, 2);
    h.fails(RmiReturn::REALM, |h| h.rmm.realm_destroy(realm.rd));
    // rd_align beats realm_live.
    h.fails(RmiReturn::INPUT, |h| h.rmm.realm_destroy(realm.rd + 8));
    let out = h.rmm.rtt_destroy(realm.rd, 0, 2);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    // Live: a REC.
    let rec = h.create_rec(&realm, 0, 0, true);
    h.fails(RmiReturn::REALM, |h| h.rmm.realm_destroy(realm.rd));
    assert_eq!(h.rmm.rec_destroy(rec), Ok(()));
    assert_eq!(h.rmm.realm_destroy(realm.rd), Ok(()));
}

#[test]
fn destroy_live_with_assigned_block_in_starting_rtt() {
    let mut h = Host::new();
    let mut p = h.default_params();
    p.s2sz = 32;
    p.rtt_level_start = 2;
    p.rtt_num_start = 4;
    let realm = h.create_realm_with(p);
    h.assigned_block(&realm, 2 << 20);
    assert_eq!(h.entry(&realm, 2 << 20, 2).1, rmi::rtt_state::ASSIGNED);
    assert_eq!(h.rmm.granules().count(S::Rtt), 4);
    h.fails(RmiReturn::REALM, |h| h.rmm.realm_destroy(realm.rd));
}
