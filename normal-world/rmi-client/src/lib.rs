//! The normal world's side of the Realm Management Interface.
//!
//! * [`RmiClient`]: one typed method per RMI v1.0 command over any
//!   [`SmcConduit`](ipc_schema::smccc::SmcConduit), returning the command's
//!   outputs or the RMM's status.
//! * [`HostMemory`]: the normal-world memory a host hands to the RMM.
//! * [`RealmBuilder`]: executes a
//!   [`BuildPlan`](atoll_realm_description::BuildPlan) (delegation, realm
//!   and REC parameter pages, RTTs, RIPAS, data, RECs, activation), the same
//!   plan `atoll measure` replays to predict the RIM.
//!
//! The crate is `no_std` + `alloc` so the bare-metal normal-world host can
//! use it; the `std` feature only adds `std::error::Error` integration.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod builder;
pub mod memory;
pub mod rmi;

pub use builder::{BuildError, BuildErrorKind, BuiltRealm, BuiltRec, RealmBuilder, METADATA_LEN};
pub use memory::{BumpMemory, HostMemory, MemoryError};
pub use rmi::{
    DataDestroyed, RmiClient, RmiError, RmiResult, RmiVersion, RttDestroyed, RttEntry, TopError,
    VersionMismatch,
};

#[cfg(test)]
mod tests;
