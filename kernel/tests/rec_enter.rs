//! `RMI_REC_ENTER`: every failure condition of §3.11 in its priority order,
//! the priority pairs the ACS tests, and every REC exit the simulation can
//! produce with the fields the host relies on (§6.2).

mod support;

use std::sync::mpsc::{channel, Receiver};

use atoll_kernel::arch::host::Sea;
use atoll_kernel::arch::{Pas, Platform};
use atoll_kernel::granule::GranuleState;
use atoll_kernel::RmmConfig;
use ipc_schema::rmi::{exit_reason, rec_enter_flags, RmiRecEnter, RmiRecExit, RmiReturn};
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::{psci, smc_regs};
use support::*;
use zerocopy::{FromBytes, FromZeros};

/// An unprotected IPA of the default 40-bit realm (nothing mapped there).
const NS_IPA: u64 = 1 << 39;

const EC_SHIFT: u32 = 26;
const EC_WFX: u64 = 0x01;
const EC_DABT_LOW: u64 = 0x24;
const IL: u64 = 1 << 25;
const ISV: u64 = 1 << 24;
const SAS_SHIFT: u32 = 22;
const SRT_SHIFT: u32 = 16;
const SF: u64 = 1 << 15;
const WNR: u64 = 1 << 6;
const DFSC_TRANSLATION_L1: u64 = 0b00_0101;
const DFSC_TRANSLATION_L3: u64 = 0b00_0111;
/// The register simulated loads and stores transfer through.
const XFER_REG: u64 = 9;

/// A valid pending list register: State = pending, Group 1, priority 0xA0.
fn lr(vintid: u64) -> u64 {
    1 << 62 | 1 << 60 | 0xA0 << 48 | vintid
}

fn flags(f: u64) -> RmiRecEnter {
    let mut e = RmiRecEnter::new_zeroed();
    e.flags = f;
    e
}

fn granule_snapshot(host: &Host) -> Vec<(u64, GranuleState)> {
    host.rmm.granules().iter().collect()
}

/// REC_ENTER that must fail: the exit half of the run page and every
/// granule's state are left untouched.
fn enter_fails(host: &mut Host, rec: u64, run: u64, enter: &RmiRecEnter) -> RmiReturn {
    let poison = [0xA5u8; 0x800];
    let ns_run = host.rmm.platform().pas(run) == Some(Pas::NonSecure);
    if ns_run {
        host.write(run, zerocopy::IntoBytes::as_bytes(enter));
        host.write(run + 0x800, &poison);
    }
    let before = granule_snapshot(host);
    let r = host.rmm.rec_enter(rec, run);
    let err = r.expect_err("REC_ENTER must fail");
    assert_eq!(
        granule_snapshot(host),
        before,
        "a failed REC_ENTER changed granules"
    );
    if ns_run {
        let mut after = [0u8; 0x800];
        host.read(run + 0x800, &mut after);
        assert!(after == poison, "a failed REC_ENTER wrote run.exit");
    }
    err
}

/// A realm whose guest reports values over a channel.
fn realm_with<F>(host: &mut Host, f: F) -> (RealmRef, u64, u64, Receiver<u64>)
where
    F: FnOnce(&mut atoll_kernel::arch::host::RealmCpu, &std::sync::mpsc::Sender<u64>)
        + Send
        + 'static,
{
    let (tx, rx) = channel();
    let (realm, rec, run) = active_realm(host, move |cpu| f(cpu, &tx));
    (realm, rec, run, rx)
}

fn ok_exit(r: (Result<(), RmiReturn>, RmiRecExit)) -> RmiRecExit {
    assert_eq!(r.0, Ok(()));
    r.1
}

// ---------------------------------------------------------------------------
// Failure conditions, in the listed order.
// ---------------------------------------------------------------------------

