//! RMM benchmarks, each with its baseline measured in the same run.
//!
//! * `realm_build_64mib`: delegate, create, RTTs, INIT_RIPAS, 16384
//!   measured DATA_CREATEs, a REC and ACTIVATE for a 64 MiB realm, against
//!   SHA-256 of the same 16384 pages with `sha2` alone (the hashing the
//!   RMM cannot avoid). Target: at most 1.25x.
//! * `rmi/delegate_undelegate_1024`: GRANULE_DELEGATE+UNDELEGATE pairs.
//! * `rsi/measurement_extend_1024`: RSI_MEASUREMENT_EXTEND calls made by a
//!   running REC (an inline guest, so no host thread switch per call), and
//!   the same requests to the measurement service alone.

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::hint::black_box;

use atoll_kernel::arch::host::{LocalTransport, SimMachine};
use atoll_kernel::arch::Trap;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_measurement::MeasurementService;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use ipc_schema::rmi::{self, RmiRealmParams, RmiRecEnter, RmiRecParams};
use ipc_schema::rsi;
use ipc_schema::service::measurement::MeasurementRequest;
use ipc_schema::service::{RealmHandle, ServiceId};
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};
use zerocopy::{FromZeros, IntoBytes};

const BASE: u64 = 0x8000_0000;
const G: u64 = 4096;
const REALM_BYTES: u64 = 64 << 20;
const PAGES: u64 = REALM_BYTES / G;

type BenchRmm = Rmm<SimMachine, LocalTransport>;

/// A machine with `size` bytes of DRAM, every page touched (so the host
/// OS's first-touch page faults are not measured as RMM work), and an RMM
/// with the measurement service behind the in-process transport.
fn machine(size: u64) -> BenchRmm {
    let mut m = SimMachine::new(BASE, size);
    let chunk = vec![0u8; 1 << 20];
    for off in (0..size).step_by(chunk.len()) {
        m.ns_write(BASE + off, &chunk).unwrap();
    }
    let mut service = MeasurementService::new(16);
    let mut t = LocalTransport::new();
    t.register(
        ServiceId::Measurement,
        Box::new(move |req, leases, resp| Some(service.handle_bytes(req, leases, resp))),
    );
    Rmm::new(m, t, RmmConfig::default())
}

/// Pseudo-random realm image bytes (xorshift), so hashing is not of zeros.
fn image() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..REALM_BYTES / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

struct Alloc(u64);

impl Alloc {
    fn page(&mut self) -> u64 {
        let pa = self.0;
        self.0 += G;
        pa
    }
}

fn delegate(rmm: &mut BenchRmm, pa: u64) {
    rmm.granule_delegate(pa).expect("delegate");
}

/// Builds and activates the 64 MiB realm whose image is at `image_pa`;
/// granules come from `alloc`.
fn build_realm(rmm: &mut BenchRmm, image_pa: u64, alloc: &mut Alloc) -> (u64, u64) {
    alloc.0 = alloc.0.next_multiple_of(2 * G);
    let rtt_base = alloc.page();
    let _second = alloc.page();
    delegate(rmm, rtt_base);
    delegate(rmm, rtt_base + G);
    let rd = alloc.page();
    delegate(rmm, rd);
    let mut p = RmiRealmParams::new_zeroed();
    p.s2sz = 40;
    p.num_bps = 2;
    p.num_wps = 2;
    p.hash_algo = rmi::hash_algo::SHA_256;
    p.rtt_base = rtt_base;
    p.rtt_level_start = 1;
    p.rtt_num_start = 2;
    p.vmid = 1;
    let params = alloc.page();
    rmm.platform_mut().ns_write(params, p.as_bytes()).unwrap();
    rmm.realm_create(rd, params).expect("realm create");

    // The efficient order for a large realm: RIPAS initialised on 2 MiB
    // entries (32 RIPAS measurements), then level-3 tables that inherit it.
    let l2 = alloc.page();
    delegate(rmm, l2);
    rmm.rtt_create(rd, l2, 0, 2).expect("rtt l2");
    let mut base = 0;
    while base < REALM_BYTES {
        let out = rmm.rtt_init_ripas(rd, base, REALM_BYTES);
        assert!(out.ret.is_success());
        base = out.out[0];
    }
    for i in 0..REALM_BYTES / (2 << 20) {
        let l3 = alloc.page();
        delegate(rmm, l3);
        rmm.rtt_create(rd, l3, i * (2 << 20), 3).expect("rtt l3");
    }
    for i in 0..PAGES {
        let data = alloc.page();
        delegate(rmm, data);
        rmm.data_create(
            rd,
            data,
            i * G,
            image_pa + i * G,
            rmi::data_flags::MEASURE_CONTENT,
        )
        .expect("data create");
    }
    let rec = alloc.page();
    delegate(rmm, rec);
    let mut rp = RmiRecParams::new_zeroed();
    rp.flags = rmi::rec_flags::RUNNABLE;
    rp.num_aux = u64::from(rmm.config().rec_aux_count);
    for i in 0..rp.num_aux as usize {
        rp.aux[i] = alloc.page();
        delegate(rmm, rp.aux[i]);
    }
    let rparams = alloc.page();
    rmm.platform_mut().ns_write(rparams, rp.as_bytes()).unwrap();
    rmm.rec_create(rd, rec, rparams).expect("rec create");
    rmm.realm_activate(rd).expect("activate");
    (rd, rec)
}

