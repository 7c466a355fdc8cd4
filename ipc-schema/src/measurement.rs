//! Measurement descriptors: the exact bytes hashed into a realm's RIM.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::assert_layout;

/// Size of every measurement descriptor (and its `len` field).
pub const DESCRIPTOR_LEN: u64 = 0x100;

/// Descriptor types.
pub mod desc_type {
    /// `RMI_DATA_CREATE`.
    pub const DATA: u8 = 0;
    /// `RMI_REC_CREATE` of a runnable REC.
    pub const REC: u8 = 1;
    /// `RMI_RTT_INIT_RIPAS`, once per RTT entry.
    pub const RIPAS: u8 = 2;
}

/// `RmmMeasurementDescriptorData`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DataDescriptor {
    /// [`desc_type::DATA`].
    pub desc_type: u8,
    _pad0: [u8; 7],
    /// [`DESCRIPTOR_LEN`].
    pub len: u64,
    /// RIM before this step.
    pub rim: [u8; 64],
    /// IPA of the page.
    pub ipa: u64,
    /// `RMI_DATA_CREATE` flags.
    pub flags: u64,
    /// Hash of the page when measured, else zero.
    pub content: [u8; 64],
    _pad1: [u8; 0x100 - 0xA0],
}
assert_layout!(DataDescriptor, size = 0x100, {
    desc_type @ 0x0, len @ 0x8, rim @ 0x10, ipa @ 0x50, flags @ 0x58, content @ 0x60,
});

/// `RmmMeasurementDescriptorRec`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RecDescriptor {
    /// [`desc_type::REC`].
    pub desc_type: u8,
    _pad0: [u8; 7],
    /// [`DESCRIPTOR_LEN`].
    pub len: u64,
    /// RIM before this step.
    pub rim: [u8; 64],
    /// Hash of the zeroed `RmiRecParams` holding only flags, pc and gprs.
    pub content: [u8; 64],
    _pad1: [u8; 0x100 - 0x90],
}
assert_layout!(RecDescriptor, size = 0x100, { desc_type @ 0x0, len @ 0x8, rim @ 0x10, content @ 0x50 });

/// `RmmMeasurementDescriptorRipas`.
#[derive(Clone, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RipasDescriptor {
    /// [`desc_type::RIPAS`].
    pub desc_type: u8,
    _pad0: [u8; 7],
    /// [`DESCRIPTOR_LEN`].
    pub len: u64,
    /// RIM before this step.
    pub rim: [u8; 64],
    /// IPA of the RTT entry.
    pub base: u64,
    /// End of the RTT entry's range (clamped to the request's top).
    pub top: u64,
    _pad1: [u8; 0x100 - 0x60],
}
assert_layout!(RipasDescriptor, size = 0x100, { desc_type @ 0x0, len @ 0x8, rim @ 0x10, base @ 0x50, top @ 0x58 });
