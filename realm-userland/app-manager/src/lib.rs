//! The app-manager: the realm's agent that installs signed applications
//! and runs them with their data sealed to the realm and the vendor.
//!
//! * [`trust`]: the trust bundle in measured realm memory (vendor and
//!   registry roots).
//! * [`realm`]: the RSI services it uses (sealing key, tokens, REMs).
//! * [`install`]: fetch over RA-TLS, verify signature and digests, unpack,
//!   seal onto the application's [`disk`].
//! * [`keys`]: the key layering from the realm sealing key down.
//! * [`run`]: unseal, run the OCI config's command, seal the volumes back.
//! * [`manager`] and [`agent`]: the state of the realm's applications and
//!   the warden protocol over it.
#![forbid(unsafe_code)]

pub mod agent;
pub mod disk;
pub mod error;
pub mod install;
pub mod keys;
pub mod manager;
pub mod realm;
pub mod run;
pub mod trust;

pub use error::AppError;
pub use manager::Manager;
