//! The HES as a host process: keeps the device secrets in a provisioning
//! file and serves the HES link protocol over a Unix socket (and optionally
//! TCP on 127.0.0.1, where Islet's UART bridge for QEMU connects).
//!
//! The HES logic is all in `atoll-hes-mcu`; this crate only moves bytes and
//! files: [`provision`] creates or loads the secrets, [`server`] feeds frames
//! from sockets to one shared [`atoll_hes_mcu::Hes`].

pub mod provision;
pub mod server;
