//! The warden: the normal-world daemon that creates realms from realm
//! descriptions, runs them, and deploys applications into them through the
//! realm's agent (the app-manager).
//!
//! * [`protocol`]: the CLI <-> daemon protocol (JSON frames on a Unix
//!   socket).
//! * [`state`]: what persists across daemon restarts (`state.json`,
//!   written atomically).
//! * [`backend`]: running a realm on the simulated platform: one
//!   `atoll-hes`, one `atoll-sim` and one `atoll-app-manager` per realm.
//! * [`daemon`]: the request handlers.
//!
//! The warden is host software and trusted by no one in a realm: it only
//! asks the agent to do things; everything security-relevant is decided
//! inside the realm.
#![forbid(unsafe_code)]

pub mod backend;
pub mod daemon;
pub mod protocol;
pub mod state;