#[test]
fn run_align_bound_pas() {
    let mut host = Host::new();
    let (_realm, rec, run) = active_realm(&mut host, |_| {});
    let e = RmiRecEnter::new_zeroed();
    for bad in [run + 8, run + 0x800, run | 1] {
        assert_eq!(enter_fails(&mut host, rec, bad, &e), RmiReturn::INPUT);
    }
    // run_bound: outside DRAM (below, at the end, far away).
    for bad in [0, DRAM_BASE - G, DRAM_BASE + DRAM_SIZE, !0xfffu64] {
        assert_eq!(enter_fails(&mut host, rec, bad, &e), RmiReturn::INPUT);
    }
    // run_pas: a delegated granule, a realm's own REC, a Secure granule.
    let delegated = host.delegated();
    assert_eq!(enter_fails(&mut host, rec, delegated, &e), RmiReturn::INPUT);
    assert_eq!(enter_fails(&mut host, rec, rec, &e), RmiReturn::INPUT);
    let secure = host.alloc();
    host.rmm.platform_mut().set_pas(secure, Pas::Secure);
    assert_eq!(enter_fails(&mut host, rec, secure, &e), RmiReturn::INPUT);
    // The REC is still intact and runs.
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    host.assert_guests_ok();
}

#[test]
fn rec_align_bound_state() {
    let mut host = Host::new();
    let (realm, rec, run) = active_realm(&mut host, |_| {});
    let e = RmiRecEnter::new_zeroed();
    for bad in [rec + 8, rec | 0x800, 0, DRAM_BASE + DRAM_SIZE, u64::MAX] {
        assert_eq!(enter_fails(&mut host, bad, run, &e), RmiReturn::INPUT);
    }
    // rec_gran_state: undelegated, delegated, RD, RTT, DATA.
    let undelegated = host.alloc();
    let delegated = host.delegated();
    let data = {
        let r = host.rmm.rtt_read_entry(realm.rd, 0x3000, 3);
        assert_eq!(r.out[1], ipc_schema::rmi::rtt_state::ASSIGNED);
        r.out[2]
    };
    for bad in [undelegated, delegated, realm.rd, realm.rtt_base, data] {
        assert_eq!(enter_fails(&mut host, bad, run, &e), RmiReturn::INPUT);
    }
    // A REC_AUX granule is not a REC either.
    let (aux, _) = host
        .rmm
        .granules()
        .iter()
        .find(|(_, s)| *s == GranuleState::RecAux)
        .unwrap();
    assert_eq!(enter_fails(&mut host, aux, run, &e), RmiReturn::INPUT);
}

#[test]
fn realm_new_is_realm_index_0() {
    let mut host = Host::new();
    let realm = host.create_realm();
    let rec = host.create_rec(&realm, 0, 0x1000, true);
    let run = host.alloc();
    let e = RmiRecEnter::new_zeroed();
    assert_eq!(
        enter_fails(&mut host, rec, run, &e),
        RmiReturn::realm(0),
        "REALM_NEW"
    );
    // realm_new before rec_runnable, rec_mmio and rec_gicv3.
    let rec1 = host.create_rec(&realm, 1, 0x1000, false);
    let mut bad = flags(rec_enter_flags::EMUL_MMIO);
    bad.gicv3_hcr = 1; // En: not host-controlled
    assert_eq!(enter_fails(&mut host, rec1, run, &bad), RmiReturn::realm(0));
    // ...but after rec_align/run_pas.
    assert_eq!(
        enter_fails(&mut host, rec1 + 8, run, &bad),
        RmiReturn::INPUT
    );
    let delegated = host.delegated();
    assert_eq!(
        enter_fails(&mut host, rec1, delegated, &bad),
        RmiReturn::INPUT
    );
}

