//! A small normal-world host for the targets that hand ABI structures to
//! the real RMM core: a simulated machine of [`DRAM_GRANULES`] granules, the
//! measurement service behind the in-process transport, and the few RMI
//! steps a hypervisor takes to build a realm.

use atoll_kernel::arch::host::{InlineGuest, LocalTransport, SimMachine};
use atoll_kernel::arch::Platform;
use atoll_kernel::{Rmm, RmmConfig};
use atoll_measurement::MeasurementService;
use ipc_schema::rmi::{self, RmiRealmParams, RmiRecParams, RmiReturn};
use ipc_schema::service::ServiceId;
use zerocopy::{FromZeros, IntoBytes};

/// Base of the simulated DRAM.
pub const DRAM_BASE: u64 = 0x8000_0000;
/// Granules of simulated DRAM: enough for a realm with one REC, its
/// tables, a few data pages and the host's params and run pages.
pub const DRAM_GRANULES: u64 = 96;
/// Granule size.
pub const G: u64 = 4096;

/// The host and the RMM it drives.
pub struct Host {
    /// The RMM core.
    pub rmm: Rmm<SimMachine, LocalTransport>,
    next: u64,
}

/// A realm the host built.
#[derive(Copy, Clone, Debug)]
pub struct RealmRef {
    /// RD granule.
    pub rd: u64,
    /// Starting level of its RTT walk.
    pub start_level: i64,
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Host {
    /// A fresh machine, every granule NS and zero.
    pub fn new() -> Self {
        let mut t = LocalTransport::new();
        let mut service = MeasurementService::new(4);
        t.register(
            ServiceId::Measurement,
            Box::new(move |req, leases, resp| Some(service.handle_bytes(req, leases, resp))),
        );
        let machine = SimMachine::new(DRAM_BASE, DRAM_GRANULES * G);
        Self {
            rmm: Rmm::new(machine, t, RmmConfig::default()),
            next: DRAM_BASE,
        }
    }

    /// A fresh NS granule.
    pub fn alloc(&mut self) -> u64 {
        let pa = self.next;
        self.next += G;
        assert!(
            pa < DRAM_BASE + DRAM_GRANULES * G,
            "fuzz host out of memory"
        );
        pa
    }

    /// `n` contiguous NS granules aligned to `n` granules.
    pub fn alloc_aligned(&mut self, n: u64) -> u64 {
        self.next = self.next.div_ceil(n * G) * (n * G);
        let pa = self.next;
        self.next += n * G;
        assert!(
            self.next <= DRAM_BASE + DRAM_GRANULES * G,
            "fuzz host out of memory"
        );
        pa
    }

    /// A fresh delegated granule.
    pub fn delegated(&mut self) -> u64 {
        let pa = self.alloc();
        assert_eq!(self.rmm.granule_delegate(pa), Ok(()), "delegate {pa:#x}");
        pa
    }

    /// Writes NS memory.
    pub fn write(&mut self, pa: u64, bytes: &[u8]) {
        self.rmm
            .platform_mut()
            .ns_write(pa, bytes)
            .expect("NS write");
    }

    /// Reads NS memory.
    pub fn read(&self, pa: u64, buf: &mut [u8]) {
        self.rmm.platform().ns_read(pa, buf).expect("NS read");
    }

    /// Reads any memory, as the simulated machine's bus would (realm
    /// granules included): for checking what the RMM wrote.
    pub fn read_phys(&self, pa: u64, buf: &mut [u8]) {
        self.rmm.platform().read(pa, buf).expect("physical read");
    }

    /// A fresh NS page holding `bytes`.
    pub fn page(&mut self, bytes: &[u8]) -> u64 {
        let pa = self.alloc();
        self.write(pa, bytes);
        pa
    }

    /// Valid realm parameters: 40-bit IPA, starting level 1 with two
    /// concatenated tables, SHA-256, `rtt_base` to be filled in.
    pub fn default_params() -> RmiRealmParams {
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

    /// `n` delegated, contiguous, aligned starting RTTs.
    pub fn starting_rtts(&mut self, n: u64) -> u64 {
        let base = self.alloc_aligned(n);
        for i in 0..n {
            let pa = base + i * G;
            assert_eq!(self.rmm.granule_delegate(pa), Ok(()));
        }
        base
    }

    /// Creates a realm from `p` with fresh starting RTTs.
    pub fn create_realm_with(&mut self, mut p: RmiRealmParams) -> RealmRef {
        p.rtt_base = self.starting_rtts(u64::from(p.rtt_num_start));
        let rd = self.delegated();
        let params = self.page(p.as_bytes());
        assert_eq!(self.rmm.realm_create(rd, params), Ok(()));
        RealmRef {
            rd,
            start_level: p.rtt_level_start,
        }
    }

    /// Tables down to level 3 over `ipa`.
    pub fn rtts_to_page(&mut self, realm: &RealmRef, ipa: u64) {
        for l in (realm.start_level + 1)..=3 {
            let parent = align(ipa, l - 1);
            let out = self.rmm.rtt_read_entry(realm.rd, parent, (l - 1) as u64);
            if out.out[1] == rmi::rtt_state::TABLE && out.out[0] as i64 == l - 1 {
                continue;
            }
            let rtt = self.delegated();
            let r = self.rmm.rtt_create(realm.rd, rtt, parent, l as u64);
            assert_eq!(r, Ok(()), "RTT_CREATE level {l} at {ipa:#x}");
        }
    }

    /// `RMI_RTT_INIT_RIPAS` over `[base, top)`.
    pub fn init_ripas(&mut self, realm: &RealmRef, base: u64, top: u64) {
        let mut b = base;
        while b < top {
            let out = self.rmm.rtt_init_ripas(realm.rd, b, top);
            assert_eq!(out.ret, RmiReturn::SUCCESS, "INIT_RIPAS {b:#x}..{top:#x}");
            b = out.out[0];
        }
    }

    /// A measured DATA page at `ipa` holding `content` (zero-extended to a
    /// granule); returns the DATA granule's PA.
    pub fn data(&mut self, realm: &RealmRef, ipa: u64, content: &[u8]) -> u64 {
        self.rtts_to_page(realm, ipa);
        let mut page = vec![0u8; G as usize];
        let n = content.len().min(page.len());
        page[..n].copy_from_slice(&content[..n]);
        let src = self.page(&page);
        let data = self.delegated();
        assert_eq!(
            self.rmm
                .data_create(realm.rd, data, ipa, src, rmi::data_flags::MEASURE_CONTENT),
            Ok(())
        );
        data
    }

    /// Valid REC params: MPIDR 0, runnable, entry `pc`, fresh aux granules.
    pub fn rec_params(&mut self, pc: u64) -> RmiRecParams {
        let mut p = RmiRecParams::new_zeroed();
        p.flags = rmi::rec_flags::RUNNABLE;
        p.pc = pc;
        let aux = u64::from(self.rmm.config().rec_aux_count);
        p.num_aux = aux;
        for i in 0..aux as usize {
            p.aux[i] = self.delegated();
        }
        p
    }

    /// A runnable REC of `realm`.
    pub fn create_rec(&mut self, realm: &RealmRef) -> u64 {
        let p = self.rec_params(0x1000);
        let params = self.page(p.as_bytes());
        let rec = self.delegated();
        assert_eq!(self.rmm.rec_create(realm.rd, rec, params), Ok(()));
        rec
    }

    /// An active realm (default params, `rpv` as given) with RAM at
    /// `[0, 4 pages)`, DATA pages at IPA 0 and 0x1000 holding `page0` and
    /// `page1`, and one runnable REC running `guest` (none: the vCPU idles).
    /// Returns the realm, the REC and the two DATA granules' PAs.
    pub fn active_realm(
        &mut self,
        rpv: [u8; 64],
        page0: &[u8],
        page1: &[u8],
        guest: Option<InlineGuest>,
    ) -> (RealmRef, u64, [u64; 2]) {
        let mut p = Self::default_params();
        p.rpv = rpv;
        let realm = self.create_realm_with(p);
        self.rtts_to_page(&realm, 0);
        self.init_ripas(&realm, 0, 4 * G);
        let d0 = self.data(&realm, 0, page0);
        let d1 = self.data(&realm, G, page1);
        let rec = self.create_rec(&realm);
        assert_eq!(self.rmm.realm_activate(realm.rd), Ok(()));
        if let Some(guest) = guest {
            self.rmm.platform_mut().attach_inline_guest(rec, guest);
        }
        (realm, rec, [d0, d1])
    }
}

/// `ipa` aligned down to the size of a level-`level` entry.
pub fn align(ipa: u64, level: i64) -> u64 {
    let shift = 12 + 9 * (3 - level) as u32;
    ipa & !((1u64 << shift) - 1)
}

/// `data` zero-extended or truncated to exactly `len` bytes.
pub fn exact(data: &[u8], len: usize) -> Vec<u8> {
    let mut v = data[..data.len().min(len)].to_vec();
    v.resize(len, 0);
    v
}
