//! A stateful property test: random sequences of RMI commands, valid-looking
//! and hostile, driven through `handle_rmi` against a reference model of
//! granule states, with the core's invariants checked after every step.
//!
//! Cases: `PROPTEST_CASES` (default 64), each up to 60 steps.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use atoll_kernel::arch::host::RealmCpu;
use atoll_kernel::granule::GranuleState as S;
use atoll_kernel::RmmConfig;
use ipc_schema::rmi::{fid, rec_flags, rtt_state, RmiRecParams, RmiReturn};
use ipc_schema::rsi;
use ipc_schema::smccc::smc_regs;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use support::{Host, DRAM_BASE, G};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Granules the commands play with.
const POOL: u64 = 20;
/// NS scratch pages (params, src, run): never in the address pool.
const SCRATCH: u64 = POOL;
const DRAM: u64 = (POOL + 4) * G;
/// IPA width of every realm the model creates (level 1 start, 1 table).
const S2SZ: u64 = 39;
const UNPROT: u64 = 1 << (S2SZ - 1);

const IPAS: [u64; 12] = [
    0,
    0x1000,
    0x2000,
    0x20_0000,
    0x20_1000,
    0x4000_0000,
    UNPROT,
    UNPROT + 0x1000,
    UNPROT + 0x20_0000,
    0x1001,
    1 << S2SZ,
    u64::MAX,
];
const LEVELS: [u64; 6] = [u64::MAX, 0, 1, 2, 3, 4];

fn pool(i: u64) -> u64 {
    DRAM_BASE + i * G
}

fn scratch(i: u64) -> u64 {
    DRAM_BASE + (SCRATCH + i) * G
}

/// How a command picks a physical address.
#[derive(Copy, Clone, Debug)]
enum Sel {
    /// Any pool granule.
    Any(u64),
    /// The n-th pool granule the model has in a state (else any).
    In(S, u64),
    /// Hostile: unaligned, outside DRAM, a scratch NS page...
    Hostile(u64),
}

fn sel() -> impl Strategy<Value = Sel> {
    let state = prop_oneof![
        Just(S::Undelegated),
        Just(S::Delegated),
        Just(S::Rd),
        Just(S::Rec),
        Just(S::RecAux),
        Just(S::Data),
        Just(S::Rtt),
    ];
    prop_oneof![
        3 => (0..POOL).prop_map(Sel::Any),
        6 => (state, 0..8u64).prop_map(|(s, i)| Sel::In(s, i)),
        1 => (0..8u64).prop_map(Sel::Hostile),
    ]
}

/// Mostly a granule the model has in `state` (what the command needs).
fn want(state: S) -> impl Strategy<Value = Sel> {
    prop_oneof![
        8 => (0..8u64).prop_map(move |i| Sel::In(state, i)),
        2 => sel(),
    ]
}

/// IPA indexes, biased towards the populated low range.
fn ipa() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..5usize, 1 => 0..IPAS.len()]
}

/// Level indexes, biased towards 2 and 3.
fn lvl() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 3..5usize, 1 => 0..LEVELS.len()]
}

#[derive(Copy, Clone, Debug)]
enum Arg {
    Addr(Sel),
    Ipa(usize),
    Level(usize),
    Raw(u64),
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        sel().prop_map(Arg::Addr),
        (0..IPAS.len()).prop_map(Arg::Ipa),
        (0..LEVELS.len()).prop_map(Arg::Level),
        any::<u64>().prop_map(Arg::Raw),
        (0u64..8).prop_map(Arg::Raw),
    ]
}