#[test]
fn system_off_is_realm_index_1() {
    let mut host = Host::new();
    let (_realm, rec, run) = active_realm(&mut host, |cpu| {
        cpu.smc(smc_regs(psci::SYSTEM_OFF, &[]));
        unreachable!("SYSTEM_OFF returned");
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[0], psci::SYSTEM_OFF);
    let e = RmiRecEnter::new_zeroed();
    assert_eq!(enter_fails(&mut host, rec, run, &e), RmiReturn::realm(1));
    // system_off before rec_mmio / rec_gicv3.
    let mut bad = flags(rec_enter_flags::EMUL_MMIO);
    bad.gicv3_lrs[0] = lr(32) | 1 << 61;
    assert_eq!(enter_fails(&mut host, rec, run, &bad), RmiReturn::realm(1));
    // run_bound before system_off.
    assert_eq!(
        enter_fails(&mut host, rec, DRAM_BASE + DRAM_SIZE, &e),
        RmiReturn::INPUT
    );
    assert_eq!(enter_fails(&mut host, rec, run + 1, &e), RmiReturn::INPUT);
}

#[test]
fn not_runnable_is_rec_error() {
    let mut host = Host::new();
    let realm = host.create_realm();
    host.rtts_to(&realm, 0, 3);
    let rec0 = host.create_rec(&realm, 0, 0x1000, true);
    let rec1 = host.create_rec(&realm, 1, 0x1000, false);
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    let run = host.alloc();
    let e = RmiRecEnter::new_zeroed();
    assert_eq!(enter_fails(&mut host, rec1, run, &e), RmiReturn::REC);
    // run in the Realm PAS + not runnable: INPUT.
    let delegated = host.delegated();
    assert_eq!(
        enter_fails(&mut host, rec1, delegated, &e),
        RmiReturn::INPUT
    );
    // rec unaligned + not runnable: INPUT.
    assert_eq!(
        enter_fails(&mut host, rec1 + 0x10, run, &e),
        RmiReturn::INPUT
    );
    // The runnable REC of the same realm enters (no guest: an IRQ exit).
    let exit = ok_exit(host.enter(rec0, run));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
}

#[test]
fn emul_mmio_without_emulatable_abort() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        // A protected RAM page that is not populated: a non-emulatable abort.
        let v = cpu.load(0x30000, 8).unwrap();
        tx.send(v).unwrap();
        cpu.host_interrupt();
    });
    // Fresh REC: no abort at all.
    assert_eq!(
        enter_fails(&mut host, rec, run, &flags(rec_enter_flags::EMUL_MMIO)),
        RmiReturn::REC
    );
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr & ISV, 0, "protected abort is not emulatable");
    // After a non-emulatable abort: still REC.
    assert_eq!(
        enter_fails(&mut host, rec, run, &flags(rec_enter_flags::EMUL_MMIO)),
        RmiReturn::REC
    );
    // Fix the page; the load is re-executed.
    let data = host.delegated();
    let rd = _realm.rd;
    assert_eq!(host.rmm.data_create_unknown(rd, data, 0x30000), Ok(()));
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    assert_eq!(rx.try_recv(), Ok(0));
    // After an IRQ exit: REC again.
    assert_eq!(
        enter_fails(&mut host, rec, run, &flags(rec_enter_flags::EMUL_MMIO)),
        RmiReturn::REC
    );
    host.assert_guests_ok();
}

