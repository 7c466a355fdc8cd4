//! Signature and binding checks.
//!
//! Three independent checks, each reported on its own so an appraisal can
//! say which one failed: the platform token's signature with the CPAK, the
//! realm token's signature with the RAK it carries (claim 44237), and the
//! binding (platform challenge = H(claim 44237 as encoded), H from 44240).

use ecdsa::signature::Verifier;

use crate::decode::{CcaToken, PlatformToken, RealmToken};
use crate::encode::SignatureAlgorithm;
use crate::error::VerifyError;

/// A CCA platform attestation key (public), on either curve the vectors use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlatformKey {
    /// P-256, for ES256-signed platform tokens.
    P256(p256::ecdsa::VerifyingKey),
    /// P-384, for ES384-signed platform tokens (the HES's CPAK).
    P384(p384::ecdsa::VerifyingKey),
}

impl PlatformKey {
    /// The curve's name.
    pub fn curve(&self) -> &'static str {
        match self {
            PlatformKey::P256(_) => "P-256",
            PlatformKey::P384(_) => "P-384",
        }
    }

    /// The key as an uncompressed SEC1 point (what the instance id hashes).
    pub fn to_sec1_bytes(&self) -> alloc::vec::Vec<u8> {
        match self {
            PlatformKey::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
            PlatformKey::P384(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        }
    }
}

impl From<p384::ecdsa::VerifyingKey> for PlatformKey {
    fn from(k: p384::ecdsa::VerifyingKey) -> Self {
        PlatformKey::P384(k)
    }
}

impl From<p256::ecdsa::VerifyingKey> for PlatformKey {
    fn from(k: p256::ecdsa::VerifyingKey) -> Self {
        PlatformKey::P256(k)
    }
}

impl PlatformToken {
    /// Checks the platform token's signature with `cpak`.
    pub fn verify(&self, cpak: &PlatformKey) -> Result<(), VerifyError> {
        let env = &self.envelope;
        let ok = match (env.algorithm(), cpak) {
            (SignatureAlgorithm::Es384, PlatformKey::P384(k)) => {
                p384::ecdsa::Signature::from_slice(env.signature())
                    .is_ok_and(|sig| k.verify(&env.to_be_signed(), &sig).is_ok())
            }
            (SignatureAlgorithm::Es256, PlatformKey::P256(k)) => {
                p256::ecdsa::Signature::from_slice(env.signature())
                    .is_ok_and(|sig| k.verify(&env.to_be_signed(), &sig).is_ok())
            }
            (alg, key) => {
                return Err(VerifyError::PlatformKeyMismatch {
                    token_alg: alg.name(),
                    key_curve: key.curve(),
                })
            }
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::PlatformSignature)
        }
    }
}

impl RealmToken {
    /// Checks the realm token's signature with the RAK in its own claim
    /// 44237. On its own this proves nothing; the binding ties the RAK to
    /// the platform.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let env = &self.envelope;
        if env.algorithm() != SignatureAlgorithm::Es384 {
            return Err(VerifyError::RealmAlgorithm {
                alg: env.algorithm().name(),
            });
        }
        let key = self.claims.rak.verifying_key();
        match p384::ecdsa::Signature::from_slice(env.signature()) {
            Ok(sig) if key.verify(&env.to_be_signed(), &sig).is_ok() => Ok(()),
            _ => Err(VerifyError::RealmSignature),
        }
    }
}

/// The outcome of each verification step, kept separate so a caller can
/// report all of them rather than the first failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The platform token's signature with the CPAK.
    pub platform_signature: Result<(), VerifyError>,
    /// The realm token's signature with its RAK.
    pub realm_signature: Result<(), VerifyError>,
    /// The RAK binding.
    pub binding: Result<(), VerifyError>,
}

impl Verification {
    /// The first failure, if any, in the order platform, realm, binding.
    pub fn result(&self) -> Result<(), VerifyError> {
        self.platform_signature.clone()?;
        self.realm_signature.clone()?;
        self.binding.clone()
    }
}

impl CcaToken {
    /// Checks the binding: platform challenge == H(claim 44237 bytes as
    /// encoded), H named by claim 44240. Without it a valid realm token
    /// signed by any key could be paired with any platform token.
    pub fn verify_binding(&self) -> Result<(), VerifyError> {
        let realm = &self.realm.claims;
        if realm.binding_challenge() == self.platform.claims.challenge {
            Ok(())
        } else {
            Err(VerifyError::Binding {
                alg: realm.rak_hash_algo.name(),
            })
        }
    }

    /// Runs all three checks and reports each.
    pub fn verification(&self, cpak: &PlatformKey) -> Verification {
        Verification {
            platform_signature: self.platform.verify(cpak),
            realm_signature: self.realm.verify(),
            binding: self.verify_binding(),
        }
    }

    /// Both signatures and the binding; the first failure is the error.
    pub fn verify(&self, cpak: &PlatformKey) -> Result<(), VerifyError> {
        self.platform.verify(cpak)?;
        self.realm.verify()?;
        self.verify_binding()
    }
}
