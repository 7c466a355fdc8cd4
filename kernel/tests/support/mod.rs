//! A normal-world host for kernel tests: a simulated machine, the RMM with a
//! real measurement service behind the in-process transport, and helpers
//! that do what a hypervisor would (allocate NS pages, delegate, write
//! params pages, build realms, enter RECs).
#![allow(dead_code, missing_docs)]

use std::sync::{Arc, Mutex};

use atoll_kernel::arch::host::{LocalTransport, RealmCpu, SimMachine};
use atoll_kernel::arch::Platform;
use atoll_kernel::rmi::RmiOutput;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_measurement::MeasurementService;
use ipc_schema::rmi::{self, RmiRealmParams, RmiRecEnter, RmiRecExit, RmiRecParams, RmiReturn};
use ipc_schema::service::ServiceId;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

pub const DRAM_BASE: u64 = 0x8000_0000;
pub const DRAM_SIZE: u64 = 64 << 20;
pub const G: u64 = 4096;

pub type TestRmm = Rmm<SimMachine, LocalTransport>;

/// The measurement service, shared so tests can look inside it.
pub type SharedMeasurement = Arc<Mutex<MeasurementService>>;

pub fn transport_with_measurement() -> (LocalTransport, SharedMeasurement) {
    let service = Arc::new(Mutex::new(MeasurementService::new(64)));
    let s = service.clone();
    let mut t = LocalTransport::new();
    t.register(
        ServiceId::Measurement,
        Box::new(move |req, leases, resp| Some(s.lock().unwrap().handle_bytes(req, leases, resp))),
    );
    (t, service)
}

pub struct Host {
    pub rmm: TestRmm,
    pub measurement: SharedMeasurement,
    next: u64,
}

/// A realm the host built.
#[derive(Copy, Clone, Debug)]
pub struct RealmRef {
    pub rd: u64,
    pub rtt_base: u64,
    pub ipa_width: u64,
    pub start_level: i64,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    pub fn new() -> Self {
        Self::with_config(RmmConfig::default())
    }

    pub fn with_config(config: RmmConfig) -> Self {
        Self::with_size(DRAM_SIZE, config)
    }

    pub fn with_size(size: u64, config: RmmConfig) -> Self {
        let (t, measurement) = transport_with_measurement();
        let machine = SimMachine::new(DRAM_BASE, size);
        Self {
            rmm: Rmm::new(machine, t, config),
            measurement,
            next: DRAM_BASE,
        }
    }

    /// A fresh NS granule (zeroed).
    pub fn alloc(&mut self) -> u64 {
        let pa = self.next;
        self.next += G;
        assert!(pa < DRAM_BASE + self.dram_size(), "test host out of memory");
        pa
    }

    /// `n` contiguous NS granules aligned to `align` bytes.
    pub fn alloc_aligned(&mut self, n: u64, align: u64) -> u64 {
        self.next = self.next.div_ceil(align) * align;
        let pa = self.next;
        self.next += n * G;
        pa
    }

    pub fn dram_size(&self) -> u64 {
        self.rmm.platform().dram()[0].size
    }

    pub fn delegate(&mut self, pa: u64) {
        assert_eq!(self.rmm.granule_delegate(pa), Ok(()), "delegate {pa:#x}");
    }

    /// A fresh delegated granule.
    pub fn delegated(&mut self) -> u64 {
        let pa = self.alloc();
        self.delegate(pa);
        pa
    }

    pub fn write(&mut self, pa: u64, bytes: &[u8]) {
        self.rmm
            .platform_mut()
            .ns_write(pa, bytes)
            .expect("NS write");
    }

    pub fn read(&self, pa: u64, buf: &mut [u8]) {
        self.rmm.platform().ns_read(pa, buf).expect("NS read");
    }

    /// Default realm parameters: 40-bit IPA, starting level 1 with two
    /// concatenated tables, SHA-256.
    pub fn default_params(&mut self) -> RmiRealmParams {
        let mut p = RmiRealmParams::new_zeroed();
        p.s2sz = 40;
        p.num_bps = 2;
        p.num_wps = 2;
        p.hash_algo = rmi::hash_algo::SHA_256;
        p.rtt_level_start = 1;
        p.rtt_num_start = 2;
        p.vmid = 1;
        p
    }

    /// Writes params into a fresh NS page.
    pub fn params_page<T: IntoBytes + zerocopy::Immutable>(&mut self, params: &T) -> u64 {
        let pa = self.alloc();
        self.write(pa, params.as_bytes());
        pa
    }

    /// Delegated, contiguous, aligned starting RTTs for `p`.
    pub fn starting_rtts(&mut self, num: u64) -> u64 {
        let base = self.alloc_aligned(num, num * G);
        for i in 0..num {
            self.delegate(base + i * G);
        }
        base
    }