#[test]
fn gicv3_config_validation() {
    let mut host = Host::with_config(RmmConfig {
        gic_num_lrs: 4,
        ..RmmConfig::default()
    });
    let (_realm, rec, run) = active_realm(&mut host, |cpu| loop {
        cpu.host_interrupt();
    });
    let invalid: Vec<(&str, RmiRecEnter)> = vec![
        ("ICH_HCR.En", {
            let mut e = flags(0);
            e.gicv3_hcr = 1;
            e
        }),
        ("ICH_HCR.TC (bit 10)", {
            let mut e = flags(0);
            e.gicv3_hcr = 1 << 10;
            e
        }),
        ("ICH_HCR.EOIcount", {
            let mut e = flags(0);
            e.gicv3_hcr = 1 << 27;
            e
        }),
        ("HW bit", {
            let mut e = flags(0);
            e.gicv3_lrs[0] = lr(40) | 1 << 61;
            e
        }),
        ("duplicate vINTID", {
            let mut e = flags(0);
            e.gicv3_lrs[0] = lr(40);
            e.gicv3_lrs[2] = lr(40);
            e
        }),
        ("reserved INTID 1020", {
            let mut e = flags(0);
            e.gicv3_lrs[1] = lr(1020);
            e
        }),
        ("reserved INTID 1023", {
            let mut e = flags(0);
            e.gicv3_lrs[1] = lr(1023);
            e
        }),
        ("INTID between SPIs and LPIs", {
            let mut e = flags(0);
            e.gicv3_lrs[1] = lr(5000);
            e
        }),
        ("pINTID without HW", {
            let mut e = flags(0);
            e.gicv3_lrs[0] = lr(40) | 33 << 32;
            e
        }),
        ("LR beyond GICV3_NUM_LRS", {
            let mut e = flags(0);
            e.gicv3_lrs[4] = lr(40);
            e
        }),
        ("RES0 bits [59:56]", {
            let mut e = flags(0);
            e.gicv3_lrs[0] = lr(40) | 1 << 56;
            e
        }),
        ("unimplemented priority bits", {
            let mut e = flags(0);
            e.gicv3_lrs[0] = lr(40) | 1 << 48;
            e
        }),
    ];
    for (what, e) in &invalid {
        assert_eq!(
            enter_fails(&mut host, rec, run, e),
            RmiReturn::REC,
            "{what}"
        );
        // rec unaligned + bad GIC: INPUT.
        assert_eq!(
            enter_fails(&mut host, rec + 8, run, e),
            RmiReturn::INPUT,
            "{what}"
        );
    }
    // Valid: every host-controlled HCR bit, distinct SGI/PPI/SPI/LPI
    // vINTIDs in each state, an EOI-maintenance LR, an inactive LR with
    // leftover bits.
    let mut ok = flags(0);
    ok.gicv3_hcr = 0b1111_1110 | 1 << 14;
    ok.gicv3_lrs[0] = lr(0);
    ok.gicv3_lrs[1] = 2 << 62 | 0xA0 << 48 | 27; // active PPI
    ok.gicv3_lrs[2] = 3 << 62 | 1 << 41 | 1019; // pending+active, EOI
    ok.gicv3_lrs[3] = lr(8192);
    let exit = ok_exit(host.enter_with(rec, run, &ok));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    // The LRs and host-controlled HCR bits are echoed back in the exit.
    assert_eq!(exit.gicv3_lrs, ok.gicv3_lrs);
    assert_eq!(exit.gicv3_hcr, ok.gicv3_hcr);
    host.assert_guests_ok();
}