#[derive(Clone, Debug)]
enum Cmd {
    Delegate(Sel),
    Undelegate(Sel),
    RealmCreate {
        rd: Sel,
        rtt: Sel,
        vmid: u16,
        params: Option<Sel>,
    },
    RealmActivate(Sel),
    RealmDestroy(Sel),
    RttCreate(Sel, Sel, usize, usize),
    RttDestroy(Sel, usize, usize),
    RttFold(Sel, usize, usize),
    DataCreate {
        rd: Sel,
        data: Sel,
        ipa: usize,
        src: Option<Sel>,
        flags: u64,
    },
    DataCreateUnknown(Sel, Sel, usize),
    DataDestroy(Sel, usize),
    InitRipas(Sel, usize, usize),
    RecCreate {
        rd: Sel,
        rec: Sel,
        aux: [Sel; 2],
        index: u64,
        runnable: bool,
        params: Option<Sel>,
    },
    RecDestroy(Sel),
    RecEnter {
        rec: Sel,
        run: Option<Sel>,
        flags: u64,
    },
    MapUnprotected(Sel, usize, usize, Sel, u64),
    UnmapUnprotected(Sel, usize, usize),
    Raw(usize, [Arg; 5]),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let rd = || want(S::Rd);
    let del = || want(S::Delegated);
    let hostile = || proptest::option::weighted(0.15, sel());
    prop_oneof![
        5 => want(S::Undelegated).prop_map(Cmd::Delegate),
        2 => del().prop_map(Cmd::Undelegate),
        3 => (del(), del(), 0u16..3, hostile()).prop_map(|(rd, rtt, vmid, params)| {
            Cmd::RealmCreate { rd, rtt, vmid, params }
        }),
        3 => rd().prop_map(Cmd::RealmActivate),
        1 => rd().prop_map(Cmd::RealmDestroy),
        4 => (rd(), del(), ipa(), lvl()).prop_map(|(a, b, c, d)| Cmd::RttCreate(a, b, c, d)),
        1 => (rd(), ipa(), lvl()).prop_map(|(a, b, c)| Cmd::RttDestroy(a, b, c)),
        1 => (rd(), ipa(), lvl()).prop_map(|(a, b, c)| Cmd::RttFold(a, b, c)),
        3 => (rd(), del(), ipa(), hostile(), 0u64..3).prop_map(|(rd, data, ipa, src, flags)| {
            Cmd::DataCreate { rd, data, ipa, src, flags }
        }),
        2 => (rd(), del(), ipa()).prop_map(|(a, b, c)| Cmd::DataCreateUnknown(a, b, c)),
        2 => (rd(), ipa()).prop_map(|(a, b)| Cmd::DataDestroy(a, b)),
        1 => (rd(), ipa(), ipa()).prop_map(|(a, b, c)| Cmd::InitRipas(a, b, c)),
        3 => (rd(), del(), del(), del(), 0u64..3, any::<bool>(), hostile()).prop_map(
            |(rd, rec, a0, a1, index, runnable, params)| Cmd::RecCreate {
                rd,
                rec,
                aux: [a0, a1],
                index,
                runnable,
                params,
            }
        ),
        1 => want(S::Rec).prop_map(Cmd::RecDestroy),
        6 => (want(S::Rec), hostile(), 0u64..32).prop_map(|(rec, run, flags)| Cmd::RecEnter { rec, run, flags }),
        1 => (rd(), ipa(), lvl(), prop_oneof![Just(Sel::Any(0)), sel()], 0u64..0x100).prop_map(|(a, b, c, d, e)| {
            Cmd::MapUnprotected(a, b, c, d, e)
        }),
        1 => (rd(), ipa(), lvl()).prop_map(|(a, b, c)| Cmd::UnmapUnprotected(a, b, c)),
        3 => (0..fid::ALL.len() + 1, [arg(), arg(), arg(), arg(), arg()])
            .prop_map(|(f, a)| Cmd::Raw(f, a)),
    ]
}

#[derive(Default, Debug)]
struct RealmModel {
    starting: u64,
    rtts: BTreeSet<u64>,
    data: BTreeMap<u64, u64>,
    recs: BTreeMap<u64, Vec<u64>>,
}

struct World {
    host: Host,
    states: BTreeMap<u64, S>,
    realms: BTreeMap<u64, RealmModel>,
}

impl World {
    fn new() -> Self {
        let host = Host::with_size(DRAM, RmmConfig::default());
        // Scratch pages can be picked as hostile addresses (and delegated).
        let states = (0..POOL + 4).map(|i| (pool(i), S::Undelegated)).collect();
        Self {
            host,
            states,
            realms: BTreeMap::new(),
        }
    }

