//! Services isolated on their own threads.
//!
//! Each service runs on a thread of its own that owns all of its state;
//! the core and the service share nothing but the bytes of each message
//! (and copies of the memory lent with it). A service that panics or stops
//! answering is reported to the core as a failed call, then restarted from
//! its factory with a new generation, as Hubris restarts a faulted task; a
//! service that answers garbage is caught by the core's decoder.

use std::boxed::Box;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;
use std::vec::Vec;

use ipc_schema::service::{LeaseMem, ServiceId};

use super::transport::ServiceHandler;
use crate::services::{ServiceTransport, TransportError};

/// Makes a fresh instance of a service (its state starts anew).
pub type ServiceFactory = Box<dyn Fn() -> ServiceHandler + Send>;

/// How long the core waits for a service before declaring it failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

struct Call {
    request: Vec<u8>,
    /// Each lease's bytes and whether the service may write it.
    leases: Vec<(Vec<u8>, bool)>,
    response_capacity: usize,
}

struct Reply {
    response: Option<Vec<u8>>,
    /// The writable leases after the call, in order.
    written: Vec<Vec<u8>>,
}

struct ServiceThread {
    to: Sender<Call>,
    from: Receiver<Reply>,
    generation: u32,
}

fn spawn(id: ServiceId, factory: &ServiceFactory, generation: u32) -> ServiceThread {
    let (to, calls) = channel::<Call>();
    let (replies, from) = channel::<Reply>();
    let mut handler = factory();
    std::thread::Builder::new()
        .name(std::format!("service-{id:?}-gen{generation}"))
        .spawn(move || {
            for mut call in calls {
                let mut response = std::vec![0u8; call.response_capacity];
                let mut leases: Vec<LeaseMem<'_>> = call
                    .leases
                    .iter_mut()
                    .map(|(bytes, writable)| {
                        if *writable {
                            LeaseMem::Write(bytes.as_mut_slice())
                        } else {
                            LeaseMem::Read(bytes.as_slice())
                        }
                    })
                    .collect();
                let n = handler(&call.request, &mut leases, &mut response);
                drop(leases);
                let reply = Reply {
                    response: n.map(|n| {
                        response.truncate(n.min(response.len()));
                        response
                    }),
                    written: call
                        .leases
                        .into_iter()
                        .filter(|(_, w)| *w)
                        .map(|(b, _)| b)
                        .collect(),
                };
                if replies.send(reply).is_err() {
                    break;
                }
            }
        })
        .expect("spawn service thread");
    ServiceThread {
        to,
        from,
        generation,
    }
}

/// A transport whose services each run on their own thread.
pub struct ThreadTransport {
    factories: BTreeMap<ServiceId, ServiceFactory>,
    threads: BTreeMap<ServiceId, ServiceThread>,
    timeout: Duration,
}

impl Default for ThreadTransport {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl ThreadTransport {
    /// No services; calls time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            factories: BTreeMap::new(),
            threads: BTreeMap::new(),
            timeout,
        }
    }

    /// Starts `service` on its own thread, made by `factory` (and made
    /// again whenever it has to be restarted).
    pub fn register(&mut self, service: ServiceId, factory: ServiceFactory) {
        let thread = spawn(service, &factory, 0);
        self.factories.insert(service, factory);
        self.threads.insert(service, thread);
    }

    /// How many times `service` has been restarted.
    pub fn generation(&self, service: ServiceId) -> Option<u32> {
        self.threads.get(&service).map(|t| t.generation)
    }

    fn restart(&mut self, service: ServiceId) {
        if let (Some(factory), Some(old)) =
            (self.factories.get(&service), self.threads.get(&service))
        {
            // The old thread is abandoned: dropping its channels ends it
            // when (if) it next looks for work.
            let fresh = spawn(service, factory, old.generation + 1);
            self.threads.insert(service, fresh);
        }
    }
}

impl ServiceTransport for ThreadTransport {
    fn call(
        &mut self,
        service: ServiceId,
        request: &[u8],
        leases: &mut [LeaseMem<'_>],
        response: &mut [u8],
    ) -> Result<usize, TransportError> {
        let thread = self
            .threads
            .get(&service)
            .ok_or(TransportError::Unavailable)?;
        let call = Call {
            request: request.to_vec(),
            leases: leases
                .iter()
                .map(|l| (l.bytes().to_vec(), matches!(l, LeaseMem::Write(_))))
                .collect(),
            response_capacity: response.len(),
        };
        let reply = match thread.to.send(call) {
            Ok(()) => thread.from.recv_timeout(self.timeout),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        let reply = match reply {
            Ok(r) => r,
            Err(_) => {
                self.restart(service);
                return Err(TransportError::Failed);
            }
        };
        let writable = leases.iter_mut().filter_map(|l| l.bytes_mut());
        for (dst, src) in writable.zip(reply.written) {
            if dst.len() == src.len() {
                dst.copy_from_slice(&src);
            }
        }
        let bytes = reply.response.ok_or(TransportError::Failed)?;
        let out = response
            .get_mut(..bytes.len())
            .ok_or(TransportError::Failed)?;
        out.copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}
