//! Tests against a small fake RMM: it keeps granule states and an RTT
//! model, reads parameter and source pages from host memory, and measures
//! what it is asked to do with the real measurement service. A plan built
//! through it must end with the RIM `atoll measure` predicts.

extern crate std;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use std::path::Path;

use atoll_measurement::MeasurementService;
use atoll_realm_description::{block_size, BuildPlan, RealmDescription};
use ipc_schema::rmi::{fid, RmiRealmParams, RmiRecParams, RmiReturn, RmiStatus};
use ipc_schema::service::measurement::{
    MeasuredRealmParams, MeasuredRecParams, MeasurementRequest, MeasurementResponse,
};
use ipc_schema::service::{HashAlgo, Lease, LeaseMem, RealmHandle};
use ipc_schema::smccc::{SmcConduit, SmcRegs};
use zerocopy::FromBytes;

use super::*;

#[derive(Clone)]
struct Shared(Rc<RefCell<BumpMemory>>);

impl HostMemory for Shared {
    fn alloc_granules(&mut self, count: usize) -> Result<u64, MemoryError> {
        self.0.borrow_mut().alloc_granules(count)
    }
    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), MemoryError> {
        self.0.borrow_mut().write(pa, data)
    }
    fn read(&mut self, pa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.0.borrow_mut().read(pa, buf)
    }
}

const AUX: u64 = 2;

struct FakeRmm {
    mem: Rc<RefCell<BumpMemory>>,
    delegated: BTreeSet<u64>,
    used: BTreeSet<u64>,
    rd: Option<u64>,
    level_start: i8,
    s2sz: u64,
    tables: BTreeSet<(i8, u64)>,
    assigned: BTreeMap<u64, u64>,
    next_rec: u64,
    active: bool,
    meas: MeasurementService,
    /// At most this many entries per RTT_INIT_RIPAS call, so the builder's
    /// loop on out_top is exercised.
    ripas_chunk: usize,
    calls: Vec<u64>,
    /// (fid, n-th call of that fid, status) to fail.
    fail: Option<(u64, usize, RmiReturn)>,
    /// Return this out_top from RTT_INIT_RIPAS instead of the real one.
    bogus_out_top: Option<u64>,
}

const RD: RealmHandle = RealmHandle(1);

impl FakeRmm {
    fn new(mem: Rc<RefCell<BumpMemory>>) -> Self {
        Self {
            mem,
            delegated: BTreeSet::new(),
            used: BTreeSet::new(),
            rd: None,
            level_start: 0,
            s2sz: 0,
            tables: BTreeSet::new(),
            assigned: BTreeMap::new(),
            next_rec: 0,
            active: false,
            meas: MeasurementService::new(1),
            ripas_chunk: 7,
            calls: Vec::new(),
            fail: None,
            bogus_out_top: None,
        }
    }

    fn page(&self, pa: u64) -> [u8; 4096] {
        self.mem
            .borrow()
            .slice(pa, 4096)
            .expect("NS page in host memory")
            .try_into()
            .unwrap()
    }

    fn take(&mut self, pa: u64) -> Result<(), RmiReturn> {
        if !self.delegated.contains(&pa) || !self.used.insert(pa) {
            return Err(RmiReturn::INPUT);
        }
        Ok(())
    }

    fn walk(&self, ipa: u64, max: i8) -> i8 {
        let mut level = self.level_start;
        while level < max
            && self
                .tables
                .contains(&(level + 1, ipa / block_size(level) * block_size(level)))
        {
            level += 1;
        }
        level
    }

    fn measure(&mut self, req: MeasurementRequest) {
        assert_eq!(self.meas.handle(req), MeasurementResponse::Ok);
    }

    fn measure_page(&mut self, req: MeasurementRequest, page: &[u8]) {
        assert_eq!(
            self.meas.handle_ref(&req, &mut [LeaseMem::Read(page)]),
            MeasurementResponse::Ok
        );
    }

