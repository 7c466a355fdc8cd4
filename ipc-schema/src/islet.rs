//! Samsung Islet vendor extensions, kept byte-compatible.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::assert_layout;

/// Vendor function IDs.
pub mod fid {
    /// `RMI_ISLET_REALM_SET_METADATA`: x1 rd, x2 metadata granule, x3 NS PA of the block.
    pub const RMI_REALM_SET_METADATA: u64 = 0xC700_0150;
    /// `RSI_ISLET_REALM_METADATA`: the realm reads its metadata block.
    pub const RSI_REALM_METADATA: u64 = 0xC700_0190;
    /// `RSI_ISLET_REALM_SEALING_KEY`: x1 flags, x2 svn; key in x1..x4.
    pub const RSI_REALM_SEALING_KEY: u64 = 0xC700_0191;
    /// `RMM_ISLET_GET_VHUK` (RMM -> EL3): x1 key id; key in x1..x4.
    pub const RMM_GET_VHUK: u64 = 0xC700_01B0;
}

/// `RMM_ISLET_GET_VHUK` key ids.
pub mod vhuk {
    /// Signer-bound VHUK.
    pub const A: u64 = 1;
    /// Measurement-bound VHUK.
    pub const M: u64 = 2;
}

/// `RSI_ISLET_REALM_SEALING_KEY` flags.
pub mod sealing_flags {
    /// Derive from VHUK_M instead of VHUK_A.
    pub const KEY_M: u64 = 1 << 0;
    /// Mix in the RIM.
    pub const RIM: u64 = 1 << 1;
    /// Mix in the realm id.
    pub const REALM_ID: u64 = 1 << 2;
    /// Mix in the SVN.
    pub const SVN: u64 = 1 << 3;
    /// Every defined flag.
    pub const MASK: u64 = KEY_M | RIM | REALM_ID | SVN;
}

/// Metadata `hash_algo` encodings (note: differ from RMI's).
pub mod metadata_hash_algo {
    /// SHA-256.
    pub const SHA_256: u64 = 1;
    /// SHA-512.
    pub const SHA_512: u64 = 2;
}

/// Metadata format version.
pub const METADATA_FMT_VERSION: u64 = 1;
/// Offset of the signature: everything before it is signed.
pub const METADATA_SIGNED_LEN: usize = 0x150;

/// The 432-byte realm metadata block, signed (ECDSA P-384 / SHA-384 over
/// bytes `0..0x150`) by the realm vendor.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RealmMetadata {
    /// [`METADATA_FMT_VERSION`].
    pub fmt_version: u64,
    /// NUL-padded ASCII realm id.
    pub realm_id: [u8; 128],
    /// Expected RIM, zero-padded.
    pub rim: [u8; 64],
    /// [`metadata_hash_algo`].
    pub hash_algo: u64,
    /// Security version number.
    pub svn: u64,
    /// Version major.
    pub version_major: u64,
    /// Version minor.
    pub version_minor: u64,
    /// Version patch.
    pub version_patch: u64,
    /// Vendor public key, raw `x || y` P-384.
    pub public_key: [u8; 96],
    /// Signature, raw `r || s`.
    pub signature: [u8; 96],
}
assert_layout!(RealmMetadata, size = 432, {
    fmt_version @ 0x0, realm_id @ 0x08, rim @ 0x88, hash_algo @ 0xC8, svn @ 0xD0,
    version_major @ 0xD8, version_minor @ 0xE0, version_patch @ 0xE8,
    public_key @ 0xF0, signature @ 0x150,
});
