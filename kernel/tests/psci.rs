//! PSCI from a realm (§5) and `RMI_PSCI_COMPLETE` (§3.12): every failure
//! condition in order, its effects, and a second REC really starting after
//! CPU_ON.

mod support;

use std::sync::mpsc::{channel, Receiver, Sender};

use atoll_kernel::arch::host::RealmCpu;
use ipc_schema::rmi::{exit_reason, RmiRecExit, RmiReturn};
use ipc_schema::smccc::psci::{self, status};
use ipc_schema::smccc::{smc_regs, SMCCC_VERSION, SVE_HINT};
use support::*;

type Tx = Sender<[u64; 18]>;

const ENTRY: u64 = 0x8000;
const CTX: u64 = 0xC0FFEE;
/// PSCI `AFFINITY_INFO` result ON.
const AFF_ON: u64 = 0;

fn call(cpu: &mut RealmCpu, f: u64, args: &[u64]) -> [u64; 18] {
    cpu.smc(smc_regs(f, args))
}

fn ok_exit(r: (Result<(), RmiReturn>, RmiRecExit)) -> RmiRecExit {
    assert_eq!(r.0, Ok(()));
    r.1
}

struct Smp {
    host: Host,
    realm: RealmRef,
    recs: [u64; 3],
    run: u64,
    rx: Receiver<[u64; 18]>,
    /// A REC of another realm.
    foreign: u64,
}

/// A realm with REC 0 (runnable, running `f`) and RECs 1 and 2 (not
/// runnable). REC 1's guest reports the registers it starts with and then
/// keeps running; REC 2 has no guest.
fn smp(f: impl FnOnce(&mut RealmCpu, &Tx) + Send + 'static) -> Smp {
    let mut host = Host::new();
    let realm = host.create_realm();
    host.rtts_to(&realm, 0, 3);
    host.init_ripas(&realm, 0, 2 << 20);
    for i in 0..16 {
        host.data(&realm, i * G, &[0; 4096], false);
    }
    let rec0 = host.create_rec(&realm, 0, 0x1000, true);
    let rec1 = host.create_rec(&realm, 1, 0x1000, false);
    let rec2 = host.create_rec(&realm, 2, 0x1000, false);
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    let (tx, rx) = channel();
    let tx1 = tx.clone();
    host.guest(rec0, move |cpu| f(cpu, &tx));
    host.guest(rec1, move |cpu| {
        let e = cpu.entry_regs().clone();
        let mut r = [0u64; 18];
        r[0] = e.pc;
        r[1..18].copy_from_slice(&e.gprs[..17]);
        tx1.send(r).unwrap();
        loop {
            cpu.host_interrupt();
        }
    });
    let foreign = {
        let mut p = host.default_params();
        p.vmid = 9;
        let other = host.create_realm_with(p);
        host.create_rec(&other, 0, 0x1000, true)
    };
    let run = host.alloc();
    Smp {
        host,
        realm,
        recs: [rec0, rec1, rec2],
        run,
        rx,
        foreign,
    }
}

impl Smp {
    fn enter(&mut self, i: usize) -> RmiRecExit {
        let (rec, run) = (self.recs[i], self.run);
        ok_exit(self.host.enter(rec, run))
    }

    fn complete(&mut self, target: usize, st: u64) -> Result<(), RmiReturn> {
        let (c, t) = (self.recs[0], self.recs[target]);
        self.host.rmm.psci_complete(c, t, st)
    }

    fn finish(&mut self) {
        let exit = self.enter(0);
        assert_eq!(exit.exit_reason, exit_reason::PSCI);
        assert_eq!(exit.gprs[0], psci::CPU_OFF);
        self.host.assert_guests_ok();
    }
}