    fn handle(&mut self, r: &SmcRegs) -> Result<[u64; 3], RmiReturn> {
        let rd_ok = |s: &Self, rd: u64| {
            if s.rd == Some(rd) {
                Ok(())
            } else {
                Err(RmiReturn::INPUT)
            }
        };
        match r[0] {
            fid::GRANULE_DELEGATE => {
                if r[1] % 4096 != 0 || !self.delegated.insert(r[1]) {
                    return Err(RmiReturn::INPUT);
                }
            }
            fid::REALM_CREATE => {
                let p = RmiRealmParams::read_from_bytes(&self.page(r[2])[..]).unwrap();
                let cfg =
                    atoll_realm_description::rtt_config(p.s2sz as u8).ok_or(RmiReturn::INPUT)?;
                if p.rtt_level_start != i64::from(cfg.level_start)
                    || p.rtt_num_start != cfg.num_start
                {
                    return Err(RmiReturn::INPUT);
                }
                if p.rtt_base % (u64::from(p.rtt_num_start) * 4096) != 0 || p.vmid == 0 {
                    return Err(RmiReturn::INPUT);
                }
                self.take(r[1])?;
                for i in 0..u64::from(p.rtt_num_start) {
                    self.take(p.rtt_base + i * 4096)?;
                }
                self.rd = Some(r[1]);
                self.level_start = cfg.level_start;
                self.s2sz = p.s2sz;
                let algo = HashAlgo::from_rmi(p.hash_algo).ok_or(RmiReturn::INPUT)?;
                self.measure(MeasurementRequest::RealmCreate {
                    realm: RD,
                    algo,
                    params: MeasuredRealmParams {
                        flags: p.flags,
                        s2sz: p.s2sz,
                        sve_vl: p.sve_vl,
                        num_bps: p.num_bps,
                        num_wps: p.num_wps,
                        pmu_num_ctrs: p.pmu_num_ctrs,
                        hash_algo: p.hash_algo,
                    },
                });
            }
            fid::RTT_CREATE => {
                rd_ok(self, r[1])?;
                let (ipa, level) = (r[3], r[4] as i64 as i8);
                if level <= self.level_start || level > 3 || ipa % block_size(level - 1) != 0 {
                    return Err(RmiReturn::INPUT);
                }
                let walked = self.walk(ipa, level - 1);
                if walked < level - 1 {
                    return Err(RmiReturn::rtt(walked));
                }
                if self.tables.contains(&(level, ipa)) {
                    return Err(RmiReturn::rtt(level - 1));
                }
                self.take(r[2])?;
                self.tables.insert((level, ipa));
            }
            fid::RTT_INIT_RIPAS => {
                rd_ok(self, r[1])?;
                if self.active {
                    return Err(RmiReturn::REALM);
                }
                let (base, top) = (r[2], r[3]);
                if top <= base || top > 1 << (self.s2sz - 1) {
                    return Err(RmiReturn::INPUT);
                }
                let level = self.walk(base, 3);
                let size = block_size(level);
                if base % size != 0 {
                    return Err(RmiReturn::rtt(level));
                }
                let rtt_end = if level == self.level_start {
                    1 << self.s2sz
                } else {
                    (base / block_size(level - 1) + 1) * block_size(level - 1)
                };
                let mut at = base;
                let mut n = 0;
                while at + size <= top.min(rtt_end)
                    && n < self.ripas_chunk
                    && (level == 3 || !self.tables.contains(&(level + 1, at)))
                {
                    self.measure(MeasurementRequest::Ripas {
                        realm: RD,
                        base: at,
                        top: at + size,
                    });
                    at += size;
                    n += 1;
                }
                if at == base {
                    return Err(RmiReturn::rtt(level));
                }
                return Ok([self.bogus_out_top.unwrap_or(at), 0, 0]);
            }
            fid::DATA_CREATE => {
                rd_ok(self, r[1])?;
                let (data, ipa, src, flags) = (r[2], r[3], r[4], r[5]);
                if flags > 1 {
                    return Err(RmiReturn::INPUT);
                }
                let level = self.walk(ipa, 3);
                if level < 3 {
                    return Err(RmiReturn::rtt(level));
                }
                if self.assigned.contains_key(&ipa) {
                    return Err(RmiReturn::rtt(3));
                }
                self.take(data)?;
                self.assigned.insert(ipa, data);
                let page = self.page(src);
                self.measure_page(
                    MeasurementRequest::Data {
                        realm: RD,
                        ipa,
                        flags,
                        content: (flags == 1).then_some(Lease(0)),
                        copy_to: None,
                    },
                    &page,
                );
            }
            fid::REC_AUX_COUNT => {
                rd_ok(self, r[1])?;
                return Ok([AUX, 0, 0]);
            }
            fid::REC_CREATE => {
                rd_ok(self, r[1])?;
                let p = RmiRecParams::read_from_bytes(&self.page(r[3])[..]).unwrap();
                let index = (p.mpidr & 0xf) | ((p.mpidr >> 8) & 0xff) << 4;
                if index != self.next_rec || p.num_aux != AUX {
                    return Err(RmiReturn::INPUT);
                }
                self.take(r[2])?;
                for a in &p.aux[..AUX as usize] {
                    self.take(*a)?;
                }
                self.next_rec += 1;
                self.measure(MeasurementRequest::Rec {
                    realm: RD,
                    params: MeasuredRecParams {
                        flags: p.flags,
                        pc: p.pc,
                        gprs: p.gprs,
                    },
                });
            }
            fid::REALM_ACTIVATE => {
                rd_ok(self, r[1])?;
                if self.active {
                    return Err(RmiReturn::REALM);
                }
                self.active = true;
            }
            _ => return Err(RmiReturn::INPUT),
        }
        Ok([0; 3])
    }

