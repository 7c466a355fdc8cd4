//! RSI from a running realm (§4), the RIPAS change protocol with every
//! `RMI_RTT_SET_RIPAS` failure condition (§3.23, §6.1), host calls and the
//! rest of the realm's SMC surface.

mod support;

use std::sync::mpsc::{channel, Receiver, Sender};

use atoll_kernel::arch::host::{RealmCpu, Sea};
use ipc_schema::rmi::{
    self, exit_reason, rec_enter_flags, rtt_state, RmiRealmParams, RmiRecEnter, RmiRecExit,
    RmiReturn,
};
use ipc_schema::rsi::{fid, ipa_state_flags, ripas_response, status};
use ipc_schema::smccc::{psci, smc_regs, SMCCC_VERSION, SMC_UNKNOWN, SVE_HINT};
use sha2::{Digest, Sha256, Sha512};
use support::*;
use zerocopy::FromZeros;

const EMPTY: u64 = 0;
const RAM: u64 = 1;
const DESTROYED: u64 = 2;
/// First unprotected IPA of the default 40-bit realm.
const NS_IPA: u64 = 1 << 39;
const EC_DABT_LOW: u64 = 0x24;

type Tx = Sender<[u64; 18]>;

fn rsi(cpu: &mut RealmCpu, f: u64, args: &[u64]) -> [u64; 18] {
    cpu.smc(smc_regs(f, args))
}

/// Like `active_realm`, with explicit realm params; the guest reports SMC
/// results over a channel.
fn realm_with<F>(
    host: &mut Host,
    p: Option<RmiRealmParams>,
    f: F,
) -> (RealmRef, u64, u64, Receiver<[u64; 18]>)
where
    F: FnOnce(&mut RealmCpu, &Tx) + Send + 'static,
{
    let (tx, rx) = channel();
    let p = p.unwrap_or_else(|| host.default_params());
    let realm = host.create_realm_with(p);
    host.rtts_to(&realm, 0, 3);
    host.init_ripas(&realm, 0, 2 << 20);
    for i in 0..16 {
        host.data(&realm, i * G, &[i as u8; 4096], true);
    }
    let rec = host.create_rec(&realm, 0, 0x1000, true);
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    host.guest(rec, move |cpu| f(cpu, &tx));
    let run = host.alloc();
    (realm, rec, run, rx)
}

fn ok_exit(r: (Result<(), RmiReturn>, RmiRecExit)) -> RmiRecExit {
    assert_eq!(r.0, Ok(()));
    r.1
}

/// Enters and expects the guest to have finished (its vCPU powers off).
fn run_to_end(host: &mut Host, rec: u64, run: u64) {
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[0], psci::CPU_OFF);
    host.assert_guests_ok();
}

fn response(flag: u64) -> RmiRecEnter {
    let mut e = RmiRecEnter::new_zeroed();
    e.flags = flag;
    e
}

#[test]
fn version_and_features() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        for req in [0x1_0000, 0x1_0001, 0x2_0000, 0x0_0001, 0] {
            tx.send(rsi(cpu, fid::VERSION, &[req])).unwrap();
        }
        for index in [0, 1, u64::MAX] {
            tx.send(rsi(cpu, fid::FEATURES, &[index])).unwrap();
        }
    });
    run_to_end(&mut host, rec, run);
    let v = rx.recv().unwrap();
    assert_eq!(v[..3], [status::SUCCESS, 0x1_0000, 0x1_0000]);
    for _ in 0..4 {
        let v = rx.recv().unwrap();
        assert_eq!(v[..3], [status::ERROR_INPUT, 0x1_0000, 0x1_0000]);
    }
    for _ in 0..3 {
        let v = rx.recv().unwrap();
        assert_eq!(v[..2], [status::SUCCESS, 0]);
    }
}

fn read_measurement(cpu: &mut RealmCpu, index: u64) -> (u64, [u8; 64]) {
    let out = rsi(cpu, fid::MEASUREMENT_READ, &[index]);
    let mut m = [0u8; 64];
    for (i, chunk) in m.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&out[1 + i].to_le_bytes());
    }
    (out[0], m)
}