    /// Creates a realm from `p` (rtt_base filled in).
    pub fn create_realm_with(&mut self, mut p: RmiRealmParams) -> RealmRef {
        let rtt_base = self.starting_rtts(u64::from(p.rtt_num_start));
        p.rtt_base = rtt_base;
        let rd = self.delegated();
        let params = self.params_page(&p);
        assert_eq!(self.rmm.realm_create(rd, params), Ok(()));
        RealmRef {
            rd,
            rtt_base,
            ipa_width: p.s2sz,
            start_level: p.rtt_level_start,
        }
    }

    pub fn create_realm(&mut self) -> RealmRef {
        let p = self.default_params();
        self.create_realm_with(p)
    }

    /// Builds tables down to `level` covering `ipa`.
    pub fn rtts_to(&mut self, realm: &RealmRef, ipa: u64, level: i64) {
        for l in (realm.start_level + 1)..=level {
            let out = self
                .rmm
                .rtt_read_entry(realm.rd, align(ipa, l - 1), (l - 1) as u64);
            if out.out[1] == rmi::rtt_state::TABLE && out.out[0] as i64 == l - 1 {
                continue;
            }
            let rtt = self.delegated();
            let r = self
                .rmm
                .rtt_create(realm.rd, rtt, align(ipa, l - 1), l as u64);
            assert_eq!(r, Ok(()), "RTT_CREATE level {l} at {ipa:#x}");
        }
    }

    /// INIT_RIPAS over [base, top), looping on out_top.
    pub fn init_ripas(&mut self, realm: &RealmRef, base: u64, top: u64) {
        let mut b = base;
        while b < top {
            let out = self.rmm.rtt_init_ripas(realm.rd, b, top);
            assert_eq!(out.ret, RmiReturn::SUCCESS, "INIT_RIPAS {b:#x}..{top:#x}");
            b = out.out[0];
        }
    }

    /// DATA_CREATE of one page with `content` (measured if `measure`).
    pub fn data(&mut self, realm: &RealmRef, ipa: u64, content: &[u8], measure: bool) -> u64 {
        self.rtts_to(realm, ipa, 3);
        let src = self.alloc();
        self.write(src, content);
        let data = self.delegated();
        let flags = if measure {
            rmi::data_flags::MEASURE_CONTENT
        } else {
            0
        };
        assert_eq!(
            self.rmm.data_create(realm.rd, data, ipa, src, flags),
            Ok(())
        );
        data
    }

    pub fn rec_params(&mut self, index: u64, pc: u64, runnable: bool) -> RmiRecParams {
        let mut p = RmiRecParams::new_zeroed();
        p.flags = if runnable {
            rmi::rec_flags::RUNNABLE
        } else {
            0
        };
        p.mpidr = (index % 16) | ((index / 16) % 256) << 8;
        p.pc = pc;
        let n = self.rmm.rec_aux_count(0).out[0]; // value is config-wide
        let _ = n;
        let aux = u64::from(self.rmm.config().rec_aux_count);
        p.num_aux = aux;
        for i in 0..aux as usize {
            p.aux[i] = self.delegated();
        }
        p
    }

    pub fn create_rec(&mut self, realm: &RealmRef, index: u64, pc: u64, runnable: bool) -> u64 {
        let p = self.rec_params(index, pc, runnable);
        let params = self.params_page(&p);
        let rec = self.delegated();
        assert_eq!(self.rmm.rec_create(realm.rd, rec, params), Ok(()));
        rec
    }

    /// A run page with `enter`; returns its PA.
    pub fn run_page(&mut self, enter: &RmiRecEnter) -> u64 {
        let pa = self.alloc();
        self.write(pa, enter.as_bytes());
        pa
    }

    /// REC_ENTER with `enter`; returns the result and the exit half.
    pub fn enter_with(
        &mut self,
        rec: u64,
        run: u64,
        enter: &RmiRecEnter,
    ) -> (Result<(), RmiReturn>, RmiRecExit) {
        self.write(run, enter.as_bytes());
        let r = self.rmm.rec_enter(rec, run);
        let mut exit = [0u8; 0x800];
        self.read(run + 0x800, &mut exit);
        (r, RmiRecExit::read_from_bytes(&exit).unwrap())
    }

    /// REC_ENTER with an empty entry half.
    pub fn enter(&mut self, rec: u64, run: u64) -> (Result<(), RmiReturn>, RmiRecExit) {
        self.enter_with(rec, run, &RmiRecEnter::new_zeroed())
    }

    /// Installs a guest program on a REC.
    pub fn guest(&mut self, rec: u64, f: impl FnOnce(&mut RealmCpu) + Send + 'static) {
        self.rmm.platform_mut().attach_guest(rec, Box::new(f));
    }

