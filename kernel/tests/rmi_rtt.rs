//! RMI_RTT_CREATE, RMI_RTT_DESTROY, RMI_RTT_FOLD, RMI_RTT_READ_ENTRY,
//! RMI_RTT_MAP_UNPROTECTED, RMI_RTT_UNMAP_UNPROTECTED.

mod support;

use atoll_kernel::granule::GranuleState as S;
use atoll_kernel::rtt::Hipas;
use ipc_schema::rmi::{fid, rtt_state, Ripas, RmiReturn};
use support::*;

const UNPROT: u64 = 1 << 39;
const L2: u64 = 2 << 20;
use RmiReturn as R;

fn level0_realm(h: &mut Host) -> RealmRef {
    let mut p = h.default_params();
    p.rtt_level_start = 0;
    p.rtt_num_start = 1;
    p.vmid = 50;
    h.create_realm_with(p)
}

/// NS descriptor: addr | MemAttr | S2AP.
fn desc(addr: u64, memattr: u64, s2ap: u64) -> u64 {
    addr | memattr << 2 | s2ap << 6
}

#[test]
fn create_at_every_level() {
    let mut h = Host::new();
    let r0 = level0_realm(&mut h);
    for (level, ipa) in [
        (1, 0),
        (2, 0),
        (3, 0),
        (1, UNPROT),
        (2, UNPROT),
        (3, UNPROT),
    ] {
        let rtt = h.delegated();
        let parent = align(ipa, level - 1);
        assert_eq!(
            h.smc(fid::RTT_CREATE, &[r0.rd, rtt, parent, level as u64])[0],
            0
        );
        assert_eq!(h.rmm.granules().state(rtt), Some(S::Rtt));
        assert_eq!(
            h.entry(&r0, parent, level - 1),
            (level - 1, rtt_state::TABLE, rtt, 0)
        );
        assert_eq!(h.entry(&r0, ipa, level).0, level);
        let child = h.raw_entry(&r0, ipa + (1 << (12 + 9 * (3 - level))), level);
        if ipa < UNPROT {
            assert_eq!(
                (child.hipas, child.ripas),
                (Hipas::Unassigned, Ripas::Empty)
            );
        } else {
            assert_eq!(child.hipas, Hipas::UnassignedNs);
        }
    }
    // Level-2 start: only level 3 can be created.
    let mut p = h.default_params();
    p.s2sz = 32;
    p.rtt_level_start = 2;
    p.rtt_num_start = 4;
    p.vmid = 51;
    let r2 = h.create_realm_with(p);
    let rtt = h.delegated();
    assert_eq!(h.rmm.rtt_create(r2.rd, rtt, 3 << 30, 3), Ok(()));
    h.fails(R::INPUT, |h| h.rmm.rtt_create(r2.rd, rtt + G, 0, 2));
}

#[test]
fn create_children_inherit_ripas() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 2);
    h.init_ripas(&realm, L2, 2 * L2); // level-2 entry RAM
    h.data(&realm, 2 * L2, &[0; 4096], false);
    // A DESTROYED level-2 entry: destroy the level-3 RTT under it.
    assert_eq!(h.rmm.data_destroy(realm.rd, 2 * L2).ret, R::SUCCESS);
    assert_eq!(h.rmm.rtt_destroy(realm.rd, 2 * L2, 3).ret, R::SUCCESS);
    assert_eq!(h.entry(&realm, 2 * L2, 2).3, Ripas::Destroyed as u64);
    for (ipa, ripas) in [
        (L2, Ripas::Ram),
        (2 * L2, Ripas::Destroyed),
        (3 * L2, Ripas::Empty),
    ] {
        h.rtts_to(&realm, ipa, 3);
        for off in [0, 0x1000, L2 - G] {
            assert_eq!(h.entry(&realm, ipa + off, 3), (3, 0, 0, ripas as u64));
        }
    }
}

