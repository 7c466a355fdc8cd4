extern crate std;

use alloc::string::String;
use alloc::vec;

use ipc_schema::rmi::{exit_reason, rec_enter_flags, RmiRecExit};
use ipc_schema::smccc::psci;
use zerocopy::FromZeros;

use super::*;

fn host_call(imm: u16, data: &[u8]) -> RmiRecExit {
    let mut e = RmiRecExit::new_zeroed();
    e.exit_reason = exit_reason::HOST_CALL;
    e.imm = imm;
    e.gprs[0] = data.len() as u64;
    for (r, chunk) in e.gprs[1..].iter_mut().zip(data.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *r = u64::from_le_bytes(b);
    }
    e
}

fn answer(a: &Action) -> u64 {
    match a {
        Action::Enter { flags: 0, gprs } => gprs[0],
        other => panic!("not a plain entry: {other:?}"),
    }
}

#[test]
fn console_lines_are_prefixed_and_split() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    let a = h.handle(&host_call(HOST_CALL_CONSOLE, b"hello\nwor"), &mut out);
    assert_eq!(answer(&a), 9);
    assert_eq!(out, "realm: hello\n");
    h.handle(&host_call(HOST_CALL_CONSOLE, b"ld\x01\r\n"), &mut out);
    assert_eq!(out, "realm: hello\nrealm: world.\n");
    assert!(!h.line_pending());
    h.handle(&host_call(HOST_CALL_CONSOLE, b"tail"), &mut out);
    assert!(h.line_pending());
    h.flush_line(&mut out);
    assert!(out.ends_with("realm: tail\n"));
}

#[test]
fn token_pieces_and_end_marker() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    let token: vec::Vec<u8> = (0..500u32).map(|i| i as u8).collect();
    for piece in token.chunks(HOST_CALL_MAX) {
        let a = h.handle(&host_call(HOST_CALL_TOKEN, piece), &mut out);
        assert_eq!(answer(&a), piece.len() as u64);
    }
    assert!(!h.token_done);
    h.handle(&host_call(HOST_CALL_TOKEN, &[]), &mut out);
    assert!(h.token_done);
    assert_eq!(h.token, token);
    assert!(out.is_empty());
}

#[test]
fn rim_and_bad_lengths() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    let a = h.handle(&host_call(HOST_CALL_RIM, &[7; 32]), &mut out);
    assert_eq!(answer(&a), 32);
    assert_eq!(h.rim.as_deref(), Some(&[7u8; 32][..]));
    // Lengths beyond what registers carry, and unknown immediates.
    let mut e = host_call(HOST_CALL_CONSOLE, b"x");
    e.gprs[0] = 241;
    assert_eq!(answer(&h.handle(&e, &mut out)), HOST_CALL_UNKNOWN);
    let mut e = host_call(HOST_CALL_RIM, b"x");
    e.gprs[0] = 65;
    assert_eq!(answer(&h.handle(&e, &mut out)), HOST_CALL_UNKNOWN);
    assert_eq!(
        answer(&h.handle(&host_call(0x1234, b"x"), &mut out)),
        HOST_CALL_UNKNOWN
    );
    assert_eq!(h.rim.as_deref(), Some(&[7u8; 32][..]));
}

#[test]
fn token_is_bounded() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    let piece = [1u8; HOST_CALL_MAX];
    let mut refused = false;
    for _ in 0..(MAX_TOKEN / HOST_CALL_MAX + 2) {
        if answer(&h.handle(&host_call(HOST_CALL_TOKEN, &piece), &mut out)) == HOST_CALL_UNKNOWN {
            refused = true;
        }
    }
    assert!(refused);
    assert!(h.token.len() <= MAX_TOKEN);
}

#[test]
fn other_exits() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    let mut e = RmiRecExit::new_zeroed();
    e.exit_reason = exit_reason::IRQ;
    assert_eq!(answer(&h.handle(&e, &mut out)), 0);

    e.exit_reason = exit_reason::SYNC;
    e.esr = (0x24 << 26) | (1 << 24); // data abort with ISV: emulated MMIO
    assert_eq!(
        h.handle(&e, &mut out),
        Action::Enter {
            flags: rec_enter_flags::EMUL_MMIO,
            gprs: [0; 31]
        }
    );
    e.esr = 0x24 << 26; // no ISV: not emulatable
    assert!(matches!(
        h.handle(&e, &mut out),
        Action::Stop(Stop::Unexpected(_))
    ));
    e.esr = 0x01 << 26; // WFI
    assert_eq!(answer(&h.handle(&e, &mut out)), 0);

    e.exit_reason = exit_reason::RIPAS_CHANGE;
    e.ripas_base = 0x1000;
    e.ripas_top = 0x3000;
    assert_eq!(
        h.handle(&e, &mut out),
        Action::SetRipas {
            base: 0x1000,
            top: 0x3000
        }
    );

    e.exit_reason = exit_reason::PSCI;
    e.gprs[0] = psci::SYSTEM_OFF;
    assert_eq!(h.handle(&e, &mut out), Action::Stop(Stop::SystemOff));
    e.gprs[0] = psci::SYSTEM_OFF | 0x4000_0000;
    assert_eq!(h.handle(&e, &mut out), Action::Stop(Stop::SystemOff));
    e.gprs[0] = psci::SYSTEM_RESET;
    assert_eq!(h.handle(&e, &mut out), Action::Stop(Stop::SystemReset));
    e.gprs[0] = psci::CPU_ON;
    e.gprs[1] = 0x1;
    assert_eq!(
        h.handle(&e, &mut out),
        Action::PsciComplete { target_mpidr: 1 }
    );
    e.gprs[0] = psci::VERSION;
    assert_eq!(answer(&h.handle(&e, &mut out)), 0);

    e.exit_reason = 99;
    assert!(matches!(
        h.handle(&e, &mut out),
        Action::Stop(Stop::Unexpected(_))
    ));
    assert_eq!(h.exits, 11);
}

