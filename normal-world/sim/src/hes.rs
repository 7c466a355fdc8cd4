//! The simulated root monitor's root of trust: an HES reached over the
//! link protocol (a separate `atoll-hes` process in the simulation).

use std::path::Path;

use atoll_hes_link::{HesLink, StreamTransport, Transport};
use atoll_kernel::arch::host::RootOfTrust;
use atoll_kernel::arch::El3Error;
use ipc_schema::hes::{BoundedStr, EccCurve, HesHashAlgo, MeasurementRecord, VhukId};
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
            self.link
                .extend(slot as u8, record, false)
                .map_err(|e| HesBootError(format!("extending slot {slot} ({}): {e}", c.kind)))?;
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