#[test]
fn create_unfolds_assigned_and_assigned_ns_blocks() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let pa = h.assigned_block(&realm, L2);
    // The block was built with DATA_CREATE_UNKNOWN on EMPTY entries.
    assert_eq!(
        h.entry(&realm, L2, 2),
        (2, rtt_state::ASSIGNED, pa, Ripas::Empty as u64)
    );
    let rtt = h.delegated();
    assert_eq!(h.rmm.rtt_create(realm.rd, rtt, L2, 3), Ok(()));
    for i in [0, 1, 255, 511] {
        assert_eq!(
            h.entry(&realm, L2 + i * G, 3),
            (3, rtt_state::ASSIGNED, pa + i * G, Ripas::Empty as u64)
        );
    }
    // NS block at level 2 with attributes.
    h.rtts_to(&realm, UNPROT, 2);
    let d = desc(0x4000_0000, 0b101, 0b11);
    assert_eq!(h.rmm.rtt_map_unprotected(realm.rd, UNPROT, 2, d), Ok(()));
    let rtt = h.delegated();
    assert_eq!(h.rmm.rtt_create(realm.rd, rtt, UNPROT, 3), Ok(()));
    for i in [0, 7, 511] {
        assert_eq!(
            h.entry(&realm, UNPROT + i * G, 3),
            (3, rtt_state::ASSIGNED, d + i * G, 0)
        );
    }
}

#[test]
fn create_failures_in_order() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let rtt = h.delegated();
    let ns = h.alloc();
    let rd = realm.rd;
    let end = DRAM_BASE + DRAM_SIZE;
    // (expected, rd, rtt, ipa, level)
    let cases = [
        (R::INPUT, rd + 8, rtt, L2, 3),
        (R::INPUT, end, rtt, L2, 3),
        (R::INPUT, realm.rtt_base, rtt, L2, 3),
        (R::INPUT, rtt, rtt, L2, 3),
        // level_bound: starting level, above 3, negative; beats the walk.
        (R::INPUT, rd, rtt, 0, 1),
        (R::INPUT, rd, rtt, 0, 0),
        (R::INPUT, rd, rtt, 0, 4),
        (R::INPUT, rd, rtt, 0, u64::MAX),
        (R::INPUT, rd, rtt, 0, 0x100),
        // ipa_align (to level-1) and ipa_bound; beat the walk.
        (R::INPUT, rd, rtt, G, 3),
        (R::INPUT, rd, rtt, L2 / 2, 3),
        (R::INPUT, rd, rtt, 1 << 29, 2),
        (R::INPUT, rd, rtt, 1 << 40, 2),
        (R::INPUT, rd, rtt, 1 << 41, 3),
        // rtt_*: beat the walk and the parent state.
        (R::INPUT, rd, rtt + 8, 1 << 30, 3),
        (R::INPUT, rd, end, 1 << 30, 3),
        (R::INPUT, rd, ns, 0, 3),
        (R::INPUT, rd, realm.rtt_base, 0, 2),
        (R::INPUT, rd, rd, L2, 3),
        // rtt_walk: no level-2 RTT.
        (R::rtt(1), rd, rtt, 1 << 30, 3),
        (R::rtt(1), rd, rtt, UNPROT + (5 << 30), 3),
        // rtte_state: parent already TABLE.
        (R::rtt(2), rd, rtt, 0, 3),
        (R::rtt(1), rd, rtt, 0, 2),
    ];
    for (i, (expect, rd, rtt, ipa, level)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(
            h.rmm.rtt_create(rd, rtt, ipa, level),
            Err(expect),
            "case {i}"
        );
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn destroy_at_every_level_and_top() {
    let mut h = Host::new();
    let r0 = level0_realm(&mut h);
    h.rtts_to(&r0, 0, 3);
    h.rtts_to(&r0, 4 * L2, 3);
    for (level, ipa, next) in [
        (3, 0, 4 * L2),
        (3, 4 * L2, 1 << 30),
        (2, 0, 1 << 39),
        (1, 0, 1 << 40),
    ] {
        let child = h.entry(&r0, ipa, level - 1).2;
        let r = h.smc(fid::RTT_DESTROY, &[r0.rd, ipa, level as u64]);
        assert_eq!((r[0], r[1], r[2]), (0, child, next), "L{level} {ipa:#x}");
        assert_eq!(h.rmm.granules().state(child), Some(S::Delegated));
        assert!(h.raw_read(child).iter().all(|&b| b == 0));
        assert_eq!(
            h.entry(&r0, ipa, level - 1),
            (level - 1, 0, 0, Ripas::Destroyed as u64)
        );
    }
    // Unprotected: parent becomes UNASSIGNED_NS; ASSIGNED_NS entries do not
    // keep the RTT alive.
    let realm = h.create_realm();
    h.rtts_to(&realm, UNPROT, 3);
    assert_eq!(
        h.rmm
            .rtt_map_unprotected(realm.rd, UNPROT + G, 3, desc(0x1000, 0, 1)),
        Ok(())
    );
    let r = h.smc(fid::RTT_DESTROY, &[realm.rd, UNPROT, 3]);
    assert_eq!(r[0], 0);
    assert_eq!(r[2], UNPROT + (1 << 30));
    assert_eq!(h.raw_entry(&realm, UNPROT, 2).hipas, Hipas::UnassignedNs);
}

#[test]
fn destroy_failures_and_top() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.data(&realm, 0x3000, &[1; 4096], true);
    h.rtts_to(&realm, 4 * L2, 3); // empty level-3 RTT
    let block = 8 * L2;
    h.assigned_block(&realm, block);
    let rd = realm.rd;
    // (expected, rd, ipa, level, top)
    let cases = [
        (R::INPUT, rd + 8, 0, 3, 0),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, 0, 3, 0),
        (R::INPUT, realm.rtt_base, 0, 3, 0),
        (R::INPUT, rd, 0, 1, 0),
        (R::INPUT, rd, 0, 4, 0),
        (R::INPUT, rd, G, 3, 0),
        (R::INPUT, rd, 1 << 40, 2, 0),
        // level/ipa beat rtt_live and the walk.
        (R::INPUT, rd, 0, 1, 0),
        (R::INPUT, rd, 0x1000, 3, 0),
        (R::INPUT, rd + 8, 1 << 30, 3, 0),
        // rtt_walk: no level-2 RTT; top > ipa.
        (R::rtt(1), rd, 1 << 30, 3, UNPROT),
        // rtte_state: parent UNASSIGNED: top = next live entry.
        (R::rtt(2), rd, L2, 3, 4 * L2),
        (R::rtt(2), rd, 5 * L2, 3, block),
        // parent is a block: top == ipa.
        (R::rtt(2), rd, block, 3, block),
        // rtt_live: RTT(level), top == ipa.
        (R::rtt(3), rd, 0, 3, 0),
        (R::rtt(2), rd, 0, 2, 0),
    ];
    for (i, (expect, rd, ipa, level, top)) in cases.into_iter().enumerate() {
        let r = h.smc_fails(expect, fid::RTT_DESTROY, &[rd, ipa, level]);
        assert_eq!(r[2], top, "case {i} top");
    }
}