fn bytes_of(out: &[u64; 18]) -> [u8; 64] {
    let mut m = [0u8; 64];
    for (i, chunk) in m.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&out[1 + i].to_le_bytes());
    }
    m
}

#[test]
fn measurement_read() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        for index in [0, 1, 2, 3, 4, 5, 0x100, u64::MAX] {
            tx.send(rsi(cpu, fid::MEASUREMENT_READ, &[index])).unwrap();
        }
    });
    run_to_end(&mut host, rec, run);
    let rim = rx.recv().unwrap();
    assert_eq!(rim[0], status::SUCCESS);
    assert_eq!(bytes_of(&rim), host.rim(&realm));
    assert_ne!(bytes_of(&rim), [0; 64]);
    assert_eq!(bytes_of(&rim)[32..], [0; 32], "SHA-256 RIM is zero-padded");
    for _ in 1..=4 {
        let rem = rx.recv().unwrap();
        assert_eq!(rem[0], status::SUCCESS);
        assert_eq!(bytes_of(&rem), [0; 64], "REMs start at zero");
    }
    for _ in 0..3 {
        assert_eq!(rx.recv().unwrap()[0], status::ERROR_INPUT);
    }
}

/// REM = H(REM[0..hash_len] || data), zero-padded to 64 bytes.
fn rem_extend(sha512: bool, old: &[u8; 64], data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    if sha512 {
        let mut h = Sha512::new();
        h.update(&old[..64]);
        h.update(data);
        out.copy_from_slice(&h.finalize());
    } else {
        let mut h = Sha256::new();
        h.update(&old[..32]);
        h.update(data);
        out[..32].copy_from_slice(&h.finalize());
    }
    out
}

fn measurement_extend(sha512: bool) {
    let mut host = Host::new();
    let mut p = host.default_params();
    p.hash_algo = if sha512 {
        rmi::hash_algo::SHA_512
    } else {
        rmi::hash_algo::SHA_256
    };
    let data: Vec<u64> = (0..8).map(|i| 0x0102_0304_0506_0708 * (i + 1)).collect();
    let d = data.clone();
    let (realm, rec, run, rx) = realm_with(&mut host, Some(p), move |cpu, tx| {
        let rim_before = read_measurement(cpu, 0).1;
        let ext = |cpu: &mut RealmCpu, index: u64, size: u64| {
            let mut args = vec![index, size];
            args.extend_from_slice(&d);
            rsi(cpu, fid::MEASUREMENT_EXTEND, &args)[0]
        };
        // Failures, in order: index (0, 5, huge), then size.
        let bad = [
            ext(cpu, 0, 8),
            ext(cpu, 5, 8),
            ext(cpu, u64::MAX, 8),
            ext(cpu, 1, 65),
            ext(cpu, 2, u64::MAX),
            ext(cpu, 0, 65),
        ];
        let mut r = [0; 18];
        r[..6].copy_from_slice(&bad);
        tx.send(r).unwrap();
        // Nothing changed.
        for i in 1..=4 {
            tx.send(rsi(cpu, fid::MEASUREMENT_READ, &[i])).unwrap();
        }
        // Successes: REM1 with 64, 0 and 3 bytes, REM4 with 33 bytes.
        for (index, size) in [(1, 64), (1, 0), (1, 3), (4, 33)] {
            let mut r = [0; 18];
            r[0] = ext(cpu, index, size);
            tx.send(r).unwrap();
            tx.send(rsi(cpu, fid::MEASUREMENT_READ, &[index])).unwrap();
        }
        assert_eq!(read_measurement(cpu, 0).1, rim_before, "RIM unchanged");
        assert_eq!(read_measurement(cpu, 2).1, [0; 64]);
    });
    run_to_end(&mut host, rec, run);
    let bad = rx.recv().unwrap();
    assert_eq!(bad[..6], [status::ERROR_INPUT; 6]);
    for _ in 1..=4 {
        assert_eq!(bytes_of(&rx.recv().unwrap()), [0; 64]);
    }
    let mut bytes = Vec::new();
    for v in &data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    let mut rem1 = [0u8; 64];
    let mut rem4 = [0u8; 64];
    for (index, size) in [(1, 64usize), (1, 0), (1, 3), (4, 33)] {
        assert_eq!(rx.recv().unwrap()[0], status::SUCCESS);
        let slot = if index == 1 { &mut rem1 } else { &mut rem4 };
        *slot = rem_extend(sha512, slot, &bytes[..size]);
        let got = rx.recv().unwrap();
        assert_eq!(got[0], status::SUCCESS);
        assert_eq!(bytes_of(&got), *slot, "REM{index} after {size} bytes");
    }
    let _ = realm;
}

