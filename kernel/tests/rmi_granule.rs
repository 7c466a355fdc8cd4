//! RMI_GRANULE_DELEGATE and RMI_GRANULE_UNDELEGATE.

mod support;

use atoll_kernel::arch::{Pas, Platform};
use atoll_kernel::granule::GranuleState;
use ipc_schema::rmi::{fid, RmiReturn};
use support::*;

fn state(h: &Host, pa: u64) -> Option<GranuleState> {
    h.rmm.granules().state(pa)
}

#[test]
fn delegate_moves_granule_to_realm_pas() {
    let mut h = Host::new();
    let pa = h.alloc();
    h.write(pa, &[0xA5; 4096]);
    let r = h.smc(fid::GRANULE_DELEGATE, &[pa]);
    assert_eq!(r[0], 0);
    assert_eq!(state(&h, pa), Some(GranuleState::Delegated));
    assert_eq!(h.rmm.platform().pas(pa), Some(Pas::Realm));
    // Delegation does not scrub (the host wrote the contents, so they hide
    // nothing from it); each use initialises the granule instead, see
    // `dirty_delegated_granules_are_initialised_by_their_use`.
    // The normal world can no longer touch it.
    let mut b = [0u8; 8];
    assert!(h.rmm.platform().ns_read(pa, &mut b).is_err());
    // Neighbours are untouched.
    assert_eq!(state(&h, pa + G), Some(GranuleState::Undelegated));
    assert_eq!(h.rmm.granules().count(GranuleState::Delegated), 1);
}

#[test]
fn delegate_failures() {
    let mut h = Host::new();
    let pa = h.alloc();
    let delegated = h.delegated();
    let secure = h.alloc();
    h.rmm.platform_mut().set_pas(secure, Pas::Secure);
    let root = h.alloc();
    h.rmm.platform_mut().set_pas(root, Pas::Root);
    let realm = h.create_realm();
    for (what, addr) in [
        ("gran_align", pa + 1),
        ("gran_align page offset", pa + 0x800),
        ("gran_bound below DRAM", DRAM_BASE - G),
        ("gran_bound zero", 0),
        ("gran_bound end of DRAM", DRAM_BASE + DRAM_SIZE),
        ("gran_bound far", 1 << 52),
        ("gran_state delegated", delegated),
        ("gran_state rd", realm.rd),
        ("gran_state rtt", realm.rtt_base),
        ("gran_gpt secure", secure),
        ("gran_gpt root", root),
        // Two conditions at once still give INPUT.
        ("align+bound", DRAM_BASE + DRAM_SIZE + 8),
        ("align+state", delegated + 8),
        ("align+gpt", secure + 8),
    ] {
        let r = h.smc_fails(RmiReturn::INPUT, fid::GRANULE_DELEGATE, &[addr]);
        assert_eq!(r[1], 0, "{what}");
    }
    assert_eq!(h.rmm.platform().pas(secure), Some(Pas::Secure));
    assert_eq!(state(&h, secure), Some(GranuleState::Undelegated));
    assert_eq!(h.rmm.platform().pas(root), Some(Pas::Root));
}

#[test]
fn undelegate_returns_granule_to_ns() {
    let mut h = Host::new();
    let pa = h.delegated();
    assert_eq!(h.smc(fid::GRANULE_UNDELEGATE, &[pa])[0], 0);
    assert_eq!(state(&h, pa), Some(GranuleState::Undelegated));
    assert_eq!(h.rmm.platform().pas(pa), Some(Pas::NonSecure));
    let mut b = [1u8; 4096];
    h.read(pa, &mut b);
    assert!(b.iter().all(|&x| x == 0));
    // And it can be delegated again.
    h.delegate(pa);
    assert_eq!(state(&h, pa), Some(GranuleState::Delegated));
}

