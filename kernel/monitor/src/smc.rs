//! SMC routing: which handler an SMC from a given world goes to.

use crate::layout::World;
use ipc_schema::el3::fid;

/// `SMC_UNKNOWN` / PSCI NOT_SUPPORTED (-1).
pub const SMC_UNKNOWN: u64 = u64::MAX;
/// PSCI NOT_SUPPORTED.
pub const PSCI_NOT_SUPPORTED: u64 = -1i64 as u64;
/// PSCI SUCCESS.
pub const PSCI_SUCCESS: u64 = 0;
/// PSCI version reported: 1.1.
pub const PSCI_VERSION_1_1: u64 = 0x0001_0001;
/// SMCCC version reported: 1.2.
pub const SMCCC_VERSION_1_2: u64 = 0x0001_0002;

/// PSCI and SMCCC function ids.
pub mod psci {
    /// SMCCC_VERSION.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// PSCI_VERSION.
    pub const VERSION: u32 = 0x8400_0000;
    /// CPU_ON (SMC32).
    pub const CPU_ON_32: u32 = 0x8400_0003;
    /// CPU_ON (SMC64).
    pub const CPU_ON_64: u32 = 0xC400_0003;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const FEATURES: u32 = 0x8400_000A;
}

/// `RMM_ISLET_GET_VHUK`.
pub const ISLET_GET_VHUK: u32 = 0xC700_01B0;

/// RMI function ids forwarded from NS to the RMM: 0xC400_0150..=0xC400_018E
/// (RMI 1.0) and Islet's RMI vendor calls 0xC700_0150..=0xC700_018E.
pub const fn is_rmi(fid: u32) -> bool {
    matches!(fid, 0xC400_0150..=0xC400_018E | 0xC700_0150..=0xC700_018E)
}

/// What to do with an SMC.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// NS: forward x0..x7 to the RMM.
    RmiForward,
    /// Realm: RMI results back to NS.
    RmiReqComplete,
    /// Realm: NS -> Realm granule.
    GtsiDelegate,
    /// Realm: Realm -> NS granule.
    GtsiUndelegate,
    /// Realm: the realm attestation key.
    GetRealmKey,
    /// Realm: the platform token.
    GetPlatToken,
    /// Realm: EL3 feature bits.
    El3Features,
    /// Realm: boot finished.
    BootComplete,
    /// Realm: Islet VHUK.
    IsletVhuk,
    /// NS: SMCCC_VERSION.
    SmcccVersion,
    /// NS: PSCI_VERSION.
    PsciVersion,
    /// NS: PSCI_FEATURES.
    PsciFeatures,
    /// NS: CPU_ON.
    PsciCpuOn,
    /// NS: SYSTEM_OFF.
    PsciSystemOff,
    /// NS: SYSTEM_RESET.
    PsciSystemReset,
    /// Anything else: SMC_UNKNOWN.
    Unknown,
}

/// Routes an SMC with function id `x0` from `world`. SMCCC function ids are
/// 32 bits; a caller setting upper bits of x0 gets SMC_UNKNOWN.
pub fn classify(world: World, x0: u64) -> Call {
    if x0 >> 32 != 0 {
        return Call::Unknown;
    }
    let f = x0 as u32;
    match world {
        World::NonSecure => match f {
            _ if is_rmi(f) => Call::RmiForward,
            psci::SMCCC_VERSION => Call::SmcccVersion,
            psci::VERSION => Call::PsciVersion,
            psci::FEATURES => Call::PsciFeatures,
            psci::CPU_ON_32 | psci::CPU_ON_64 => Call::PsciCpuOn,
            psci::SYSTEM_OFF => Call::PsciSystemOff,
            psci::SYSTEM_RESET => Call::PsciSystemReset,
            _ => Call::Unknown,
        },
        World::Realm => match f as u64 {
            fid::RMI_REQ_COMPLETE => Call::RmiReqComplete,
            fid::GTSI_DELEGATE => Call::GtsiDelegate,
            fid::GTSI_UNDELEGATE => Call::GtsiUndelegate,
            fid::ATTEST_GET_REALM_KEY => Call::GetRealmKey,
            fid::ATTEST_GET_PLAT_TOKEN => Call::GetPlatToken,
            fid::EL3_FEATURES => Call::El3Features,
            fid::BOOT_COMPLETE => Call::BootComplete,
            _ if f == ISLET_GET_VHUK => Call::IsletVhuk,
            _ => Call::Unknown,
        },
        World::Secure => Call::Unknown,
    }
}

/// PSCI_FEATURES answer for function id `x1`.
pub fn psci_features(x1: u64) -> u64 {
    match x1 as u32 {
        _ if x1 >> 32 != 0 => PSCI_NOT_SUPPORTED,
        psci::VERSION | psci::FEATURES | psci::SYSTEM_OFF | psci::SYSTEM_RESET => PSCI_SUCCESS,
        _ => PSCI_NOT_SUPPORTED,
    }
}

/// Splits a 32-byte key into four little-endian words (x1..x4).
pub fn key_words(key: &[u8; 32]) -> [u64; 4] {
    let mut w = [0u64; 4];
    for (i, c) in key.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        w[i] = u64::from_le_bytes(b);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        use World::*;
        assert_eq!(classify(NonSecure, 0xC400_0150), Call::RmiForward);
        assert_eq!(classify(NonSecure, 0xC400_018E), Call::RmiForward);
        assert_eq!(classify(NonSecure, 0xC700_0150), Call::RmiForward);
        assert_eq!(classify(NonSecure, 0xC400_018F), Call::Unknown);
        assert_eq!(classify(NonSecure, 0xC400_01B0), Call::Unknown);
        assert_eq!(classify(NonSecure, 0xC400_01CF), Call::Unknown);
        assert_eq!(classify(NonSecure, 0x1_C400_0150), Call::Unknown);
        assert_eq!(classify(NonSecure, 0x8400_0008), Call::PsciSystemOff);
        assert_eq!(classify(NonSecure, 0xC400_0003), Call::PsciCpuOn);
        assert_eq!(classify(Realm, 0xC400_0150), Call::Unknown);
        assert_eq!(classify(Realm, 0xC400_018F), Call::RmiReqComplete);
        assert_eq!(classify(Realm, 0xC400_01B0), Call::GtsiDelegate);
        assert_eq!(classify(Realm, 0xC400_01B1), Call::GtsiUndelegate);
        assert_eq!(classify(Realm, 0xC400_01B2), Call::GetRealmKey);
        assert_eq!(classify(Realm, 0xC400_01B3), Call::GetPlatToken);
        assert_eq!(classify(Realm, 0xC400_01B4), Call::El3Features);
        assert_eq!(classify(Realm, 0xC400_01CF), Call::BootComplete);
        assert_eq!(classify(Realm, 0xC700_01B0), Call::IsletVhuk);
        assert_eq!(classify(Realm, 0x8400_0008), Call::Unknown);
        assert_eq!(classify(Secure, 0xC400_01B0), Call::Unknown);
    }

    #[test]
    fn features() {
        assert_eq!(psci_features(0x8400_0000), 0);
        assert_eq!(psci_features(0x8400_0008), 0);
        assert_eq!(psci_features(0x8400_0003), PSCI_NOT_SUPPORTED);
        assert_eq!(psci_features(0xC400_0003), PSCI_NOT_SUPPORTED);
    }

    #[test]
    fn key_split() {
        let mut k = [0u8; 32];
        k[0] = 1;
        k[31] = 0x80;
        assert_eq!(key_words(&k), [1, 0, 0, 0x8000_0000_0000_0000]);
    }
}
