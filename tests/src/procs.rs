//! Workspace binaries as separate processes (`atoll-hes`, the CLIs): the
//! helpers live in `atoll-sim`, whose own tests use them; re-exported here
//! for the cross-component tests.

pub use atoll_sim::procs::{binary, workspace, HesProcess};