#[test]
fn fold_every_homogeneous_kind() {
    let mut h = Host::new();
    let r0 = level0_realm(&mut h);
    // UNASSIGNED RAM, level 3 -> level 2.
    h.rtts_to(&r0, 0, 3);
    h.init_ripas(&r0, 0, L2);
    let child = h.entry(&r0, 0, 2).2;
    let r = h.smc(fid::RTT_FOLD, &[r0.rd, 0, 3]);
    assert_eq!((r[0], r[1]), (0, child));
    assert_eq!(h.rmm.granules().state(child), Some(S::Delegated));
    assert_eq!(h.entry(&r0, 0, 3), (2, 0, 0, Ripas::Ram as u64));
    // UNASSIGNED EMPTY, level 2 -> level 1, then level 1 -> level 0.
    h.rtts_to(&r0, 1 << 30, 2);
    assert_eq!(h.rmm.rtt_fold(r0.rd, 1 << 30, 2).ret, R::SUCCESS);
    // Level-2 RTT at 0 now has a RAM entry at 0 and EMPTY elsewhere.
    assert_eq!(h.rmm.rtt_fold(r0.rd, 0, 2).ret, R::rtt(2));
    // UNASSIGNED_NS at level 1 -> level 0.
    let l1 = h.entry(&r0, UNPROT, 0);
    assert_eq!(l1.1, 0);
    h.rtts_to(&r0, UNPROT, 1);
    assert_eq!(h.rmm.rtt_fold(r0.rd, UNPROT, 1).ret, R::SUCCESS);
    assert_eq!(h.raw_entry(&r0, UNPROT, 0).hipas, Hipas::UnassignedNs);

    // ASSIGNED contiguous -> level-2 block (assigned_block folds).
    let realm = h.create_realm();
    let pa = h.assigned_block(&realm, L2);
    assert_eq!(
        h.entry(&realm, L2 + G, 3),
        (2, rtt_state::ASSIGNED, pa, Ripas::Empty as u64)
    );
    // ASSIGNED_NS contiguous, same attributes -> NS block.
    h.rtts_to(&realm, UNPROT, 3);
    for i in 0..512 {
        let d = desc(0x20_0000 + i * G, 0b110, 0b01);
        assert_eq!(
            h.rmm.rtt_map_unprotected(realm.rd, UNPROT + i * G, 3, d),
            Ok(())
        );
    }
    assert_eq!(h.rmm.rtt_fold(realm.rd, UNPROT, 3).ret, R::SUCCESS);
    assert_eq!(
        h.entry(&realm, UNPROT, 3),
        (2, rtt_state::ASSIGNED, desc(0x20_0000, 0b110, 0b01), 0)
    );
}

