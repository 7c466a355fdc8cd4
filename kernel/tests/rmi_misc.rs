//! RMI_VERSION, RMI_FEATURES, RMI_REC_AUX_COUNT and the raw dispatcher.

mod support;

use atoll_kernel::RmmConfig;
use ipc_schema::rmi::{feature0, fid, RmiReturn, VERSION_1_0};
use ipc_schema::smccc::SMC_UNKNOWN;
use support::*;

#[test]
fn version_exact_match_succeeds_with_lower_and_higher_1_0() {
    let mut h = Host::new();
    let r = h.smc(fid::VERSION, &[VERSION_1_0]);
    assert_eq!(r[0], 0);
    assert_eq!(r[1], VERSION_1_0);
    assert_eq!(r[2], VERSION_1_0);
    assert!(r[3..].iter().all(|&x| x == 0));
}

#[test]
fn version_mismatch_reports_input_and_supported_revision() {
    let mut h = Host::new();
    // Higher than supported (1.1, 2.0): lower = highest supported below.
    // Lower than supported (0.9): lower = higher.
    for req in [0x1_0001, 0x2_0000, 0x0_0009, 0] {
        let r = h.smc(fid::VERSION, &[req]);
        assert_eq!(r[0], RmiReturn::INPUT.to_x0(), "req {req:#x}");
        assert_eq!((r[1], r[2]), (VERSION_1_0, VERSION_1_0), "req {req:#x}");
    }
}

#[test]
fn features_register_0_reflects_config() {
    let mut h = Host::new();
    let c = *h.rmm.config();
    let v = h.smc(fid::FEATURES, &[0]);
    assert_eq!(v[0], 0);
    let f = v[1];
    assert_eq!(f & 0xff, u64::from(c.max_ipa_width));
    assert_eq!(f & feature0::LPA2, 0);
    assert_eq!(f & feature0::SVE_EN, 0);
    assert_eq!(f & feature0::PMU_EN, 0);
    assert_eq!(
        (f >> feature0::NUM_BPS_SHIFT) & 0x3f,
        u64::from(c.num_bps - 1)
    );
    assert_eq!(
        (f >> feature0::NUM_WPS_SHIFT) & 0x3f,
        u64::from(c.num_wps - 1)
    );
    assert_ne!(f & feature0::HASH_SHA_256, 0);
    assert_ne!(f & feature0::HASH_SHA_512, 0);
    assert_eq!(
        (f >> feature0::GICV3_NUM_LRS_SHIFT) & 0xf,
        u64::from(c.gic_num_lrs - 1)
    );
    assert_eq!(
        (f >> feature0::MAX_RECS_ORDER_SHIFT) & 0xf,
        u64::from(c.max_recs_order)
    );
    assert_eq!(f >> 42, 0, "bits 63:42 are reserved");

    let mut h2 = Host::with_config(RmmConfig {
        max_ipa_width: 44,
        max_recs_order: 2,
        ..RmmConfig::default()
    });
    let f2 = h2.smc(fid::FEATURES, &[0])[1];
    assert_eq!(f2 & 0xff, 44);
    assert_eq!((f2 >> feature0::MAX_RECS_ORDER_SHIFT) & 0xf, 2);
}

#[test]
fn features_other_indices_are_zero() {
    let mut h = Host::new();
    for index in [1, 2, 0xff, u64::MAX] {
        let r = h.smc(fid::FEATURES, &[index]);
        assert_eq!(r[0], 0);
        assert_eq!(r[1], 0, "index {index}");
    }
}

#[test]
fn rec_aux_count_success() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let before = h.snapshot();
    let r = h.smc(fid::REC_AUX_COUNT, &[realm.rd]);
    assert_eq!(r[0], 0);
    assert_eq!(r[1], 2);
    assert!(before == h.snapshot());

    let mut h = Host::with_config(RmmConfig {
        rec_aux_count: 5,
        ..RmmConfig::default()
    });
    let realm = h.create_realm();
    assert_eq!(h.smc(fid::REC_AUX_COUNT, &[realm.rd])[1], 5);
}