#[test]
fn undelegate_failures() {
    let mut h = Host::new();
    let ns = h.alloc();
    let delegated = h.delegated();
    let (realm, rec, _run) = active_realm(&mut h, |_| {});
    let data = h.rmm.rtt_read_entry(realm.rd, 0, 3).out[2];
    let aux = h.rmm.rec(rec).unwrap().aux[0];
    for (what, addr) in [
        ("gran_align", delegated + 8),
        ("gran_bound below", DRAM_BASE - G),
        ("gran_bound above", DRAM_BASE + DRAM_SIZE),
        ("gran_state undelegated", ns),
        ("gran_state rd", realm.rd),
        ("gran_state rtt", realm.rtt_base),
        ("gran_state data", data),
        ("gran_state rec", rec),
        ("gran_state rec_aux", aux),
        ("align+state", data + 0x10),
    ] {
        let r = h.smc_fails(RmiReturn::INPUT, fid::GRANULE_UNDELEGATE, &[addr]);
        assert_eq!(r[1], 0, "{what}");
    }
    assert_eq!(h.rmm.platform().pas(data), Some(Pas::Realm));
}

#[test]
fn undelegate_after_data_destroy_gives_zeros_to_the_normal_world() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let pattern: Vec<u8> = (0..4096).map(|i| (i * 7 + 3) as u8).collect();
    let data = h.data(&realm, 0x5000, &pattern, true);
    assert_eq!(h.raw_read(data), pattern, "DATA holds the copied page");
    let out = h.rmm.data_destroy(realm.rd, 0x5000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], data);
    assert_eq!(h.rmm.granule_undelegate(data), Ok(()));
    let mut back = [0xffu8; 4096];
    h.read(data, &mut back);
    assert!(back.iter().all(|&b| b == 0), "realm data leaked to NS");
}

#[test]
fn realm_owned_granules_cannot_be_read_by_the_host() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let data = h.data(&realm, 0, &[0x77; 4096], false);
    let mut b = [0u8; 16];
    assert!(h.rmm.platform().ns_read(data, &mut b).is_err());
    assert!(h.rmm.platform().ns_read(realm.rd, &mut b).is_err());
}

#[test]
fn dirty_delegated_granules_are_initialised_by_their_use() {
    let mut h = Host::new();
    let realm = h.create_realm();
    // A starting RTT, an RTT and a DATA_CREATE_UNKNOWN page, all delegated
    // full of host garbage: none of it may show through.
    let rtt = h.alloc();
    h.write(rtt, &[0xff; 4096]);
    h.delegate(rtt);
    assert_eq!(h.rmm.rtt_create(realm.rd, rtt, 0, 2), Ok(()));
    for i in 0..512u64 {
        let e = h.rmm.rtt_read_entry(realm.rd, i << 21, 2);
        assert_eq!(e.ret, RmiReturn::SUCCESS);
        assert_eq!(e.out, [2, 0, 0, 0], "entry {i} of a fresh RTT");
    }
    h.rtts_to(&realm, 0, 3);
    let data = h.alloc();
    h.write(data, &[0x5a; 4096]);
    h.delegate(data);
    assert_eq!(h.rmm.data_create_unknown(realm.rd, data, 0), Ok(()));
    assert!(
        h.raw_read(data).iter().all(|&b| b == 0),
        "host data reached the realm"
    );

    let mut p = h.default_params();
    let rtt_base = h.alloc_aligned(2, 2 * G);
    for g in [rtt_base, rtt_base + G] {
        h.write(g, &[0xee; 4096]);
        h.delegate(g);
    }
    p.rtt_base = rtt_base;
    p.vmid = 2;
    let rd = h.delegated();
    let params = h.params_page(&p);
    assert_eq!(h.rmm.realm_create(rd, params), Ok(()));
    for i in 0..1024u64 {
        let e = h.rmm.rtt_read_entry(rd, i << 30, 1);
        assert_eq!(
            (e.ret, e.out[1], e.out[2]),
            (RmiReturn::SUCCESS, 0, 0),
            "starting entry {i}"
        );
    }
}
