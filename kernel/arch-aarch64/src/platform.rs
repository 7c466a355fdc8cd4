//! `Platform` for R-EL2 on QEMU `virt` with RME.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use atoll_kernel::arch::{
    El3Error, Gpf, GtsiError, Pas, Platform, RealmVcpu, Resume, Trap, VcpuIrqs, VcpuRegs,
};
use ipc_schema::el3::{self as el3abi, DramBank};
use ipc_schema::islet;

use crate::asm;
use crate::cpu::isb;
use crate::el3::call;
use crate::mmu::NS_ALIAS;
use crate::pas::PasMap;
use crate::stage2::{vtcr, vttbr, RttSource, Stage2};
use crate::vcpu::{
    decode_exit, load_ctx, vmpidr, El1Regs, FpRegs, GuestCtx, RecCpu, HCR_REALM, HCR_RMM,
};
use crate::{mrs, msr, vgic};

/// Largest platform token accepted from the monitor.
const PLAT_TOKEN_MAX: usize = 64 * 1024;

/// The machine under the RMM.
pub struct QemuPlatform {
    banks: [DramBank; 1],
    pas: PasMap,
    shared: u64,
    recs: BTreeMap<u64, RecCpu>,
    /// The stage 2 of the REC about to run, built by `prepare_vcpu`.
    current: Option<(u64, RealmVcpu, Stage2)>,
}

fn el3_error(v: u64) -> El3Error {
    match v as i64 {
        el3abi::status::BAD_ADDR => El3Error::BadAddr,
        el3abi::status::BAD_PAS => El3Error::BadPas,
        el3abi::status::NOMEM => El3Error::NoMem,
        el3abi::status::INVAL => El3Error::Invalid,
        el3abi::status::AGAIN => El3Error::Again,
        _ => El3Error::Unknown,
    }
}

struct Rtts<'a>(&'a QemuPlatform);

impl RttSource for Rtts<'_> {
    fn read_rtt(&self, pa: u64, out: &mut [u64; 512]) {
        let mut b = [0u8; 4096];
        if self.0.read(pa, &mut b).is_ok() {
            for (o, c) in out.iter_mut().zip(b.chunks_exact(8)) {
                let mut w = [0u8; 8];
                w.copy_from_slice(c);
                *o = u64::from_le_bytes(w);
            }
        } else {
            *out = [0; 512];
        }
    }
}

impl QemuPlatform {
    /// The platform for one DRAM bank, with the RMM's own carve-out
    /// `[rmm_start, rmm_end)` (Realm PAS per the boot contract) and the
    /// EL3 shared page at `shared`.
    pub fn new(bank: DramBank, rmm_start: u64, rmm_end: u64, shared: u64) -> Self {
        let pas = PasMap::new(bank.base, bank.size, &[(rmm_start, rmm_end)]);
        msr!("hcr_el2", HCR_RMM);
        // CPTR_EL2.TFP = 0: the RMM switches the FP/SIMD registers between
        // the host and RECs itself (EL3 does not), and realms own theirs.
        msr!("cptr_el2", mrs!("cptr_el2") & !(1 << 10));
        isb();
        Self {
            banks: [bank],
            pas,
            shared,
            recs: BTreeMap::new(),
            current: None,
        }
    }

    /// Reads `buf.len()` bytes of the EL3 shared page at `offset`.
    fn shared_read(&self, offset: usize, buf: &mut [u8]) -> bool {
        if offset + buf.len() > 4096 {
            return false;
        }
        let src = (self.shared + offset as u64) as *const u8;
        // SAFETY: the shared page is Realm PAS, mapped VA = PA, owned by the
        // RMM between monitor calls; `buf` is RMM memory of the given size.
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        true
    }

    fn shared_write(&mut self, offset: usize, data: &[u8]) -> bool {
        if offset + data.len() > 4096 {
            return false;
        }
        let dst = (self.shared + offset as u64) as *mut u8;
        // SAFETY: as for `shared_read`.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        true
    }