fn realm_build(c: &mut Criterion) {
    let image = image();
    let mut g = c.benchmark_group("realm_build_64mib");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Bytes(REALM_BYTES));
    g.bench_function("sha256_baseline", |b| {
        b.iter(|| {
            for page in image.chunks(G as usize) {
                black_box(Sha256::digest(black_box(page)));
            }
        })
    });
    g.bench_function("rmm", |b| {
        b.iter_batched(
            || {
                let mut rmm = machine(REALM_BYTES * 2 + (8 << 20));
                rmm.platform_mut().ns_write(BASE, &image).unwrap();
                rmm
            },
            |mut rmm| {
                let mut alloc = Alloc(BASE + REALM_BYTES);
                black_box(build_realm(&mut rmm, BASE, &mut alloc));
                rmm
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn rmi(c: &mut Criterion) {
    let mut g = c.benchmark_group("rmi");
    let mut rmm = machine(8 << 20);
    g.bench_function("delegate_undelegate_1024", |b| {
        b.iter(|| {
            for i in 0..1024 {
                let pa = BASE + i * G;
                rmm.granule_delegate(pa).unwrap();
                rmm.granule_undelegate(pa).unwrap();
            }
        })
    });
    g.finish();
}

fn rsi_extend(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsi");
    let mut rmm = machine(16 << 20);
    let mut alloc = Alloc(BASE);
    // A small active realm with one REC.
    let rtt_base = {
        alloc.0 = alloc.0.next_multiple_of(2 * G);
        let b = alloc.page();
        alloc.page();
        delegate(&mut rmm, b);
        delegate(&mut rmm, b + G);
        b
    };
    let rd = alloc.page();
    delegate(&mut rmm, rd);
    let mut p = RmiRealmParams::new_zeroed();
    p.s2sz = 40;
    p.num_bps = 2;
    p.num_wps = 2;
    p.rtt_base = rtt_base;
    p.rtt_level_start = 1;
    p.rtt_num_start = 2;
    let params = alloc.page();
    rmm.platform_mut().ns_write(params, p.as_bytes()).unwrap();
    rmm.realm_create(rd, params).unwrap();
    let rec = alloc.page();
    delegate(&mut rmm, rec);
    let mut rp = RmiRecParams::new_zeroed();
    rp.flags = rmi::rec_flags::RUNNABLE;
    rp.num_aux = u64::from(rmm.config().rec_aux_count);
    for i in 0..rp.num_aux as usize {
        rp.aux[i] = alloc.page();
        delegate(&mut rmm, rp.aux[i]);
    }
    let rparams = alloc.page();
    rmm.platform_mut().ns_write(rparams, rp.as_bytes()).unwrap();
    rmm.rec_create(rd, rec, rparams).unwrap();
    rmm.realm_activate(rd).unwrap();
    let run = alloc.page();
    rmm.platform_mut()
        .ns_write(run, RmiRecEnter::new_zeroed().as_bytes())
        .unwrap();

    // 1024 extends, then an interrupt for the host.
    let mut n = 0u32;
    rmm.platform_mut().attach_inline_guest(
        rec,
        Box::new(move |_resume, regs| {
            if n == 1024 {
                n = 0;
                return Trap::Irq;
            }
            n += 1;
            regs.gprs[0] = rsi::fid::MEASUREMENT_EXTEND;
            regs.gprs[1] = 1;
            regs.gprs[2] = 64;
            regs.gprs[3..11].fill(u64::from(n));
            Trap::Smc
        }),
    );
    g.bench_function("measurement_extend_1024", |b| {
        b.iter(|| rmm.rec_enter(rec, run).unwrap())
    });

    let mut service = MeasurementService::new(1);
    service.handle(MeasurementRequest::RealmCreate {
        realm: RealmHandle(1),
        algo: ipc_schema::service::HashAlgo::Sha256,
        params: ipc_schema::service::measurement::MeasuredRealmParams {
            flags: 0,
            s2sz: 40,
            sve_vl: 0,
            num_bps: 2,
            num_wps: 2,
            pmu_num_ctrs: 0,
            hash_algo: 0,
        },
    });
    let data = BoundedBytes::<64>::new(&[7; 64]).unwrap();
    g.bench_function("measurement_service_extend_1024", |b| {
        b.iter(|| {
            for _ in 0..1024 {
                black_box(service.handle(MeasurementRequest::Extend {
                    realm: RealmHandle(1),
                    index: 1,
                    data: data.clone(),
                }));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, realm_build, rmi, rsi_extend);
criterion_main!(benches);