    fn addr(&self, s: Sel) -> u64 {
        match s {
            Sel::Any(i) => pool(i),
            Sel::In(state, i) => {
                let v: Vec<u64> = self
                    .states
                    .iter()
                    .filter(|(_, st)| **st == state)
                    .map(|(pa, _)| *pa)
                    .collect();
                if v.is_empty() {
                    pool(i % POOL)
                } else {
                    v[(i as usize) % v.len()]
                }
            }
            Sel::Hostile(i) => match i {
                0 => pool(i) + 8,
                1 => 0,
                2 => DRAM_BASE - G,
                3 => DRAM_BASE + DRAM,
                4 => !(G - 1),
                5 => scratch(3),
                6 => pool(3) | 0x800,
                _ => u64::MAX,
            },
        }
    }

    fn arg(&self, a: Arg) -> u64 {
        match a {
            Arg::Addr(s) => self.addr(s),
            Arg::Ipa(i) => IPAS[i],
            Arg::Level(i) => LEVELS[i],
            Arg::Raw(v) => v,
        }
    }

    fn write_scratch(&mut self, i: u64, bytes: &[u8]) -> u64 {
        let pa = scratch(i);
        // A hostile command may have delegated it: then the params are not
        // NS and the command must fail.
        let _ = self.host.rmm.platform_mut().ns_write(pa, bytes);
        pa
    }

    /// Resolves a command into a function ID and arguments (writing the
    /// params pages it needs).
    fn regs(&mut self, c: &Cmd) -> (u64, Vec<u64>) {
        let a = |w: &Self, s: Sel| w.addr(s);
        match *c {
            Cmd::Delegate(s) => (fid::GRANULE_DELEGATE, vec![a(self, s)]),
            Cmd::Undelegate(s) => (fid::GRANULE_UNDELEGATE, vec![a(self, s)]),
            Cmd::RealmCreate {
                rd,
                rtt,
                vmid,
                params,
            } => {
                let mut p = self.host.default_params();
                p.s2sz = S2SZ;
                p.rtt_level_start = 1;
                p.rtt_num_start = 1;
                p.rtt_base = a(self, rtt);
                p.vmid = vmid;
                let page = self.write_scratch(0, p.as_bytes());
                let ptr = params.map_or(page, |s| a(self, s));
                (fid::REALM_CREATE, vec![a(self, rd), ptr])
            }
            Cmd::RealmActivate(s) => (fid::REALM_ACTIVATE, vec![a(self, s)]),
            Cmd::RealmDestroy(s) => (fid::REALM_DESTROY, vec![a(self, s)]),
            Cmd::RttCreate(rd, rtt, ipa, l) => (
                fid::RTT_CREATE,
                vec![a(self, rd), a(self, rtt), IPAS[ipa], LEVELS[l]],
            ),
            Cmd::RttDestroy(rd, ipa, l) => {
                (fid::RTT_DESTROY, vec![a(self, rd), IPAS[ipa], LEVELS[l]])
            }
            Cmd::RttFold(rd, ipa, l) => (fid::RTT_FOLD, vec![a(self, rd), IPAS[ipa], LEVELS[l]]),
            Cmd::DataCreate {
                rd,
                data,
                ipa,
                src,
                flags,
            } => {
                let page = self.write_scratch(1, &[0x5A; 4096]);
                let src = src.map_or(page, |s| a(self, s));
                (
                    fid::DATA_CREATE,
                    vec![a(self, rd), a(self, data), IPAS[ipa], src, flags],
                )
            }
            Cmd::DataCreateUnknown(rd, data, ipa) => (
                fid::DATA_CREATE_UNKNOWN,
                vec![a(self, rd), a(self, data), IPAS[ipa]],
            ),
            Cmd::DataDestroy(rd, ipa) => (fid::DATA_DESTROY, vec![a(self, rd), IPAS[ipa]]),
            Cmd::InitRipas(rd, b, t) => (fid::RTT_INIT_RIPAS, vec![a(self, rd), IPAS[b], IPAS[t]]),
            Cmd::RecCreate {
                rd,
                rec,
                aux,
                index,
                runnable,
                params,
            } => {
                let mut p = RmiRecParams::new_zeroed();
                p.flags = if runnable { rec_flags::RUNNABLE } else { 0 };
                p.mpidr = index;
                p.pc = 0x1000;
                p.num_aux = 2;
                p.aux[0] = a(self, aux[0]);
                p.aux[1] = a(self, aux[1]);
                let page = self.write_scratch(2, p.as_bytes());
                let ptr = params.map_or(page, |s| a(self, s));
                (fid::REC_CREATE, vec![a(self, rd), a(self, rec), ptr])
            }
            Cmd::RecDestroy(s) => (fid::REC_DESTROY, vec![a(self, s)]),
            Cmd::RecEnter { rec, run, flags } => {
                let mut e = ipc_schema::rmi::RmiRecEnter::new_zeroed();
                e.flags = flags;
                let page = self.write_scratch(3, e.as_bytes());
                let run = run.map_or(page, |s| a(self, s));
                (fid::REC_ENTER, vec![a(self, rec), run])
            }
            Cmd::MapUnprotected(rd, ipa, l, ns, attrs) => {
                let desc = a(self, ns) | (attrs & 0xFC);
                (
                    fid::RTT_MAP_UNPROTECTED,
                    vec![a(self, rd), IPAS[ipa], LEVELS[l], desc],
                )
            }
            Cmd::UnmapUnprotected(rd, ipa, l) => (
                fid::RTT_UNMAP_UNPROTECTED,
                vec![a(self, rd), IPAS[ipa], LEVELS[l]],
            ),
            Cmd::Raw(f, args) => {
                let f = fid::ALL.get(f).map_or(0xC400_0156, |(f, _)| *f);
                (f, args.iter().map(|x| self.arg(*x)).collect())
            }
        }
    }