#[test]
fn rec_aux_count_failures() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let delegated = h.delegated();
    let ns = h.alloc();
    for (what, rd) in [
        ("rd_align", realm.rd + 8),
        ("rd_bound below DRAM", 0x1000),
        ("rd_bound above DRAM", DRAM_BASE + DRAM_SIZE),
        ("rd_state delegated", delegated),
        ("rd_state undelegated", ns),
        ("rd_state rtt", realm.rtt_base),
    ] {
        let r = h.smc_fails(RmiReturn::INPUT, fid::REC_AUX_COUNT, &[rd]);
        assert_eq!(r[1], 0, "{what}: aux count must not leak on failure");
    }
}

#[test]
fn unknown_fids_give_smc_unknown() {
    let mut h = Host::new();
    for f in [
        0xC400_0156,
        0xC400_0160,
        0xC400_0163,
        0xC400_016A,
        0xC400_018F,
        0xC400_014F,
        0x8400_0150, // SMC32 version of RMI_VERSION
        0xC400_0190, // RSI_VERSION is not a host call
        0,
        u64::MAX,
    ] {
        let before = h.snapshot();
        let r = h.smc(f, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(r[0], SMC_UNKNOWN, "fid {f:#x}");
        assert!(r[1..].iter().all(|&x| x == 0), "fid {f:#x}");
        assert!(before == h.snapshot());
    }
}

#[test]
fn undeclared_inputs_are_ignored_and_outputs_zero() {
    let mut h = Host::new();
    // Extra garbage arguments beyond the declared ones do not matter.
    let r = h.smc(fid::VERSION, &[VERSION_1_0, 7, 7, 7, 7, 7, 7]);
    assert_eq!(r[0], 0);
    assert!(r[3..].iter().all(|&x| x == 0));
    let pa = h.alloc();
    let r = h.smc(fid::GRANULE_DELEGATE, &[pa, 9, 9, 9]);
    assert_eq!(r[0], 0);
    assert!(r[1..].iter().all(|&x| x == 0));

    let realm = h.create_realm();
    // READ_ENTRY defines four outputs, x5.. stay zero.
    let r = h.smc(fid::RTT_READ_ENTRY, &[realm.rd, 0, 1, 0xdead, 0xbeef]);
    assert_eq!(r[0], 0);
    assert_eq!(r[1], 1);
    assert!(r[5..].iter().all(|&x| x == 0));
    // FEATURES defines one output.
    let r = h.smc(fid::FEATURES, &[0, 1, 2, 3]);
    assert!(r[2..].iter().all(|&x| x == 0));
    // DATA_DESTROY on failure: only top may be non-zero.
    let r = h.smc(fid::DATA_DESTROY, &[realm.rd, 0, 5, 6]);
    assert_eq!(RmiReturn::from_x0(r[0]), Some(RmiReturn::rtt(1)));
    assert_eq!(r[1], 0);
    assert!(r[3..].iter().all(|&x| x == 0));
    // Commands without outputs return only x0.
    let r = h.smc(fid::REALM_ACTIVATE, &[realm.rd, 1, 2]);
    assert_eq!(r[0], 0);
    assert!(r[1..].iter().all(|&x| x == 0));
}

#[test]
fn every_rmi_command_answers_garbage_without_panicking() {
    let mut h = Host::new();
    let realm = h.create_realm();
    let _ = realm;
    for &(f, name) in ipc_schema::rmi::fid::ALL {
        if f == fid::REC_ENTER {
            continue;
        }
        for args in [
            [u64::MAX; 5],
            [1; 5],
            [0; 5],
            [DRAM_BASE, DRAM_BASE + G, 1 << 39, u64::MAX, 3],
        ] {
            let r = h.smc(f, &args);
            assert_ne!(r[0], SMC_UNKNOWN, "{name}");
            assert!(
                RmiReturn::from_x0(r[0]).is_some(),
                "{name}: bad status {:#x}",
                r[0]
            );
        }
    }
}
