//! End-to-end smoke test of the simulated RMM: build a realm, run a guest
//! that uses RSI, serve its host call.

mod support;

use ipc_schema::rmi::exit_reason;
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::smc_regs;
use support::*;

#[test]
fn realm_runs_rsi_calls_and_a_host_call() {
    let mut host = Host::new();
    let (_realm, rec, run) = active_realm(&mut host, |cpu| {
        let out = cpu.smc(smc_regs(fid::VERSION, &[0x1_0000]));
        assert_eq!(out[0], status::SUCCESS);
        let rim = cpu.smc(smc_regs(fid::MEASUREMENT_READ, &[0]));
        assert_eq!(rim[0], status::SUCCESS);
        assert_ne!(rim[1], 0);
        // Host call structure at IPA 0x2000.
        cpu.write_bytes(0x2000, &[0; 256]).unwrap();
        cpu.store(0x2000, 2, 0x42).unwrap();
        cpu.store(0x2008, 8, 7).unwrap();
        let out = cpu.smc(smc_regs(fid::HOST_CALL, &[0x2000]));
        assert_eq!(out[0], status::SUCCESS);
        assert_eq!(cpu.load(0x2008, 8).unwrap(), 99);
    });
    let (r, exit) = host.enter(rec, run);
    assert_eq!(r, Ok(()));
    assert_eq!(exit.exit_reason, exit_reason::HOST_CALL);
    assert_eq!(exit.imm, 0x42);
    assert_eq!(exit.gprs[0], 7);
    let mut enter = <ipc_schema::rmi::RmiRecEnter as zerocopy::FromZeros>::new_zeroed();
    enter.gprs[0] = 99;
    let (r, exit) = host.enter_with(rec, run, &enter);
    assert_eq!(r, Ok(()));
    // The program ends: the vCPU powers off.
    assert_eq!(exit.exit_reason, exit_reason::PSCI);
    host.assert_guests_ok();
}
