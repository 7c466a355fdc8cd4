//! Realm Management Interface (host -> RMM), RMM specification v1.0 (rel0).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::assert_layout;

/// RMI function IDs: `0xC400_0000 | fnum`.
pub mod fid {
    /// `RMI_VERSION`.
    pub const VERSION: u64 = 0xC400_0150;
    /// `RMI_GRANULE_DELEGATE`.
    pub const GRANULE_DELEGATE: u64 = 0xC400_0151;
    /// `RMI_GRANULE_UNDELEGATE`.
    pub const GRANULE_UNDELEGATE: u64 = 0xC400_0152;
    /// `RMI_DATA_CREATE`.
    pub const DATA_CREATE: u64 = 0xC400_0153;
    /// `RMI_DATA_CREATE_UNKNOWN`.
    pub const DATA_CREATE_UNKNOWN: u64 = 0xC400_0154;
    /// `RMI_DATA_DESTROY`.
    pub const DATA_DESTROY: u64 = 0xC400_0155;
    /// `RMI_REALM_ACTIVATE`.
    pub const REALM_ACTIVATE: u64 = 0xC400_0157;
    /// `RMI_REALM_CREATE`.
    pub const REALM_CREATE: u64 = 0xC400_0158;
    /// `RMI_REALM_DESTROY`.
    pub const REALM_DESTROY: u64 = 0xC400_0159;
    /// `RMI_REC_CREATE`.
    pub const REC_CREATE: u64 = 0xC400_015A;
    /// `RMI_REC_DESTROY`.
    pub const REC_DESTROY: u64 = 0xC400_015B;
    /// `RMI_REC_ENTER`.
    pub const REC_ENTER: u64 = 0xC400_015C;
    /// `RMI_RTT_CREATE`.
    pub const RTT_CREATE: u64 = 0xC400_015D;
    /// `RMI_RTT_DESTROY`.
    pub const RTT_DESTROY: u64 = 0xC400_015E;
    /// `RMI_RTT_MAP_UNPROTECTED`.
    pub const RTT_MAP_UNPROTECTED: u64 = 0xC400_015F;
    /// `RMI_RTT_READ_ENTRY`.
    pub const RTT_READ_ENTRY: u64 = 0xC400_0161;
    /// `RMI_RTT_UNMAP_UNPROTECTED`.
    pub const RTT_UNMAP_UNPROTECTED: u64 = 0xC400_0162;
    /// `RMI_PSCI_COMPLETE`.
    pub const PSCI_COMPLETE: u64 = 0xC400_0164;
    /// `RMI_FEATURES`.
    pub const FEATURES: u64 = 0xC400_0165;
    /// `RMI_RTT_FOLD`.
    pub const RTT_FOLD: u64 = 0xC400_0166;
    /// `RMI_REC_AUX_COUNT`.
    pub const REC_AUX_COUNT: u64 = 0xC400_0167;
    /// `RMI_RTT_INIT_RIPAS`.
    pub const RTT_INIT_RIPAS: u64 = 0xC400_0168;
    /// `RMI_RTT_SET_RIPAS`.
    pub const RTT_SET_RIPAS: u64 = 0xC400_0169;

