//! The platform layout fixed by `docs/qemu-boot.md` (the boot contract).

/// Size of a granule.
pub const GRANULE: u64 = 0x1000;

/// flash0, where the monitor runs and the image table lives.
pub const FLASH_BASE: u64 = 0x0000_0000;
/// flash0 size.
pub const FLASH_SIZE: u64 = 64 << 20;
/// Offset of the image table in flash.
pub const IMAGE_TABLE: u64 = 0x0010_0000;

/// Secure RAM (Root PAS in our GPT).
pub const SECURE_RAM_BASE: u64 = 0x0E00_0000;
/// Secure RAM size.
pub const SECURE_RAM_SIZE: u64 = 16 << 20;

/// GPT level 0 table.
pub const GPT_L0: u64 = 0x0EEF_E000;
/// First GPT level 1 table; one of 128 KiB per GB follows.
pub const GPT_L1: u64 = 0x0EF0_0000;

/// DRAM base (QEMU virt).
pub const DRAM_BASE: u64 = 0x4000_0000;
/// DRAM size on the contract's command line (`-m 2G`).
pub const DRAM_SIZE: u64 = 0x8000_0000;
/// The DTB QEMU places at the start of DRAM.
pub const DTB: u64 = 0x4000_0000;

/// The Realm PAS carve-out: RMM image, heap, stacks and the shared page.
pub const REALM_BASE: u64 = 0x4010_0000;
/// End (exclusive) of the Realm carve-out.
pub const REALM_END: u64 = 0x4190_0000;
/// RMM entry point.
pub const RMM_ENTRY: u64 = 0x4010_0000;
/// EL3 <-> RMM shared page (boot manifest at offset 0).
pub const SHARED_PAGE: u64 = 0x418F_F000;
/// NS host entry point.
pub const NS_ENTRY: u64 = 0x6000_0000;

/// PL011 UART0, the console.
pub const UART0: u64 = 0x0900_0000;
/// PL011 UART1, secure only: the HES link.
pub const UART1: u64 = 0x0904_0000;
/// Secure PL061 GPIO: line 0 powers off, line 1 resets.
pub const SECURE_GPIO: u64 = 0x090B_0000;
/// GICv3 distributor.
pub const GICD: u64 = 0x0800_0000;
/// GICv3 redistributor of CPU 0.
pub const GICR: u64 = 0x080A_0000;

/// The EL3 stage 1 maps the first GB of DRAM a second time at this VA
/// offset with the Realm PAS (NSE=1, NS=1); the identity map of DRAM uses
/// the NS PAS.
pub const REALM_ALIAS_OFFSET: u64 = 0x1_0000_0000;

/// `ATOLL-FW` image kinds.
pub const KIND_RMM: u32 = 1;
/// The NS host image kind.
pub const KIND_NS_HOST: u32 = 2;

/// Signer id the monitor reports for itself in slot 0.
pub const MONITOR_SIGNER_ID: [u8; 32] = [0x51; 32];

/// RMM-EL3 interface version passed to the RMM in x1 (0.4).
pub const RMM_INTERFACE_VERSION: u64 = ipc_schema::el3::INTERFACE_VERSION;
/// Cores handed to the RMM in x2 (`-smp 1`).
pub const CORE_COUNT: u64 = 1;

/// SPSR_EL3 for entering EL2h with DAIF masked.
pub const SPSR_EL2H_DAIF: u64 = 0x3C9;

/// SCR_EL3 bits.
pub mod scr {
    /// Lower ELs non-secure (with NSE: Realm).
    pub const NS: u64 = 1 << 0;
    /// RES1.
    pub const RES1: u64 = (1 << 4) | (1 << 5);
    /// HVC enabled.
    pub const HCE: u64 = 1 << 8;
    /// Secure instruction fetch from NS memory disabled.
    pub const SIF: u64 = 1 << 9;
    /// Lower ELs are AArch64.
    pub const RW: u64 = 1 << 10;
    /// PAuth key registers not trapped.
    pub const APK: u64 = 1 << 16;
    /// PAuth instructions not trapped.
    pub const API: u64 = 1 << 17;
    /// SCXTNUM_ELx enabled (CSV2_2).
    pub const ENSCXT: u64 = 1 << 25;
    /// Fine-grained traps enabled.
    pub const FGTEN: u64 = 1 << 27;
    /// Enhanced counter virtualization enabled.
    pub const ECVEN: u64 = 1 << 28;
    /// HCRX_EL2 enabled.
    pub const HXEN: u64 = 1 << 38;
    /// Realm security state (with NS).
    pub const NSE: u64 = 1 << 62;

    /// Bits common to both worlds on QEMU 10 `-cpu max,x-rme=on,sme=off,sve=off`.
    pub const COMMON: u64 = RES1 | HCE | SIF | RW | APK | API | ENSCXT | FGTEN | ECVEN | HXEN;
    /// SCR_EL3 while the NS host runs.
    pub const NS_WORLD: u64 = COMMON | NS;
    /// SCR_EL3 while the RMM runs.
    pub const REALM_WORLD: u64 = COMMON | NS | NSE;
}

/// The security state a lower-EL SMC came from, read from SCR_EL3.{NSE,NS}.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum World {
    /// Non-secure (NSE=0, NS=1).
    NonSecure,
    /// Realm (NSE=1, NS=1).
    Realm,
    /// Secure (NSE=0, NS=0): nothing runs there on Atoll.
    Secure,
}

impl World {
    /// The world an SMC came from, given SCR_EL3 at the trap.
    pub const fn from_scr(scr: u64) -> Self {
        match (scr & scr::NSE != 0, scr & scr::NS != 0) {
            (true, true) => Self::Realm,
            (false, true) => Self::NonSecure,
            _ => Self::Secure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scr_values_match_the_guide() {
        // rme-bringup.md 1.2 minus EnTP2 (SME is off on our command line).
        assert_eq!(scr::NS_WORLD, 0x0000_0040_1A03_0731);
        assert_eq!(scr::REALM_WORLD, 0x4000_0040_1A03_0731);
        assert_eq!(World::from_scr(scr::NS_WORLD), World::NonSecure);
        assert_eq!(World::from_scr(scr::REALM_WORLD), World::Realm);
        assert_eq!(World::from_scr(0x30), World::Secure);
    }

    #[test]
    fn shared_page_is_the_last_realm_granule() {
        assert_eq!(SHARED_PAGE + GRANULE, REALM_END);
        const { assert!(REALM_BASE < SHARED_PAGE) };
    }
}
