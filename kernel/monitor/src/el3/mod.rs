//! The monitor proper: cold boot and the SMC handler.

extern crate alloc;

mod asm;
mod ctx;
mod hw;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::panic::PanicInfo;

use atoll_hes_link::HesLink;
use atoll_monitor::bump::Arena;
use atoll_monitor::imgtable::{self, Image};
use atoll_monitor::layout::{self, scr, World};
use atoll_monitor::manifest;
use atoll_monitor::smc::{self, Call};
use atoll_monitor::token::{shared_buffer, TokenBuffer};
use ipc_schema::el3::status;
use ipc_schema::hes::{EccCurve, HesHashAlgo, MeasurementRecord, VhukId, P384_SCALAR_LEN};
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};

use ctx::{Ctx, El2Regs};
use hw::{println, Gpt, HesUart, Table};

/// Where the cold boot is.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Phase {
    /// The RMM is initialising; waiting for BOOT_COMPLETE.
    RmmBoot,
    /// Both worlds up.
    Running,
}

struct State {
    ns: Ctx,
    realm: Ctx,
    ns_el2: El2Regs,
    realm_el2: El2Regs,
    phase: Phase,
    /// An NS RMI call is with the RMM.
    rmi_pending: bool,
    hes: Option<HesLink<HesUart>>,
    token: TokenBuffer,
    gpt: Gpt,
    l1: Table,
    l2: Table,
}

/// Monitor state shared by cold boot and the SMC handler.
struct Global<T>(UnsafeCell<T>);

// SAFETY: one CPU runs the monitor (the others are parked before touching
// anything), EL3 runs with all exceptions masked, and each entry (cold
// boot, one SMC) takes the only reference for its duration.
unsafe impl<T> Sync for Global<T> {}

static STATE: Global<State> = Global(UnsafeCell::new(State {
    ns: Ctx::new(),
    realm: Ctx::new(),
    ns_el2: El2Regs::new(),
    realm_el2: El2Regs::new(),
    phase: Phase::RmmBoot,
    rmi_pending: false,
    hes: None,
    token: TokenBuffer::new(),
    gpt: Gpt,
    l1: Table([0; 512]),
    l2: Table([0; 512]),
}));

fn state() -> &'static mut State {
    // SAFETY: see `Global`: called once per monitor entry (cold boot or one
    // exception), never while another reference is alive.
    unsafe { &mut *STATE.0.get() }
}

struct Heap(UnsafeCell<Arena>);

// SAFETY: as for `Global`.
unsafe impl Sync for Heap {}

extern "C" {
    static __heap_start: u8;
    static __heap_end: u8;
    static __image_end: u8;
}

#[global_allocator]
static HEAP: Heap = Heap(UnsafeCell::new(Arena::new(0, 0)));

// SAFETY: `Arena` hands out disjoint, aligned ranges of the linker-reserved
// heap and reuses them only when no allocation is live.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: single CPU, no reentrancy (see `Global`).
        let arena = unsafe { &mut *self.0.get() };
        arena
            .alloc(l.size(), l.align())
            .map_or(core::ptr::null_mut(), |a| a as *mut u8)
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _l: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { &mut *self.0.get() }.dealloc();
    }
}

fn heap_init() {
    // SAFETY: taking the addresses of linker symbols.
    let (start, end) = unsafe {
        (
            &__heap_start as *const u8 as usize,
            &__heap_end as *const u8 as usize,
        )
    };
    // SAFETY: before any allocation, single CPU.
    unsafe { *HEAP.0.get() = Arena::new(start, end) };
}

/// VA of a Realm-PAS PA through the Realm alias of the EL3 tables.
fn realm_va(pa: u64) -> u64 {
    pa + layout::REALM_ALIAS_OFFSET
}

/// The shared page through its Realm mapping.
fn shared_page() -> &'static mut [u8] {
    // SAFETY: the shared page is a Realm granule mapped read-write at
    // `realm_va` (NSE=1, NS=1); the RMM is not running while EL3 does.
    unsafe {
        core::slice::from_raw_parts_mut(
            realm_va(layout::SHARED_PAGE) as *mut u8,
            layout::GRANULE as usize,
        )
    }
}