    /// Every RMI v1.0 function ID with its name, for dispatch tables,
    /// fuzzers and diagnostics.
    pub const ALL: &[(u64, &str)] = &[
        (VERSION, "RMI_VERSION"),
        (GRANULE_DELEGATE, "RMI_GRANULE_DELEGATE"),
        (GRANULE_UNDELEGATE, "RMI_GRANULE_UNDELEGATE"),
        (DATA_CREATE, "RMI_DATA_CREATE"),
        (DATA_CREATE_UNKNOWN, "RMI_DATA_CREATE_UNKNOWN"),
        (DATA_DESTROY, "RMI_DATA_DESTROY"),
        (REALM_ACTIVATE, "RMI_REALM_ACTIVATE"),
        (REALM_CREATE, "RMI_REALM_CREATE"),
        (REALM_DESTROY, "RMI_REALM_DESTROY"),
        (REC_CREATE, "RMI_REC_CREATE"),
        (REC_DESTROY, "RMI_REC_DESTROY"),
        (REC_ENTER, "RMI_REC_ENTER"),
        (RTT_CREATE, "RMI_RTT_CREATE"),
        (RTT_DESTROY, "RMI_RTT_DESTROY"),
        (RTT_MAP_UNPROTECTED, "RMI_RTT_MAP_UNPROTECTED"),
        (RTT_READ_ENTRY, "RMI_RTT_READ_ENTRY"),
        (RTT_UNMAP_UNPROTECTED, "RMI_RTT_UNMAP_UNPROTECTED"),
        (PSCI_COMPLETE, "RMI_PSCI_COMPLETE"),
        (FEATURES, "RMI_FEATURES"),
        (RTT_FOLD, "RMI_RTT_FOLD"),
        (REC_AUX_COUNT, "RMI_REC_AUX_COUNT"),
        (RTT_INIT_RIPAS, "RMI_RTT_INIT_RIPAS"),
        (RTT_SET_RIPAS, "RMI_RTT_SET_RIPAS"),
    ];
}

/// RMI interface version implemented: 1.0, encoded `major << 16 | minor`.
pub const VERSION_1_0: u64 = 0x1_0000;

/// RMI command status (low byte of x0).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RmiStatus {
    /// `RMI_SUCCESS`.
    Success = 0,
    /// `RMI_ERROR_INPUT`: an argument is malformed, misaligned, out of range
    /// or names a granule in the wrong state.
    ErrorInput = 1,
    /// `RMI_ERROR_REALM`: the realm is in the wrong state.
    ErrorRealm = 2,
    /// `RMI_ERROR_REC`: the REC is in the wrong state.
    ErrorRec = 3,
    /// `RMI_ERROR_RTT`: the RTT walk ended early or hit the wrong entry.
    ErrorRtt = 4,
}

/// The value of x0 after an RMI command: a status and an index
/// (`status | index << 8`; the index is the RTT level for `ERROR_RTT` and the
/// realm-state reason for `ERROR_REALM` from REC_ENTER).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RmiReturn {
    /// The status.
    pub status: RmiStatus,
    /// The status index (0 unless the status defines one).
    pub index: u8,
}

impl RmiReturn {
    /// `RMI_SUCCESS`.
    pub const SUCCESS: Self = Self::new(RmiStatus::Success, 0);
    /// `RMI_ERROR_INPUT`.
    pub const INPUT: Self = Self::new(RmiStatus::ErrorInput, 0);
    /// `RMI_ERROR_REALM` with index 0.
    pub const REALM: Self = Self::new(RmiStatus::ErrorRealm, 0);
    /// `RMI_ERROR_REC`.
    pub const REC: Self = Self::new(RmiStatus::ErrorRec, 0);

    /// A status with its index.
    pub const fn new(status: RmiStatus, index: u8) -> Self {
        Self { status, index }
    }

    /// `RMI_ERROR_RTT` at `level` (levels -1..=3 encode as their two's
    /// complement low byte, as in the specification's `UInt8` index).
    pub const fn rtt(level: i8) -> Self {
        Self::new(RmiStatus::ErrorRtt, level as u8)
    }

    /// `RMI_ERROR_REALM` with an index.
    pub const fn realm(index: u8) -> Self {
        Self::new(RmiStatus::ErrorRealm, index)
    }

    /// The register encoding.
    pub const fn to_x0(self) -> u64 {
        self.status as u64 | (self.index as u64) << 8
    }

    /// Decodes x0; `None` for an undefined status or set reserved bits.
    pub const fn from_x0(x0: u64) -> Option<Self> {
        if x0 >> 16 != 0 {
            return None;
        }
        let status = match x0 & 0xff {
            0 => RmiStatus::Success,
            1 => RmiStatus::ErrorInput,
            2 => RmiStatus::ErrorRealm,
            3 => RmiStatus::ErrorRec,
            4 => RmiStatus::ErrorRtt,
            _ => return None,
        };
        Some(Self::new(status, (x0 >> 8) as u8))
    }

