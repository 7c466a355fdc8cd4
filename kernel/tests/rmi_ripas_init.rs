//! RMI_RTT_INIT_RIPAS and RMI_RTT_SET_RIPAS.

mod support;

use ipc_schema::rmi::{exit_reason, fid, Ripas, RmiReturn};
use ipc_schema::rsi;
use ipc_schema::smccc::smc_regs;
use support::*;

const L2: u64 = 2 << 20;
const UNPROT: u64 = 1 << 39;
use RmiReturn as R;

fn ripas(h: &Host, realm: &RealmRef, ipa: u64) -> u64 {
    h.entry(realm, ipa, 3).3
}

#[test]
fn init_ripas_level3_and_level2_entries() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    let rim0 = h.rim(&realm);
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, 0, 4 * G]);
    assert_eq!((r[0], r[1]), (0, 4 * G));
    for i in 0..4 {
        assert_eq!(ripas(&h, &realm, i * G), Ripas::Ram as u64);
    }
    assert_eq!(ripas(&h, &realm, 4 * G), Ripas::Empty as u64);
    assert_ne!(h.rim(&realm), rim0);
    // Beyond the level-3 RTT: stops at its end.
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, L2 - G, 3 * L2]);
    assert_eq!((r[0], r[1]), (0, L2));
    // Level-2 entries, stopping before a TABLE entry.
    h.rtts_to(&realm, 3 * L2, 3);
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, L2, 8 * L2]);
    assert_eq!((r[0], r[1]), (0, 3 * L2));
    assert_eq!(h.entry(&realm, L2, 3), (2, 0, 0, Ripas::Ram as u64));
    assert_eq!(h.entry(&realm, 2 * L2, 3), (2, 0, 0, Ripas::Ram as u64));
    // Level-2 entries that fit only partly below top are not processed.
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, 4 * L2, 5 * L2 + G]);
    assert_eq!((r[0], r[1]), (0, 5 * L2));
    // RAM entries may be initialised again.
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, 0, G]);
    assert_eq!((r[0], r[1]), (0, G));
    // Stops at an ASSIGNED entry.
    h.data(&realm, 0x10_000, &[0; 4096], false);
    let r = h.smc(fid::RTT_INIT_RIPAS, &[realm.rd, 0xC000, 0x20_000]);
    assert_eq!((r[0], r[1]), (0, 0x10_000));
}

#[test]
fn init_ripas_measures_each_entry() {
    let build = |calls: &[(u64, u64)]| {
        let mut h = Host::new();
        let realm = h.create_realm();
        h.rtts_to(&realm, 0, 3);
        for &(b, t) in calls {
            assert_eq!(h.rmm.rtt_init_ripas(realm.rd, b, t).ret, R::SUCCESS);
        }
        h.rim(&realm)
    };
    let one = build(&[(0, 2 * G)]);
    assert_eq!(one, build(&[(0, G), (G, 2 * G)]), "per entry, not per call");
    assert_ne!(one, build(&[(0, G)]));
    assert_ne!(one, build(&[(G, 3 * G)]), "IPAs are measured");
}

#[test]
fn init_ripas_failures_in_order() {
    let mut h = Host::new();
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.data(&realm, 0x5000, &[0; 4096], false);
    let mut q = h.default_params();
    q.vmid = 2;
    let active = h.create_realm_with(q);
    h.rtts_to(&active, 0, 3);
    assert_eq!(h.rmm.realm_activate(active.rd), Ok(()));
    let (rd, ard) = (realm.rd, active.rd);
    let cases = [
        // rd_*: beat realm_state.
        (R::INPUT, rd + 8, 0, G),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, 0, G),
        (R::INPUT, realm.rtt_base, 0, G),
        (R::INPUT, ard + 8, 0, G),
        // size_valid: beats realm_state.
        (R::INPUT, rd, G, G),
        (R::INPUT, rd, 2 * G, G),
        (R::INPUT, ard, G, 0),
        // top_bound: beats realm_state.
        (R::INPUT, rd, 0, UNPROT + G),
        (R::INPUT, ard, 0, 1 << 40),
        (R::INPUT, ard, UNPROT - G, u64::MAX),
        // realm_state: beats base_align, rtte_state, top_gran_align.
        (R::REALM, ard, 0, G),
        (R::REALM, ard, 0x800, G + 1),
        // base_align: base not aligned to the walk level (2 here, 3 there).
        (R::rtt(2), rd, L2 + G, 2 * L2),
        (R::rtt(3), rd, 0x800, G),
        (R::rtt(1), rd, (1 << 30) + L2, 2 << 30),
        // base_align and rtte_state beat top_gran_align.
        (R::rtt(2), rd, L2 + G, 2 * L2 + 1),
        (R::rtt(3), rd, 0x5000, 0x6001),
        // rtte_state: ASSIGNED entry at base.
        (R::rtt(3), rd, 0x5000, 0x6000),
        // top_gran_align: beats no_progress.
        (R::INPUT, rd, 0, 0x800),
        (R::INPUT, rd, L2, L2 + 1),
        (R::INPUT, rd, 0, 1),
        // no_progress: top below the end of the first (level-2) entry.
        (R::rtt(2), rd, L2, L2 + G),
        (R::rtt(1), rd, 1 << 30, (1 << 30) + L2),
    ];
    for (i, (expect, rd, base, top)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(h.rmm.rtt_init_ripas(rd, base, top).ret, expect, "case {i}");
        assert!(before == h.snapshot(), "case {i}");
        let r = h.smc(fid::RTT_INIT_RIPAS, &[rd, base, top]);
        assert_eq!(r[1], 0, "case {i}: no out_top on failure");
    }
}

