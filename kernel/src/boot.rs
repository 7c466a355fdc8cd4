//! Cold-boot work that needs the root of trust: handing the attestation
//! service its key and the platform token bound to it.

use ipc_schema::service::attestation::{AttestationError, AttestationRequest, AttestationResponse};
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
}

impl<P: Platform, T: ServiceTransport> Rmm<P, T> {
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