    fn set(&mut self, pa: u64, from: S, to: S) -> Result<(), TestCaseError> {
        let cur = self.states.get(&pa).copied();
        prop_assert_eq!(cur, Some(from), "granule {:#x} before the transition", pa);
        self.states.insert(pa, to);
        Ok(())
    }

    fn realm_of_rec(&self, rec: u64) -> Option<u64> {
        self.realms
            .iter()
            .find(|(_, r)| r.recs.contains_key(&rec))
            .map(|(rd, _)| *rd)
    }

    fn ns_page(&self, pa: u64) -> Result<[u8; 4096], TestCaseError> {
        let mut b = [0u8; 4096];
        let r = self.host.rmm.platform().ns_read(pa, &mut b);
        prop_assert!(
            r.is_ok(),
            "params page {:#x} read by a successful command is NS",
            pa
        );
        Ok(b)
    }

    /// Applies a successful command to the model.
    fn apply(&mut self, f: u64, a: &[u64], out: &[u64; 18]) -> Result<(), TestCaseError> {
        let mut args = [0u64; 6];
        args[..a.len()].copy_from_slice(a);
        let a = args;
        match f {
            fid::GRANULE_DELEGATE => self.set(a[0], S::Undelegated, S::Delegated)?,
            fid::GRANULE_UNDELEGATE => {
                self.set(a[0], S::Delegated, S::Undelegated)?;
                let mut b = [0xFFu8; 4096];
                let r = self.host.rmm.platform().ns_read(a[0], &mut b);
                prop_assert!(r.is_ok());
                prop_assert!(b.iter().all(|x| *x == 0), "undelegated granule not zero");
            }
            fid::REALM_CREATE => {
                let page = self.ns_page(a[1])?;
                let p = ipc_schema::rmi::RmiRealmParams::read_from_bytes(&page).unwrap();
                prop_assert_eq!(p.rtt_num_start, 1);
                self.set(a[0], S::Delegated, S::Rd)?;
                self.set(p.rtt_base, S::Delegated, S::Rtt)?;
                self.realms.insert(
                    a[0],
                    RealmModel {
                        starting: p.rtt_base,
                        ..Default::default()
                    },
                );
            }
            fid::REALM_DESTROY => {
                let r = self.realms.remove(&a[0]);
                prop_assert!(r.is_some(), "destroyed an unknown realm");
                let r = r.unwrap();
                prop_assert!(
                    r.recs.is_empty() && r.data.is_empty() && r.rtts.is_empty(),
                    "destroyed a live realm: {:?}",
                    r
                );
                self.set(a[0], S::Rd, S::Delegated)?;
                self.set(r.starting, S::Rtt, S::Delegated)?;
            }
            fid::RTT_CREATE => {
                self.set(a[1], S::Delegated, S::Rtt)?;
                let r = self.realms.get_mut(&a[0]);
                prop_assert!(r.is_some());
                r.unwrap().rtts.insert(a[1]);
            }
            fid::RTT_DESTROY | fid::RTT_FOLD => {
                let rtt = out[1];
                let r = self.realms.get_mut(&a[0]);
                prop_assert!(r.is_some());
                prop_assert!(
                    r.unwrap().rtts.remove(&rtt),
                    "RTT {:#x} not the realm's",
                    rtt
                );
                self.set(rtt, S::Rtt, S::Delegated)?;
            }
            fid::DATA_CREATE | fid::DATA_CREATE_UNKNOWN => {
                if f == fid::DATA_CREATE {
                    self.ns_page(a[3])?;
                }
                self.set(a[1], S::Delegated, S::Data)?;
                let r = self.realms.get_mut(&a[0]);
                prop_assert!(r.is_some());
                let old = r.unwrap().data.insert(a[2], a[1]);
                prop_assert_eq!(old, None, "two DATA granules at one IPA");
            }
            fid::DATA_DESTROY => {
                let r = self.realms.get_mut(&a[0]);
                prop_assert!(r.is_some());
                let old = r.unwrap().data.remove(&a[1]);
                prop_assert_eq!(old, Some(out[1]), "DATA_DESTROY returned the wrong PA");
                self.set(out[1], S::Data, S::Delegated)?;
            }
            fid::REC_CREATE => {
                let page = self.ns_page(a[2])?;
                let p = RmiRecParams::read_from_bytes(&page).unwrap();
                let aux: Vec<u64> = p.aux[..p.num_aux as usize].to_vec();
                self.set(a[1], S::Delegated, S::Rec)?;
                for &x in &aux {
                    self.set(x, S::Delegated, S::RecAux)?;
                }
                let r = self.realms.get_mut(&a[0]);
                prop_assert!(r.is_some());
                r.unwrap().recs.insert(a[1], aux);
                let index = p.mpidr;
                self.host
                    .guest(a[1], move |cpu: &mut RealmCpu| guest(cpu, index));
            }
            fid::REC_DESTROY => {
                let rd = self.realm_of_rec(a[0]);
                prop_assert!(rd.is_some(), "destroyed an unknown REC");
                let aux = self
                    .realms
                    .get_mut(&rd.unwrap())
                    .and_then(|r| r.recs.remove(&a[0]))
                    .unwrap_or_default();
                self.set(a[0], S::Rec, S::Delegated)?;
                for x in aux {
                    self.set(x, S::RecAux, S::Delegated)?;
                }
            }
            fid::REC_ENTER => {
                self.ns_page(a[1])?;
                prop_assert!(self.realm_of_rec(a[0]).is_some());
            }
            _ => {}
        }
        Ok(())
    }