#[test]
fn measurement_extend_sha256() {
    measurement_extend(false);
}

#[test]
fn measurement_extend_sha512() {
    measurement_extend(true);
}

#[test]
fn attest_token_argument_checks_without_an_attestation_service() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let cont = |cpu: &mut RealmCpu, addr: u64, off: u64, size: u64| {
            rsi(cpu, fid::ATTEST_TOKEN_CONTINUE, &[addr, off, size])[0]
        };
        let mut r = [0u64; 18];
        // Argument checks come before the state check.
        r[0] = cont(cpu, 0x5008, 0, 64); // addr_align
        r[1] = cont(cpu, NS_IPA, 0, 64); // addr_bound
        r[2] = cont(cpu, 0x5000, 4096, 0); // offset_bound
        r[3] = cont(cpu, 0x5000, 8, u64::MAX); // size_overflow
        r[4] = cont(cpu, 0x5000, 100, 3997); // size_bound
        r[5] = cont(cpu, 0x5000, 0, 4096); // state: no INIT
        r[6] = cont(cpu, 0x5000, 4095, 1); // state: no INIT
                                           // No attestation service: INIT is the IMPDEF failure, and leaves
                                           // no token in progress.
        let challenge: Vec<u64> = (1..=8).collect();
        r[7] = rsi(cpu, fid::ATTEST_TOKEN_INIT, &challenge)[0];
        r[8] = cont(cpu, 0x5000, 0, 4096);
        // The state check comes before the buffer is looked at: an unmapped
        // RAM buffer does not exit to the host.
        r[9] = cont(cpu, 0x7_0000, 0, 64);
        tx.send(r).unwrap();
    });
    run_to_end(&mut host, rec, run);
    let r = rx.recv().unwrap();
    assert_eq!(r[..5], [status::ERROR_INPUT; 5]);
    assert_eq!(r[5..7], [status::ERROR_STATE; 2]);
    assert_eq!(r[7], status::ERROR_UNKNOWN);
    assert_eq!(r[8..10], [status::ERROR_STATE; 2]);
}