#[test]
fn version_features_and_unknown() {
    let mut s = smp(|cpu, tx| {
        let mut r = [0u64; 18];
        r[0] = call(cpu, psci::VERSION, &[])[0];
        let supported = [
            psci::VERSION,
            psci::CPU_SUSPEND,
            psci::CPU_OFF,
            psci::CPU_ON,
            psci::AFFINITY_INFO,
            psci::SYSTEM_OFF,
            psci::SYSTEM_RESET,
            psci::FEATURES,
            SMCCC_VERSION,
            0x8400_0001, // CPU_SUSPEND, SMC32
        ];
        for (i, f) in supported.iter().enumerate() {
            r[1 + i] = call(cpu, psci::FEATURES, &[*f])[0];
        }
        r[11] = call(cpu, psci::FEATURES, &[0x8400_0005])[0]; // MIGRATE
        r[12] = call(cpu, psci::FEATURES, &[1 << 32 | psci::CPU_ON])[0];
        r[13] = call(cpu, psci::FEATURES, &[0xC400_0190])[0]; // an RSI FID
        r[14] = call(cpu, 0x8400_0005, &[])[0];
        r[15] = call(cpu, 0x8400_0014, &[])[0];
        r[16] = call(cpu, psci::FEATURES | SVE_HINT, &[psci::CPU_ON])[0];
        tx.send(r).unwrap();
    });
    s.finish();
    let r = s.rx.recv().unwrap();
    assert_eq!(r[0], psci::VERSION_1_1);
    assert_eq!(r[1..11], [status::SUCCESS; 10]);
    assert_eq!(r[11..16], [status::NOT_SUPPORTED; 5]);
    assert_eq!(r[16], status::SUCCESS);
}

#[test]
fn cpu_suspend_and_cpu_off() {
    let mut s = smp(|cpu, tx| {
        tx.send(call(cpu, psci::CPU_SUSPEND, &[3, 0x2000, 9]))
            .unwrap();
        call(cpu, psci::CPU_OFF, &[]);
        unreachable!("CPU_OFF returned");
    });
    let exit = s.enter(0);
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..4], [psci::CPU_SUSPEND, 3, 0x2000, 9]);
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[0], status::SUCCESS);
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..4], [psci::CPU_OFF, 0, 0, 0]);
    // Not runnable any more.
    let (rec, run) = (s.recs[0], s.run);
    s.host.fails(RmiReturn::REC, |h| h.rmm.rec_enter(rec, run));
    s.host.assert_guests_ok();
}

#[test]
fn cpu_on_checks_without_exit() {
    let mut s = smp(|cpu, tx| {
        let mut r = [0u64; 18];
        r[0] = call(cpu, psci::CPU_ON, &[0, ENTRY, CTX])[0]; // self
        r[1] = call(cpu, psci::CPU_ON, &[3, ENTRY, CTX])[0]; // no REC 3
        r[2] = call(cpu, psci::CPU_ON, &[0x100, ENTRY, CTX])[0]; // index 16
        r[3] = call(cpu, psci::CPU_ON, &[1 << 24 | 1, ENTRY, CTX])[0]; // bits 31:24
        r[4] = call(cpu, psci::CPU_ON, &[1, 1 << 39, CTX])[0]; // unprotected
        r[5] = call(cpu, psci::CPU_ON, &[1, u64::MAX, CTX])[0];
        r[6] = call(cpu, psci::AFFINITY_INFO, &[0, 0])[0]; // self: ON
        r[7] = call(cpu, psci::AFFINITY_INFO, &[1, 1])[0]; // level != 0
        r[8] = call(cpu, psci::AFFINITY_INFO, &[7, 0])[0]; // no REC 7
        r[9] = call(cpu, psci::AFFINITY_INFO, &[1, 1 << 32])[0]; // x2[63:32] ignored
        tx.send(r).unwrap();
    });
    let exit = s.enter(0);
    // The only exit is AFFINITY_INFO(1) with a valid level.
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..2], [psci::AFFINITY_INFO, 1]);
    assert_eq!(s.complete(1, status::SUCCESS), Ok(()));
    s.finish();
    let r = s.rx.recv().unwrap();
    assert_eq!(r[0], status::ALREADY_ON);
    assert_eq!(r[1..4], [status::INVALID_PARAMETERS; 3]);
    assert_eq!(r[4..6], [status::INVALID_ADDRESS; 2]);
    assert_eq!(r[6], AFF_ON);
    assert_eq!(r[7..9], [status::INVALID_PARAMETERS; 2]);
    assert_eq!(r[9], status::AFFINITY_OFF);
}

