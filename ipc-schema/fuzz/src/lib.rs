//! Shared pieces of Atoll's fuzz targets: the round-trip property every
//! postcard decoder must keep, the input framing the stateful targets use,
//! deterministic fixtures (a booted HES, a provisioned RAK and its platform
//! token, a signed metadata block, a small simulated machine with a realm)
//! and the seed inputs `gen-corpus` writes.
//!
//! Every target lives in `fuzz_targets/` and is listed in [`TARGETS`].

use std::fmt::Debug;
use std::sync::OnceLock;

use postcard::experimental::max_size::MaxSize;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod kernel;
pub mod seeds;

/// Every fuzz target, by the name `cargo fuzz run` knows it as.
pub const TARGETS: &[&str] = &[
    "measurement_request",
    "measurement_response",
    "attestation_request",
    "attestation_response",
    "keys_request",
    "keys_response",
    "hes_request",
    "hes_response",
    "vcpu_request",
    "vcpu_response",
    "rmi_realm_params",
    "rmi_rec_params",
    "rmi_rec_run",
    "rsi_realm_config",
    "rsi_host_call",
    "realm_metadata",
    "boot_manifest",
    "hes_frame",
    "vcpu_frame",
    "measurement_service",
    "attestation_service",
    "keys_service",
    "hes_handle_frame",
    "hes_link_client",
];

/// The property every postcard message type keeps: whatever decodes from a
/// prefix of `data` re-encodes within its `MaxSize` bound, and the
/// re-encoding decodes to the same value with nothing left over (and
/// re-encodes to the same bytes: one canonical encoding per value).
///
/// Returns the decoded value, if any.
pub fn postcard_round_trip<T>(data: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + MaxSize + PartialEq + Debug,
{
    let (value, _rest) = postcard::take_from_bytes::<T>(data).ok()?;
    let mut buf = vec![0u8; T::POSTCARD_MAX_SIZE];
    let encoded = match postcard::to_slice(&value, &mut buf) {
        Ok(e) => e.to_vec(),
        Err(e) => panic!(
            "{value:?} decoded but does not re-encode within its bound of {} bytes: {e}",
            T::POSTCARD_MAX_SIZE
        ),
    };
    let (again, rest) = postcard::take_from_bytes::<T>(&encoded)
        .unwrap_or_else(|e| panic!("re-encoding of {value:?} does not decode: {e}"));
    assert!(
        rest.is_empty(),
        "re-encoding of {value:?} has trailing bytes"
    );
    assert_eq!(again, value, "re-encoding decodes to another value");
    let mut buf2 = vec![0u8; T::POSTCARD_MAX_SIZE];
    let encoded2 = postcard::to_slice(&again, &mut buf2).expect("encoded once already");
    assert_eq!(encoded2, &encoded[..], "encoding is not deterministic");
    Some(value)
}

/// Splits a stateful target's input into messages: each is a little-endian
/// `u16` length and that many bytes; a last message shorter than its length
/// takes what is left. Lets one input drive a whole conversation.
pub fn messages(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let rest = &data[2..];
        let (msg, tail) = rest.split_at(len.min(rest.len()));
        data = tail;
        Some(msg)
    })
}

/// The inverse of [`messages`]: frames `msgs` for a seed input.
pub fn encode_messages<M: AsRef<[u8]>>(msgs: &[M]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        let m = m.as_ref();
        let len = u16::try_from(m.len()).expect("seed message above 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// Postcard-encodes `msg` (for seeds).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_allocvec(msg).expect("seed message encodes")
}

/// Lease sizes a lease descriptor can pick: the sizes services expect
/// (a granule, a metadata block) and the ones next to them.
pub const LEASE_SIZES: [usize; 8] = [4096, 432, 0, 1, 4095, 4097, 64, 16384];

/// What one lease slot of a handler target holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeaseKind {
    /// No lease here (and none after it).
    Absent,
    /// Read-only, filled with a pattern.
    Read,
    /// Writable, zeroed.
    Write,
    /// Read-only, holding the target's fixture (a platform token, a signed
    /// metadata block), or the pattern if the target has none.
    Fixture,
}

