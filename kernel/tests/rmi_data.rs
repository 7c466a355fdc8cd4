//! RMI_DATA_CREATE, RMI_DATA_CREATE_UNKNOWN, RMI_DATA_DESTROY.

mod support;

use atoll_kernel::arch::Pas;
use atoll_kernel::granule::GranuleState as S;
use ipc_schema::rmi::{fid, rtt_state, Ripas, RmiReturn};
use support::*;

const UNPROT: u64 = 1 << 39;

fn pattern(seed: u8) -> Vec<u8> {
    (0..4096)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn data_create_success() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let src = h.alloc();
    h.write(src, &pattern(1));
    let data = h.delegated();
    let rim0 = h.rim(&realm);
    assert_eq!(
        h.smc(fid::DATA_CREATE, &[realm.rd, data, 0x3000, src, 1])[0],
        0
    );
    assert_eq!(h.rmm.granules().state(data), Some(S::Data));
    assert_eq!(h.raw_read(data), pattern(1));
    assert_eq!(
        h.entry(&realm, 0x3000, 3),
        (3, rtt_state::ASSIGNED, data, Ripas::Ram as u64)
    );
    let rim1 = h.rim(&realm);
    assert_ne!(rim0, rim1);
    // Unmeasured content: RIM still extended (ipa, flags), but content
    // does not matter.
    let mut a = Host::new();
    let mut b = Host::new();
    let ra = a.create_realm();
    let rb = b.create_realm();
    a.data(&ra, 0, &pattern(1), false);
    b.data(&rb, 0, &pattern(2), false);
    assert_eq!(a.rim(&ra), b.rim(&rb));
    assert_ne!(a.rim(&ra), rim0);
    a.data(&ra, G, &pattern(1), true);
    b.data(&rb, G, &pattern(2), true);
    assert_ne!(a.rim(&ra), b.rim(&rb), "measured content differs");
}

#[test]
fn data_create_on_destroyed_entry_makes_it_ram() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.data(&realm, 0, &pattern(0), true);
    assert_eq!(h.rmm.data_destroy(realm.rd, 0).ret, RmiReturn::SUCCESS);
    assert_eq!(h.entry(&realm, 0, 3).3, Ripas::Destroyed as u64);
    let d = h.data(&realm, 0, &pattern(3), true);
    assert_eq!(
        h.entry(&realm, 0, 3),
        (3, rtt_state::ASSIGNED, d, Ripas::Ram as u64)
    );
}

