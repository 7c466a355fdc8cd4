//! The app-manager's errors, one variant per class the warden can react to.

/// Why an app-manager operation failed. Each carries a message for people.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// The registry could not be reached or refused the realm.
    #[error("fetching the image: {0}")]
    Fetch(String),
    /// Signature, chain or digest verification failed.
    #[error("verifying the image: {0}")]
    Verify(String),
    /// Unpacking or installing failed.
    #[error("installing: {0}")]
    Install(String),
    /// Sealed storage failed (wrong key, corruption, disk).
    #[error("sealed storage: {0}")]
    Storage(String),
    /// Starting or stopping the application failed.
    #[error("running: {0}")]
    Run(String),
    /// No attestation token.
    #[error("attestation: {0}")]
    Attestation(String),
    /// The realm's services failed.
    #[error(transparent)]
    Realm(#[from] crate::realm::RealmError),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}