#[test]
fn psci_pending_is_rec_error() {
    let mut host = Host::new();
    let realm = host.create_realm();
    host.rtts_to(&realm, 0, 3);
    host.init_ripas(&realm, 0, 2 << 20);
    let rec0 = host.create_rec(&realm, 0, 0x1000, true);
    let rec1 = host.create_rec(&realm, 1, 0x1000, true);
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    host.guest(rec0, |cpu| {
        cpu.smc(smc_regs(psci::AFFINITY_INFO, &[1, 0]));
    });
    host.guest(rec1, |cpu| {
        cpu.smc(smc_regs(psci::SYSTEM_OFF, &[]));
    });
    let run = host.alloc();
    let exit = ok_exit(host.enter(rec0, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[0], psci::AFFINITY_INFO);
    let e = RmiRecEnter::new_zeroed();
    assert_eq!(enter_fails(&mut host, rec0, run, &e), RmiReturn::REC);
    // rec_align/run_pas before rec_psci.
    let delegated = host.delegated();
    assert_eq!(
        enter_fails(&mut host, rec0, delegated, &e),
        RmiReturn::INPUT
    );
    // SYSTEM_OFF (from the other REC) before rec_psci.
    let run1 = host.alloc();
    let exit = ok_exit(host.enter(rec1, run1));
    assert_eq!(exit.gprs[0], psci::SYSTEM_OFF);
    assert_eq!(enter_fails(&mut host, rec0, run, &e), RmiReturn::realm(1));
    host.assert_guests_ok();
}

// ---------------------------------------------------------------------------
// Exits.
// ---------------------------------------------------------------------------

#[test]
fn host_call_exit_and_results() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        let mut s = [0u8; 256];
        s[..2].copy_from_slice(&0xBEEFu16.to_le_bytes());
        for i in 0..31u64 {
            s[8 + 8 * i as usize..16 + 8 * i as usize].copy_from_slice(&(i * 3 + 1).to_le_bytes());
        }
        cpu.write_bytes(0x5100, &s).unwrap();
        let out = cpu.smc(smc_regs(fid::HOST_CALL, &[0x5100]));
        tx.send(out[0]).unwrap();
        let mut back = [0u8; 256];
        cpu.read_bytes(0x5100, &mut back).unwrap();
        for i in 0..31 {
            let v = u64::from_le_bytes(back[8 + 8 * i..16 + 8 * i].try_into().unwrap());
            tx.send(v).unwrap();
        }
        cpu.host_interrupt();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::HOST_CALL);
    assert_eq!(exit.imm, 0xBEEF);
    for i in 0..31u64 {
        assert_eq!(exit.gprs[i as usize], i * 3 + 1);
    }
    assert_eq!((exit.esr, exit.far, exit.hpfar), (0, 0, 0));
    let mut e = RmiRecEnter::new_zeroed();
    for i in 0..31u64 {
        e.gprs[i as usize] = 1000 + i;
    }
    let exit = ok_exit(host.enter_with(rec, run, &e));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    // Exit fields not defined for IRQ are zero again.
    assert_eq!(exit.gprs, [0; 31]);
    assert_eq!(exit.imm, 0);
    assert_eq!(exit.esr, 0);
    assert_eq!(rx.try_recv(), Ok(status::SUCCESS));
    for i in 0..31u64 {
        assert_eq!(rx.try_recv(), Ok(1000 + i));
    }
    host.assert_guests_ok();
}

#[test]
fn psci_exit_fields() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        let out = cpu.smc(smc_regs(psci::CPU_SUSPEND, &[0x1234, 0x5000, 77, 99]));
        tx.send(out[0]).unwrap();
        tx.send(out[4]).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..4], [psci::CPU_SUSPEND, 0x1234, 0x5000, 77]);
    assert_eq!(exit.gprs[4..], [0; 27]);
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(rx.try_recv(), Ok(psci::status::SUCCESS));
    assert_eq!(rx.try_recv(), Ok(99), "x4 preserved across the exit");
    host.assert_guests_ok();
}

#[test]
fn ripas_change_exit_fields() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        let out = cpu.smc(smc_regs(fid::IPA_STATE_SET, &[0x100000, 0x104000, 0, 0]));
        tx.send(out[0]).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::RIPAS_CHANGE);
    assert_eq!(
        (exit.ripas_base, exit.ripas_top, exit.ripas_value),
        (0x100000, 0x104000, 0)
    );
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(rx.try_recv(), Ok(status::SUCCESS));
    host.assert_guests_ok();
}

#[test]
fn data_abort_at_unassigned_ram_then_retry() {
    let mut host = Host::new();
    let ipa = 0x7_3000;
    let (realm, rec, run, rx) = realm_with(&mut host, move |cpu, tx| {
        cpu.store(ipa + 0x18, 4, 0x1122_3344).unwrap();
        tx.send(cpu.load(ipa + 0x18, 4).unwrap()).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr >> EC_SHIFT, EC_DABT_LOW);
    assert_eq!(exit.esr & ISV, 0);
    assert_eq!(exit.esr & 0x3f, DFSC_TRANSLATION_L3);
    assert_ne!(exit.esr & IL, 0);
    assert_eq!(exit.hpfar, (ipa >> 12) << 4);
    assert_eq!(exit.far, 0, "no FAR for a protected IPA");
    assert_eq!(exit.gprs, [0; 31]);
    // Entering without fixing anything re-executes the store: same exit.
    let again = ok_exit(host.enter(rec, run));
    assert_eq!((again.esr, again.hpfar), (exit.esr, exit.hpfar));
    let data = host.delegated();
    assert_eq!(host.rmm.data_create_unknown(realm.rd, data, ipa), Ok(()));
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(rx.try_recv(), Ok(0x1122_3344));
    host.assert_guests_ok();
}

#[test]
fn data_abort_at_destroyed() {
    let mut host = Host::new();
    let (realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        tx.send(cpu.load(0x3008, 8).unwrap()).unwrap();
        tx.send(cpu.load(0x4008, 8).unwrap()).unwrap();
    });
    let out = host.rmm.data_destroy(realm.rd, 0x4000);
    assert_eq!(out.ret, RmiReturn::SUCCESS);
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr >> EC_SHIFT, EC_DABT_LOW);
    assert_eq!(exit.esr & ISV, 0);
    assert_eq!(exit.hpfar, (0x4000 >> 12) << 4);
    // Even with a fresh DATA granule the IPA stays DESTROYED: still an exit.
    let data = host.delegated();
    assert_eq!(host.rmm.data_create_unknown(realm.rd, data, 0x4000), Ok(()));
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.hpfar, (0x4000 >> 12) << 4);
    assert_eq!(rx.try_recv(), Ok(u64::from_le_bytes([3; 8])));
    assert!(rx.try_recv().is_err());
}

