//! The RMM <-> EL3 monitor interface (TF-A's "RMM-EL3 communication
//! interface" v0.4 with boot manifest v0.3), so the RMM could also boot under
//! TF-A and the Atoll monitor could host another RMM.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::assert_layout;

/// Function IDs of calls from the RMM to EL3.
pub mod fid {
    /// `RMM_RMI_REQ_COMPLETE`: hands RMI results back to the host.
    pub const RMI_REQ_COMPLETE: u64 = 0xC400_018F;
    /// `RMM_GTSI_DELEGATE`: move a granule to the Realm PAS.
    pub const GTSI_DELEGATE: u64 = 0xC400_01B0;
    /// `RMM_GTSI_UNDELEGATE`: move a granule back to the Non-secure PAS.
    pub const GTSI_UNDELEGATE: u64 = 0xC400_01B1;
    /// `RMM_ATTEST_GET_REALM_KEY`.
    pub const ATTEST_GET_REALM_KEY: u64 = 0xC400_01B2;
    /// `RMM_ATTEST_GET_PLAT_TOKEN`.
    pub const ATTEST_GET_PLAT_TOKEN: u64 = 0xC400_01B3;
    /// `RMM_EL3_FEATURES`.
    pub const EL3_FEATURES: u64 = 0xC400_01B4;
    /// `RMM_BOOT_COMPLETE`.
    pub const BOOT_COMPLETE: u64 = 0xC400_01CF;
}

/// RMM-EL3 interface version: 0.4.
pub const INTERFACE_VERSION: u64 = 0x4;
/// Boot manifest version: 0.3.
pub const MANIFEST_VERSION: u32 = 0x3;

/// Runtime error codes returned by EL3 in x0.
pub mod status {
    /// Success.
    pub const OK: i64 = 0;
    /// Unknown error.
    pub const UNK: i64 = -1;
    /// Bad address.
    pub const BAD_ADDR: i64 = -2;
    /// Granule in the wrong PAS.
    pub const BAD_PAS: i64 = -3;
    /// Out of memory.
    pub const NOMEM: i64 = -4;
    /// Invalid argument.
    pub const INVAL: i64 = -5;
    /// Try again (platform token not ready).
    pub const AGAIN: i64 = -6;
}

/// `RMM_EL3_FEATURES` bits.
pub mod features {
    /// EL3 can sign realm tokens on the RMM's behalf.
    pub const TOKEN_SIGN: u64 = 1 << 0;
}

/// `ATTEST_GET_REALM_KEY` curve selector for P-384.
pub const ECC_CURVE_P384: u64 = 0;

/// Boot manifest, v0.3, at offset 0 of the shared page.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct BootManifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    _pad0: u32,
    /// Platform-specific data pointer.
    pub plat_data: u64,
    /// DRAM banks.
    pub plat_dram: NsDramInfo,
    /// Consoles.
    pub plat_console: ConsoleListInfo,
}
assert_layout!(BootManifest, size = 64, { version @ 0, plat_data @ 8, plat_dram @ 16, plat_console @ 40 });

/// The manifest's DRAM bank list. `checksum` is the two's-complement negative
/// of the sum of `num_banks`, `banks` and every word of every bank.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct NsDramInfo {
    /// Number of banks.
    pub num_banks: u64,
    /// PA of an array of [`DramBank`].
    pub banks: u64,
    /// Checksum.
    pub checksum: u64,
}
assert_layout!(NsDramInfo, size = 24, { num_banks @ 0, banks @ 8, checksum @ 16 });

/// One DRAM bank.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DramBank {
    /// Base PA.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}
assert_layout!(DramBank, size = 16, { base @ 0, size @ 8 });

/// The manifest's console list (same checksum rule as [`NsDramInfo`]).
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ConsoleListInfo {
    /// Number of consoles.
    pub num_consoles: u64,
    /// PA of an array of [`ConsoleInfo`].
    pub consoles: u64,
    /// Checksum.
    pub checksum: u64,
}
assert_layout!(ConsoleListInfo, size = 24, { num_consoles @ 0, consoles @ 8, checksum @ 16 });

/// One console.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ConsoleInfo {
    /// MMIO base.
    pub base: u64,
    /// Pages to map.
    pub map_pages: u64,
    /// NUL-padded name.
    pub name: [u8; 8],
    /// Input clock.
    pub clk_in_hz: u64,
    /// Baud rate.
    pub baud_rate: u64,
    /// Flags.
    pub flags: u64,
}
assert_layout!(ConsoleInfo, size = 48, { base @ 0, map_pages @ 8, name @ 16, clk_in_hz @ 24, baud_rate @ 32, flags @ 40 });
