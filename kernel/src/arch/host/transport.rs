//! In-process service transport for the simulation.
//!
//! Each service is a handler over encoded bytes; the core still only sends
//! and receives bytes, so a service that answers garbage or fails is seen
//! by the core exactly as it would be across a real isolation boundary.

use std::boxed::Box;
use std::collections::BTreeMap;

use ipc_schema::service::{LeaseMem, ServiceId};

use crate::services::{ServiceTransport, TransportError};

/// A service behind the transport: encoded request and leases in, encoded
/// response length out (`None` when the service failed).
pub type ServiceHandler =
    Box<dyn FnMut(&[u8], &mut [LeaseMem<'_>], &mut [u8]) -> Option<usize> + Send>;

/// Routes each request to the handler registered for its service.
#[derive(Default)]
pub struct LocalTransport {
    handlers: BTreeMap<ServiceId, ServiceHandler>,
}

impl LocalTransport {
    /// No services.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the handler for `service`.
    pub fn register(&mut self, service: ServiceId, handler: ServiceHandler) {
        self.handlers.insert(service, handler);
    }

    /// Removes a service, as if it had died.
    pub fn unregister(&mut self, service: ServiceId) {
        self.handlers.remove(&service);
    }
}

impl ServiceTransport for LocalTransport {
    fn call(
        &mut self,
        service: ServiceId,
        request: &[u8],
        leases: &mut [LeaseMem<'_>],
        response: &mut [u8],
    ) -> Result<usize, TransportError> {
        let handler = self
            .handlers
            .get_mut(&service)
            .ok_or(TransportError::Unavailable)?;
        match handler(request, leases, response) {
            Some(n) if n <= response.len() => Ok(n),
            _ => Err(TransportError::Failed),
        }
    }
}