#[test]
fn realm_config_contents_and_checks() {
    let mut host = Host::new();
    let mut p = host.default_params();
    p.rpv = core::array::from_fn(|i| i as u8 + 1);
    p.hash_algo = rmi::hash_algo::SHA_512;
    let (realm, rec, run, rx) = realm_with(&mut host, Some(p.clone()), |cpu, tx| {
        cpu.write_bytes(0x6000, &[0xEE; 4096]).unwrap();
        let mut r = [0u64; 18];
        r[0] = rsi(cpu, fid::REALM_CONFIG, &[0x6008])[0];
        r[1] = rsi(cpu, fid::REALM_CONFIG, &[0x6800])[0];
        r[2] = rsi(cpu, fid::REALM_CONFIG, &[NS_IPA])[0];
        r[3] = rsi(cpu, fid::REALM_CONFIG, &[!0xfffu64])[0];
        // EMPTY RIPAS.
        r[4] = rsi(cpu, fid::REALM_CONFIG, &[0x30_0000])[0];
        r[5] = rsi(cpu, fid::REALM_CONFIG, &[0x6000])[0];
        tx.send(r).unwrap();
        let mut page = [0u8; 4096];
        cpu.read_bytes(0x6000, &mut page).unwrap();
        for chunk in page.chunks(8 * 17) {
            let mut r = [0u64; 18];
            for (o, c) in r.iter_mut().zip(chunk.chunks(8)) {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                *o = u64::from_le_bytes(b);
            }
            tx.send(r).unwrap();
        }
        // RAM but unassigned: a REC exit, then the SMC is re-executed.
        tx.send(rsi(cpu, fid::REALM_CONFIG, &[0x8_0000])).unwrap();
        tx.send([cpu.load(0x8_0000, 8).unwrap(); 18]).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr >> 26, EC_DABT_LOW);
    assert_eq!(exit.hpfar, (0x8_0000 >> 12) << 4);
    let r = rx.recv().unwrap();
    assert_eq!(r[..5], [status::ERROR_INPUT; 5]);
    assert_eq!(r[5], status::SUCCESS);
    let mut page = Vec::new();
    for _ in 0..4096usize.div_ceil(8 * 17) {
        let r = rx.recv().unwrap();
        for v in &r[..17] {
            page.extend_from_slice(&v.to_le_bytes());
        }
    }
    page.truncate(4096);
    let mut expect = vec![0u8; 4096];
    expect[..8].copy_from_slice(&40u64.to_le_bytes());
    expect[8] = 1; // SHA-512
    expect[0x200..0x240].copy_from_slice(&p.rpv);
    assert!(page == expect, "RsiRealmConfig contents");
    assert!(rx.try_recv().is_err());
    let data = host.delegated();
    assert_eq!(
        host.rmm.data_create_unknown(realm.rd, data, 0x8_0000),
        Ok(())
    );
    run_to_end(&mut host, rec, run);
    assert_eq!(rx.recv().unwrap()[0], status::SUCCESS);
    assert_eq!(rx.recv().unwrap()[0], 40, "config written after the retry");
}

#[test]
fn ipa_state_get() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let get = |cpu: &mut RealmCpu, b: u64, t: u64| rsi(cpu, fid::IPA_STATE_GET, &[b, t]);
        for (b, t) in [
            (0x1, 0x2000),
            (0x0, 0x2001),
            (0x2000, 0x2000),
            (0x3000, 0x2000),
            (NS_IPA - G, NS_IPA + G),
            (NS_IPA, NS_IPA + G),
            (0, 0x1000),
            (0, 8 << 20),
            (0x20_0000, 0x40_0000),
            (0x1F_F000, 0x40_0000),
            (0x3000, 0x8000),
            (0x4000, 0x8000),
        ] {
            tx.send(get(cpu, b, t)).unwrap();
        }
    });
    assert_eq!(
        host.rmm.data_destroy(realm.rd, 0x4000).ret,
        RmiReturn::SUCCESS
    );
    run_to_end(&mut host, rec, run);
    for _ in 0..6 {
        assert_eq!(rx.recv().unwrap()[0], status::ERROR_INPUT);
    }
    let expect = [
        (0x1000, RAM),
        (0x4000, RAM),
        (0x40_0000, EMPTY),
        (0x20_0000, RAM),
        (0x4000, RAM),
        (0x5000, DESTROYED),
    ];
    for (top, ripas) in expect {
        let r = rx.recv().unwrap();
        assert_eq!(r[..3], [status::SUCCESS, top, ripas]);
    }
}

#[test]
fn ipa_state_set_input_errors_do_not_exit() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let set = |cpu: &mut RealmCpu, a: &[u64]| rsi(cpu, fid::IPA_STATE_SET, a)[0];
        let mut r = [0u64; 18];
        r[0] = set(cpu, &[0x1001, 0x2000, RAM, 0]);
        r[1] = set(cpu, &[0x1000, 0x2001, RAM, 0]);
        r[2] = set(cpu, &[0x2000, 0x2000, RAM, 0]);
        r[3] = set(cpu, &[0x3000, 0x2000, RAM, 0]);
        r[4] = set(cpu, &[NS_IPA - G, NS_IPA + G, RAM, 0]);
        r[5] = set(cpu, &[NS_IPA, NS_IPA + G, EMPTY, 0]);
        r[6] = set(cpu, &[0x1000, 0x2000, DESTROYED, 0]);
        r[7] = set(cpu, &[0x1000, 0x2000, 3, 0]);
        r[8] = set(cpu, &[0x1000, 0x2000, 0x101, 0]);
        tx.send(r).unwrap();
    });
    run_to_end(&mut host, rec, run);
    assert_eq!(rx.recv().unwrap()[..9], [status::ERROR_INPUT; 9]);
}