#[test]
fn fold_failures() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let rd = realm.rd;
    // Mixed RIPAS.
    h.rtts_to(&realm, 0, 3);
    h.init_ripas(&realm, 0, G);
    // Mixed HIPAS: one page assigned.
    h.rtts_to(&realm, L2, 3);
    h.data(&realm, L2, &[0; 4096], false);
    // Non-contiguous ASSIGNED: a block unfolded, one page replaced.
    let blk = 4 * L2;
    h.assigned_block(&realm, blk);
    let rtt = h.delegated();
    assert_eq!(h.rmm.rtt_create(rd, rtt, blk, 3), Ok(()));
    assert_eq!(h.rmm.data_destroy(rd, blk + 5 * G).ret, R::SUCCESS);
    let other = h.delegated();
    assert_eq!(h.rmm.data_create_unknown(rd, other, blk + 5 * G), Ok(()));
    // ASSIGNED but first address not block-aligned.
    let blk2 = 6 * L2;
    h.rtts_to(&realm, blk2, 3);
    let base = h.delegated_run(513, L2) + G;
    for i in 0..512 {
        assert_eq!(
            h.rmm.data_create_unknown(rd, base + i * G, blk2 + i * G),
            Ok(())
        );
    }
    // ASSIGNED_NS with differing attributes.
    h.rtts_to(&realm, UNPROT, 3);
    for i in 0..512 {
        let d = desc(i * G, if i == 9 { 0b101 } else { 0b110 }, 0);
        assert_eq!(h.rmm.rtt_map_unprotected(rd, UNPROT + i * G, 3, d), Ok(()));
    }
    // The level-2 RTT at 0 holds TABLE entries: never homogeneous.
    let cases = [
        (R::INPUT, rd + 8, 0, 3),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, 0, 3),
        (R::INPUT, realm.rtt_base, 0, 3),
        (R::INPUT, rd, 0, 1),
        (R::INPUT, rd, 0, 4),
        (R::INPUT, rd, G, 3),
        (R::INPUT, rd, 1 << 40, 3),
        // level/ipa beat rtt_homo and the walk.
        (R::INPUT, rd, 0, 1),
        (R::INPUT, rd, L2 + G, 3),
        (R::INPUT, rd + 8, 1 << 30, 3),
        // rtt_walk / rtte_state.
        (R::rtt(1), rd, 1 << 30, 3),
        (R::rtt(2), rd, 3 * L2, 3),
        // rtt_homo: RTT(level).
        (R::rtt(3), rd, 0, 3),
        (R::rtt(3), rd, L2, 3),
        (R::rtt(3), rd, blk, 3),
        (R::rtt(3), rd, blk2, 3),
        (R::rtt(3), rd, UNPROT, 3),
        (R::rtt(2), rd, 0, 2),
    ];
    for (i, (expect, rd, ipa, level)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(h.rmm.rtt_fold(rd, ipa, level).ret, expect, "case {i}");
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn read_entry_every_state() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.init_ripas(&realm, 0, 4 * G);
    let ram = h.data(&realm, G, &[0; 4096], true);
    let empty = h.delegated();
    assert_eq!(h.rmm.data_create_unknown(realm.rd, empty, 8 * G), Ok(()));
    assert_eq!(h.rmm.data_destroy(realm.rd, 2 * G).ret, R::rtt(3));
    h.data(&realm, 3 * G, &[0; 4096], true);
    assert_eq!(h.rmm.data_destroy(realm.rd, 3 * G).ret, R::SUCCESS);
    h.rtts_to(&realm, UNPROT, 3);
    let d = desc(0x7000, 0b101, 0b10);
    assert_eq!(
        h.rmm.rtt_map_unprotected(realm.rd, UNPROT + G, 3, d),
        Ok(())
    );
    let l2 = h.entry(&realm, 0, 2).2;
    let before = h.snapshot();
    let cases = [
        ((0, 3), (3, 0, 0, Ripas::Ram as u64)),
        ((G, 3), (3, 1, ram, Ripas::Ram as u64)),
        ((3 * G, 3), (3, 0, 0, Ripas::Destroyed as u64)),
        ((8 * G, 3), (3, 1, empty, Ripas::Empty as u64)),
        ((9 * G, 3), (3, 0, 0, Ripas::Empty as u64)),
        ((UNPROT, 3), (3, 0, 0, 0)),
        ((UNPROT + G, 3), (3, 1, d, 0)),
        ((0, 2), (2, rtt_state::TABLE, l2, 0)),
        ((0, 1), (1, rtt_state::TABLE, h.entry(&realm, 0, 1).2, 0)),
        // Walk stops early: walk_level < level.
        ((L2 * 3, 3), (2, 0, 0, 0)),
        ((1 << 30, 3), (1, 0, 0, 0)),
        ((UNPROT + (1 << 30), 2), (1, 0, 0, 0)),
    ];
    for ((ipa, level), want) in cases {
        let r = h.smc(fid::RTT_READ_ENTRY, &[realm.rd, ipa, level]);
        assert_eq!(r[0], 0);
        assert_eq!((r[1] as i64, r[2], r[3], r[4]), want, "{ipa:#x} L{level}");
    }
    let rd = realm.rd;
    for (rd, ipa, level) in [
        (rd + 8, 0, 3),
        (DRAM_BASE + DRAM_SIZE, 0, 3),
        (realm.rtt_base, 0, 3),
        (ram, 0, 3),
        (rd, 0, 0),
        (rd, 0, 4),
        (rd, 0, u64::MAX),
        (rd, 0x800, 3),
        (rd, G, 2),
        (rd, L2, 1),
        (rd, 1 << 40, 3),
        (rd, !0xfff, 3),
    ] {
        let r = h.smc(fid::RTT_READ_ENTRY, &[rd, ipa, level]);
        assert_eq!(r[0], R::INPUT.to_x0(), "{rd:#x} {ipa:#x} L{level}");
        assert!(r[1..].iter().all(|&x| x == 0));
    }
    assert!(before == h.snapshot());
}

