//! Cold-boot work that needs the root of trust: handing the attestation
//! service its key and the platform token bound to it.

use ipc_schema::islet;
use ipc_schema::service::attestation::{AttestationError, AttestationRequest, AttestationResponse};
use ipc_schema::service::keys::{KeysError, KeysRequest, KeysResponse};
use ipc_schema::service::{Lease, LeaseMem};
use ipc_schema::wire::Bytes;

use crate::arch::{El3Error, Platform};
use crate::services::{ServiceFailure, ServiceTransport};
use crate::Rmm;

/// Why attestation could not be set up at boot. Realms still run; their
/// token requests fail with `RSI_ERROR_UNKNOWN`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The root monitor (or the HES behind it) refused a call.
    RootOfTrust(El3Error),
    /// The attestation service could not be reached or answered garbage.
    Service(ServiceFailure),
    /// The attestation service refused what the root of trust gave.
    Refused(AttestationError),
    /// The keys service refused the VHUKs.
    KeysRefused(KeysError),
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
    /// Everything boot needs from the root of trust: attestation (the RAK
    /// and its platform token) and the keys service's VHUKs. Each part is
    /// attempted even if the other fails; realms run either way, and calls
    /// that need a part that failed return errors.
    pub fn boot(&mut self) -> (Result<(), BootError>, Result<(), BootError>) {
        (self.boot_attestation(), self.boot_keys())
    }

    /// Hands the keys service VHUK_A and VHUK_M from the root of trust.
    pub fn boot_keys(&mut self) -> Result<(), BootError> {
        let a = self
            .platform
            .vhuk(islet::vhuk::A)
            .map_err(BootError::RootOfTrust)?;
        let m = self
            .platform
            .vhuk(islet::vhuk::M)
            .map_err(BootError::RootOfTrust)?;
        let req = KeysRequest::Provision {
            vhuk_a: Bytes(a),
            vhuk_m: Bytes(m),
        };
        match self.buffers.keys(&mut self.services, &req, &mut []) {
            Ok(KeysResponse::Ok) => Ok(()),
            Ok(KeysResponse::Error(e)) => Err(BootError::KeysRefused(e)),
            Ok(_) => Err(BootError::Service(ServiceFailure::Garbage)),
            Err(e) => Err(BootError::Service(e)),
        }
    }

    /// Fetches the realm attestation key from the root of trust, gives it
    /// to the attestation service, asks the root of trust for the platform
    /// token bound to that key (challenge = hash of the encoded RAK claim,
    /// computed by the service), and hands the token over. Done once per
    /// boot, as the specification describes.
    pub fn boot_attestation(&mut self) -> Result<(), BootError> {
        let scalar = self
            .platform
            .attest_realm_key()
            .map_err(BootError::RootOfTrust)?;
        let req = AttestationRequest::ProvisionRak {
            scalar: Bytes(scalar),
        };
        let challenge = match self.buffers.attestation(&mut self.services, &req, &mut []) {
            Ok(AttestationResponse::RakBinding { challenge }) => challenge,
            Ok(AttestationResponse::Error(e)) => return Err(BootError::Refused(e)),
            Ok(_) => return Err(BootError::Service(ServiceFailure::Garbage)),
            Err(e) => return Err(BootError::Service(e)),
        };
        let token = self
            .platform
            .attest_platform_token(challenge.as_slice())
            .map_err(BootError::RootOfTrust)?;
        let req = AttestationRequest::ProvisionPlatformToken { token: Lease(0) };
        match self
            .buffers
            .attestation(&mut self.services, &req, &mut [LeaseMem::Read(&token)])
        {
            Ok(AttestationResponse::Ok) => Ok(()),
            Ok(AttestationResponse::Error(e)) => Err(BootError::Refused(e)),
            Ok(_) => Err(BootError::Service(ServiceFailure::Garbage)),
            Err(e) => Err(BootError::Service(e)),
        }
    }
}