/// Builds the scenario for the RTT_SET_RIPAS failure conditions: the realm
/// asks for RAM over [0x201000, 0x203000), which sits inside a level-2
/// UNASSIGNED/EMPTY entry, and then for EMPTY over [0x3000, 0x6000) (with
/// 0x4000 DESTROYED).
#[test]
fn rtt_set_ripas_failure_conditions_in_order() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        tx.send(rsi(
            cpu,
            fid::IPA_STATE_SET,
            &[0x20_1000, 0x20_3000, RAM, 0],
        ))
        .unwrap();
        tx.send(rsi(cpu, fid::IPA_STATE_SET, &[0x3000, 0x6000, EMPTY, 0]))
            .unwrap();
        tx.send(rsi(cpu, fid::IPA_STATE_SET, &[0x4000, 0x6000, EMPTY, 0]))
            .unwrap();
    });
    // A second realm with a REC, for rec_owner.
    let other = {
        let mut p = host.default_params();
        p.vmid = 2;
        let r2 = host.create_realm_with(p);
        host.create_rec(&r2, 0, 0x1000, true)
    };
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    assert_eq!(
        (exit.ripas_base, exit.ripas_top, exit.ripas_value),
        (0x20_1000, 0x20_3000, 1)
    );
    let rd = realm.rd;
    let (b, t) = (0x20_1000, 0x20_3000);
    let set = |h: &mut Host, rd: u64, rec: u64, b: u64, t: u64| h.rmm.rtt_set_ripas(rd, rec, b, t);
    let undelegated = host.alloc();
    // 1-3: rd.
    for bad in [
        rd + 8,
        0,
        DRAM_BASE + DRAM_SIZE,
        undelegated,
        rec,
        realm.rtt_base,
    ] {
        host.fails(RmiReturn::INPUT, |h| set(h, bad, rec, b, t));
    }
    // 4-6: rec (also before rec_owner and the range checks).
    for bad in [rec + 8, !0xfffu64, undelegated, rd] {
        host.fails(RmiReturn::INPUT, |h| set(h, rd, bad, b, t));
        host.fails(RmiReturn::INPUT, |h| set(h, rd, bad, t, b));
    }
    // rd_state before rec_owner.
    host.fails(RmiReturn::INPUT, |h| set(h, rd + 8, other, b, t));
    // 8: rec_owner, before every range check.
    host.fails(RmiReturn::REC, |h| set(h, rd, other, b, t));
    host.fails(RmiReturn::REC, |h| set(h, rd, other, t, b));
    // 9: size_valid.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b, b));
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b, b - G));
    // 10: base_bound (before base_align).
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, 0x20_0000, t));
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b + G, t));
    // 11: top_bound.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b, t + G));
    // 12: base_align: the walk ends at level 2, base is inside that entry,
    // the entry is EMPTY and RAM is requested. Before top_gran_align.
    host.fails(RmiReturn::rtt(2), |h| set(h, rd, rec, b, t));
    host.fails(RmiReturn::rtt(2), |h| set(h, rd, rec, b, t - 1));
    // The host splits the block and retries: partial progress first.
    let rtt = host.delegated();
    assert_eq!(host.rmm.rtt_create(rd, rtt, 0x20_0000, 3), Ok(()));
    // 13: top_gran_align.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b, t - 1));
    let out = host.rmm.rtt_set_ripas(rd, rec, b, b + G);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], b + G);
    assert_eq!(host.entry(&realm, b, 3), (3, rtt_state::UNASSIGNED, 0, RAM));
    assert_eq!(host.entry(&realm, b + G, 3).3, EMPTY);
    // ripas_addr advanced: the old base is now base_bound.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, b, t));
    let out = host.rmm.rtt_set_ripas(rd, rec, b + G, t);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], t);
    // Nothing left to change: base == ripas_top fails size/base checks.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, t, t + G));
    let exit = ok_exit(host.enter(rec, run));
    let r = rx.recv().unwrap();
    assert_eq!(r[..3], [status::SUCCESS, t, ripas_response::ACCEPT]);

    // Second request: EMPTY over [0x3000, 0x6000) with 0x4000 DESTROYED.
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let _ = host.rmm.data_destroy(rd, 0x4000);
    assert_eq!(host.entry(&realm, 0x4000, 3).3, DESTROYED);
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x3000, 0x6000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], 0x4000, "stops at the DESTROYED entry");
    let e = host.entry(&realm, 0x3000, 3);
    assert_eq!((e.0, e.1, e.3), (3, rtt_state::ASSIGNED, EMPTY));
    // 14: no_progress: DESTROYED without CHANGE_DESTROYED.
    host.fails(RmiReturn::rtt(3), |h| set(h, rd, rec, 0x4000, 0x6000));
    // top_gran_align before no_progress.
    host.fails(RmiReturn::INPUT, |h| set(h, rd, rec, 0x4000, 0x4800));
    // The host answers with what it did; REJECT is impossible for EMPTY.
    let exit = ok_exit(host.enter_with(rec, run, &response(rec_enter_flags::RIPAS_RESPONSE)));
    let r = rx.recv().unwrap();
    assert_eq!(r[..3], [status::SUCCESS, 0x4000, ripas_response::ACCEPT]);
    // Third request, from 0x4000: the realm did not allow DESTROYED.
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    host.fails(RmiReturn::rtt(3), |h| set(h, rd, rec, 0x4000, 0x6000));
    run_to_end(&mut host, rec, run);
    let r = rx.recv().unwrap();
    assert_eq!(r[..3], [status::SUCCESS, 0x4000, ripas_response::ACCEPT]);
    // The realm's access to the page it made EMPTY takes an SEA: checked in
    // `ripas_empty_page_takes_sea`.
}