    fn rim(&mut self) -> [u8; 64] {
        match self.meas.handle(MeasurementRequest::Read {
            realm: RD,
            index: 0,
        }) {
            MeasurementResponse::Value(v) => v.0,
            other => panic!("{other:?}"),
        }
    }
}

impl SmcConduit for FakeRmm {
    fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
        self.calls.push(regs[0]);
        let mut out = [0u64; 18];
        if let Some((f, n, status)) = self.fail {
            if f == regs[0] && self.calls.iter().filter(|&&c| c == f).count() == n {
                out[0] = status.to_x0();
                return out;
            }
        }
        match self.handle(&regs) {
            Ok(o) => out[1..4].copy_from_slice(&o),
            Err(e) => out[0] = e.to_x0(),
        }
        out
    }
}

fn example_plan() -> BuildPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml");
    BuildPlan::new(&RealmDescription::load(&path).unwrap()).unwrap()
}

fn setup() -> (RmiClient<FakeRmm>, Shared) {
    let mem = Rc::new(RefCell::new(BumpMemory::new(0x8000_0000, 16 << 20)));
    (RmiClient::new(FakeRmm::new(mem.clone())), Shared(mem))
}

fn level_variant(ripas_level: i8, algo: HashAlgo) -> BuildPlan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml");
    let mut desc = RealmDescription::load(&path).unwrap();
    desc.memory.ripas_level = ripas_level;
    desc.realm.hash_algo = algo;
    // An unaligned edge, so level 2 needs level-3 tables at the edge.
    desc.memory.ram[0].size += 0x3000;
    BuildPlan::new(&desc).unwrap()
}

#[test]
fn builds_the_example_and_matches_atoll_measure() {
    for plan in [
        example_plan(),
        level_variant(2, HashAlgo::Sha256),
        level_variant(3, HashAlgo::Sha512),
    ] {
        let (mut rmi, mut mem) = setup();
        let built = RealmBuilder::new(&mut rmi, &mut mem)
            .vmid(3)
            .build(&plan)
            .unwrap();
        let expected = atoll_measure::measure(&plan).unwrap();
        assert_eq!(
            rmi.conduit_mut().rim(),
            expected.rim,
            "the RMM's RIM is the predicted one"
        );

        assert!(built.active);
        assert_eq!(built.vmid, 3);
        assert_eq!(built.rtt_num_start, plan.realm().rtt.num_start);
        assert_eq!(built.rtts.len(), plan.rtt_count());
        assert_eq!(built.data.len(), plan.data_page_count());
        assert_eq!(built.recs.len(), plan.recs().len());
        for (i, rec) in built.recs.iter().enumerate() {
            assert_eq!(rec.index as usize, i);
            assert_eq!(rec.aux.len(), AUX as usize);
            assert_ne!(rec.run, 0);
        }
        assert!(built.recs[0].runnable && !built.recs[1].runnable);
        let fake = rmi.conduit_mut();
        assert_eq!(
            fake.calls
                .iter()
                .filter(|&&c| c == fid::REC_AUX_COUNT)
                .count(),
            1
        );
        assert_eq!(*fake.calls.last().unwrap(), fid::REALM_ACTIVATE);
        // Every granule handed over was delegated first and used once.
        assert_eq!(fake.used, fake.delegated);
    }
}

#[test]
fn init_ripas_loops_on_out_top() {
    let plan = example_plan();
    let (mut rmi, mut mem) = setup();
    RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .build(&plan)
        .unwrap();
    let calls = rmi
        .conduit_mut()
        .calls
        .iter()
        .filter(|&&c| c == fid::RTT_INIT_RIPAS)
        .count() as u64;
    // 512 entries, at most 7 per call.
    assert_eq!(calls, plan.ripas_entry_count().div_ceil(7));
}

#[test]
fn vmid_from_the_description_wins() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../images/examples/hello-realm.toml");
    let mut desc = RealmDescription::load(&path).unwrap();
    desc.realm.vmid = Some(42);
    let plan = BuildPlan::new(&desc).unwrap();
    let (mut rmi, mut mem) = setup();
    let built = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(3)
        .build(&plan)
        .unwrap();
    assert_eq!(built.vmid, 42);
}