    /// Invariants that hold after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let table: BTreeMap<u64, S> = self.host.rmm.granules().iter().collect();
        for (pa, st) in &table {
            let want = self.states.get(pa).copied().unwrap_or(S::Undelegated);
            prop_assert_eq!(*st, want, "granule {:#x}", pa);
            let mut b = [0u8; 8];
            let readable = self.host.rmm.platform().ns_read(*pa, &mut b).is_ok();
            prop_assert_eq!(
                readable,
                *st == S::Undelegated,
                "NS readability of {:#x} ({:?})",
                pa,
                st
            );
        }
        for (&rd, r) in &self.realms {
            for ipa in IPAS.iter().copied().filter(|i| i % G == 0 && *i < UNPROT) {
                let o = self.host.rmm.rtt_read_entry(rd, ipa, 3);
                prop_assert_eq!(o.ret, RmiReturn::SUCCESS);
                let [level, state, desc, _] = o.out;
                match r.data.get(&ipa) {
                    Some(&pa) => {
                        prop_assert_eq!((level, state, desc), (3, rtt_state::ASSIGNED, pa));
                    }
                    None => prop_assert_ne!(state, rtt_state::ASSIGNED, "{:#x}", ipa),
                }
                for l in 1..3u64 {
                    let o =
                        self.host
                            .rmm
                            .rtt_read_entry(rd, ipa & !((1 << (12 + 9 * (3 - l))) - 1), l);
                    if o.out[1] == rtt_state::TABLE {
                        prop_assert!(r.rtts.contains(&o.out[2]), "TABLE -> {:#x}", o.out[2]);
                    }
                }
            }
            for (&ipa, &pa) in &r.data {
                prop_assert_eq!(self.states.get(&pa), Some(&S::Data));
                prop_assert!(ipa < UNPROT);
            }
        }
        Ok(())
    }

    fn step(&mut self, c: &Cmd) -> Result<(), TestCaseError> {
        let (f, args) = self.regs(c);
        let before = self.host.snapshot();
        let out = self.host.smc(f, &args);
        let ok = RmiReturn::from_x0(out[0]).is_some_and(|r| r.is_success());
        let no_footprint = matches!(
            f,
            fid::RTT_READ_ENTRY | fid::VERSION | fid::FEATURES | fid::REC_AUX_COUNT
        );
        // Predictions the model can make on its own.
        if f == fid::GRANULE_DELEGATE {
            let want = self.states.get(&args[0]) == Some(&S::Undelegated);
            prop_assert_eq!(ok, want, "DELEGATE {:#x}", args[0]);
        }
        if f == fid::GRANULE_UNDELEGATE {
            let want = self.states.get(&args[0]) == Some(&S::Delegated);
            prop_assert_eq!(ok, want, "UNDELEGATE {:#x}", args[0]);
        }
        if ok {
            self.apply(f, &args, &out)?;
        }
        if (!ok || no_footprint) && f != fid::REC_ENTER {
            prop_assert!(
                before == self.host.snapshot(),
                "{:#x} {:x?} -> {:#x} changed state",
                f,
                args,
                out[0]
            );
        }
        if !ok && f == fid::REC_ENTER {
            // A failed REC_ENTER leaves every granule and RTT alone.
            prop_assert!(
                before == self.host.snapshot(),
                "failed REC_ENTER changed state"
            );
        }
        self.check()
    }
}