#[test]
fn map_unprotected_success_and_descriptor_validation() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, UNPROT, 3);
    // Every MemAttr except the reserved 0b100, every S2AP.
    let mut i = 0;
    for memattr in [0, 1, 2, 3, 5, 6, 7] {
        for s2ap in 0..4 {
            let d = desc(0x1234_5000, memattr, s2ap);
            let ipa = UNPROT + i * G;
            assert_eq!(
                h.smc(fid::RTT_MAP_UNPROTECTED, &[realm.rd, ipa, 3, d])[0],
                0
            );
            assert_eq!(h.entry(&realm, ipa, 3), (3, 1, d, 0));
            assert_eq!(h.raw_entry(&realm, ipa, 3).hipas, Hipas::AssignedNs);
            i += 1;
        }
    }
    // Level 2 and level 1 blocks.
    assert_eq!(
        h.rmm
            .rtt_map_unprotected(realm.rd, UNPROT + L2, 2, desc(L2, 0, 0)),
        Ok(())
    );
    let l1 = UNPROT + (2 << 30);
    assert_eq!(
        h.rmm
            .rtt_map_unprotected(realm.rd, l1, 1, desc(1 << 30, 0, 3)),
        Ok(())
    );
    assert_eq!(h.entry(&realm, l1, 1), (1, 1, desc(1 << 30, 0, 3), 0));
    // Invalid descriptors: any bit outside addr/MemAttr[2:0]/S2AP, or MemAttr 0b100.
    let base = desc(0x5000, 0b110, 0);
    for bad in [
        base | 1,
        base | 2,
        base | 1 << 5,
        base | 1 << 8,
        base | 1 << 10,
        base | 1 << 11,
        base | 1 << 48,
        base | 1 << 54,
        base | 1 << 63,
        desc(0x5000, 0b100, 0),
    ] {
        h.fails(R::INPUT, |h| {
            h.rmm
                .rtt_map_unprotected(realm.rd, UNPROT + 0x100 * G, 3, bad)
        });
        // attr_valid beats rd_align.
        h.fails(R::INPUT, |h| {
            h.rmm.rtt_map_unprotected(realm.rd + 8, UNPROT, 3, bad)
        });
    }
}