#[test]
fn ripas_empty_page_takes_sea_and_destroyed_needs_permission() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let r = rsi(cpu, fid::IPA_STATE_SET, &[0x2000, 0x3000, EMPTY, 0]);
        tx.send(r).unwrap();
        let mut r = [0u64; 18];
        r[0] = u64::from(cpu.load(0x2000, 8) == Err(Sea));
        tx.send(r).unwrap();
        // DESTROYED -> RAM, allowed.
        let r = rsi(
            cpu,
            fid::IPA_STATE_SET,
            &[0x4000, 0x6000, RAM, ipa_state_flags::CHANGE_DESTROYED],
        );
        tx.send(r).unwrap();
    });
    let rd = realm.rd;
    let _ = host.rmm.data_destroy(rd, 0x4000);
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x2000, 0x3000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    // HIPAS kept: still ASSIGNED, RIPAS EMPTY.
    let e = host.entry(&realm, 0x2000, 3);
    assert_eq!((e.1, e.3), (rtt_state::ASSIGNED, EMPTY));
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(rx.recv().unwrap()[..3], [status::SUCCESS, 0x3000, 0]);
    assert_eq!(rx.recv().unwrap()[0], 1, "EMPTY page: SEA");
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    assert_eq!(
        (exit.ripas_base, exit.ripas_top, exit.ripas_value),
        (0x4000, 0x6000, 1)
    );
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x4000, 0x6000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], 0x6000);
    assert_eq!(host.entry(&realm, 0x4000, 3).3, RAM);
    run_to_end(&mut host, rec, run);
    assert_eq!(rx.recv().unwrap()[..3], [status::SUCCESS, 0x6000, 0]);
}