    /// Asserts no guest program failed.
    pub fn assert_guests_ok(&mut self) {
        let f = self.rmm.platform_mut().take_guest_failures();
        assert!(f.is_empty(), "guest failures: {f:?}");
    }

    /// A RIM as the measurement service holds it.
    pub fn rim(&self, realm: &RealmRef) -> [u8; 64] {
        use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};
        use ipc_schema::service::RealmHandle;
        match self
            .measurement
            .lock()
            .unwrap()
            .handle(MeasurementRequest::Read {
                realm: RealmHandle(realm.rd),
                index: 0,
            }) {
            MeasurementResponse::Value(v) => v.0,
            other => panic!("{other:?}"),
        }
    }

    /// Raw SMC, as a host would issue it.
    pub fn smc(&mut self, fid: u64, args: &[u64]) -> [u64; 18] {
        self.rmm.handle_rmi(ipc_schema::smccc::smc_regs(fid, args))
    }
}

pub fn align(ipa: u64, level: i64) -> u64 {
    let shift = 12 + 9 * (3 - level) as u32;
    ipa & !((1u64 << shift) - 1)
}

pub fn out(ret: RmiReturn) -> RmiOutput {
    ret.into()
}

/// A simple active realm with one runnable REC whose guest runs `f`, RAM
/// at [0, 2 MiB) with the first 16 pages populated.
pub fn active_realm(
    host: &mut Host,
    f: impl FnOnce(&mut RealmCpu) + Send + 'static,
) -> (RealmRef, u64, u64) {
    let realm = host.create_realm();
    host.rtts_to(&realm, 0, 3);
    host.init_ripas(&realm, 0, 2 << 20);
    for i in 0..16 {
        host.data(&realm, i * G, &[i as u8; 4096], true);
    }
    let rec = host.create_rec(&realm, 0, 0x1000, true);
    assert_eq!(host.rmm.realm_activate(realm.rd), Ok(()));
    host.guest(rec, f);
    let run = host.alloc();
    (realm, rec, run)
}

/// Everything a failing RMI command must leave untouched: every granule's
/// state, the bytes of every RTT and DATA granule, every realm and REC (by
/// their `Debug` form) and every realm's RIM.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    granules: Vec<(u64, atoll_kernel::granule::GranuleState)>,
    contents: Vec<(u64, Vec<u8>)>,
    realms: Vec<(u64, String, [u8; 64])>,
    recs: Vec<(u64, String)>,
}

impl Host {
    /// Takes a [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        use atoll_kernel::granule::GranuleState as S;
        let granules: Vec<_> = self
            .rmm
            .granules()
            .iter()
            .filter(|(_, s)| *s != S::Undelegated)
            .collect();
        let contents = granules
            .iter()
            .filter(|(_, s)| matches!(s, S::Rtt | S::Data))
            .map(|&(pa, _)| {
                let mut b = vec![0u8; G as usize];
                self.rmm.platform().read(pa, &mut b).unwrap();
                (pa, b)
            })
            .collect();
        let realms = self
            .rmm
            .realms()
            .map(|(rd, r)| (rd, format!("{r:?}"), self.rim_of(rd)))
            .collect();
        let recs = granules
            .iter()
            .filter(|(_, s)| *s == S::Rec)
            .map(|&(pa, _)| (pa, format!("{:?}", self.rmm.rec(pa))))
            .collect();
        Snapshot {
            granules,
            contents,
            realms,
            recs,
        }
    }

    /// The RIM of the realm whose RD is `rd`.
    pub fn rim_of(&self, rd: u64) -> [u8; 64] {
        self.rim(&RealmRef {
            rd,
            rtt_base: 0,
            ipa_width: 0,
            start_level: 0,
        })
    }

    /// Runs `f`, which must fail with `expect`, and checks it changed
    /// nothing.
    #[track_caller]
    pub fn fails<R: Into<RmiOutput>>(&mut self, expect: RmiReturn, f: impl FnOnce(&mut Host) -> R) {
        let before = self.snapshot();
        let got: RmiOutput = f(self).into();
        assert_eq!(got.ret, expect, "status");
        assert!(before == self.snapshot(), "a failing command changed state");
    }

    /// Raw SMC that must fail with `expect` and change nothing; returns the
    /// output registers.
    #[track_caller]
    pub fn smc_fails(&mut self, expect: RmiReturn, fid: u64, args: &[u64]) -> [u64; 18] {
        let before = self.snapshot();
        let r = self.smc(fid, args);
        assert_eq!(RmiReturn::from_x0(r[0]), Some(expect), "status");
        assert!(before == self.snapshot(), "a failing command changed state");
        r
    }

    /// `RMI_RTT_READ_ENTRY` outputs: (walk_level, state, desc, ripas).
    pub fn entry(&self, realm: &RealmRef, ipa: u64, level: i64) -> (i64, u64, u64, u64) {
        let o = self.rmm.rtt_read_entry(realm.rd, ipa, level as u64);
        assert_eq!(o.ret, RmiReturn::SUCCESS, "READ_ENTRY {ipa:#x} L{level}");
        (o.out[0] as i64, o.out[1], o.out[2], o.out[3])
    }

    /// The decoded RTT entry (HIPAS included) for `ipa` at `level`.
    pub fn raw_entry(&self, realm: &RealmRef, ipa: u64, level: i64) -> atoll_kernel::rtt::Entry {
        let r = self.rmm.realm(realm.rd).expect("realm");
        let w = atoll_kernel::rtt::walk(self.rmm.platform(), &r.rtt, ipa, level as i8);
        assert_eq!(i64::from(w.level), level, "walk to {ipa:#x} L{level}");
        w.entry
    }

    /// Raw (RMM-side) read of a granule's contents.
    pub fn raw_read(&self, pa: u64) -> Vec<u8> {
        let mut b = vec![0u8; G as usize];
        self.rmm.platform().read(pa, &mut b).unwrap();
        b
    }

    /// `n` physically contiguous delegated granules aligned to `align`.
    pub fn delegated_run(&mut self, n: u64, align: u64) -> u64 {
        let base = self.alloc_aligned(n, align);
        for i in 0..n {
            self.delegate(base + i * G);
        }
        base
    }

    /// A level-2 ASSIGNED block at `ipa` (2 MiB aligned, protected): 512
    /// contiguous DATA granules created unknown, then folded. Returns the
    /// block's PA.
    pub fn assigned_block(&mut self, realm: &RealmRef, ipa: u64) -> u64 {
        self.rtts_to(realm, ipa, 3);
        let pa = self.delegated_run(512, 2 << 20);
        for i in 0..512 {
            assert_eq!(
                self.rmm
                    .data_create_unknown(realm.rd, pa + i * G, ipa + i * G),
                Ok(())
            );
        }
        let out = self.rmm.rtt_fold(realm.rd, ipa, 3);
        assert_eq!(out.ret, RmiReturn::SUCCESS, "fold to block");
        pa
    }
}