fn flash(offset: u64, len: u64) -> &'static [u8] {
    // SAFETY: flash0 is mapped read-only at its PA and never written.
    unsafe { core::slice::from_raw_parts(offset as *const u8, len as usize) }
}

fn record(digest: &[u8], signer: &[u8], component: &str) -> Option<MeasurementRecord> {
    Some(MeasurementRecord {
        algo: HesHashAlgo::Sha256,
        measurement: BoundedBytes::new(digest).ok()?,
        signer_id: BoundedBytes::new(signer).ok()?,
        version: ipc_schema::hes::BoundedStr::new("0.1.0").ok()?,
        component_type: ipc_schema::hes::BoundedStr::new(component).ok()?,
    })
}

fn fatal(what: &str) -> ! {
    println!("fatal: {what}");
    hw::system_off()
}

fn hex8(d: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// Copies and measures one image; `slot` is its HES slot.
fn load_image(hes: &mut HesLink<HesUart>, img: &Image, slot: u8) {
    let src = flash(img.offset, img.size);
    let dst_va = if img.kind == layout::KIND_RMM {
        realm_va(img.load)
    } else {
        img.load
    };
    // SAFETY: `imgtable::parse` confined `load..load+size` to the Realm
    // carve-out below the shared page (RMM, written through the Realm
    // alias) or to NS DRAM (NS host, identity NS mapping); nothing else uses
    // that memory yet; the source is flash.
    let dst = unsafe { core::slice::from_raw_parts_mut(dst_va as *mut u8, img.size as usize) };
    dst.copy_from_slice(src);
    hw::clean_inval_dcache(dst_va, img.size);
    let digest = Sha256::digest(&*dst);
    let Some(rec) = record(&digest, &img.signer_id, img.component_type()) else {
        fatal("measurement record")
    };
    if let Err(e) = hes.extend(slot, rec, false) {
        println!("HES extend slot {slot} failed: {e}");
        fatal("measured boot");
    }
    println!(
        "loaded {} at {:#x} ({:#x} bytes), sha256 {:016x}..., slot {}",
        img.component_type(),
        img.load,
        img.size,
        hex8(&digest),
        slot
    );
}

#[no_mangle]
extern "C" fn monitor_main() -> ! {
    let st = state();
    hw::enable_mmu(&mut st.l1, &mut st.l2);
    heap_init();
    println!("Atoll EL3 monitor");

    // Measured boot: the monitor itself in slot 0, then every image.
    let mut hes = HesLink::new(HesUart::new());
    // SAFETY: taking the address of a linker symbol.
    let image_end = unsafe { &__image_end as *const u8 as u64 };
    let own = Sha256::digest(flash(0, image_end));
    let Some(rec) = record(&own, &layout::MONITOR_SIGNER_ID, "BL2") else {
        fatal("measurement record")
    };
    if let Err(e) = hes.extend(0, rec, false) {
        println!("HES extend slot 0 failed: {e}");
        fatal("measured boot");
    }
    println!(
        "measured BL2 ({image_end:#x} bytes), sha256 {:016x}..., slot 0",
        hex8(&own)
    );

    let table_len = (imgtable::HEADER_LEN + imgtable::MAX_ENTRIES * imgtable::ENTRY_LEN) as u64;
    let (images, count) = match imgtable::parse(flash(layout::IMAGE_TABLE, table_len)) {
        Ok(t) => t,
        Err(e) => {
            println!("image table refused: {e:?}");
            fatal("no images")
        }
    };
    for (i, img) in images.iter().take(count).flatten().enumerate() {
        load_image(&mut hes, img, i as u8 + 1);
    }
    if let Err(e) = hes.boot_complete() {
        println!("HES BootComplete failed: {e}");
        fatal("measured boot");
    }
    println!("HES boot complete");
    st.hes = Some(hes);

    st.gpt.build_and_enable();
    println!("GPC enabled, GPCCR_EL3 {:#x}", st.gpt.gpccr());
    hw::gic_init();

    manifest::build(shared_page(), layout::SHARED_PAGE);
    hw::clean_inval_dcache(realm_va(layout::SHARED_PAGE), layout::GRANULE);

    st.realm.x[0] = 0;
    st.realm.x[1] = layout::RMM_INTERFACE_VERSION;
    st.realm.x[2] = layout::CORE_COUNT;
    st.realm.x[3] = layout::SHARED_PAGE;
    st.realm.elr = layout::RMM_ENTRY;
    st.realm.spsr = layout::SPSR_EL2H_DAIF;
    st.realm.scr = scr::REALM_WORLD;
    st.realm_el2 = El2Regs::initial(true);
    st.realm_el2.restore();
    st.phase = Phase::RmmBoot;
    println!("entering RMM at {:#x} (R-EL2)", layout::RMM_ENTRY);
    let ctx = &mut st.realm as *mut Ctx;
    // SAFETY: the realm context is complete; el3_exit does not return.
    unsafe { asm::el3_exit(ctx) }
}

/// A lower-EL synchronous exception; returns the context to resume.
#[no_mangle]
extern "C" fn el3_lower_sync(_saved: *mut Ctx) -> *mut Ctx {
    let st = state();
    let esr = ctx::mrs!("esr_el3");
    let world = World::from_scr(ctx::mrs!("scr_el3"));
    let cur = match world {
        World::Realm => &mut st.realm,
        _ => &mut st.ns,
    };
    if esr >> 26 != 0x17 {
        println!(
            "unexpected exception from {:?}: ESR {:#x} ELR {:#x} FAR {:#x}",
            world,
            esr,
            cur.elr,
            ctx::mrs!("far_el3")
        );
        hw::system_off();
    }
    match world {
        World::NonSecure => ns_smc(st),
        World::Realm => realm_smc(st),
        World::Secure => fatal("SMC from the secure world"),
    }
}

fn ns_smc(st: &mut State) -> *mut Ctx {
    let x = &mut st.ns.x;
    match smc::classify(World::NonSecure, x[0]) {
        Call::RmiForward => {
            st.ns_el2.save();
            st.realm_el2.restore();
            st.realm.x[..8].copy_from_slice(&st.ns.x[..8]);
            st.rmi_pending = true;
            return &mut st.realm;
        }
        Call::SmcccVersion => x[0] = smc::SMCCC_VERSION_1_2,
        Call::PsciVersion => x[0] = smc::PSCI_VERSION_1_1,
        Call::PsciFeatures => x[0] = smc::psci_features(x[1]),
        Call::PsciCpuOn => x[0] = smc::PSCI_NOT_SUPPORTED,
        Call::PsciSystemOff => hw::system_off(),
        Call::PsciSystemReset => hw::system_reset(),
        _ => x[0] = smc::SMC_UNKNOWN,
    }
    &mut st.ns
}

fn set_status(x: &mut [u64; 31], s: i64) {
    x[0] = s as u64;
}

fn realm_smc(st: &mut State) -> *mut Ctx {
    let call = smc::classify(World::Realm, st.realm.x[0]);
    let x = &mut st.realm.x;
    match call {
        Call::BootComplete if st.phase == Phase::RmmBoot => {
            let rc = x[1] as i64;
            if rc != 0 {
                println!("RMM boot failed: {rc}");
                hw::system_off();
            }
            st.realm_el2.save();
            st.ns_el2 = El2Regs::initial(false);
            st.ns_el2.restore();
            st.ns.x = [0; 31];
            st.ns.x[0] = layout::DTB;
            st.ns.elr = layout::NS_ENTRY;
            st.ns.spsr = layout::SPSR_EL2H_DAIF;
            st.ns.scr = scr::NS_WORLD;
            st.phase = Phase::Running;
            println!(
                "RMM booted; entering NS host at {:#x} (NS-EL2)",
                layout::NS_ENTRY
            );
            return &mut st.ns;
        }
        Call::RmiReqComplete if st.rmi_pending => {
            st.realm_el2.save();
            st.ns_el2.restore();
            st.ns.x[..5].copy_from_slice(&st.realm.x[1..6]);
            st.rmi_pending = false;
            return &mut st.ns;
        }
        Call::GtsiDelegate => {
            let r = st.gpt.delegate(x[1]);
            set_status(x, r.map_or_else(|e| e.status(), |()| status::OK));
        }
        Call::GtsiUndelegate => {
            let r = st.gpt.undelegate(x[1]);
            set_status(x, r.map_or_else(|e| e.status(), |()| status::OK));
        }
        Call::El3Features => {
            x[0] = 0;
            x[1] = 0;
        }
        Call::GetRealmKey => get_realm_key(st),
        Call::GetPlatToken => get_plat_token(st),
        Call::IsletVhuk => get_vhuk(st),
        // BOOT_COMPLETE twice, REQ_COMPLETE without a request, or unknown.
        Call::BootComplete | Call::RmiReqComplete => set_status(x, status::UNK),
        _ => x[0] = smc::SMC_UNKNOWN,
    }
    &mut st.realm
}

fn get_realm_key(st: &mut State) {
    let x = &mut st.realm.x;
    let (buf, size, curve) = (x[1], x[2], x[3]);
    let (Some(off), Some(curve)) = (shared_buffer(buf, size), EccCurve::from_el3(curve)) else {
        return set_status(x, status::INVAL);
    };
    if (size as usize) < P384_SCALAR_LEN {
        return set_status(x, status::INVAL);
    }
    let Some(hes) = st.hes.as_mut() else {
        return set_status(x, status::UNK);
    };
    match hes.realm_key(curve, HesHashAlgo::Sha256) {
        Ok(key) => {
            shared_page()[off..off + P384_SCALAR_LEN].copy_from_slice(&key[..]);
            x[0] = 0;
            x[1] = P384_SCALAR_LEN as u64;
        }
        Err(e) => {
            println!("HES realm key: {e}");
            set_status(x, status::UNK);
        }
    }
}

fn get_plat_token(st: &mut State) {
    let x = &mut st.realm.x;
    let (buf, size, csize) = (x[1], x[2], x[3]);
    let Some(off) = shared_buffer(buf, size) else {
        return set_status(x, status::INVAL);
    };
    if size == 0 {
        return set_status(x, status::INVAL);
    }
    let page = shared_page();
    if csize != 0 {
        if !matches!(csize, 32 | 48 | 64) || csize > size {
            return set_status(x, status::INVAL);
        }
        let Some(hes) = st.hes.as_mut() else {
            return set_status(x, status::UNK);
        };
        let challenge = &page[off..off + csize as usize];
        match hes.platform_token(challenge) {
            Ok(token) => {
                if st.token.load(&token).is_err() {
                    return set_status(x, status::NOMEM);
                }
            }
            Err(e) => {
                println!("HES platform token: {e}");
                return set_status(x, status::UNK);
            }
        }
    } else if !st.token.active() {
        return set_status(x, status::INVAL);
    }
    let (n, remaining) = st.token.next_chunk(&mut page[off..off + size as usize]);
    x[0] = 0;
    x[1] = n as u64;
    x[2] = remaining as u64;
}

fn get_vhuk(st: &mut State) {
    let x = &mut st.realm.x;
    let Some(id) = VhukId::from_islet(x[1]) else {
        return set_status(x, status::INVAL);
    };
    let Some(hes) = st.hes.as_mut() else {
        return set_status(x, status::UNK);
    };
    match hes.vhuk(id) {
        Ok(key) => {
            let w = smc::key_words(&key);
            x[0] = 0;
            x[1..5].copy_from_slice(&w);
        }
        Err(e) => {
            println!("HES VHUK: {e}");
            set_status(x, status::UNK);
        }
    }
}

/// An exception that should never reach EL3: report and power off.
#[no_mangle]
extern "C" fn el3_unexpected(kind: u64) -> ! {
    println!(
        "unexpected EL3 exception (vector {kind}): ESR {:#x} ELR {:#x} FAR {:#x} SCR {:#x}",
        ctx::mrs!("esr_el3"),
        ctx::mrs!("elr_el3"),
        ctx::mrs!("far_el3"),
        ctx::mrs!("scr_el3")
    );
    hw::system_off()
}

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    println!("panic: {info}");
    hw::system_off()
}