#[test]
fn ripas_reject_and_table_boundary() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        // EMPTY over [0x1FE000, 0x202000): crosses the end of the L3 table.
        tx.send(rsi(
            cpu,
            fid::IPA_STATE_SET,
            &[0x1F_E000, 0x20_2000, EMPTY, 0],
        ))
        .unwrap();
        // RAM over the same range: partial progress, then REJECT.
        tx.send(rsi(
            cpu,
            fid::IPA_STATE_SET,
            &[0x1F_E000, 0x20_2000, RAM, 0],
        ))
        .unwrap();
        // RAM over a range that completes: REJECT is ignored.
        tx.send(rsi(
            cpu,
            fid::IPA_STATE_SET,
            &[0x1F_E000, 0x1F_F000, RAM, 0],
        ))
        .unwrap();
    });
    let rd = realm.rd;
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x1F_E000, 0x20_2000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], 0x20_0000, "progress stops at the RTT's end");
    // From 0x200000 the walk ends at a level-2 EMPTY entry: nothing to do
    // (already EMPTY) so the host advances to top.
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x20_0000, 0x20_2000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    assert_eq!(out.out[0], 0x20_2000);
    let exit = ok_exit(host.enter_with(rec, run, &response(rec_enter_flags::RIPAS_RESPONSE)));
    assert_eq!(
        rx.recv().unwrap()[..3],
        [status::SUCCESS, 0x20_2000, ripas_response::ACCEPT]
    );
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x1F_E000, 0x20_2000);
    assert_eq!(out.out[0], 0x20_0000);
    // RAM requested inside a level-2 EMPTY entry, whole entry not covered.
    host.fails(RmiReturn::rtt(2), |h| {
        h.rmm.rtt_set_ripas(rd, rec, 0x20_0000, 0x20_2000)
    });
    let exit = ok_exit(host.enter_with(rec, run, &response(rec_enter_flags::RIPAS_RESPONSE)));
    assert_eq!(
        rx.recv().unwrap()[..3],
        [status::SUCCESS, 0x20_0000, ripas_response::REJECT]
    );
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let out = host.rmm.rtt_set_ripas(rd, rec, 0x1F_E000, 0x1F_F000);
    assert_eq!(out.out[0], 0x1F_F000);
    run_to_end_with(&mut host, rec, run, rec_enter_flags::RIPAS_RESPONSE);
    assert_eq!(
        rx.recv().unwrap()[..3],
        [status::SUCCESS, 0x1F_F000, ripas_response::ACCEPT]
    );
}

fn run_to_end_with(host: &mut Host, rec: u64, run: u64, flags: u64) {
    let exit = ok_exit(host.enter_with(rec, run, &response(flags)));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[0], psci::CPU_OFF);
    host.assert_guests_ok();
}