#[test]
fn map_unprotected_failures_in_order() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, UNPROT, 3);
    let rd = realm.rd;
    let d = desc(0x5000, 0, 0);
    assert_eq!(h.rmm.rtt_map_unprotected(rd, UNPROT, 3, d), Ok(()));
    let mut p = h.default_params();
    p.s2sz = 32;
    p.rtt_level_start = 2;
    p.rtt_num_start = 4;
    p.vmid = 9;
    let r2 = h.create_realm_with(p);
    let cases = [
        (R::INPUT, rd + 8, UNPROT + G, 3, d),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, UNPROT + G, 3, d),
        (R::INPUT, realm.rtt_base, UNPROT + G, 3, d),
        // level_bound (beats walk and rtte_state).
        (R::INPUT, rd, UNPROT, 0, 0),
        (R::INPUT, rd, UNPROT, 4, d),
        (R::INPUT, rd, UNPROT, u64::MAX, d),
        (R::INPUT, r2.rd, 3 << 30, 1, 0),
        // addr_align to level.
        (R::INPUT, rd, UNPROT + L2, 2, desc(G, 0, 0)),
        (R::INPUT, rd, UNPROT + (1 << 30), 2, desc(G, 0, 0)),
        // ipa_align and ipa_bound (protected or beyond 2^w), beating the walk.
        (R::INPUT, rd, UNPROT + G / 2, 3, d),
        (R::INPUT, rd, UNPROT + G, 2, 0),
        (R::INPUT, rd, 0, 3, d),
        (R::INPUT, rd, G, 3, d),
        (R::INPUT, rd, UNPROT - G, 3, d),
        (R::INPUT, rd, 1 << 40, 3, d),
        (R::INPUT, rd, 1 << 30, 3, d),
        // rtt_walk.
        (R::rtt(1), rd, UNPROT + (1 << 30), 3, d),
        (R::rtt(2), rd, UNPROT + L2, 3, d),
        // rtte_state: already mapped; or a TABLE in the way.
        (R::rtt(3), rd, UNPROT, 3, d),
        (R::rtt(2), rd, UNPROT, 2, 0),
    ];
    for (i, (expect, rd, ipa, level, desc)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(
            h.rmm.rtt_map_unprotected(rd, ipa, level, desc),
            Err(expect),
            "case {i}"
        );
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn unmap_unprotected_success_failures_and_top() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let rd = realm.rd;
    h.rtts_to(&realm, UNPROT, 3);
    for i in [0, 1, 7] {
        assert_eq!(
            h.rmm
                .rtt_map_unprotected(rd, UNPROT + i * G, 3, desc(i * G, 0, 0)),
            Ok(())
        );
    }
    let blk = UNPROT + 4 * L2;
    h.rtts_to(&realm, blk, 2);
    assert_eq!(h.rmm.rtt_map_unprotected(rd, blk, 2, desc(0, 0, 0)), Ok(()));
    let r = h.smc(fid::RTT_UNMAP_UNPROTECTED, &[rd, UNPROT + G, 3]);
    assert_eq!((r[0], r[1]), (0, UNPROT + 7 * G));
    assert_eq!(
        h.raw_entry(&realm, UNPROT + G, 3).hipas,
        Hipas::UnassignedNs
    );
    let r = h.smc(fid::RTT_UNMAP_UNPROTECTED, &[rd, UNPROT + 7 * G, 3]);
    assert_eq!((r[0], r[1]), (0, UNPROT + L2));
    let cases = [
        (R::INPUT, rd + 8, UNPROT, 3, 0),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, UNPROT, 3, 0),
        (R::INPUT, realm.rtt_base, UNPROT, 3, 0),
        (R::INPUT, rd, UNPROT, 0, 0),
        (R::INPUT, rd, UNPROT, 4, 0),
        (R::INPUT, rd, UNPROT + 8, 3, 0),
        (R::INPUT, rd, UNPROT + G, 2, 0),
        (R::INPUT, rd, 0, 3, 0),
        (R::INPUT, rd, 1 << 40, 3, 0),
        // ipa_bound beats the walk.
        (R::INPUT, rd, 1 << 30, 3, 0),
        // not mapped: top > ipa.
        (R::rtt(3), rd, UNPROT + 2 * G, 3, UNPROT + L2),
        (R::rtt(2), rd, UNPROT + L2, 3, blk),
        (R::rtt(1), rd, UNPROT + (1 << 30), 3, 1 << 40),
        // mapped as a bigger block: top == ipa.
        (R::rtt(2), rd, blk, 3, blk),
        (R::rtt(2), rd, blk + 3 * G, 3, blk + 3 * G),
    ];
    for (i, (expect, rd, ipa, level, top)) in cases.into_iter().enumerate() {
        let r = h.smc_fails(expect, fid::RTT_UNMAP_UNPROTECTED, &[rd, ipa, level]);
        assert_eq!(r[1], top, "case {i} top");
    }
}
