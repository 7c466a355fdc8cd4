//! The services behind a `no_std` `ServiceTransport`, in the same image.
//!
//! Each service keeps its own state struct and is reached only with
//! encoded bytes and leases, exactly as across a real isolation boundary;
//! what is missing is the boundary itself (EL0 tasks with their own
//! address spaces), so a service bug here is an RMM bug.

use atoll_attestation::AttestationService;
use atoll_kernel::services::{ServiceTransport, TransportError};
use atoll_keys::KeysService;
use atoll_measurement::MeasurementService;
use ipc_schema::service::{LeaseMem, ServiceId};

/// Realms each service tracks at most.
pub const MAX_REALMS: usize = 64;

/// The three services, called in place.
pub struct InImageTransport {
    measurement: MeasurementService,
    attestation: AttestationService,
    keys: KeysService,
}

impl InImageTransport {
    /// Fresh services.
    pub fn new() -> Self {
        Self {
            measurement: MeasurementService::new(MAX_REALMS),
            attestation: AttestationService::new(MAX_REALMS),
            keys: KeysService::new(MAX_REALMS),
        }
    }
}

impl Default for InImageTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl ServiceTransport for InImageTransport {
    fn call(
        &mut self,
        service: ServiceId,
        request: &[u8],
        leases: &mut [LeaseMem<'_>],
        response: &mut [u8],
    ) -> Result<usize, TransportError> {
        let n = match service {
            ServiceId::Measurement => self.measurement.handle_bytes(request, leases, response),
            ServiceId::Attestation => self.attestation.handle_bytes(request, leases, response),
            ServiceId::Keys => self.keys.handle_bytes(request, leases, response),
            #[allow(unreachable_patterns)]
            _ => return Err(TransportError::Unavailable),
        };
        if n <= response.len() {
            Ok(n)
        } else {
            Err(TransportError::Failed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_kernel::services::ServiceBuffers;
    use ipc_schema::service::measurement::{MeasurementRequest, MeasurementResponse};

    #[test]
    fn unknown_realm_measurement_is_an_answer_not_a_failure() {
        let mut t = InImageTransport::new();
        let mut b = ServiceBuffers::default();
        let req = MeasurementRequest::Destroy {
            realm: ipc_schema::service::RealmHandle(0x1000),
        };
        let r = b.measurement(&mut t, &req, &mut []);
        assert!(
            matches!(
                r,
                Ok(MeasurementResponse::Ok | MeasurementResponse::Error(_))
            ),
            "{r:?}"
        );
    }
}