/// Three lease slots, from a little-endian `u16`: per slot two bits of
/// [`LeaseKind`] and three bits indexing [`LEASE_SIZES`]; bit 15 is a
/// target-specific flag (pre-provisioning).
#[derive(Clone, Debug)]
pub struct LeaseSpec {
    /// Kind and size of each slot.
    pub slots: [(LeaseKind, usize); 3],
    /// Bit 15.
    pub flag: bool,
}

impl LeaseSpec {
    /// Decodes the descriptor.
    pub fn from_u16(v: u16) -> Self {
        let slot = |i: u32| {
            let bits = (v >> (5 * i)) & 0x1f;
            let kind = match bits & 3 {
                0 => LeaseKind::Absent,
                1 => LeaseKind::Read,
                2 => LeaseKind::Write,
                _ => LeaseKind::Fixture,
            };
            (kind, LEASE_SIZES[usize::from(bits >> 2)])
        };
        Self {
            slots: [slot(0), slot(1), slot(2)],
            flag: v & 0x8000 != 0,
        }
    }

    /// Encodes a descriptor (for seeds): `slots` as (kind, index into
    /// [`LEASE_SIZES`]).
    pub fn to_u16(slots: &[(LeaseKind, usize)], flag: bool) -> u16 {
        let mut v = 0u16;
        for (i, (kind, size_index)) in slots.iter().enumerate() {
            let k = match kind {
                LeaseKind::Absent => 0,
                LeaseKind::Read => 1,
                LeaseKind::Write => 2,
                LeaseKind::Fixture => 3,
            };
            v |= ((*size_index as u16 & 7) << 2 | k) << (5 * i);
        }
        if flag {
            v |= 0x8000;
        }
        v
    }

    /// The backing buffers: `fixture` fills [`LeaseKind::Fixture`] slots
    /// (truncated or zero-extended to the slot's size).
    pub fn buffers(&self, fixture: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        for &(kind, size) in &self.slots {
            let pattern = |size: usize| (0..size).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>();
            match kind {
                LeaseKind::Absent => break,
                LeaseKind::Read => out.push((false, pattern(size))),
                LeaseKind::Write => out.push((true, vec![0; size])),
                LeaseKind::Fixture if fixture.is_empty() => out.push((false, pattern(size))),
                LeaseKind::Fixture => {
                    // The fixture at its natural length when the size index
                    // is 0, so a seed can lend it exactly.
                    let len = if size == LEASE_SIZES[0] {
                        fixture.len()
                    } else {
                        size
                    };
                    let mut b = fixture.to_vec();
                    b.resize(len, 0);
                    out.push((false, b))
                }
            }
        }
        out
    }
}

/// The lease memory a service sees, over `bufs` as [`LeaseSpec::buffers`]
/// made them.
pub fn lease_mems(bufs: &mut [(bool, Vec<u8>)]) -> Vec<ipc_schema::service::LeaseMem<'_>> {
    bufs.iter_mut()
        .map(|(writable, b)| {
            if *writable {
                ipc_schema::service::LeaseMem::Write(b)
            } else {
                ipc_schema::service::LeaseMem::Read(b)
            }
        })
        .collect()
}

/// Splits a handler target's input into its lease descriptor (first two
/// bytes) and the rest.
pub fn lease_header(data: &[u8]) -> Option<(LeaseSpec, &[u8])> {
    if data.len() < 2 {
        return None;
    }
    Some((
        LeaseSpec::from_u16(u16::from_le_bytes([data[0], data[1]])),
        &data[2..],
    ))
}

/// Deterministic fixtures, built once per process.
pub mod fixtures {
    use super::*;
    use atoll_attestation::AttestationService;
    use atoll_hes_mcu::{DeviceSecrets, Hes, PlatformIdentity};
    use ipc_schema::hes::{EccCurve, HesRequest, HesResponse};
    use ipc_schema::hes::{HesHashAlgo, MeasurementRecord};
    use ipc_schema::service::attestation::{AttestationRequest, AttestationResponse};
    use ipc_schema::wire::{BoundedBytes, Bytes};