/// What a REC created by the model runs: touches memory (which may exit
/// to the host or take an SEA), asks for its config, waits, or powers off.
fn guest(cpu: &mut RealmCpu, index: u64) {
    loop {
        let _ = cpu.load(0x1000, 8);
        let _ = cpu.store(0x2000, 8, index);
        let _ = cpu.smc(smc_regs(rsi::fid::REALM_CONFIG, &[0x2000]));
        let _ = cpu.load(UNPROT + 0x10, 4);
        cpu.host_interrupt();
        if index == 1 {
            return;
        }
    }
}

/// Half the cases start from a NEW realm with RTTs down to level 3 at IPA
/// 0 (built through the same checked steps), so the random commands reach
/// DATA, RIPAS and REC states more often.
fn warm_up_cmds() -> Vec<Cmd> {
    let mut v: Vec<Cmd> = (0..11)
        .map(|_| Cmd::Delegate(Sel::In(S::Undelegated, 0)))
        .collect();
    v.push(Cmd::RealmCreate {
        rd: Sel::In(S::Delegated, 0),
        rtt: Sel::In(S::Delegated, 1),
        vmid: 0,
        params: None,
    });
    v.push(Cmd::RttCreate(
        Sel::In(S::Rd, 0),
        Sel::In(S::Delegated, 0),
        0,
        3,
    ));
    v.push(Cmd::RttCreate(
        Sel::In(S::Rd, 0),
        Sel::In(S::Delegated, 0),
        0,
        4,
    ));
    // A level-2 table in the unprotected half, for NS mappings.
    v.push(Cmd::RttCreate(
        Sel::In(S::Rd, 0),
        Sel::In(S::Delegated, 0),
        6,
        3,
    ));
    v.push(Cmd::DataCreate {
        rd: Sel::In(S::Rd, 0),
        data: Sel::In(S::Delegated, 0),
        ipa: 1,
        src: None,
        flags: 1,
    });
    v.push(Cmd::RecCreate {
        rd: Sel::In(S::Rd, 0),
        rec: Sel::In(S::Delegated, 0),
        aux: [Sel::In(S::Delegated, 1), Sel::In(S::Delegated, 2)],
        index: 0,
        runnable: true,
        params: None,
    });
    v
}

#[test]
fn random_rmi_sequences_keep_the_invariants() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (any::<bool>(), proptest::collection::vec(cmd(), 1..60));
    let result = runner.run(&strategy, |(warm_up, cmds)| {
        let mut w = World::new();
        w.check()?;
        let prefix = if warm_up { warm_up_cmds() } else { Vec::new() };
        for c in prefix.iter().chain(&cmds) {
            w.step(c)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
