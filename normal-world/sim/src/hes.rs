//! The simulated root monitor's root of trust: an HES reached over the
//! link protocol (a separate `atoll-hes` process in the simulation).
//!
//! [`HesRoot`] is what the simulated machine's root monitor holds
//! ([`RootOfTrust`]): the root monitor first measures the boot chain into
//! the HES ([`HesRoot::measure_boot`], then boot-complete locks every
//! slot), after which the HES derives the CPAK, the RAK and the VHUKs from
//! its device secrets and those measurements. One `atoll-hes` process is
//! one platform boot: a second boot against it is refused (its slots are
//! locked), so a new simulated platform needs the HES restarted (the same
//! provisioning file gives the same device secrets).

use std::path::Path;

use atoll_hes_link::{HesLink, LinkError, StreamTransport, Transport};
use atoll_kernel::arch::host::RootOfTrust;
use atoll_kernel::arch::El3Error;
use ipc_schema::hes::{BoundedStr, EccCurve, HesError, HesHashAlgo, MeasurementRecord, VhukId};
use ipc_schema::islet::vhuk;
use ipc_schema::wire::BoundedBytes;
use sha2::{Digest, Sha256};

/// One boot component the monitor measures before anything runs.
pub struct Component<'a> {
    /// Its type as reported in the platform token ("BL2", "RMM", ...).
    pub kind: &'a str,
    /// Its image bytes.
    pub image: &'a [u8],
    /// Hash of the key that signed it.
    pub signer_id: [u8; 32],
    /// Its version.
    pub version: &'a str,
}

/// Why the simulated boot could not talk to the HES.
#[derive(Debug)]
pub struct HesBootError(pub String);

impl std::fmt::Display for HesBootError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HES: {}", self.0)
    }
}

impl std::error::Error for HesBootError {}

/// An HES behind the link protocol, as the root monitor uses it.
pub struct HesRoot<T: Transport> {
    link: HesLink<T>,
}

impl HesRoot<StreamTransport<std::os::unix::net::UnixStream>> {
    /// Connects to an `atoll-hes` listening on `socket`.
    pub fn connect(socket: &Path) -> Result<Self, HesBootError> {
        let link = HesLink::connect_unix(socket)
            .map_err(|e| HesBootError(format!("connecting to {}: {e}", socket.display())))?;
        Ok(Self { link })
    }
}

impl<T: Transport> HesRoot<T> {
    /// Measured boot: extends one slot per component (slot 0 is BL2, whose
    /// measurement the CPAK derives from), then closes the boot.
    pub fn measure_boot(&mut self, components: &[Component<'_>]) -> Result<(), HesBootError> {
        for (slot, c) in components.iter().enumerate() {
            let record = MeasurementRecord {
                algo: HesHashAlgo::Sha256,
                measurement: BoundedBytes::new(&Sha256::digest(c.image))
                    .map_err(|_| HesBootError("digest".into()))?,
                signer_id: BoundedBytes::new(&c.signer_id)
                    .map_err(|_| HesBootError("signer id".into()))?,
                version: BoundedStr::new(c.version)
                    .map_err(|_| HesBootError(format!("version {:?}", c.version)))?,
                component_type: BoundedStr::new(c.kind)
                    .map_err(|_| HesBootError(format!("type {:?}", c.kind)))?,
            };
            self.link.extend(slot as u8, record, false).map_err(|e| {
                let hint = match e {
                    LinkError::Hes(HesError::SlotLocked) => {
                        " (this HES has already completed a boot: restart atoll-hes \
                             for a new platform boot)"
                    }
                    _ => "",
                };
                HesBootError(format!("extending slot {slot} ({}): {e}{hint}", c.kind))
            })?;
        }
        self.link
            .boot_complete()
            .map_err(|e| HesBootError(format!("boot complete: {e}")))
    }

    /// The CPAK's public key (uncompressed SEC1), for relying parties.
    pub fn cpak_public_key(&mut self) -> Result<[u8; 97], HesBootError> {
        self.link
            .cpak_public_key()
            .map_err(|e| HesBootError(format!("CPAK: {e}")))
    }
}

impl<T: Transport + Send> RootOfTrust for HesRoot<T> {
    fn realm_key(&mut self) -> Result<[u8; 48], El3Error> {
        let key = self
            .link
            .realm_key(EccCurve::P384, HesHashAlgo::Sha256)
            .map_err(|_| El3Error::Unknown)?;
        Ok(*key)
    }