#[test]
fn psci_complete_failure_conditions_in_order() {
    let mut s = smp(|cpu, tx| {
        tx.send(call(cpu, psci::CPU_ON, &[1, ENTRY, CTX])).unwrap();
    });
    let [rec0, rec1, rec2] = s.recs;
    let foreign = s.foreign;
    let undelegated = s.host.alloc();
    let rd = s.realm.rd;
    let pc = |h: &mut Host, c: u64, t: u64, st: u64| h.rmm.psci_complete(c, t, st);
    // pending: no request yet (checked after every granule condition).
    s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, rec1, 0));
    let exit = s.enter(0);
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..4], [psci::CPU_ON, 1, ENTRY, CTX]);
    // REC_ENTER of the caller fails until PSCI_COMPLETE.
    let run = s.run;
    s.host.fails(RmiReturn::REC, |h| h.rmm.rec_enter(rec0, run));
    // 1 alias.
    s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, rec0, 0));
    // 2-4 calling.
    for bad in [rec0 + 8, 0, DRAM_BASE + DRAM_SIZE, undelegated, rd] {
        s.host.fails(RmiReturn::INPUT, |h| pc(h, bad, rec1, 0));
    }
    // 5-7 target.
    for bad in [rec1 + 8, !0xfffu64, undelegated, rd] {
        s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, bad, 0));
    }
    // 8 pending: REC 1 has no request.
    s.host.fails(RmiReturn::INPUT, |h| pc(h, rec1, rec0, 0));
    // 9 owner.
    s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, foreign, 0));
    // 10 target: REC 2 is not the MPIDR the realm named.
    s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, rec2, 0));
    // 11 status: only SUCCESS, or DENIED for CPU_ON of a non-runnable REC.
    for bad in [
        status::NOT_SUPPORTED,
        status::INVALID_PARAMETERS,
        status::ALREADY_ON,
        status::INVALID_ADDRESS,
        1,
        0x1234,
    ] {
        s.host.fails(RmiReturn::INPUT, |h| pc(h, rec0, rec1, bad));
    }
    // REC 1 stays off through all of that.
    s.host.fails(RmiReturn::REC, |h| h.rmm.rec_enter(rec1, run));
    assert_eq!(s.complete(1, status::SUCCESS), Ok(()));
    // Completed once: a second completion has nothing pending.
    s.host
        .fails(RmiReturn::INPUT, |h| pc(h, rec0, rec1, status::SUCCESS));
    s.finish();
    let r = s.rx.recv().unwrap();
    assert_eq!(r[..4], [status::SUCCESS, 0, 0, 0]);
}