/// A root of trust for tests: a fresh RAK and CPAK, platform tokens signed
/// with the real token encoder. Stands in for the HES where a test is
/// about the RMM, not the HES.
pub struct TestRoot {
    pub rak: p384::ecdsa::SigningKey,
    pub cpak: p384::ecdsa::SigningKey,
}

impl TestRoot {
    pub fn new() -> Self {
        use rand_core::OsRng;
        Self {
            rak: p384::ecdsa::SigningKey::random(&mut OsRng),
            cpak: p384::ecdsa::SigningKey::random(&mut OsRng),
        }
    }
}

impl Default for TestRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl atoll_kernel::arch::host::RootOfTrust for TestRoot {
    fn realm_key(&mut self) -> Result<[u8; 48], atoll_kernel::arch::El3Error> {
        Ok(self.rak.to_bytes().into())
    }

    fn platform_token(
        &mut self,
        challenge: &[u8],
    ) -> Result<Vec<u8>, atoll_kernel::arch::El3Error> {
        let claims = atoll_cca_token::PlatformClaims {
            profile: atoll_cca_token::PLATFORM_PROFILE_1_0.into(),
            challenge: challenge.to_vec(),
            implementation_id: [0x1d; 32],
            instance_id: [1; 33],
            config: vec![0],
            lifecycle: 0x3000,
            sw_components: vec![],
            verification_service: None,
            hash_algo: "sha-256".into(),
            extra: vec![],
        };
        claims
            .sign_with(&self.cpak)
            .map_err(|_| atoll_kernel::arch::El3Error::Unknown)
    }

    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], atoll_kernel::arch::El3Error> {
        Ok([which as u8; 32])
    }
}

impl Host {
    /// Adds the attestation service (in process) and runs the boot-time
    /// provisioning against `root`.
    pub fn with_attestation(&mut self, root: TestRoot) {
        let mut svc = atoll_attestation::AttestationService::new(16);
        self.rmm.services_mut().register(
            ServiceId::Attestation,
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp))),
        );
        self.rmm.platform_mut().set_root_of_trust(Box::new(root));
        self.rmm.boot_attestation().expect("attestation boot");
    }
}

impl Host {
    /// Adds the keys service (in process) and provisions it with the
    /// VHUKs of `root`.
    pub fn with_keys(&mut self, root: TestRoot) {
        let mut svc = atoll_keys::KeysService::new(16);
        self.rmm.services_mut().register(
            ServiceId::Keys,
            Box::new(move |req, leases, resp| Some(svc.handle_bytes(req, leases, resp))),
        );
        self.rmm.platform_mut().set_root_of_trust(Box::new(root));
        self.rmm.boot_keys().expect("keys boot");
    }
}
