//! SMC Calling Convention values shared by every interface.

/// Fast-call, SMC64, standard-secure-service function ID base.
pub const SMC64_STD_FAST: u64 = 0xC400_0000;
/// Fast-call, SMC32, standard-secure-service function ID base.
pub const SMC32_STD_FAST: u64 = 0x8400_0000;
/// Fast-call, SMC64, vendor-specific hypervisor service base (Islet RMI/RSI extensions).
pub const SMC64_VENDOR_HYP_FAST: u64 = 0xC700_0000;

/// Bit a realm may set in a function ID to hint that SVE state is not live.
/// It must be cleared before decoding (SMCCC v1.3).
pub const SVE_HINT: u64 = 1 << 16;

/// `SMCCC_VERSION` function ID.
pub const SMCCC_VERSION: u64 = 0x8000_0000;
/// Version reported for `SMCCC_VERSION`: 1.2, encoded `major << 16 | minor`.
pub const SMCCC_VERSION_1_2: u64 = 0x1_0002;
/// Return value for an unknown function ID (`SMC_UNKNOWN`, -1).
pub const SMC_UNKNOWN: u64 = u64::MAX;

/// PSCI function numbers (the low 5 bits of the function ID).
pub mod psci {
    /// `PSCI_VERSION` (SMC32).
    pub const VERSION: u64 = 0x8400_0000;
    /// `PSCI_CPU_SUSPEND` (SMC64).
    pub const CPU_SUSPEND: u64 = 0xC400_0001;
    /// `PSCI_CPU_OFF` (SMC32).
    pub const CPU_OFF: u64 = 0x8400_0002;
    /// `PSCI_CPU_ON` (SMC64).
    pub const CPU_ON: u64 = 0xC400_0003;
    /// `PSCI_AFFINITY_INFO` (SMC64).
    pub const AFFINITY_INFO: u64 = 0xC400_0004;
    /// `PSCI_SYSTEM_OFF` (SMC32).
    pub const SYSTEM_OFF: u64 = 0x8400_0008;
    /// `PSCI_SYSTEM_RESET` (SMC32).
    pub const SYSTEM_RESET: u64 = 0x8400_0009;
    /// `PSCI_FEATURES` (SMC32).
    pub const FEATURES: u64 = 0x8400_000A;

    /// Highest PSCI function number; FIDs `0x8400_0000..=0x8400_0014` and
    /// their SMC64 twins are PSCI.
    pub const MAX_FNUM: u64 = 0x14;

    /// The version the RMM reports to realms: 1.1.
    pub const VERSION_1_1: u64 = 0x1_0001;

    /// PSCI return codes as the 64-bit register value a caller sees.
    pub mod status {
        /// `PSCI_SUCCESS` (also AFFINITY_INFO's `ON`).
        pub const SUCCESS: u64 = 0;
        /// `PSCI_NOT_SUPPORTED` (-1).
        pub const NOT_SUPPORTED: u64 = -1i64 as u64;
        /// `PSCI_INVALID_PARAMETERS` (-2).
        pub const INVALID_PARAMETERS: u64 = -2i64 as u64;
        /// `PSCI_DENIED` (-3).
        pub const DENIED: u64 = -3i64 as u64;
        /// `PSCI_ALREADY_ON` (-4).
        pub const ALREADY_ON: u64 = -4i64 as u64;
        /// `PSCI_INVALID_ADDRESS` (-9).
        pub const INVALID_ADDRESS: u64 = -9i64 as u64;
        /// AFFINITY_INFO result `OFF`.
        pub const AFFINITY_OFF: u64 = 1;
    }

    /// Whether `fid` (SVE hint already cleared) names a PSCI function.
    pub const fn is_psci(fid: u64) -> bool {
        let base = fid & !0x4000_0000; // fold SMC64 onto SMC32
        base >= VERSION && base <= VERSION + MAX_FNUM
    }
}

/// Registers x0..x17 of an SMC (SMCCC v1.2): x0 carries the function ID in
/// and the status out.
pub type SmcRegs = [u64; 18];

/// Something that takes SMCs: the simulated RMM for host tests, the EL3
/// monitor on hardware. Normal-world and realm-side client libraries are
/// generic over it so the same code runs in simulation and on a machine.
pub trait SmcConduit {
    /// Issues one SMC and returns x0..x17 as the callee left them.
    fn smc(&mut self, regs: SmcRegs) -> SmcRegs;
}

/// Builds an [`SmcRegs`] from a function ID and arguments (x1..).
pub fn smc_regs(fid: u64, args: &[u64]) -> SmcRegs {
    let mut regs = [0; 18];
    regs[0] = fid;
    regs[1..=args.len()].copy_from_slice(args);
    regs
}