    /// The VA through which the RMM reaches `[pa, pa + len)`: the Realm
    /// view for Realm granules, the NS alias for NS granules.
    fn va(&self, pa: u64, len: usize) -> Result<(u64, bool), Gpf> {
        if self.pas.all(pa, len, Pas::Realm) {
            Ok((pa, false))
        } else if self.pas.all(pa, len, Pas::NonSecure) {
            Ok((pa + NS_ALIAS, true))
        } else {
            Err(Gpf { pa })
        }
    }

    fn copy_in(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        let (va, ns) = self.va(pa, buf.len())?;
        if ns {
            // SAFETY: `va` is the NS alias of granules recorded NS, mapped
            // for the whole range; `buf` is RMM memory. A GPF returns false.
            if !unsafe { asm::ns_copy(buf.as_mut_ptr(), va as *const u8, buf.len()) } {
                return Err(Gpf { pa });
            }
        } else {
            // SAFETY: Realm granules of DRAM, mapped VA = PA; the kernel
            // holds no reference into them while it calls `read`.
            unsafe { core::ptr::copy_nonoverlapping(va as *const u8, buf.as_mut_ptr(), buf.len()) };
        }
        Ok(())
    }

    fn copy_out(&self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        let (va, ns) = self.va(pa, data.len())?;
        if ns {
            // SAFETY: as in `copy_in`, in the other direction.
            if !unsafe { asm::ns_copy(va as *mut u8, data.as_ptr(), data.len()) } {
                return Err(Gpf { pa });
            }
        } else {
            // SAFETY: as in `copy_in`.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), va as *mut u8, data.len()) };
        }
        Ok(())
    }

    fn realm_slice(&self, pa: u64, len: usize) -> Result<*mut u8, Gpf> {
        if !self.pas.all(pa, len, Pas::Realm) || !self.in_bank(pa, len) {
            return Err(Gpf { pa });
        }
        Ok(pa as *mut u8)
    }

    fn in_bank(&self, pa: u64, len: usize) -> bool {
        let b = &self.banks[0];
        pa >= b.base
            && pa
                .checked_add(len as u64)
                .is_some_and(|e| e <= b.base + b.size)
    }
}

impl Platform for QemuPlatform {
    fn dram(&self) -> &[DramBank] {
        &self.banks
    }

    fn pas(&self, pa: u64) -> Option<Pas> {
        self.pas.get(pa)
    }

    fn read(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        self.copy_in(pa, buf)
    }

    fn write(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        self.copy_out(pa, data)
    }

    fn read_ns(&self, pa: u64, buf: &mut [u8]) -> Result<(), Gpf> {
        if !self.pas.all(pa, buf.len(), Pas::NonSecure) {
            return Err(Gpf { pa });
        }
        self.copy_in(pa, buf)
    }

    fn write_ns(&mut self, pa: u64, data: &[u8]) -> Result<(), Gpf> {
        if !self.pas.all(pa, data.len(), Pas::NonSecure) {
            return Err(Gpf { pa });
        }
        self.copy_out(pa, data)
    }

    fn borrow(&self, pa: u64, len: usize) -> Result<&[u8], Gpf> {
        let p = self.realm_slice(pa, len)?;
        // SAFETY: Realm granules inside DRAM, mapped VA = PA; the slice is
        // tied to `&self`, so the kernel cannot write them meanwhile.
        Ok(unsafe { core::slice::from_raw_parts(p, len) })
    }

    fn lend_mut(&mut self, pa: u64, len: usize) -> Result<&mut [u8], Gpf> {
        let p = self.realm_slice(pa, len)?;
        // SAFETY: as in `borrow`; `&mut self` makes the loan exclusive.
        Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
    }

    fn lend_pair(&mut self, src: u64, dst: u64, len: usize) -> Result<(&[u8], &mut [u8]), Gpf> {
        if !self.pas.all(src, len, Pas::NonSecure) || !self.in_bank(src, len) {
            return Err(Gpf { pa: src });
        }
        let d = self.realm_slice(dst, len)?;
        // Different PAS, so the ranges cannot overlap.
        let s = (src + NS_ALIAS) as *const u8;
        // SAFETY: `src` is NS DRAM read through the NS alias and `dst` Realm
        // DRAM at VA = PA, both mapped for `len` bytes and disjoint;
        // `&mut self` makes the loans exclusive. The host could delegate
        // `src` while it is lent only through this RMM, which is busy.
        Ok(unsafe {
            (
                core::slice::from_raw_parts(s, len),
                core::slice::from_raw_parts_mut(d, len),
            )
        })
    }

