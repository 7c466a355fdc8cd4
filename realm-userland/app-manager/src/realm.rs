//! What the app-manager asks of the realm's RMM: the trust bundle in
//! measured memory, the sealing key, attestation tokens and REM extension.
//!
//! In simulation each call opens the vCPU socket of `atoll-sim`, does its
//! RSI calls and closes it again: the simulator serves one realm process
//! at a time, and the applications the app-manager runs may want the RSI
//! too.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use atoll_rsi_client::sim::SimBackend;
use atoll_rsi_client::{sealing_flags, RsiClient};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::trust::{TrustBundle, TrustError, HEADER_LEN, TRUST_BUNDLE_IPA};

/// Sealing-key flags the app-manager derives application keys from: the
/// realm id of the vendor-signed metadata, VHUK_A (signer-bound). The RIM
/// is left out on purpose: a realm image update signed by the same vendor
/// keeps its applications' data, as DESIGN.md's layering promises.
pub const SEALING_FLAGS: u64 = sealing_flags::REALM_ID;

/// The REM the app-manager extends with each application it starts.
pub const APP_REM: u64 = 1;

/// Why a realm service call failed.
#[derive(Debug, thiserror::Error)]
pub enum RealmError {
    /// The RSI call (or the connection to the simulator) failed.
    #[error("RSI: {0}")]
    Rsi(String),
    /// The trust bundle is missing or malformed.
    #[error(transparent)]
    Trust(#[from] TrustError),
}

/// The realm, as the app-manager needs it. A trait so that the install
/// logic is independent of where the realm runs (simulation socket, SMC,
/// a Linux guest's interfaces).
pub trait Realm: Send + Sync {
    /// The trust bundle from measured realm memory.
    fn trust_bundle(&self) -> Result<TrustBundle, RealmError>;
    /// The realm sealing key for [`SEALING_FLAGS`].
    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, RealmError>;
    /// A CCA token for `challenge`.
    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, RealmError>;
    /// Extends REM `index` with `data` (at most 64 bytes).
    fn extend(&self, index: u64, data: &[u8]) -> Result<(), RealmError>;
}

/// A realm process's view of `atoll-sim`.
pub struct SimRealm {
    socket: PathBuf,
    // One RSI conversation at a time from this process.
    lock: Mutex<()>,
}

impl SimRealm {
    /// The realm served on the vCPU socket `socket`.
    pub fn new(socket: impl AsRef<Path>) -> Self {
        Self {
            socket: socket.as_ref().to_owned(),
            lock: Mutex::new(()),
        }
    }

    fn with_rsi<T>(
        &self,
        f: impl FnOnce(&mut RsiClient<SimBackend>) -> Result<T, RealmError>,
    ) -> Result<T, RealmError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let backend = SimBackend::connect(&self.socket)
            .map_err(|e| RealmError::Rsi(format!("{}: {e}", self.socket.display())))?;
        let mut rsi = RsiClient::new(backend);
        f(&mut rsi)
    }
}

impl Realm for SimRealm {
    fn trust_bundle(&self) -> Result<TrustBundle, RealmError> {
        self.with_rsi(|rsi| {
            let backend = rsi.backend_mut();
            let mut header = [0u8; HEADER_LEN];
            backend
                .read(TRUST_BUNDLE_IPA, &mut header)
                .map_err(|e| RealmError::Rsi(format!("reading the trust bundle: {e}")))?;
            let len = TrustBundle::json_len(&header)?;
            let mut json = vec![0u8; len];
            backend
                .read(TRUST_BUNDLE_IPA + HEADER_LEN as u64, &mut json)
                .map_err(|e| RealmError::Rsi(format!("reading the trust bundle: {e}")))?;
            Ok(TrustBundle::decode_json(&json)?)
        })
    }

    fn sealing_key(&self) -> Result<Zeroizing<[u8; 32]>, RealmError> {
        self.with_rsi(|rsi| {
            let key = rsi
                .sealing_key(SEALING_FLAGS, 0)
                .map_err(|e| RealmError::Rsi(format!("sealing key: {e}")))?;
            Ok(Zeroizing::new(key.0))
        })
    }

    fn attest(&self, challenge: &[u8; 64]) -> Result<Vec<u8>, RealmError> {
        self.with_rsi(|rsi| {
            rsi.attestation_token_vec(challenge)
                .map_err(|e| RealmError::Rsi(format!("attestation token: {e}")))
        })
    }

    fn extend(&self, index: u64, data: &[u8]) -> Result<(), RealmError> {
        self.with_rsi(|rsi| {
            rsi.measurement_extend(index, data)
                .map_err(|e| RealmError::Rsi(format!("extending REM {index}: {e}")))
        })
    }
}

/// What the app-manager extends into [`APP_REM`] when it starts an
/// application: SHA-256 of the vendor's public key (SPKI DER) and the
/// image manifest digest's SHA-256, 64 bytes. A verifier replays the
/// extensions to see which applications from which vendors run.
pub fn app_measurement(vendor_spki: &[u8], manifest_digest: &str) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&Sha256::digest(vendor_spki));
    out[32..].copy_from_slice(&Sha256::digest(manifest_digest.as_bytes()));
    out
}