    /// Whether this is `RMI_SUCCESS`.
    pub const fn is_success(self) -> bool {
        matches!(self.status, RmiStatus::Success)
    }
}

/// Bit fields of RMI feature register 0 (`RMI_FEATURES(0)`).
pub mod feature0 {
    /// Maximum IPA width, bits [7:0].
    pub const S2SZ_SHIFT: u32 = 0;
    /// LPA2 supported, bit 8.
    pub const LPA2: u64 = 1 << 8;
    /// SVE supported, bit 9.
    pub const SVE_EN: u64 = 1 << 9;
    /// Maximum SVE vector length, bits [13:10].
    pub const SVE_VL_SHIFT: u32 = 10;
    /// Number of breakpoints minus one, bits [19:14].
    pub const NUM_BPS_SHIFT: u32 = 14;
    /// Number of watchpoints minus one, bits [25:20].
    pub const NUM_WPS_SHIFT: u32 = 20;
    /// PMU supported, bit 26.
    pub const PMU_EN: u64 = 1 << 26;
    /// Number of PMU counters, bits [31:27].
    pub const PMU_NUM_CTRS_SHIFT: u32 = 27;
    /// SHA-256 supported, bit 32.
    pub const HASH_SHA_256: u64 = 1 << 32;
    /// SHA-512 supported, bit 33.
    pub const HASH_SHA_512: u64 = 1 << 33;
    /// Number of GIC list registers minus one, bits [37:34].
    pub const GICV3_NUM_LRS_SHIFT: u32 = 34;
    /// log2 of (maximum number of RECs + 1), bits [41:38].
    pub const MAX_RECS_ORDER_SHIFT: u32 = 38;
}

/// Hash algorithm encodings in `RmiRealmParams::hash_algo`.
pub mod hash_algo {
    /// SHA-256.
    pub const SHA_256: u8 = 0;
    /// SHA-512.
    pub const SHA_512: u8 = 1;
}

/// `RmiRealmParams::flags` bits.
pub mod realm_flags {
    /// LPA2 (52-bit addresses) requested.
    pub const LPA2: u64 = 1 << 0;
    /// SVE requested.
    pub const SVE: u64 = 1 << 1;
    /// PMU requested.
    pub const PMU: u64 = 1 << 2;
    /// All defined bits; the rest are SBZ.
    pub const MASK: u64 = LPA2 | SVE | PMU;
}

/// `RmiRecMpidr`: how a REC's MPIDR (Aff3 at [31:24], Aff2 [23:16], Aff1
/// [15:8], Aff0 [3:0]) maps to its REC index, `aff0 + 16*aff1 + 4096*aff2 +
/// 1048576*aff3`. RECs must be created in index order.
pub mod rec_mpidr {
    /// Bits that may be set in an `RmiRecMpidr`.
    pub const VALID_BITS: u64 = 0xFF_FF_FF_0F;

    /// The REC index of an `RmiRecMpidr`; `None` when reserved bits are set.
    pub const fn index(mpidr: u64) -> Option<u64> {
        if mpidr & !VALID_BITS != 0 {
            return None;
        }
        Some(
            (mpidr & 0xf)
                + 16 * ((mpidr >> 8) & 0xff)
                + 4096 * ((mpidr >> 16) & 0xff)
                + 1_048_576 * ((mpidr >> 24) & 0xff),
        )
    }

    /// The `RmiRecMpidr` of REC `index` (`index < 2^28`).
    pub const fn of_index(index: u64) -> u64 {
        (index & 0xf)
            | ((index >> 4) & 0xff) << 8
            | ((index >> 12) & 0xff) << 16
            | ((index >> 20) & 0xff) << 24
    }
}

/// `RmiRecParams::flags` bits.
pub mod rec_flags {
    /// The REC starts runnable (and is measured into the RIM).
    pub const RUNNABLE: u64 = 1 << 0;
}