    /// A HES as the boot chain leaves it: BL2 and RMM measured, not yet
    /// boot-complete.
    pub fn hes() -> Hes {
        let mut hes = hes_unmeasured();
        for (slot, (ty, m)) in [("BL2", 0xaa), ("RMM", 0xbb)].into_iter().enumerate() {
            let r = hes.handle(&HesRequest::Extend {
                slot: slot as u8,
                record: record(ty, m),
                lock: false,
            });
            assert_eq!(r, HesResponse::Extended);
        }
        hes
    }

    /// A HES straight out of reset: fixed secrets, nothing measured.
    pub fn hes_unmeasured() -> Hes {
        let secrets = DeviceSecrets::new([0x11; 32], [0x22; 32]).expect("non-zero secrets");
        let identity = PlatformIdentity {
            implementation_id: [0x33; 32],
            platform_config: BoundedBytes::new(&[0xcf]).expect("fits"),
            lifecycle: 0x3000,
            verification_service: ipc_schema::hes::BoundedStr::new("https://veraison.example")
                .expect("fits"),
        };
        Hes::new(secrets, identity)
    }

    /// A SHA-256 measured-boot record of a component.
    pub fn record(component_type: &str, fill: u8) -> MeasurementRecord {
        MeasurementRecord {
            algo: HesHashAlgo::Sha256,
            measurement: BoundedBytes::new(&[fill; 32]).expect("fits"),
            signer_id: BoundedBytes::new(&[fill ^ 0xff; 32]).expect("fits"),
            version: ipc_schema::hes::BoundedStr::new("1.0.0").expect("fits"),
            component_type: ipc_schema::hes::BoundedStr::new(component_type).expect("fits"),
        }
    }

    /// The RAK scalar the HES derives, and the platform token it signs for
    /// the attestation service's binding of that RAK: exactly what boot
    /// provisions the attestation service with.
    pub fn rak_and_platform_token() -> &'static ([u8; 48], Vec<u8>) {
        static CELL: OnceLock<([u8; 48], Vec<u8>)> = OnceLock::new();
        CELL.get_or_init(|| {
            let mut hes = hes();
            let rak = hes
                .realm_key(EccCurve::P384, HesHashAlgo::Sha256)
                .expect("measured HES derives a RAK");
            let scalar: [u8; 48] = rak.to_bytes().into();
            let mut svc = AttestationService::new(1);
            let challenge = match svc.handle(
                &AttestationRequest::ProvisionRak {
                    scalar: Bytes(scalar),
                },
                &mut [],
            ) {
                AttestationResponse::RakBinding { challenge } => challenge,
                other => panic!("provisioning the fixture RAK: {other:?}"),
            };
            let token = hes
                .platform_token(challenge.as_slice())
                .expect("platform token")
                .to_vec();
            (scalar, token)
        })
    }

    /// The VHUKs the HES hands the RMM.
    pub fn vhuks() -> ([u8; 32], [u8; 32]) {
        static CELL: OnceLock<([u8; 32], [u8; 32])> = OnceLock::new();
        *CELL.get_or_init(|| {
            let hes = hes();
            (
                hes.vhuk(ipc_schema::hes::VhukId::A).expect("VHUK_A"),
                hes.vhuk(ipc_schema::hes::VhukId::M).expect("VHUK_M"),
            )
        })
    }

    /// The RIM the fixture metadata block expects (SHA-256, zero-padded).
    pub const METADATA_RIM: [u8; 32] = [0x5a; 32];
    /// The SVN of the fixture metadata block.
    pub const METADATA_SVN: u64 = 3;

    /// A valid metadata block signed by a fixed vendor key.
    pub fn metadata_block() -> &'static [u8; atoll_metadata::BLOCK_LEN] {
        static CELL: OnceLock<[u8; atoll_metadata::BLOCK_LEN]> = OnceLock::new();
        CELL.get_or_init(|| {
            let key = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).expect("valid scalar");
            let metadata = atoll_metadata::Metadata {
                realm_id: atoll_metadata::RealmId::new("fuzz-realm").expect("valid id"),
                rim: atoll_metadata::Rim::new(ipc_schema::service::HashAlgo::Sha256, &METADATA_RIM)
                    .expect("valid RIM"),
                svn: METADATA_SVN,
                version: atoll_metadata::Version {
                    major: 1,
                    minor: 2,
                    patch: 3,
                },
            };
            atoll_metadata::sign(&metadata, &key)
        })
    }
}