/// An active realm with RAM [0, 2 MiB) (level 3), RAM level-2 entry at
/// [2, 4) MiB, one REC whose guest asks for `request` and checks the
/// response it gets back is `(new_base, response)`.
fn ripas_request(
    h: &mut Host,
    request: (u64, u64, u64, u64),
    expect_back: (u64, u64),
) -> (RealmRef, u64, u64) {
    let realm = h.create_realm();
    h.rtts_to(&realm, 0, 3);
    h.init_ripas(&realm, 0, 2 * L2);
    h.data(&realm, 0, &[0; 4096], true);
    h.data(&realm, 0x8000, &[0; 4096], true);
    // A DESTROYED page at 0x9000.
    h.data(&realm, 0x9000, &[0; 4096], true);
    assert_eq!(h.rmm.data_destroy(realm.rd, 0x9000).ret, R::SUCCESS);
    let rec = h.create_rec(&realm, 0, 0x1000, true);
    assert_eq!(h.rmm.realm_activate(realm.rd), Ok(()));
    let (b, t, v, f) = request;
    h.guest(rec, move |cpu| {
        let out = cpu.smc(smc_regs(rsi::fid::IPA_STATE_SET, &[b, t, v, f]));
        assert_eq!(out[0], rsi::status::SUCCESS);
        assert_eq!((out[1], out[2]), expect_back);
    });
    let run = h.alloc();
    let (r, exit) = h.enter(rec, run);
    assert_eq!(r, Ok(()));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    assert_eq!((exit.ripas_base, exit.ripas_top), (b, t));
    (realm, rec, run)
}

#[test]
fn set_ripas_success_in_steps() {
    let mut h = Host::new();
    let (realm, rec, run) = ripas_request(&mut h, (0x2000, 0x8000, 0, 0), (0x8000, 0));
    let rim = h.rim(&realm);
    let r = h.smc(fid::RTT_SET_RIPAS, &[realm.rd, rec, 0x2000, 0x4000]);
    assert_eq!((r[0], r[1]), (0, 0x4000));
    assert_eq!(h.rmm.rec(rec).unwrap().ripas.addr, 0x4000);
    for ipa in [0x2000, 0x3000] {
        assert_eq!(ripas(&h, &realm, ipa), Ripas::Empty as u64);
    }
    assert_eq!(ripas(&h, &realm, 0x4000), Ripas::Ram as u64);
    // Restarting from the old base is refused.
    h.fails(R::INPUT, |h| {
        h.rmm.rtt_set_ripas(realm.rd, rec, 0x2000, 0x8000)
    });
    let r = h.smc(fid::RTT_SET_RIPAS, &[realm.rd, rec, 0x4000, 0x8000]);
    assert_eq!((r[0], r[1]), (0, 0x8000));
    assert_eq!(ripas(&h, &realm, 0x7000), Ripas::Empty as u64);
    assert_eq!(ripas(&h, &realm, 0x8000), Ripas::Ram as u64);
    assert_eq!(h.rim(&realm), rim);
    let (r, _) = h.enter(rec, run);
    assert_eq!(r, Ok(()));
    h.assert_guests_ok();
    // After another exit the request is gone: every call fails.
    h.fails(R::INPUT, |h| {
        h.rmm.rtt_set_ripas(realm.rd, rec, 0x8000, 0x9000)
    });
    h.fails(R::INPUT, |h| h.rmm.rtt_set_ripas(realm.rd, rec, 0, G));
}

