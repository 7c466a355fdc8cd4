//! Services isolated on their own threads: same results as in-process, and
//! a service that fails, hangs or answers garbage gets the caller an error
//! while the core carries on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atoll_kernel::arch::host::{SimMachine, ThreadTransport};
use atoll_kernel::granule::GranuleState;
use atoll_kernel::services::ServiceTransport;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_measurement::MeasurementService;
use ipc_schema::rmi::{
    self, exit_reason, RmiRealmParams, RmiRecEnter, RmiRecExit, RmiRecParams, RmiReturn,
};
use ipc_schema::rsi::{fid, status};
use ipc_schema::service::ServiceId;
use ipc_schema::smccc::smc_regs;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const BASE: u64 = 0x8000_0000;
const G: u64 = 4096;

fn measurement_on_a_thread(timeout: Duration) -> ThreadTransport {
    let mut t = ThreadTransport::new(timeout);
    t.register(
        ServiceId::Measurement,
        Box::new(|| {
            let mut svc = MeasurementService::new(8);
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp)))
        }),
    );
    t
}

struct Built {
    rd: u64,
    rec: u64,
    run: u64,
}

/// Builds a small realm (one measured page, one REC) and activates it.
fn build<T: ServiceTransport>(rmm: &mut Rmm<SimMachine, T>) -> Result<Built, RmiReturn> {
    let mut next = BASE;
    let mut page = |rmm: &mut Rmm<SimMachine, T>, delegate: bool| {
        let pa = next;
        next += G;
        if delegate {
            rmm.granule_delegate(pa).unwrap();
        }
        pa
    };
    let rtt = page(rmm, true);
    let rd = page(rmm, true);
    let mut p = RmiRealmParams::new_zeroed();
    p.s2sz = 39;
    p.num_bps = 1;
    p.num_wps = 1;
    p.rtt_base = rtt;
    p.rtt_level_start = 1;
    p.rtt_num_start = 1;
    let params = page(rmm, false);
    rmm.platform_mut().ns_write(params, p.as_bytes()).unwrap();
    rmm.realm_create(rd, params)?;
    for level in 2..=3 {
        let t = page(rmm, true);
        rmm.rtt_create(rd, t, 0, level)?;
    }
    let out = rmm.rtt_init_ripas(rd, 0, 0x20_0000);
    if !out.ret.is_success() {
        return Err(out.ret);
    }
    let src = page(rmm, false);
    rmm.platform_mut().ns_write(src, &[0x42; 4096]).unwrap();
    let data = page(rmm, true);
    rmm.data_create(rd, data, 0, src, rmi::data_flags::MEASURE_CONTENT)?;
    let mut rp = RmiRecParams::new_zeroed();
    rp.flags = rmi::rec_flags::RUNNABLE;
    rp.num_aux = u64::from(rmm.config().rec_aux_count);
    for i in 0..rp.num_aux as usize {
        rp.aux[i] = page(rmm, true);
    }
    let rparams = page(rmm, false);
    rmm.platform_mut().ns_write(rparams, rp.as_bytes()).unwrap();
    let rec = page(rmm, true);
    rmm.rec_create(rd, rec, rparams)?;
    rmm.realm_activate(rd)?;
    let run = page(rmm, false);
    rmm.platform_mut()
        .ns_write(run, RmiRecEnter::new_zeroed().as_bytes())
        .unwrap();
    Ok(Built { rd, rec, run })
}

/// Runs REC `b.rec` with a guest that reads the RIM and reports x0..x8 in
/// a host call's registers (through an exit the host can read).
fn rim_seen_by_realm<T: ServiceTransport>(rmm: &mut Rmm<SimMachine, T>, b: &Built) -> [u64; 9] {
    rmm.platform_mut().attach_guest(
        b.rec,
        Box::new(|cpu| {
            let out = cpu.smc(smc_regs(fid::MEASUREMENT_READ, &[0]));
            let mut call = [0u8; 256];
            for (i, w) in out[..9].iter().enumerate() {
                call[8 + 8 * i..16 + 8 * i].copy_from_slice(&w.to_le_bytes());
            }
            cpu.write_bytes(0x800, &call).unwrap();
            cpu.smc(smc_regs(fid::HOST_CALL, &[0x800]));
        }),
    );
    assert_eq!(rmm.rec_enter(b.rec, b.run), Ok(()));
    let mut raw = [0u8; 0x800];
    rmm.platform().ns_read(b.run + 0x800, &mut raw).unwrap();
    let exit = RmiRecExit::read_from_bytes(&raw).unwrap();
    assert_eq!(exit.exit_reason, exit_reason::HOST_CALL);
    exit.gprs[..9].try_into().unwrap()
}