    fn platform_token(&mut self, challenge: &[u8]) -> Result<Vec<u8>, El3Error> {
        self.link
            .platform_token(challenge)
            .map_err(|_| El3Error::Unknown)
    }

    fn vhuk(&mut self, which: u64) -> Result<[u8; 32], El3Error> {
        let id = match which {
            vhuk::A => VhukId::A,
            vhuk::M => VhukId::M,
            _ => return Err(El3Error::Invalid),
        };
        let key = self.link.vhuk(id).map_err(|_| El3Error::Unknown)?;
        Ok(*key)
    }
}

/// What the simulated platform measures into the HES as its boot chain.
///
/// There is no boot loader or separately loaded RMM image in simulation:
/// the process hosting the simulated platform (the `atoll-sim` executable,
/// or a test embedding it) plays the boot loader, and the RMM is
/// `atoll-kernel` linked into that same executable. So:
///
/// * slot 0, `BL2`: SHA-256 of the running executable's bytes. It covers
///   every piece of simulated firmware (root monitor, RMM, services), so
///   any rebuild changes it, and with it the CPAK and the
///   measurement-bound VHUK_M.
/// * slot 1, `RMM`: SHA-256 of an identity string naming the RMM build
///   (`atoll-kernel`, host simulation, the package version). Its code is
///   already covered by slot 0; this slot is there so the platform token
///   lists an RMM component, as on hardware.
///
/// Neither is signed: both signer ids are all zero, so the
/// signer-bound VHUK_A stays the same across rebuilds.
pub struct SimulatedFirmware {
    executable: Vec<u8>,
    rmm_identity: Vec<u8>,
}

/// Version recorded for both simulated components.
const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The signer id of unsigned components.
const UNSIGNED: [u8; 32] = [0; 32];

impl SimulatedFirmware {
    /// The firmware of this process: reads the running executable.
    pub fn of_this_executable() -> Result<Self, HesBootError> {
        let path = std::env::current_exe()
            .map_err(|e| HesBootError(format!("locating the executable to measure: {e}")))?;
        let executable = std::fs::read(&path)
            .map_err(|e| HesBootError(format!("reading {} to measure it: {e}", path.display())))?;
        Ok(Self {
            executable,
            rmm_identity: format!("atoll-kernel {FIRMWARE_VERSION} (host simulation)").into_bytes(),
        })
    }

    /// The components, in slot order.
    pub fn components(&self) -> [Component<'_>; 2] {
        [
            Component {
                kind: "BL2",
                image: &self.executable,
                signer_id: UNSIGNED,
                version: FIRMWARE_VERSION,
            },
            Component {
                kind: "RMM",
                image: &self.rmm_identity,
                signer_id: UNSIGNED,
                version: FIRMWARE_VERSION,
            },
        ]
    }

    /// The measurement of slot 0 (`BL2`): SHA-256 of the executable.
    pub fn bl2_measurement(&self) -> [u8; 32] {
        Sha256::digest(&self.executable).into()
    }
}

/// The simulated platform's cold boot up to the RMM: connects to the HES
/// at `socket`, measures [`SimulatedFirmware::of_this_executable`] into
/// it and completes the boot. Returns the root of trust for the machine
/// and the CPAK's public key (uncompressed SEC1) for relying parties.
pub fn boot_hes(
    socket: &Path,
) -> Result<
    (
        HesRoot<StreamTransport<std::os::unix::net::UnixStream>>,
        [u8; 97],
    ),
    HesBootError,
> {
    let firmware = SimulatedFirmware::of_this_executable()?;
    let mut root = HesRoot::connect(socket)?;
    root.measure_boot(&firmware.components())?;
    let cpak = root.cpak_public_key()?;
    Ok((root, cpak))
}

/// The CPAK public key `point` (uncompressed SEC1 P-384) as a JWK, the way
/// `atoll-rsi verify --cpak` and `atoll token verify --cpak` take it.
pub fn cpak_jwk(point: &[u8; 97]) -> Result<String, HesBootError> {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
        .map_err(|_| HesBootError("the CPAK is not a P-384 point".into()))?;
    Ok(atoll_cca_token::PlatformKey::from(key).to_jwk().to_string())
}