#[test]
fn no_vmid_is_an_error() {
    let (mut rmi, mut mem) = setup();
    let err = RealmBuilder::new(&mut rmi, &mut mem)
        .build(&example_plan())
        .unwrap_err();
    assert_eq!(err.step, 0);
    assert_eq!(err.kind, BuildErrorKind::NoVmid);
}

#[test]
fn rmi_failures_name_the_step() {
    let plan = example_plan();
    let cases = [
        (
            fid::GRANULE_DELEGATE,
            1,
            "REALM_CREATE",
            "RMI_GRANULE_DELEGATE",
        ),
        (fid::REALM_CREATE, 1, "REALM_CREATE", "RMI_REALM_CREATE"),
        (fid::RTT_CREATE, 2, "RTT_CREATE", "RMI_RTT_CREATE"),
        (
            fid::RTT_INIT_RIPAS,
            3,
            "RTT_INIT_RIPAS",
            "RMI_RTT_INIT_RIPAS",
        ),
        (fid::DATA_CREATE, 2, "DATA_CREATE", "RMI_DATA_CREATE"),
        (fid::REC_AUX_COUNT, 1, "REC_CREATE", "RMI_REC_AUX_COUNT"),
        (fid::REC_CREATE, 2, "REC_CREATE", "RMI_REC_CREATE"),
        (
            fid::REALM_ACTIVATE,
            1,
            "REALM_ACTIVATE",
            "RMI_REALM_ACTIVATE",
        ),
    ];
    for (f, n, what, command) in cases {
        let (mut rmi, mut mem) = setup();
        let status = RmiReturn::new(RmiStatus::ErrorRtt, 2);
        rmi.conduit_mut().fail = Some((f, n, status));
        let mut builder = RealmBuilder::new(&mut rmi, &mut mem).vmid(1);
        let err = builder.build(&plan).unwrap_err();
        assert_eq!(err.what, what, "{command}");
        assert_eq!(
            err.kind,
            BuildErrorKind::Rmi {
                command,
                error: RmiError::Status(status)
            }
        );
        let step = plan.steps().nth(err.step).unwrap();
        assert_eq!(builder::step_name(&step), what);
        if f != fid::GRANULE_DELEGATE && f != fid::REALM_CREATE {
            assert!(
                builder.partial().is_some(),
                "{command}: partial realm reported"
            );
        }
    }
}

#[test]
fn init_ripas_without_progress_is_an_error() {
    let (mut rmi, mut mem) = setup();
    rmi.conduit_mut().bogus_out_top = Some(0);
    let err = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .build(&example_plan())
        .unwrap_err();
    assert!(
        matches!(err.kind, BuildErrorKind::NoProgress { out_top: 0, .. }),
        "{err}"
    );
}

#[test]
fn out_of_memory_is_reported() {
    let mem = Rc::new(RefCell::new(BumpMemory::new(0x8000_0000, 32 << 10)));
    let mut rmi = RmiClient::new(FakeRmm::new(mem.clone()));
    let mut mem = Shared(mem);
    let err = RealmBuilder::new(&mut rmi, &mut mem)
        .vmid(1)
        .build(&example_plan())
        .unwrap_err();
    assert!(
        matches!(
            err.kind,
            BuildErrorKind::Memory(MemoryError::OutOfMemory { .. })
        ),
        "{err}"
    );
}

/// A conduit that records the registers and answers with canned outputs.
struct Canned {
    last: SmcRegs,
    answer: SmcRegs,
}

impl SmcConduit for Canned {
    fn smc(&mut self, regs: SmcRegs) -> SmcRegs {
        self.last = regs;
        self.answer
    }
}

fn canned(answer: &[u64]) -> RmiClient<Canned> {
    let mut a = [0u64; 18];
    a[..answer.len()].copy_from_slice(answer);
    RmiClient::new(Canned {
        last: [0; 18],
        answer: a,
    })
}

