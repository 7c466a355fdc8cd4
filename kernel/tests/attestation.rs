//! A realm asks for an attestation token through RSI and gets one that
//! verifies against the platform's CPAK and says what the realm is.

mod support;

use std::sync::mpsc;

use atoll_cca_token::{CcaToken, PlatformKey};
use atoll_kernel::boot::BootError;
use ipc_schema::rsi::{fid, status};
use ipc_schema::smccc::smc_regs;
use support::*;

/// The guest side of getting a token: INIT, then CONTINUE into the granule
/// at `buf` in `chunk`-byte pieces, moving on when it is full.
fn guest_token(
    cpu: &mut atoll_kernel::arch::host::RealmCpu,
    challenge: [u64; 8],
    buf: u64,
    chunk: u64,
) -> Result<Vec<u8>, u64> {
    let init = cpu.smc(smc_regs(fid::ATTEST_TOKEN_INIT, &challenge));
    if init[0] != status::SUCCESS {
        return Err(init[0]);
    }
    let size = init[1] as usize;
    let mut token = Vec::new();
    let mut offset = 0u64;
    loop {
        let len = chunk.min(4096 - offset);
        let r = cpu.smc(smc_regs(fid::ATTEST_TOKEN_CONTINUE, &[buf, offset, len]));
        let mut bytes = vec![0u8; r[1] as usize];
        cpu.read_bytes(buf + offset, &mut bytes).unwrap();
        token.extend_from_slice(&bytes);
        offset = (offset + r[1]) % 4096;
        match r[0] {
            status::SUCCESS => break,
            status::INCOMPLETE => continue,
            other => return Err(other),
        }
    }
    assert_eq!(token.len(), size, "INIT promised the exact size");
    Ok(token)
}

#[test]
fn a_realm_gets_a_token_that_verifies_and_names_it() {
    let mut host = Host::new();
    let root = TestRoot::new();
    let cpak = PlatformKey::from(*root.cpak.verifying_key());
    host.with_attestation(root);
    let (tx, rx) = mpsc::channel();
    let challenge: [u64; 8] = core::array::from_fn(|i| 0x1111 * (i as u64 + 1));
    let (realm, rec, run) = active_realm(&mut host, move |cpu| {
        let rim = cpu.smc(smc_regs(fid::MEASUREMENT_READ, &[0]));
        cpu.smc(smc_regs(fid::MEASUREMENT_EXTEND, &[2, 5, 0x0504030201]));
        tx.send((
            rim,
            guest_token(cpu, challenge, 0x3000, 700),
            guest_token(cpu, challenge, 0x4000, 4096),
        ))
        .unwrap();
    });
    let _ = realm;
    let exit = host.enter(rec, run);
    assert_eq!(exit.0, Ok(()));
    host.assert_guests_ok();
    let (rim, small_chunks, whole) = rx.recv().unwrap();
    for token in [small_chunks.unwrap(), whole.unwrap()] {
        let t = CcaToken::decode(&token).unwrap();
        t.verify(&cpak).expect("token verifies against the CPAK");
        let c = &t.realm.claims;
        let want: Vec<u8> = challenge.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(c.challenge.to_vec(), want);
        let rim_bytes: Vec<u8> = rim[1..5].iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(c.rim, rim_bytes, "the token's RIM is the realm's");
        assert_ne!(
            c.rems[1],
            vec![0; 32],
            "REM 2 was extended before the token"
        );
        assert_eq!(c.rems[0], vec![0; 32]);
    }
}

#[test]
fn without_provisioning_tokens_fail_cleanly() {
    let mut host = Host::new();
    let mut svc = atoll_attestation::AttestationService::new(4);
    host.rmm.services_mut().register(
        ipc_schema::service::ServiceId::Attestation,
        Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp))),
    );
    // No root of trust behind the monitor.
    assert!(matches!(
        host.rmm.boot_attestation(),
        Err(BootError::RootOfTrust(_))
    ));
    let (tx, rx) = mpsc::channel();
    let (_realm, rec, run) = active_realm(&mut host, move |cpu| {
        tx.send(guest_token(cpu, [0; 8], 0x3000, 4096)).unwrap();
    });
    let _ = host.enter(rec, run);
    assert_eq!(rx.recv().unwrap(), Err(status::ERROR_UNKNOWN));
}

#[test]
fn continue_checks_come_in_order_with_a_token_in_progress() {
    let mut host = Host::new();
    host.with_attestation(TestRoot::new());
    let (tx, rx) = mpsc::channel();
    let (realm, rec, run) = active_realm(&mut host, move |cpu| {
        let cont = |cpu: &mut atoll_kernel::arch::host::RealmCpu, a: u64, o: u64, s: u64| {
            cpu.smc(smc_regs(fid::ATTEST_TOKEN_CONTINUE, &[a, o, s]))[0]
        };
        let init = cpu.smc(smc_regs(fid::ATTEST_TOKEN_INIT, &[1, 2, 3, 4, 5, 6, 7, 8]));
        let r = [
            init[0],
            cont(cpu, 0x3008, 0, 64),
            cont(cpu, 1 << 39, 0, 64),
            cont(cpu, 0x3000, 4096, 0),
            cont(cpu, 0x3000, 8, u64::MAX),
            cont(cpu, 0x3000, 100, 3997),
            // A buffer in EMPTY RIPAS (outside the initialised 2 MiB).
            cont(cpu, 0x40_0000, 0, 64),
        ];
        tx.send(r).unwrap();
        // RAM but unmapped: the host must map it, then the call completes.
        let r = cpu.smc(smc_regs(fid::ATTEST_TOKEN_CONTINUE, &[0x10_0000, 0, 4096]));
        tx.send([r[0], r[1], 0, 0, 0, 0, 0]).unwrap();
    });
    let (res, exit) = host.enter(rec, run);
    assert_eq!(res, Ok(()));
    let r = rx.recv().unwrap();
    assert_eq!(r[0], status::SUCCESS);
    assert_eq!(r[1..7], [status::ERROR_INPUT; 6]);
    assert_eq!(
        exit.exit_reason,
        ipc_schema::rmi::exit_reason::SYNC,
        "data abort for the unmapped buffer"
    );
    assert_eq!(exit.hpfar, (0x10_0000 >> 12) << 4);
    let data = host.delegated();
    assert_eq!(
        host.rmm.data_create_unknown(realm.rd, data, 0x10_0000),
        Ok(())
    );
    let _ = host.enter(rec, run);
    let r = rx.recv().unwrap();
    assert_eq!(
        (r[0], r[1]),
        (status::INCOMPLETE, 0),
        "first CONTINUE signs"
    );
    host.assert_guests_ok();
}