/// `RMI_DATA_CREATE` flags.
pub mod data_flags {
    /// Hash the page contents into the RIM.
    pub const MEASURE_CONTENT: u64 = 1 << 0;
}

/// `RmiRecEnter::flags` bits.
pub mod rec_enter_flags {
    /// Complete the emulated MMIO access of the last exit.
    pub const EMUL_MMIO: u64 = 1 << 0;
    /// Inject a synchronous external abort.
    pub const INJECT_SEA: u64 = 1 << 1;
    /// Trap WFI/WFIT to the host.
    pub const TRAP_WFI: u64 = 1 << 2;
    /// Trap WFE/WFET to the host.
    pub const TRAP_WFE: u64 = 1 << 3;
    /// Reject the pending RIPAS change.
    pub const RIPAS_RESPONSE: u64 = 1 << 4;
}

/// RTT entry states as reported by `RMI_RTT_READ_ENTRY`.
pub mod rtt_state {
    /// Unassigned (protected or unprotected).
    pub const UNASSIGNED: u64 = 0;
    /// Assigned (a DATA granule, or an NS mapping).
    pub const ASSIGNED: u64 = 1;
    /// Points to a next-level RTT.
    pub const TABLE: u64 = 2;
}

/// Realm IPA state (RIPAS) encodings shared by RMI and RSI.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Ripas {
    /// No memory: a realm access takes a synchronous external abort.
    Empty = 0,
    /// Memory the realm owns.
    Ram = 1,
    /// Memory the host took away; a realm access exits to the host.
    Destroyed = 2,
}

impl Ripas {
    /// Decodes a RIPAS value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Empty),
            1 => Some(Self::Ram),
            2 => Some(Self::Destroyed),
            _ => None,
        }
    }
}

/// REC exit reasons in `RmiRecExit::exit_reason`.
pub mod exit_reason {
    /// Synchronous exception (data/instruction abort, trapped WFx).
    pub const SYNC: u64 = 0;
    /// A physical IRQ for the host.
    pub const IRQ: u64 = 1;
    /// A physical FIQ for the host.
    pub const FIQ: u64 = 2;
    /// A PSCI call the host must see.
    pub const PSCI: u64 = 3;
    /// `RSI_IPA_STATE_SET`.
    pub const RIPAS_CHANGE: u64 = 4;
    /// `RSI_HOST_CALL`.
    pub const HOST_CALL: u64 = 5;
    /// SError.
    pub const SERROR: u64 = 6;
}

/// Number of GIC list registers in `RmiRecEnter`/`RmiRecExit`.
pub const REC_RUN_NUM_LRS: usize = 16;
/// Number of general-purpose registers exchanged through `RmiRecRun`.
pub const REC_RUN_NUM_GPRS: usize = 31;
/// Maximum number of auxiliary granules per REC.
pub const MAX_REC_AUX_GRANULES: usize = 16;

/// `RmiRealmParams`: what the host asks for at `RMI_REALM_CREATE`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RmiRealmParams {
    /// LPA2/SVE/PMU requests ([`realm_flags`]).
    pub flags: u64,
    /// IPA width in bits.
    pub s2sz: u64,
    /// SVE vector length (`(VL + 1) * 128` bits).
    pub sve_vl: u64,
    /// Number of breakpoints the realm gets. Atoll reads it as a count:
    /// 0 is reserved (the specification's `RmiRealmParamsIsValid`), and at
    /// most `RMI_FEATURES(0).NUM_BPS + 1` (that field is "minus one").
    pub num_bps: u64,
    /// Number of watchpoints, read like `num_bps`.
    pub num_wps: u64,
    /// Number of PMU counters.
    pub pmu_num_ctrs: u64,
    /// Measurement hash algorithm ([`hash_algo`]).
    pub hash_algo: u8,
    _pad0: [u8; 0x400 - 0x31],
    /// Realm personalization value.
    pub rpv: [u8; 64],
    _pad1: [u8; 0x800 - 0x440],
    /// Stage-2 VMID.
    pub vmid: u16,
    _pad2: [u8; 6],
    /// PA of the first starting-level RTT.
    pub rtt_base: u64,
    /// Starting level of the RTT walk (-1..=3).
    pub rtt_level_start: i64,
    /// Number of concatenated starting-level RTTs.
    pub rtt_num_start: u32,
    _pad3: [u8; 0x1000 - 0x81C],
}
assert_layout!(RmiRealmParams, size = 0x1000, {
    flags @ 0x0, s2sz @ 0x8, sve_vl @ 0x10, num_bps @ 0x18, num_wps @ 0x20,
    pmu_num_ctrs @ 0x28, hash_algo @ 0x30, rpv @ 0x400, vmid @ 0x800,
    rtt_base @ 0x808, rtt_level_start @ 0x810, rtt_num_start @ 0x818,
});