#[test]
fn ripas_addr_reset_by_another_exit() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        tx.send(rsi(cpu, fid::IPA_STATE_SET, &[0x2000, 0x4000, EMPTY, 0]))
            .unwrap();
        cpu.host_interrupt();
        tx.send(rsi(cpu, fid::IPA_STATE_SET, &[0x0, 0x1000, EMPTY, 0]))
            .unwrap();
        cpu.host_interrupt();
    });
    let rd = realm.rd;
    // No request yet: every call fails base_bound/top_bound.
    host.fails(RmiReturn::INPUT, |h| h.rmm.rtt_set_ripas(rd, rec, 0, G));
    host.fails(RmiReturn::INPUT, |h| {
        h.rmm.rtt_set_ripas(rd, rec, 0x2000, 0x4000)
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    // The host does nothing; the realm learns nothing changed.
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(rx.recv().unwrap()[..3], [status::SUCCESS, 0x2000, 0]);
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    host.fails(RmiReturn::INPUT, |h| {
        h.rmm.rtt_set_ripas(rd, rec, 0x2000, 0x4000)
    });
    // A request at IPA 0, then an IRQ exit: base 0 matches the reset
    // ripas_addr but top_bound fails.
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    host.fails(RmiReturn::INPUT, |h| h.rmm.rtt_set_ripas(rd, rec, 0, G));
    assert_eq!(host.entry(&realm, 0, 3).3, RAM);
    assert_eq!(host.entry(&realm, 0x2000, 3).3, RAM);
}

#[test]
fn host_call_checks() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let mut r = [0u64; 18];
        r[0] = rsi(cpu, fid::HOST_CALL, &[0x5080])[0];
        r[1] = rsi(cpu, fid::HOST_CALL, &[0x5001])[0];
        r[2] = rsi(cpu, fid::HOST_CALL, &[NS_IPA])[0];
        r[3] = rsi(cpu, fid::HOST_CALL, &[0x30_0000])[0]; // EMPTY
        tx.send(r).unwrap();
        cpu.store(0x5f00, 2, 7).unwrap();
        cpu.store(0x5f08, 8, 11).unwrap();
        r[4] = rsi(cpu, fid::HOST_CALL, &[0x5f00])[0];
        r[5] = cpu.load(0x5f08, 8).unwrap();
        r[6] = cpu.load(0x5f08 + 30 * 8, 8).unwrap();
        tx.send(r).unwrap();
        // Unassigned RAM: a data abort exit first, then the host call.
        tx.send(rsi(cpu, fid::HOST_CALL, &[0x9_0100])).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::HOST_CALL);
    assert_eq!((exit.imm, exit.gprs[0]), (7, 11));
    assert_eq!(rx.recv().unwrap()[..4], [status::ERROR_INPUT; 4]);
    let mut e = RmiRecEnter::new_zeroed();
    e.gprs[0] = 21;
    e.gprs[30] = 0x30;
    let exit = ok_exit(host.enter_with(rec, run, &e));
    let r = rx.recv().unwrap();
    assert_eq!(r[4..7], [status::SUCCESS, 21, 0x30]);
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.hpfar, (0x9_0000 >> 12) << 4);
    let data = host.delegated();
    assert_eq!(
        host.rmm.data_create_unknown(realm.rd, data, 0x9_0000),
        Ok(())
    );
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::HOST_CALL);
    assert_eq!(exit.imm, 0);
    run_to_end(&mut host, rec, run);
    assert_eq!(rx.recv().unwrap()[0], status::SUCCESS);
}

#[test]
fn smccc_version_unknown_smc_sve_hint_and_hvc() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, None, |cpu, tx| {
        let mut r = [0u64; 18];
        r[0] = rsi(cpu, SMCCC_VERSION, &[])[0];
        r[1] = rsi(cpu, SMCCC_VERSION | SVE_HINT, &[])[0];
        r[2] = rsi(cpu, 0xC400_01A0, &[])[0]; // unallocated RSI fnum
        r[3] = rsi(cpu, 0xC400_0150, &[0x1_0000])[0]; // RMI_VERSION
        r[4] = rsi(cpu, 0xC500_0000, &[])[0];
        r[5] = rsi(cpu, 0x8000_0001, &[])[0]; // SMCCC_ARCH_FEATURES
        r[6] = rsi(cpu, fid::VERSION | SVE_HINT, &[0x1_0000])[0];
        r[7] = rsi(cpu, psci::VERSION | SVE_HINT, &[])[0];
        r[8] = rsi(cpu, fid::VERSION | 1 << 17, &[0x1_0000])[0];
        r[9] = rsi(cpu, fid::MEASUREMENT_READ | SVE_HINT, &[7])[0];
        tx.send(r).unwrap();
        cpu.hvc();
        tx.send([0xAA; 18]).unwrap();
        cpu.host_interrupt();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(
        exit.exit_reason,
        exit_reason::IRQ,
        "HVC does not exit to the host"
    );
    let r = rx.recv().unwrap();
    assert_eq!(r[0], 0x1_0002);
    assert_eq!(r[1], 0x1_0002);
    assert_eq!(r[2..6], [SMC_UNKNOWN; 4]);
    assert_eq!(r[6], status::SUCCESS);
    assert_eq!(r[7], psci::VERSION_1_1);
    assert_eq!(r[8], SMC_UNKNOWN, "only bit 16 is the SVE hint");
    assert_eq!(r[9], status::ERROR_INPUT);
    assert_eq!(rx.recv().unwrap()[0], 0xAA);
    run_to_end(&mut host, rec, run);
}