#[test]
fn data_create_failures_in_order() {
    use RmiReturn as R;
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let mut q = h.default_params();
    q.vmid = 2;
    let active = h.create_realm_with(q);
    h.rtts_to(&active, 0, 3);
    assert_eq!(h.rmm.realm_activate(active.rd), Ok(()));
    let src = h.alloc();
    h.write(src, &pattern(5));
    let data = h.delegated();
    let realm_pas = h.delegated();
    let secure = h.alloc();
    h.rmm.platform_mut().set_pas(secure, Pas::Secure);
    let ns = h.alloc();
    let used = h.data(&realm, 0x1000, &pattern(1), true);
    let end = DRAM_BASE + DRAM_SIZE;
    let (rd, ard) = (realm.rd, active.rd);
    // (expected, rd, data, ipa, src, flags)
    let cases = [
        // 1-3 src: also ahead of every later condition.
        (R::INPUT, ard, ns, 5, src + 8, 0),
        (R::INPUT, ard, data, 0, end, 0),
        (R::INPUT, ard, data, 0, realm_pas, 0),
        (R::INPUT, ard, data, 0, secure, 0),
        // 4-6 data, ahead of realm_state and the walk.
        (R::INPUT, ard, data + 8, 0, src, 0),
        (R::INPUT, ard, end, 0, src, 0),
        (R::INPUT, ard, ns, 0, src, 0),
        (R::INPUT, ard, used, 0, src, 0),
        (R::INPUT, rd, realm.rtt_base, 0x20_0000, src, 0),
        // 8-10 rd.
        (R::INPUT, rd + 8, data, 0x20_0000, src, 0),
        (R::INPUT, end, data, 0, src, 0),
        (R::INPUT, realm.rtt_base, data, 0, src, 0),
        (R::INPUT, used, data, 0, src, 0),
        // 11-12 ipa, ahead of realm_state and the walk.
        (R::INPUT, ard, data, 0x10, src, 0),
        (R::INPUT, rd, data, 0x20_0800, src, 0),
        (R::INPUT, ard, data, UNPROT, src, 0),
        (R::INPUT, rd, data, UNPROT + (1 << 30), src, 0),
        (R::INPUT, rd, data, 1 << 40, src, 0),
        (R::INPUT, rd, data, !0xfff, src, 0),
        // flags reserved bits.
        (R::INPUT, rd, data, 0, src, 2),
        (R::INPUT, rd, data, 0, src, 1 << 63),
        // 13 realm_state, ahead of the walk.
        (R::REALM, ard, data, 0, src, 0),
        (R::REALM, ard, data, 0x4000_0000, src, 1),
        // 14 rtt_walk.
        (R::rtt(2), rd, data, 0x20_0000, src, 0),
        (R::rtt(1), rd, data, 0x4000_0000, src, 0),
        // 15 rtte_state.
        (R::rtt(3), rd, data, 0x1000, src, 1),
    ];
    for (i, (expect, rd, data, ipa, src, flags)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(
            h.rmm.data_create(rd, data, ipa, src, flags),
            Err(expect),
            "case {i}"
        );
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn data_create_unknown_success_keeps_ripas_and_rim() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.init_ripas(&realm, 0x10000, 0x20000);
    h.data(&realm, 0x30000, &pattern(0), false);
    assert_eq!(
        h.rmm.data_destroy(realm.rd, 0x30000).ret,
        RmiReturn::SUCCESS
    );
    assert_eq!(h.rmm.realm_activate(realm.rd), Ok(()));
    let rim = h.rim(&realm);
    for (ipa, ripas) in [
        (0x0, Ripas::Empty),
        (0x10000, Ripas::Ram),
        (0x30000, Ripas::Destroyed),
    ] {
        let d = h.delegated();
        assert_eq!(h.smc(fid::DATA_CREATE_UNKNOWN, &[realm.rd, d, ipa])[0], 0);
        assert_eq!(h.rmm.granules().state(d), Some(S::Data));
        assert!(h.raw_read(d).iter().all(|&b| b == 0));
        assert_eq!(
            h.entry(&realm, ipa, 3),
            (3, rtt_state::ASSIGNED, d, ripas as u64)
        );
    }
    assert_eq!(h.rim(&realm), rim, "DATA_CREATE_UNKNOWN is not measured");
}

#[test]
fn data_create_unknown_failures_in_order() {
    use RmiReturn as R;
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let data = h.delegated();
    let ns = h.alloc();
    let used = h.data(&realm, 0x1000, &pattern(1), true);
    let end = DRAM_BASE + DRAM_SIZE;
    let rd = realm.rd;
    let cases = [
        // data_*, ahead of rd and the walk.
        (R::INPUT, rd + 8, data + 8, 0x20_0000),
        (R::INPUT, rd, end, 0x20_0000),
        (R::INPUT, rd, ns, 0x20_0000),
        (R::INPUT, rd, used, 0x1000),
        // rd_*.
        (R::INPUT, rd + 8, data, 0x20_0000),
        (R::INPUT, end, data, 0),
        (R::INPUT, used, data, 0),
        // ipa_*, ahead of the walk.
        (R::INPUT, rd, data, 0x20_0008),
        (R::INPUT, rd, data, UNPROT),
        (R::INPUT, rd, data, 1 << 40),
        // rtt_walk / rtte_state.
        (R::rtt(2), rd, data, 0x20_0000),
        (R::rtt(1), rd, data, 0x8000_0000),
        (R::rtt(3), rd, data, 0x1000),
    ];
    for (i, (expect, rd, data, ipa)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(
            h.rmm.data_create_unknown(rd, data, ipa),
            Err(expect),
            "case {i}"
        );
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn data_destroy_success_outputs_and_ripas() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let a = h.data(&realm, 0x2000, &pattern(1), true);
    let b = h.data(&realm, 0x5000, &pattern(2), true);
    let c = h.delegated();
    assert_eq!(h.rmm.data_create_unknown(realm.rd, c, 0x9000), Ok(()));
    assert_eq!(h.rmm.realm_activate(realm.rd), Ok(()));
    let rim = h.rim(&realm);
    // RAM page: top is the next live entry.
    let r = h.smc(fid::DATA_DESTROY, &[realm.rd, 0x2000]);
    assert_eq!((r[0], r[1], r[2]), (0, a, 0x5000));
    assert_eq!(h.rmm.granules().state(a), Some(S::Delegated));
    assert!(h.raw_read(a).iter().all(|&x| x == 0), "DATA scrubbed");
    assert_eq!(
        h.entry(&realm, 0x2000, 3),
        (3, rtt_state::UNASSIGNED, 0, Ripas::Destroyed as u64)
    );
    let r = h.smc(fid::DATA_DESTROY, &[realm.rd, 0x5000]);
    assert_eq!((r[0], r[1], r[2]), (0, b, 0x9000));
    // EMPTY stays EMPTY; last live entry: top is the end of the table.
    let r = h.smc(fid::DATA_DESTROY, &[realm.rd, 0x9000]);
    assert_eq!((r[0], r[1], r[2]), (0, c, 2 << 20));
    assert_eq!(
        h.entry(&realm, 0x9000, 3),
        (3, rtt_state::UNASSIGNED, 0, Ripas::Empty as u64)
    );
    assert_eq!(h.rim(&realm), rim);
    assert_eq!(h.rmm.granules().count(S::Data), 0);
}

#[test]
fn data_destroy_failures_and_top() {
    use RmiReturn as R;
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.data(&realm, 0x4000, &pattern(1), true);
    let block = 4 << 20;
    h.assigned_block(&realm, block);
    let rd = realm.rd;
    // (expected, rd, ipa, top)
    let cases = [
        (R::INPUT, rd + 8, 0x4000, 0),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, 0x4000, 0),
        (R::INPUT, realm.rtt_base, 0x4000, 0),
        (R::INPUT, rd, 0x4008, 0),
        (R::INPUT, rd, UNPROT, 0),
        (R::INPUT, rd, 1 << 40, 0),
        // rd/ipa beat the walk.
        (R::INPUT, rd + 8, 0x20_0000, 0),
        (R::INPUT, rd, UNPROT + 0x1000, 0),
        // not mapped at level 3: top = next live entry.
        (R::rtt(3), rd, 0x1000, 0x4000),
        (R::rtt(3), rd, 0x5000, 2 << 20),
        // no level-3 table: RTT(2), top beyond ipa (next live L2 entry).
        (R::rtt(2), rd, 2 << 20, block),
        (R::rtt(2), rd, 0x30_0000, block),
        // nothing after: end of the level-2 table.
        (R::rtt(2), rd, 6 << 20, 1 << 30),
        // no level-2 table: RTT(1), end of the first of the two concatenated
        // starting RTTs (2^39), not of both.
        (R::rtt(1), rd, 1 << 30, UNPROT),
        (R::rtt(1), rd, UNPROT - (1 << 30), UNPROT),
        // mapped as a block: top == ipa.
        (R::rtt(2), rd, block, block),
        (R::rtt(2), rd, block + 0x5000, block + 0x5000),
    ];
    for (i, (expect, rd, ipa, top)) in cases.into_iter().enumerate() {
        let r = h.smc_fails(expect, fid::DATA_DESTROY, &[rd, ipa]);
        assert_eq!(r[2], top, "case {i} top");
    }
}