#[test]
fn cpu_on_starts_the_second_rec() {
    let mut s = smp(|cpu, tx| {
        // Power REC 1 on, then ask again (ALREADY_ON), then power REC 2 on
        // (the host denies it).
        tx.send(call(cpu, psci::CPU_ON, &[1, ENTRY, CTX])).unwrap();
        tx.send(call(cpu, psci::AFFINITY_INFO, &[1, 0])).unwrap();
        tx.send(call(cpu, psci::CPU_ON, &[1, ENTRY + 4, 0]))
            .unwrap();
        tx.send(call(cpu, psci::CPU_ON, &[2, ENTRY, 5])).unwrap();
        tx.send(call(cpu, psci::AFFINITY_INFO, &[2, 0])).unwrap();
    });
    let exit = s.enter(0);
    assert_eq!(exit.gprs[..4], [psci::CPU_ON, 1, ENTRY, CTX]);
    assert_eq!(s.complete(1, status::SUCCESS), Ok(()));
    // REC 1 now runs its guest from the entry point with the context ID.
    let exit = s.enter(1);
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
    let started = s.rx.recv().unwrap();
    assert_eq!(started[0], ENTRY, "pc");
    assert_eq!(started[1], CTX, "x0 = context_id");
    assert_eq!(started[2..], [0; 16], "x1.. zero");
    // Caller: SUCCESS; then AFFINITY_INFO(1) -> ON.
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[..4], [status::SUCCESS, 0, 0, 0]);
    assert_eq!(exit.gprs[..2], [psci::AFFINITY_INFO, 1]);
    // DENIED is not permitted for AFFINITY_INFO.
    let [rec0, rec1, _] = s.recs;
    s.host.fails(RmiReturn::INPUT, |h| {
        h.rmm.psci_complete(rec0, rec1, status::DENIED)
    });
    assert_eq!(s.complete(1, status::SUCCESS), Ok(()));
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[0], AFF_ON);
    // CPU_ON of a REC that is already on: ALREADY_ON, and DENIED is not
    // permitted because the target is runnable.
    assert_eq!(exit.gprs[..4], [psci::CPU_ON, 1, ENTRY + 4, 0]);
    s.host.fails(RmiReturn::INPUT, |h| {
        h.rmm.psci_complete(rec0, rec1, status::DENIED)
    });
    assert_eq!(s.complete(1, status::SUCCESS), Ok(()));
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[0], status::ALREADY_ON);
    // REC 1 was not reset by it: it still runs (IRQ exits), no new start.
    let e1 = s.enter(1);
    assert_eq!(e1.exit_reason, exit_reason::IRQ);
    assert!(s.rx.try_recv().is_err());
    // CPU_ON(2) denied by the host.
    assert_eq!(exit.gprs[..4], [psci::CPU_ON, 2, ENTRY, 5]);
    assert_eq!(s.complete(2, status::DENIED), Ok(()));
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[0], status::DENIED);
    let (rec2, run) = (s.recs[2], s.run);
    s.host.fails(RmiReturn::REC, |h| h.rmm.rec_enter(rec2, run));
    // AFFINITY_INFO(2) -> OFF.
    assert_eq!(exit.gprs[..2], [psci::AFFINITY_INFO, 2]);
    assert_eq!(s.complete(2, status::SUCCESS), Ok(()));
    s.finish();
    assert_eq!(s.rx.recv().unwrap()[0], status::AFFINITY_OFF);
}

#[test]
fn cpu_on_with_sve_hint_and_smc32() {
    let mut s = smp(|cpu, tx| {
        tx.send(call(cpu, psci::CPU_ON | SVE_HINT, &[2, ENTRY, 6]))
            .unwrap();
        tx.send(call(cpu, 0x8400_0004, &[2, 0])).unwrap(); // AFFINITY_INFO SMC32
    });
    let exit = s.enter(0);
    assert_eq!(exit.gprs[..4], [psci::CPU_ON, 2, ENTRY, 6]);
    assert_eq!(s.complete(2, status::SUCCESS), Ok(()));
    let exit = s.enter(0);
    assert_eq!(s.rx.recv().unwrap()[0], status::SUCCESS);
    assert_eq!(exit.gprs[..2], [0x8400_0004, 2]);
    assert_eq!(s.complete(2, status::SUCCESS), Ok(()));
    s.finish();
    assert_eq!(s.rx.recv().unwrap()[0], AFF_ON);
    // REC 2 was powered on: it enters (no guest: an IRQ exit).
    let exit = s.enter(2);
    assert_eq!(exit.exit_reason, exit_reason::IRQ);
}

fn system_off_variant(f: u64) {
    let mut s = smp(move |cpu, _| {
        call(cpu, f, &[]);
        unreachable!("SYSTEM_OFF/RESET returned");
    });
    let exit = s.enter(0);
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    assert_eq!(exit.gprs[..4], [f, 0, 0, 0]);
    let run = s.run;
    for rec in s.recs {
        s.host
            .fails(RmiReturn::realm(1), |h| h.rmm.rec_enter(rec, run));
    }
    assert!(s.host.rmm.realm(s.realm.rd).is_some());
}

#[test]
fn system_off_then_enter_is_realm_1() {
    system_off_variant(psci::SYSTEM_OFF);
}

#[test]
fn system_reset_then_enter_is_realm_1() {
    system_off_variant(psci::SYSTEM_RESET);
}