#[test]
fn emulated_mmio_read_is_size_masked() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        tx.send(cpu.load(NS_IPA + 0x1234, 4).unwrap()).unwrap();
        tx.send(cpu.load(NS_IPA + 0x2ff8, 8).unwrap()).unwrap();
        tx.send(cpu.load(NS_IPA + 0x7, 1).unwrap()).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    let esr = exit.esr;
    assert_eq!(esr >> EC_SHIFT, EC_DABT_LOW);
    assert_ne!(esr & ISV, 0);
    assert_eq!((esr >> SAS_SHIFT) & 3, 2, "SAS word");
    assert_eq!((esr >> SRT_SHIFT) & 0x1f, XFER_REG);
    assert_eq!(esr & SF, 0);
    assert_eq!(esr & WNR, 0);
    assert_eq!(esr & 0x3f, DFSC_TRANSLATION_L1);
    assert_eq!(exit.far, 0x234);
    assert_eq!(exit.hpfar, ((NS_IPA + 0x1000) >> 12) << 4);
    assert_eq!(exit.gprs[0], 0);

    let mut e = flags(rec_enter_flags::EMUL_MMIO);
    e.gprs[0] = 0xDEAD_BEEF_1234_5678;
    let exit = ok_exit(host.enter_with(rec, run, &e));
    assert_eq!(rx.try_recv(), Ok(0x1234_5678));
    assert_eq!((exit.esr >> SAS_SHIFT) & 3, 3);
    assert_ne!(exit.esr & SF, 0);
    assert_eq!(exit.far, 0xff8);
    let exit = ok_exit(host.enter_with(rec, run, &e));
    assert_eq!(rx.try_recv(), Ok(0xDEAD_BEEF_1234_5678));
    assert_eq!((exit.esr >> SAS_SHIFT) & 3, 0);
    assert_eq!(exit.far, 0x7);
    let exit = ok_exit(host.enter_with(rec, run, &e));
    assert_eq!(rx.try_recv(), Ok(0x78));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    host.assert_guests_ok();
}

#[test]
fn emulated_mmio_write_and_reexecution() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        cpu.store(NS_IPA + 0x42, 2, 0xBEEF).unwrap();
        tx.send(1).unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_ne!(exit.esr & ISV, 0);
    assert_ne!(exit.esr & WNR, 0);
    assert_eq!((exit.esr >> SAS_SHIFT) & 3, 1);
    assert_eq!((exit.esr >> SRT_SHIFT) & 0x1f, XFER_REG);
    assert_eq!(exit.far, 0x42);
    assert_eq!(exit.gprs[0], 0xBEEF, "write data");
    // Not emulated: the store is re-executed and exits again.
    let again = ok_exit(host.enter(rec, run));
    assert_eq!(
        (again.esr, again.far, again.gprs[0]),
        (exit.esr, 0x42, 0xBEEF)
    );
    assert!(rx.try_recv().is_err());
    // Emulated: the realm continues after the store.
    let exit = ok_exit(host.enter_with(rec, run, &flags(rec_enter_flags::EMUL_MMIO)));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(rx.try_recv(), Ok(1));
    // The emulatable abort is consumed by the exit that followed.
    assert_eq!(
        enter_fails(&mut host, rec, run, &flags(rec_enter_flags::EMUL_MMIO)),
        RmiReturn::REC
    );
    host.assert_guests_ok();
}

