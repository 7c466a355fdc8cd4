//! The simulated root monitor's root of trust, an HES reached over the
//! link protocol: it lives in `atoll-sim` (which connects it with
//! `--hes`); re-exported here for the cross-component tests.

pub use atoll_sim::hes::{boot_hes, Component, HesBootError, HesRoot, SimulatedFirmware};