/// `RmiRecParams`: the initial state of a REC at `RMI_REC_CREATE`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RmiRecParams {
    /// [`rec_flags`].
    pub flags: u64,
    _pad0: [u8; 0xF8],
    /// MPIDR of the REC (Aff3..Aff0, Aff0 limited to [3:0]).
    pub mpidr: u64,
    _pad1: [u8; 0xF8],
    /// Entry point.
    pub pc: u64,
    _pad2: [u8; 0xF8],
    /// Initial x0..x7.
    pub gprs: [u64; 8],
    _pad3: [u8; 0x800 - 0x340],
    /// Number of auxiliary granules.
    pub num_aux: u64,
    /// Auxiliary granule PAs.
    pub aux: [u64; MAX_REC_AUX_GRANULES],
    _pad4: [u8; 0x1000 - 0x888],
}
assert_layout!(RmiRecParams, size = 0x1000, {
    flags @ 0x0, mpidr @ 0x100, pc @ 0x200, gprs @ 0x300, num_aux @ 0x800, aux @ 0x808,
});

/// The entry half of `RmiRecRun`, written by the host before `RMI_REC_ENTER`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RmiRecEnter {
    /// [`rec_enter_flags`].
    pub flags: u64,
    _pad0: [u8; 0x1F8],
    /// Registers the host hands back (host-call results, MMIO read data).
    pub gprs: [u64; REC_RUN_NUM_GPRS],
    _pad1: [u8; 0x300 - 0x2F8],
    /// Host-controlled ICH_HCR_EL2 bits.
    pub gicv3_hcr: u64,
    /// ICH_LR<n>_EL2 values.
    pub gicv3_lrs: [u64; REC_RUN_NUM_LRS],
    _pad2: [u8; 0x800 - 0x388],
}
assert_layout!(RmiRecEnter, size = 0x800, {
    flags @ 0x0, gprs @ 0x200, gicv3_hcr @ 0x300, gicv3_lrs @ 0x308,
});