#[test]
fn report_lines() {
    let mut out = String::new();
    report(&mut out, Some(&[0xab, 0x01]), Some(&[0xff])).unwrap();
    assert_eq!(out, "ATOLL-RIM ab01\nATOLL-TOKEN ff\nATOLL-DONE\n");
    let mut out = String::new();
    report(&mut out, None, None).unwrap();
    assert_eq!(
        out,
        "ATOLL-ERROR the realm sent no RIM\nATOLL-ERROR the realm sent no token\nATOLL-DONE\n"
    );
}

/// The plan ns-host embeds (when it has been generated) decodes with the
/// same code the firmware runs.
#[test]
fn embedded_plan_decodes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/qemu/realm.plan");
    let Ok(bytes) = std::fs::read(path) else {
        std::eprintln!("{path} not generated; skipped");
        return;
    };
    let plan = atoll_realm_description::blob::decode(&bytes).unwrap();
    assert_eq!(plan.name(), Some("qemu-realm"));
    assert_eq!(plan.recs().len(), 1);
    assert_eq!(plan.recs()[0].params.pc, 0x8_0000);
    assert_eq!(plan.recs()[0].params.gprs, [0xA5A5_A5A5_A5A5_A5A5; 8]);
}

#[test]
fn rates_come_from_ticks_and_frequency() {
    // 2000 pairs in 0.5 s at 62.5 MHz.
    let r = rate(2000, 31_250_000, 62_500_000).unwrap();
    assert_eq!(
        r,
        Rate {
            per_s: 4000,
            elapsed_us: 500_000
        }
    );
    // 1 GHz counter, 2000 pairs in 123_456_789 ns: rounded down.
    let r = rate(2000, 123_456_789, 1_000_000_000).unwrap();
    assert_eq!(r.per_s, 16_200);
    assert_eq!(r.elapsed_us, 123_456);
    // No overflow with large operands; saturation beyond u64.
    let r = rate(u64::MAX, u64::MAX, u64::MAX).unwrap();
    assert_eq!(
        r,
        Rate {
            per_s: u64::MAX,
            elapsed_us: 1_000_000
        }
    );
    assert_eq!(rate(u64::MAX, 1, 1_000_000_000).unwrap().per_s, u64::MAX);
    // Nothing to divide by.
    assert_eq!(rate(2000, 0, 1_000_000_000), None);
    assert_eq!(rate(2000, 100, 0), None);
}

#[test]
fn the_perf_line_names_the_figure() {
    let mut out = String::new();
    let r = rate(2000, 31_250_000, 62_500_000).unwrap();
    perf_line(&mut out, PERF_DELEGATE_PAIRS, 2000, r).unwrap();
    assert_eq!(
        out,
        "ATOLL-PERF rmi_delegate_undelegate_pairs_per_s 4000 ops 2000 elapsed_us 500000\n"
    );
}

#[test]
fn the_metadata_line_is_kept_and_reported() {
    let mut h = ExitHandler::new();
    let mut out = String::new();
    h.handle(
        &host_call(HOST_CALL_CONSOLE, b"ATOLL-METADATA com.atoll.qemu-realm\n"),
        &mut out,
    );
    assert_eq!(out, "realm: ATOLL-METADATA com.atoll.qemu-realm\n");
    assert_eq!(h.realm_id.as_deref(), Some("com.atoll.qemu-realm"));
    // Other lines, an empty id or one with control bytes change nothing.
    h.handle(
        &host_call(
            HOST_CALL_CONSOLE,
            b"ATOLL-METADATAx y\nATOLL-METADATA \nATOLL-METADATA a\x01\n",
        ),
        &mut out,
    );
    assert_eq!(h.realm_id.as_deref(), Some("com.atoll.qemu-realm"));
    let mut r = String::new();
    metadata_line(&mut r, h.realm_id.as_deref()).unwrap();
    metadata_line(&mut r, None).unwrap();
    assert_eq!(
        r,
        "ATOLL-METADATA com.atoll.qemu-realm\nATOLL-ERROR the realm reported no metadata realm id\n"
    );
}