#[test]
fn wrappers_pass_arguments_and_decode_outputs() {
    let mut c = canned(&[0, 11, 22, 33, 44]);
    assert_eq!(
        c.version(0x1_0000),
        Ok(RmiVersion {
            lower: 11,
            higher: 22
        })
    );
    assert_eq!(&c.conduit_mut().last[..2], &[fid::VERSION, 0x1_0000]);
    assert_eq!(c.features(0), Ok(11));
    c.data_create(1, 2, 3, 4, 5).unwrap();
    assert_eq!(
        &c.conduit_mut().last[..6],
        &[fid::DATA_CREATE, 1, 2, 3, 4, 5]
    );
    assert_eq!(
        c.data_destroy(1, 2),
        Ok(DataDestroyed { data: 11, top: 22 })
    );
    assert_eq!(
        c.rtt_destroy(1, 2, 3),
        Ok(RttDestroyed { rtt: 11, top: 22 })
    );
    c.rtt_create(1, 2, 3, -1).unwrap();
    assert_eq!(
        &c.conduit_mut().last[..5],
        &[fid::RTT_CREATE, 1, 2, 3, u64::MAX]
    );
    assert_eq!(
        c.rtt_read_entry(1, 2, 3),
        Ok(RttEntry {
            walk_level: 11,
            state: 22,
            desc: 33,
            ripas: 44
        })
    );
    assert_eq!(c.rtt_unmap_unprotected(1, 2, 3), Ok(11));
    assert_eq!(c.rtt_fold(1, 2, 3), Ok(11));
    assert_eq!(c.rec_aux_count(1), Ok(11));
    assert_eq!(c.rtt_init_ripas(1, 2, 3), Ok(11));
    assert_eq!(c.rtt_set_ripas(1, 2, 3, 4), Ok(11));
    assert_eq!(
        &c.conduit_mut().last[..5],
        &[fid::RTT_SET_RIPAS, 1, 2, 3, 4]
    );
    for call in [
        c.granule_delegate(7),
        c.granule_undelegate(7),
        c.data_create_unknown(7, 8, 9),
        c.realm_activate(7),
        c.realm_create(7, 8),
        c.realm_destroy(7),
        c.rec_create(7, 8, 9),
        c.rec_destroy(7),
        c.rec_enter(7, 8),
        c.rtt_map_unprotected(7, 8, 9, 10),
    ] {
        assert_eq!(call, Ok(()));
    }
    c.rec_enter(7, 8).unwrap();
    assert_eq!(&c.conduit_mut().last[..3], &[fid::REC_ENTER, 7, 8]);
    c.rtt_map_unprotected(7, 8, 9, 10).unwrap();
    assert_eq!(
        &c.conduit_mut().last[..5],
        &[fid::RTT_MAP_UNPROTECTED, 7, 8, 9, 10]
    );
    c.psci_complete(7, 8, 9).unwrap();
    assert_eq!(&c.conduit_mut().last[..4], &[fid::PSCI_COMPLETE, 7, 8, 9]);
}

#[test]
fn wrappers_decode_errors() {
    let mut c = canned(&[RmiReturn::rtt(2).to_x0(), 5, 0x4000]);
    assert_eq!(c.granule_delegate(0).unwrap_err(), RmiReturn::rtt(2));
    assert_eq!(
        c.data_destroy(1, 2),
        Err(TopError {
            error: RmiError::Status(RmiReturn::rtt(2)),
            top: 0x4000
        })
    );
    assert_eq!(c.rtt_unmap_unprotected(1, 2, 3).unwrap_err().top, 5);
    let v = c.version(0x2_0000).unwrap_err();
    assert_eq!(
        v.supported,
        RmiVersion {
            lower: 5,
            higher: 0x4000
        }
    );

    let mut bad = canned(&[0x1_0000]);
    assert_eq!(
        bad.features(0),
        Err(RmiError::InvalidStatus { x0: 0x1_0000 })
    );
    let mut bad = canned(&[9]);
    assert_eq!(bad.realm_activate(1).unwrap_err().status(), None);
}

#[test]
fn bump_memory_alignment_and_bounds() {
    let mut m = BumpMemory::new(0x1000, 64 << 10);
    assert_eq!(m.alloc_granule(), Ok(0x1000));
    // Four granules are aligned to 16 KiB.
    assert_eq!(m.alloc_granules(4), Ok(0x4000));
    assert_eq!(m.alloc_granules(3), Ok(0x8000));
    m.write(0x1ff0, &[1; 16]).unwrap();
    let mut b = [0; 16];
    m.read(0x1ff0, &mut b).unwrap();
    assert_eq!(b, [1; 16]);
    assert_eq!(
        m.read(0x0, &mut b),
        Err(MemoryError::BadAddress { pa: 0, len: 16 })
    );
    assert_eq!(
        m.write(0x1000 + (64 << 10) - 8, &[0; 16]),
        Err(MemoryError::BadAddress {
            pa: 0x1000 + (64 << 10) - 8,
            len: 16
        })
    );
    assert_eq!(
        m.alloc_granules(64),
        Err(MemoryError::OutOfMemory { count: 64 })
    );
}