#[test]
fn set_ripas_failures_in_order() {
    let mut h = Host::new();
    // Request RAM->EMPTY over [2 MiB + 4K, 4 MiB): the entry is a level-2
    // block of RAM, so base is misaligned and the RIPAS differs.
    let (realm, rec, _run) = ripas_request(&mut h, (L2 + G, 2 * L2, 0, 0), (L2 + G, 0));
    let other = {
        let mut q = h.default_params();
        q.vmid = 3;
        let o = h.create_realm_with(q);
        h.create_rec(&o, 0, 0, false)
    };
    let rd = realm.rd;
    let cases = [
        // rd_*, beating rec owner.
        (R::INPUT, rd + 8, other, L2 + G, 2 * L2),
        (R::INPUT, DRAM_BASE + DRAM_SIZE, rec, L2 + G, 2 * L2),
        (R::INPUT, rec, rec, L2 + G, 2 * L2),
        // rec_*.
        (R::INPUT, rd, rec + 8, L2 + G, 2 * L2),
        (R::INPUT, rd, DRAM_BASE + DRAM_SIZE, L2 + G, 2 * L2),
        (R::INPUT, rd, rd, L2 + G, 2 * L2),
        (R::INPUT, rd, realm.rtt_base, L2 + G, 2 * L2),
        // rec_owner: beats size_valid and base_bound.
        (R::REC, rd, other, L2 + G, 2 * L2),
        (R::REC, rd, other, 5, 1),
        // size_valid.
        (R::INPUT, rd, rec, L2 + G, L2 + G),
        (R::INPUT, rd, rec, L2 + G, L2),
        // base_bound: beats base_align (base misaligned too).
        (R::INPUT, rd, rec, L2 + 2 * G, 2 * L2),
        (R::INPUT, rd, rec, L2, 2 * L2),
        // top_bound.
        (R::INPUT, rd, rec, L2 + G, 2 * L2 + G),
        // base_align: beats top_gran_align.
        (R::rtt(2), rd, rec, L2 + G, 2 * L2),
        (R::rtt(2), rd, rec, L2 + G, L2 + 2 * G + 1),
    ];
    for (i, (expect, rd, rec, base, top)) in cases.into_iter().enumerate() {
        let before = h.snapshot();
        assert_eq!(
            h.rmm.rtt_set_ripas(rd, rec, base, top).ret,
            expect,
            "case {i}"
        );
        assert!(before == h.snapshot(), "case {i}");
    }
}

#[test]
fn set_ripas_no_progress_and_destroyed() {
    let mut h = Host::new();
    // Request [2 MiB, 2 MiB + 8K) -> EMPTY: base aligned to the level-2
    // entry, but the range does not cover it.
    let (realm, rec, _run) = ripas_request(&mut h, (L2, L2 + 2 * G, 0, 0), (L2, 0));
    // top_gran_align beats no_progress.
    h.fails(R::INPUT, |h| h.rmm.rtt_set_ripas(realm.rd, rec, L2, L2 + 1));
    h.fails(R::rtt(2), |h| {
        h.rmm.rtt_set_ripas(realm.rd, rec, L2, L2 + 2 * G)
    });

    // DESTROYED page without CHANGE_DESTROYED: the scan stops there.
    let mut h = Host::new();
    let (realm, rec, _run) = ripas_request(&mut h, (0x9000, 0xB000, 1, 0), (0x9000, 0));
    h.fails(R::rtt(3), |h| {
        h.rmm.rtt_set_ripas(realm.rd, rec, 0x9000, 0xB000)
    });
    let mut h = Host::new();
    let (realm, rec, _run) = ripas_request(&mut h, (0x8000, 0xB000, 1, 0), (0x9000, 0));
    let r = h.smc(fid::RTT_SET_RIPAS, &[realm.rd, rec, 0x8000, 0xB000]);
    assert_eq!(
        (r[0], r[1]),
        (0, 0x9000),
        "same RIPAS is skipped, DESTROYED stops"
    );
    // With CHANGE_DESTROYED it changes.
    let mut h = Host::new();
    let flags = rsi::ipa_state_flags::CHANGE_DESTROYED;
    let (realm, rec, _run) = ripas_request(&mut h, (0x9000, 0xB000, 1, flags), (0xB000, 0));
    let r = h.smc(fid::RTT_SET_RIPAS, &[realm.rd, rec, 0x9000, 0xB000]);
    assert_eq!((r[0], r[1]), (0, 0xB000));
    assert_eq!(ripas(&h, &realm, 0x9000), Ripas::Ram as u64);
}