/// The exit half of `RmiRecRun`, written by the RMM when a REC exits.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RmiRecExit {
    /// [`exit_reason`].
    pub exit_reason: u64,
    _pad0: [u8; 0xF8],
    /// Exception syndrome.
    pub esr: u64,
    /// Fault address (page offset only for emulatable aborts).
    pub far: u64,
    /// Faulting IPA page (HPFAR_EL2 format).
    pub hpfar: u64,
    _pad1: [u8; 0x200 - 0x118],
    /// Registers the realm passes out (PSCI arguments, MMIO write data).
    pub gprs: [u64; REC_RUN_NUM_GPRS],
    _pad2: [u8; 0x300 - 0x2F8],
    /// ICH_HCR_EL2 on exit.
    pub gicv3_hcr: u64,
    /// ICH_LR<n>_EL2 on exit.
    pub gicv3_lrs: [u64; REC_RUN_NUM_LRS],
    /// ICH_MISR_EL2.
    pub gicv3_misr: u64,
    /// ICH_VMCR_EL2.
    pub gicv3_vmcr: u64,
    _pad3: [u8; 0x400 - 0x398],
    /// CNTP_CTL_EL0.
    pub cntp_ctl: u64,
    /// CNTP_CVAL_EL0.
    pub cntp_cval: u64,
    /// CNTV_CTL_EL0.
    pub cntv_ctl: u64,
    /// CNTV_CVAL_EL0.
    pub cntv_cval: u64,
    _pad4: [u8; 0x500 - 0x420],
    /// Base of the requested RIPAS change.
    pub ripas_base: u64,
    /// Top of the requested RIPAS change.
    pub ripas_top: u64,
    /// Requested RIPAS.
    pub ripas_value: u8,
    _pad5: [u8; 0x600 - 0x511],
    /// Host call immediate.
    pub imm: u16,
    _pad6: [u8; 0x700 - 0x602],
    /// PMU overflow status.
    pub pmu_ovf_status: u64,
    _pad7: [u8; 0x800 - 0x708],
}
assert_layout!(RmiRecExit, size = 0x800, {
    exit_reason @ 0x0, esr @ 0x100, far @ 0x108, hpfar @ 0x110, gprs @ 0x200,
    gicv3_hcr @ 0x300, gicv3_lrs @ 0x308, gicv3_misr @ 0x388, gicv3_vmcr @ 0x390,
    cntp_ctl @ 0x400, cntp_cval @ 0x408, cntv_ctl @ 0x410, cntv_cval @ 0x418,
    ripas_base @ 0x500, ripas_top @ 0x508, ripas_value @ 0x510, imm @ 0x600,
    pmu_ovf_status @ 0x700,
});

/// `RmiRecRun`: the NS granule through which the host and the RMM exchange
/// a REC's entry and exit state.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RmiRecRun {
    /// Written by the host.
    pub enter: RmiRecEnter,
    /// Written by the RMM.
    pub exit: RmiRecExit,
}
assert_layout!(RmiRecRun, size = 0x1000, { enter @ 0x0, exit @ 0x800 });

/// Offset of the exit half inside `RmiRecRun`.
pub const REC_RUN_EXIT_OFFSET: usize = 0x800;

/// Bit layout of the host-controlled attributes in an
/// `RMI_RTT_MAP_UNPROTECTED` descriptor (VMSAv8-64 stage-2 block/page).
pub mod ns_desc {
    /// MemAttr[2:0], bits [4:2].
    pub const MEMATTR_SHIFT: u32 = 2;
    /// MemAttr[2:0] mask (after shifting).
    pub const MEMATTR_MASK: u64 = 0b111;
    /// S2AP, bits [7:6].
    pub const S2AP_SHIFT: u32 = 6;
    /// S2AP mask (after shifting).
    pub const S2AP_MASK: u64 = 0b11;
    /// The MemAttr value reserved under FEAT_S2FWB.
    pub const MEMATTR_RESERVED: u64 = 0b100;
    /// Output address bits [47:12] without LPA2.
    pub const ADDR_MASK: u64 = 0x0000_FFFF_FFFF_F000;
    /// Every bit the host may set: address, MemAttr[2:0] and S2AP.
    pub const HOST_MASK: u64 =
        ADDR_MASK | (MEMATTR_MASK << MEMATTR_SHIFT) | (S2AP_MASK << S2AP_SHIFT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn return_codes_round_trip() {
        for x0 in [0u64, 1, 2, 3, 4, 0x104, 0x204, 0x304, 0xff04, 0x102] {
            assert_eq!(RmiReturn::from_x0(x0).unwrap().to_x0(), x0);
        }
        assert_eq!(RmiReturn::from_x0(5), None);
        assert_eq!(RmiReturn::from_x0(1 << 16), None);
        assert_eq!(RmiReturn::rtt(-1).to_x0(), 0xff04);
    }

    #[test]
    fn rec_run_halves_land_where_the_host_expects() {
        let mut run = RmiRecRun::new_zeroed();
        run.exit.exit_reason = exit_reason::HOST_CALL;
        run.exit.imm = 0xabcd;
        let bytes = run.as_bytes();
        assert_eq!(bytes[0x800], 5);
        assert_eq!(&bytes[0xE00..0xE02], &[0xcd, 0xab]);
    }
}
