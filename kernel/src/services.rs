//! How the core reaches its services: encoded messages over a transport.

use ipc_schema::service::attestation::{self, AttestationRequest, AttestationResponse};
use ipc_schema::service::keys::{self, KeysRequest, KeysResponse};
use ipc_schema::service::measurement::{self, MeasurementRequest, MeasurementResponse};
use ipc_schema::service::{LeaseMem, ServiceId};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Moves one encoded request to a service and its encoded answer back.
///
/// The host simulation runs each service behind one of these (in process,
/// or on a thread of its own); on hardware it will be a call into an
/// isolated EL0 task. The core never sees a service's code or state, only
/// bytes and the memory it lends for the call.
pub trait ServiceTransport {
    /// Sends `request` to `service`, lending it `leases` (read-only or
    /// writable memory, as each says) for the call, and writes the answer
    /// into `response`, returning its length.
    fn call(
        &mut self,
        service: ServiceId,
        request: &[u8],
        leases: &mut [LeaseMem<'_>],
        response: &mut [u8],
    ) -> Result<usize, TransportError>;
}

/// A transport-level failure.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// No such service is running.
    Unavailable,
    /// The service stopped, hung or failed while handling the request.
    Failed,
}

/// Why a service call did not produce an answer the core can use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ServiceFailure {
    /// The transport failed.
    Transport(TransportError),
    /// The request did not fit the schema's bound (a core bug).
    Encode,
    /// The answer was not a valid message: a broken or hostile service.
    Garbage,
}

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Largest request of any service.
const REQUEST_MAX: usize = max(
    measurement::REQUEST_MAX,
    max(attestation::REQUEST_MAX, keys::REQUEST_MAX),
);
/// Largest response of any service.
const RESPONSE_MAX: usize = max(
    measurement::RESPONSE_MAX,
    max(attestation::RESPONSE_MAX, keys::RESPONSE_MAX),
);

/// Buffers for service messages, owned by the core so the hot path
/// allocates nothing.
pub struct ServiceBuffers {
    request: alloc::boxed::Box<[u8]>,
    response: alloc::boxed::Box<[u8]>,
}

impl Default for ServiceBuffers {
    fn default() -> Self {
        Self {
            request: alloc::vec![0; REQUEST_MAX].into_boxed_slice(),
            response: alloc::vec![0; RESPONSE_MAX].into_boxed_slice(),
        }
    }
}

impl ServiceBuffers {
    /// One round trip: encode, call, decode. A response that does not
    /// decode as exactly one message of the expected type is garbage.
    fn call<T: ServiceTransport, Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        transport: &mut T,
        service: ServiceId,
        request: &Req,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<Resp, ServiceFailure> {
        let req =
            postcard::to_slice(request, &mut self.request).map_err(|_| ServiceFailure::Encode)?;
        let len = transport
            .call(service, req, leases, &mut self.response)
            .map_err(ServiceFailure::Transport)?;
        let bytes = self.response.get(..len).ok_or(ServiceFailure::Garbage)?;
        match postcard::take_from_bytes(bytes) {
            Ok((resp, [])) => Ok(resp),
            _ => Err(ServiceFailure::Garbage),
        }
    }

    /// One measurement-service round trip.
    pub fn measurement<T: ServiceTransport>(
        &mut self,
        transport: &mut T,
        request: &MeasurementRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<MeasurementResponse, ServiceFailure> {
        self.call(transport, ServiceId::Measurement, request, leases)
    }

    /// One attestation-service round trip.
    pub fn attestation<T: ServiceTransport>(
        &mut self,
        transport: &mut T,
        request: &AttestationRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<AttestationResponse, ServiceFailure> {
        self.call(transport, ServiceId::Attestation, request, leases)
    }

    /// One keys-service round trip.
    pub fn keys<T: ServiceTransport>(
        &mut self,
        transport: &mut T,
        request: &KeysRequest,
        leases: &mut [LeaseMem<'_>],
    ) -> Result<KeysResponse, ServiceFailure> {
        self.call(transport, ServiceId::Keys, request, leases)
    }
}
