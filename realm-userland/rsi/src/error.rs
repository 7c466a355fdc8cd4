//! Typed RSI failures.

/// Why an RSI call failed. `E` is the backend's error.
///
/// The RSI statuses keep their specification names, so a caller (and a
/// test) can tell "the RMM refused" ([`RsiError::Input`],
/// [`RsiError::State`]) from "the RMM could not" ([`RsiError::Unknown`]) and
/// from "the RMM does not implement this" ([`RsiError::NotSupported`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RsiError<E> {
    /// The backend could not execute the call (socket closed, ...).
    #[error("RSI backend: {0}")]
    Backend(E),
    /// `RSI_ERROR_INPUT`: the RMM refused an argument.
    #[error("RSI_ERROR_INPUT: the RMM refused an argument of {command}")]
    Input {
        /// The command.
        command: &'static str,
    },
    /// `RSI_ERROR_STATE`: the call is not valid in the REC's current state.
    #[error("RSI_ERROR_STATE: {command} is not valid in the current state")]
    State {
        /// The command.
        command: &'static str,
    },
    /// `RSI_ERROR_UNKNOWN`: the RMM could not complete the call (for
    /// attestation: no attestation service or key is available).
    #[error("RSI_ERROR_UNKNOWN: the RMM could not complete {command}")]
    Unknown {
        /// The command.
        command: &'static str,
    },
    /// `SMC_UNKNOWN`: the RMM does not implement the function.
    #[error("{command} is not implemented by the RMM (SMC_UNKNOWN)")]
    NotSupported {
        /// The command.
        command: &'static str,
    },
    /// A status the command does not define.
    #[error("{command} returned the undefined status {status:#x}")]
    UnexpectedStatus {
        /// The command.
        command: &'static str,
        /// x0.
        status: u64,
    },
    /// `RSI_VERSION` refused the version this client speaks.
    #[error("the RMM implements RSI {lower:#x}..={higher:#x}, not {requested:#x}")]
    VersionMismatch {
        /// The revision requested.
        requested: u64,
        /// Lowest revision the RMM implements.
        lower: u64,
        /// Highest revision the RMM implements.
        higher: u64,
    },
    /// The caller's buffer cannot hold the result.
    #[error("buffer too small: {needed} bytes needed")]
    BufferTooSmall {
        /// Bytes needed (for a token: the RMM's upper bound, or what was
        /// received so far when that was exceeded).
        needed: usize,
    },
    /// An argument the client can tell is invalid without asking the RMM.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The RMM's answer breaks the RSI contract (e.g. more token bytes than
    /// the buffer it was given).
    #[error("the RMM broke the RSI contract: {0}")]
    Protocol(&'static str),
}