#[test]
fn inject_sea_on_unprotected_abort() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        tx.send(u64::from(cpu.load(NS_IPA, 8) == Err(Sea))).unwrap();
        tx.send(u64::from(cpu.store(NS_IPA + 8, 8, 1) == Err(Sea)))
            .unwrap();
    });
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    let exit = ok_exit(host.enter_with(rec, run, &flags(rec_enter_flags::INJECT_SEA)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_ne!(exit.esr & WNR, 0);
    // INJECT_SEA wins over EMUL_MMIO.
    let both = flags(rec_enter_flags::INJECT_SEA | rec_enter_flags::EMUL_MMIO);
    let exit = ok_exit(host.enter_with(rec, run, &both));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    host.assert_guests_ok();
}

#[test]
fn trapped_wfi_and_wfe() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        cpu.wfi();
        tx.send(1).unwrap();
        cpu.wfe();
        tx.send(2).unwrap();
        cpu.wfi();
        tx.send(3).unwrap();
    });
    let trap_both = flags(rec_enter_flags::TRAP_WFI | rec_enter_flags::TRAP_WFE);
    let exit = ok_exit(host.enter_with(rec, run, &trap_both));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr >> EC_SHIFT, EC_WFX);
    assert_eq!(exit.esr & 1, 0, "TI = WFI");
    assert_eq!((exit.far, exit.hpfar), (0, 0));
    let exit = ok_exit(host.enter_with(rec, run, &flags(rec_enter_flags::TRAP_WFE)));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(exit.exit_reason, exit_reason::SYNC);
    assert_eq!(exit.esr >> EC_SHIFT, EC_WFX);
    assert_eq!(exit.esr & 1, 1, "TI = WFE");
    // WFI with only TRAP_WFE: not a trapped WFx exit.
    let exit = ok_exit(host.enter_with(rec, run, &flags(rec_enter_flags::TRAP_WFE)));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    assert_eq!(exit.esr, 0);
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(rx.try_recv(), Ok(3));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    host.assert_guests_ok();
}

#[test]
fn irq_exit() {
    let mut host = Host::new();
    let (_realm, rec, run, rx) = realm_with(&mut host, |cpu, tx| {
        cpu.host_interrupt();
        tx.send(5).unwrap();
    });
    let mut e = RmiRecEnter::new_zeroed();
    e.gicv3_lrs[0] = lr(27);
    e.gicv3_lrs[15] = lr(33);
    e.gicv3_hcr = 1 << 1;
    let exit = ok_exit(host.enter_with(rec, run, &e));
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    assert_eq!(exit.esr, 0);
    assert_eq!(exit.gicv3_lrs, e.gicv3_lrs);
    assert_eq!(exit.gicv3_hcr, e.gicv3_hcr);
    assert!(rx.try_recv().is_err());
    let exit = ok_exit(host.enter(rec, run));
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gicv3_lrs, [0; 16]);
    host.assert_guests_ok();
}

#[test]
fn exit_written_only_into_the_exit_half() {
    let mut host = Host::new();
    let (_realm, rec, run) = active_realm(&mut host, |cpu| cpu.host_interrupt());
    let mut e = flags(rec_enter_flags::TRAP_WFI);
    e.gprs[3] = 0x33;
    let (r, _) = host.enter_with(rec, run, &e);
    assert_eq!(r, Ok(()));
    let mut page = [0u8; 0x800];
    host.read(run, &mut page);
    let back = RmiRecEnter::read_from_bytes(&page).unwrap();
    assert_eq!(back.flags, e.flags);
    assert_eq!(back.gprs, e.gprs);
}