    fn attest_realm_key(&mut self) -> Result<[u8; 48], El3Error> {
        let r = call(
            el3abi::fid::ATTEST_GET_REALM_KEY,
            &[self.shared, 4096, el3abi::ECC_CURVE_P384],
        );
        if r[0] != 0 {
            return Err(el3_error(r[0]));
        }
        if r[1] != 48 {
            return Err(El3Error::Invalid);
        }
        let mut key = [0u8; 48];
        self.shared_read(0, &mut key);
        // Do not leave the key in the shared page.
        self.shared_write(0, &[0u8; 48]);
        Ok(key)
    }

    fn attest_platform_token(&mut self, challenge: &[u8]) -> Result<Vec<u8>, El3Error> {
        let mut token = Vec::new();
        let mut first = true;
        loop {
            let csize = if first {
                if !self.shared_write(0, challenge) {
                    return Err(El3Error::Invalid);
                }
                challenge.len() as u64
            } else {
                0
            };
            let r = call(
                el3abi::fid::ATTEST_GET_PLAT_TOKEN,
                &[self.shared, 4096, csize],
            );
            if r[0] as i64 == el3abi::status::AGAIN {
                continue;
            }
            if r[0] != 0 {
                return Err(el3_error(r[0]));
            }
            first = false;
            let (len, remaining) = (r[1] as usize, r[2] as usize);
            if len > 4096 || token.len() + len + remaining > PLAT_TOKEN_MAX {
                return Err(El3Error::Invalid);
            }
            let start = token.len();
            token.resize(start + len, 0);
            self.shared_read(0, &mut token[start..]);
            if remaining == 0 {
                return Ok(token);
            }
            if len == 0 {
                return Err(El3Error::Invalid);
            }
        }
    }

    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], El3Error> {
        let r = call(islet::fid::RMM_GET_VHUK, &[which]);
        if r[0] != 0 {
            return Err(el3_error(r[0]));
        }
        let mut k = [0u8; 32];
        for (i, c) in k.chunks_exact_mut(8).enumerate() {
            c.copy_from_slice(&r[1 + i].to_le_bytes());
        }
        Ok(k)
    }

    fn gtsi_delegate(&mut self, pa: u64) -> Result<(), GtsiError> {
        let r = call(el3abi::fid::GTSI_DELEGATE, &[pa]);
        match r[0] as i64 {
            0 => {
                self.pas.set(pa, Pas::Realm);
                Ok(())
            }
            el3abi::status::BAD_PAS => Err(GtsiError::BadPas),
            _ => Err(GtsiError::BadAddr),
        }
    }

    fn gtsi_undelegate(&mut self, pa: u64) -> Result<(), GtsiError> {
        let r = call(el3abi::fid::GTSI_UNDELEGATE, &[pa]);
        match r[0] as i64 {
            0 => {
                self.pas.set(pa, Pas::NonSecure);
                Ok(())
            }
            el3abi::status::BAD_PAS => Err(GtsiError::BadPas),
            _ => Err(GtsiError::BadAddr),
        }
    }

    fn prepare_vcpu(&mut self, rec: u64, realm: &RealmVcpu) {
        // Rebuilt on every REC_ENTER: RMI commands since the last entry may
        // have changed any RTT.
        self.current = None;
        let s2 = Stage2::build(&Rtts(self), &realm.rtt);
        self.current = Some((rec, *realm, s2));
        let (_, realm, s2) = self.current.as_ref().expect("just set");
        msr!("vtcr_el2", vtcr(realm.rtt.ipa_width, realm.rtt.level));
        msr!("vttbr_el2", vttbr(s2.root_addr(), realm.vmid));
        isb();
        // SAFETY: invalidates stage-1+2 TLB entries of the VMID just loaded
        // into VTTBR_EL2 (Realm security state), so stale translations from
        // the previous tables go.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "tlbi vmalls12e1is",
                "dsb ish",
                "isb",
                options(nostack)
            )
        };
    }

    fn run_vcpu(&mut self, rec: u64, regs: &mut VcpuRegs, resume: Resume) -> Trap {
        let Some((cur, realm, _)) = self.current.as_ref() else {
            return Trap::Halted;
        };
        if *cur != rec {
            return Trap::Halted;
        }
        let realm = *realm;
        let st = self.recs.entry(rec).or_default();
        let pc = st.resume_pc(regs.pc, resume);
        let mut ctx = GuestCtx {
            gprs: [0; 31],
            elr: 0,
            spsr: 0,
            host_sp: 0,
        };
        load_ctx(&mut ctx, regs, pc, st.pstate);

        // Host EL1 and FP state out, the REC's in.
        let host_el1 = El1Regs::save();
        let mut host_fp = FpRegs::default();
        asm::fp_save(&mut host_fp);
        st.el1.restore();
        asm::fp_restore(&st.fp);
        // An asserted realm timer's PPI is masked while the realm runs; the
        // host sees its CTL/CVAL on exit and injects it through an LR.
        msr!(
            "cnthctl_el2",
            vgic::cnthctl_entry(st.el1.cntv_ctl, st.el1.cntp_ctl)
        );
        let vtr = vgic::vtr();
        vgic::load(&st.gic, vtr);
        msr!("cntvoff_el2", 0);
        msr!("vpidr_el2", mrs!("midr_el1"));
        msr!("vmpidr_el2", vmpidr(realm.mpidr));
        msr!("hcr_el2", HCR_REALM);
        isb();

        // SAFETY: the REC's EL1 state, stage 2 (prepare_vcpu) and HCR_EL2 are
        // programmed; VBAR_EL2 brings the exit back to `guest_run`'s caller.
        let kind = unsafe { asm::guest_run(&mut ctx) };

        msr!("hcr_el2", HCR_RMM);
        isb();
        vgic::save(&mut st.gic, vtr);
        isb();
        let (esr, far, hpfar) = (mrs!("esr_el2"), mrs!("far_el2"), mrs!("hpfar_el2"));
        st.el1 = El1Regs::save();
        asm::fp_save(&mut st.fp);
        host_el1.restore();
        asm::fp_restore(&host_fp);
        isb();

        st.pstate = ctx.spsr;
        regs.gprs = ctx.gprs;
        let (trap, at, stopped) = decode_exit(kind, esr, ctx.elr, far, hpfar);
        regs.pc = at;
        st.last = Some((at, stopped, far));
        trap
    }

    fn set_vcpu_irqs(&mut self, rec: u64, gic_hcr: u64, gic_lrs: &[u64; 16]) {
        self.recs
            .entry(rec)
            .or_default()
            .gic
            .host_enter(gic_hcr, gic_lrs);
    }

    fn vcpu_irqs(&self, rec: u64) -> Option<VcpuIrqs> {
        let st = self.recs.get(&rec)?;
        // CNTVOFF_EL2 is 0 for realms and CNTPOFF_EL2 is not enabled
        // (CNTHCTL_EL2.ECV = 0): the CVALs are reported as they are.
        Some(VcpuIrqs {
            gic_hcr: st.gic.hcr,
            gic_lrs: st.gic.lrs,
            gic_misr: st.gic.misr,
            gic_vmcr: st.gic.vmcr,
            cntp_ctl: st.el1.cntp_ctl,
            cntp_cval: st.el1.cntp_cval,
            cntv_ctl: st.el1.cntv_ctl,
            cntv_cval: st.el1.cntv_cval,
        })
    }

    fn vcpu_destroyed(&mut self, rec: u64) {
        self.recs.remove(&rec);
        if matches!(self.current, Some((r, _, _)) if r == rec) {
            self.current = None;
        }
    }
}