#[test]
fn a_threaded_service_gives_the_same_rim_as_an_in_process_one() {
    let mut threaded = Rmm::new(
        SimMachine::new(BASE, 8 << 20),
        measurement_on_a_thread(Duration::from_secs(10)),
        RmmConfig::default(),
    );
    let (local_t, _) = {
        let mut svc = MeasurementService::new(8);
        let mut t = atoll_kernel::arch::host::LocalTransport::new();
        t.register(
            ServiceId::Measurement,
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp))),
        );
        (t, ())
    };
    let mut local = Rmm::new(
        SimMachine::new(BASE, 8 << 20),
        local_t,
        RmmConfig::default(),
    );
    let a = build(&mut threaded).unwrap();
    let b = build(&mut local).unwrap();
    let ra = rim_seen_by_realm(&mut threaded, &a);
    let rb = rim_seen_by_realm(&mut local, &b);
    assert_eq!(ra[0], status::SUCCESS);
    assert_eq!(ra, rb);
}

#[test]
fn a_garbage_answer_fails_the_command_and_changes_nothing() {
    let mut t = ThreadTransport::new(Duration::from_secs(10));
    t.register(
        ServiceId::Measurement,
        Box::new(|| {
            Box::new(|_req, _leases, resp: &mut [u8]| {
                resp[..4].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
                Some(4)
            })
        }),
    );
    let mut rmm = Rmm::new(SimMachine::new(BASE, 8 << 20), t, RmmConfig::default());
    assert_eq!(build(&mut rmm).err(), Some(RmiReturn::INPUT));
    // REALM_CREATE failed: the RD and RTT are still merely delegated.
    assert_eq!(rmm.granules().count(GranuleState::Rd), 0);
    assert_eq!(rmm.granules().count(GranuleState::Rtt), 0);
    assert_eq!(rmm.granules().count(GranuleState::Delegated), 2);
}

#[test]
fn a_crashing_service_is_restarted_and_the_realm_gets_an_error() {
    let crash = Arc::new(AtomicBool::new(false));
    let c = crash.clone();
    let mut t = ThreadTransport::new(Duration::from_secs(10));
    t.register(
        ServiceId::Measurement,
        Box::new(move || {
            let mut svc = MeasurementService::new(8);
            let c = c.clone();
            Box::new(move |req, leases, resp| {
                if c.load(Ordering::SeqCst) {
                    panic!("measurement service fault (injected)");
                }
                Some(svc.handle_bytes(req, leases, resp))
            })
        }),
    );
    let mut rmm = Rmm::new(SimMachine::new(BASE, 8 << 20), t, RmmConfig::default());
    let b = build(&mut rmm).unwrap();
    crash.store(true, Ordering::SeqCst);
    let seen = rim_seen_by_realm(&mut rmm, &b);
    assert_eq!(
        seen[0],
        status::ERROR_UNKNOWN,
        "the realm gets an RSI error"
    );
    assert_eq!(
        rmm.services_mut().generation(ServiceId::Measurement),
        Some(1)
    );
    // The restarted instance starts empty: it no longer knows the realm, and
    // says so; the core still answers.
    crash.store(false, Ordering::SeqCst);
    let seen = rim_seen_by_realm(&mut rmm, &b);
    assert_eq!(seen[0], status::ERROR_UNKNOWN);
    assert!(rmm.realm(b.rd).is_some());
}

#[test]
fn a_hung_service_times_out_instead_of_hanging_the_core() {
    let mut t = ThreadTransport::new(Duration::from_millis(200));
    t.register(
        ServiceId::Measurement,
        Box::new(|| {
            Box::new(|_req, _leases, _resp| {
                std::thread::sleep(Duration::from_secs(3600));
                None
            })
        }),
    );
    let mut rmm = Rmm::new(SimMachine::new(BASE, 8 << 20), t, RmmConfig::default());
    assert_eq!(build(&mut rmm).err(), Some(RmiReturn::INPUT));
    assert_eq!(
        rmm.services_mut().generation(ServiceId::Measurement),
        Some(1)
    );
    assert_eq!(rmm.granules().count(GranuleState::Rd), 0);
}
