//! The claims of the two tokens, as typed values.
//!
//! The same structs serve the RMM (which fills them and encodes them) and
//! relying parties (which get them from the decoder), so the two sides cannot
//! disagree on what a claim means.

use alloc::string::String;
use alloc::vec::Vec;

use ciborium::Value;
use coset::{iana, CborSerializable, CoseKeyBuilder, KeyType, Label};
use p384::elliptic_curve::sec1::{EncodedPoint, FromEncodedPoint, ToEncodedPoint};
use sha2::Digest;

use crate::error::{DecodeError, EncodeError};

/// Realm profile of RMM 1.0 tokens (claim 265).
pub const REALM_PROFILE_1_0: &str = "tag:arm.com,2023:realm#1.0.0";
/// Realm profile of RMM 2.0 tokens; accepted by the decoder.
pub const REALM_PROFILE_2_0: &str = "tag:arm.com,2024:realm#2.0.0";
/// Platform profile of draft-ffm-rats-cca-token tokens (claim 265).
pub const PLATFORM_PROFILE_1_0: &str = "tag:arm.com,2023:cca_platform#1.0.0";
/// Platform profile of older TF-M tokens; accepted by the decoder.
pub const PLATFORM_PROFILE_LEGACY: &str = "http://arm.com/CCA-SSD/1.0.0";

/// Claim keys, named as in draft-ffm-rats-cca-token.
pub mod key {
    /// Challenge (nonce), both tokens.
    pub const CHALLENGE: i64 = 10;
    /// Profile, both tokens.
    pub const PROFILE: i64 = 265;
    /// Realm personalization value.
    pub const REALM_RPV: i64 = 44235;
    /// Realm measurement hash algorithm.
    pub const REALM_HASH_ALGO: i64 = 44236;
    /// Realm public key (RAK).
    pub const REALM_PUB_KEY: i64 = 44237;
    /// Realm initial measurement.
    pub const REALM_RIM: i64 = 44238;
    /// Realm extensible measurements.
    pub const REALM_REMS: i64 = 44239;
    /// Hash algorithm of the RAK binding.
    pub const REALM_PUB_KEY_HASH_ALGO: i64 = 44240;
    /// Platform implementation id.
    pub const PLAT_IMPLEMENTATION_ID: i64 = 2396;
    /// Platform instance id.
    pub const PLAT_INSTANCE_ID: i64 = 256;
    /// Platform configuration.
    pub const PLAT_CONFIG: i64 = 2401;
    /// Platform lifecycle.
    pub const PLAT_LIFECYCLE: i64 = 2395;
    /// Platform software components.
    pub const PLAT_SW_COMPONENTS: i64 = 2399;
    /// Platform verification service.
    pub const PLAT_VERIFICATION_SERVICE: i64 = 2400;
    /// Platform hash algorithm.
    pub const PLAT_HASH_ALGO: i64 = 2402;
    /// Collection entry of the platform token.
    pub const COLLECTION_PLATFORM: u64 = 44234;
    /// Collection entry of the realm token.
    pub const COLLECTION_REALM: u64 = 44241;
}

/// A hash algorithm named in a token ("sha-256" etc., the IANA names).
///
/// Typed rather than a string because the binding check and the RMM's
/// measurement both have to compute with it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgo {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgo {
    /// The name used in tokens and reference values.
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha256 => "sha-256",
            HashAlgo::Sha384 => "sha-384",
            HashAlgo::Sha512 => "sha-512",
        }
    }

    /// Parses a token's name for the algorithm.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha-256" => Some(HashAlgo::Sha256),
            "sha-384" => Some(HashAlgo::Sha384),
            "sha-512" => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub const fn digest_len(self) -> usize {
        match self {
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha384 => 48,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlgo::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlgo::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlgo::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

/// How the RAK is encoded in claim 44237.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RakForm {
    /// A COSE_Key `{1: 2, -1: 2, -2: x, -3: y}` (draft-ffm-rats-cca-token, RMM 1.0).
    CoseKey,
    /// A raw 97-byte uncompressed SEC1 point (tokens from before the draft).
    RawPoint,
}

/// The realm attestation key as carried in claim 44237.
///
/// Keeps the claim's bytes exactly as encoded, because the binding hashes
/// those bytes, not a re-encoding of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmPublicKey {
    encoded: Vec<u8>,
    form: RakForm,
    key: p384::PublicKey,
}

impl RealmPublicKey {
    /// Encodes `key` in `form` (what the RMM does).
    pub fn new(key: &p384::PublicKey, form: RakForm) -> Result<Self, EncodeError> {
        let point = key.to_encoded_point(false);
        let encoded = match form {
            RakForm::RawPoint => point.as_bytes().to_vec(),
            RakForm::CoseKey => {
                // Both coordinates exist: the point is uncompressed and not
                // the identity (a PublicKey never is).
                let (x, y) = match (point.x(), point.y()) {
                    (Some(x), Some(y)) => (x.to_vec(), y.to_vec()),
                    _ => (Vec::new(), Vec::new()),
                };
                let cose =
                    CoseKeyBuilder::new_ec2_pub_key(iana::EllipticCurve::P_384, x, y).build();
                cose.to_vec()
                    .map_err(|e| EncodeError::Cbor(alloc::format!("{e}")))?
            }
        };
        Ok(RealmPublicKey {
            encoded,
            form,
            key: *key,
        })
    }

    /// Parses the contents of claim 44237, in either form.
    pub fn from_claim_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() == 97 && bytes[0] == 0x04 {
            let key =
                p384::PublicKey::from_sec1_bytes(bytes).map_err(|_| DecodeError::InvalidRak {
                    reason: "raw point is not on P-384",
                })?;
            return Ok(RealmPublicKey {
                encoded: bytes.to_vec(),
                form: RakForm::RawPoint,
                key,
            });
        }
        let cose = coset::CoseKey::from_slice(bytes).map_err(|_| DecodeError::InvalidRak {
            reason: "neither a 97-byte SEC1 point nor a COSE_Key",
        })?;
        if cose.kty != KeyType::Assigned(iana::KeyType::EC2) {
            return Err(DecodeError::InvalidRak {
                reason: "COSE_Key kty is not EC2",
            });
        }
        let param = |label: iana::Ec2KeyParameter| {
            cose.params
                .iter()
                .find(|(l, _)| *l == Label::Int(label as i64))
                .map(|(_, v)| v)
        };
        if param(iana::Ec2KeyParameter::D).is_some() {
            return Err(DecodeError::InvalidRak {
                reason: "COSE_Key carries a private key",
            });
        }
        match param(iana::Ec2KeyParameter::Crv) {
            Some(Value::Integer(i)) if i128::from(*i) == iana::EllipticCurve::P_384 as i128 => {}
            _ => {
                return Err(DecodeError::InvalidRak {
                    reason: "COSE_Key curve is not P-384",
                })
            }
        }
        let coord = |label| match param(label) {
            Some(Value::Bytes(b)) if b.len() == 48 => Ok(b.as_slice()),
            _ => Err(DecodeError::InvalidRak {
                reason: "COSE_Key x or y is not a 48-byte string",
            }),
        };
        let x = coord(iana::Ec2KeyParameter::X)?;
        let y = coord(iana::Ec2KeyParameter::Y)?;
        let point =
            EncodedPoint::<p384::NistP384>::from_affine_coordinates(x.into(), y.into(), false);
        let key = Option::<p384::PublicKey>::from(p384::PublicKey::from_encoded_point(&point))
            .ok_or(DecodeError::InvalidRak {
                reason: "COSE_Key point is not on P-384",
            })?;
        Ok(RealmPublicKey {
            encoded: bytes.to_vec(),
            form: RakForm::CoseKey,
            key,
        })
    }

    /// The claim's bytes, exactly as they appear in (or will go into) the token.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Which encoding the claim uses.
    pub fn form(&self) -> RakForm {
        self.form
    }

    /// The key.
    pub fn public_key(&self) -> &p384::PublicKey {
        &self.key
    }

    /// The key, ready to verify the realm token's signature.
    pub fn verifying_key(&self) -> p384::ecdsa::VerifyingKey {
        p384::ecdsa::VerifyingKey::from(&self.key)
    }
}

/// The claims of a realm token (signed by the RAK).
#[derive(Clone, Debug, PartialEq)]
pub struct RealmClaims {
    /// Claim 10: the 64-byte challenge the realm passed to RSI_ATTESTATION_TOKEN_INIT.
    pub challenge: [u8; 64],
    /// Claim 44235: the realm personalization value.
    pub personalization_value: [u8; 64],
    /// Claim 44237: the RAK.
    pub rak: RealmPublicKey,
    /// Claim 44236: the realm's measurement hash algorithm.
    pub measurement_hash_algo: HashAlgo,
    /// Claim 44240: the hash algorithm of the binding to the platform token.
    pub rak_hash_algo: HashAlgo,
    /// Claim 265: the profile. Absent in tokens from before the draft.
    pub profile: Option<String>,
    /// Claim 44238: the RIM (digest-length bytes).
    pub rim: Vec<u8>,
    /// Claim 44239: REMs 1..=4.
    pub rems: [Vec<u8>; 4],
    /// Claims this crate does not interpret (e.g. those of realm profile
    /// 2.0), in token order. The encoder appends them after the others.
    pub extra: Vec<(i64, Value)>,
}

impl RealmClaims {
    /// Claims as the RMM 1.0 emits them: profile 1.0, RAK as a COSE_Key,
    /// binding hashed with SHA-256, and no extra claims.
    pub fn new(
        challenge: [u8; 64],
        personalization_value: [u8; 64],
        rak: &p384::PublicKey,
        measurement_hash_algo: HashAlgo,
        rim: Vec<u8>,
        rems: [Vec<u8>; 4],
    ) -> Result<Self, EncodeError> {
        Ok(RealmClaims {
            challenge,
            personalization_value,
            rak: RealmPublicKey::new(rak, RakForm::CoseKey)?,
            measurement_hash_algo,
            rak_hash_algo: HashAlgo::Sha256,
            profile: Some(REALM_PROFILE_1_0.into()),
            rim,
            rems,
            extra: Vec::new(),
        })
    }

    /// The challenge the platform token must carry for these claims:
    /// `rak_hash_algo(claim 44237 bytes)`. The RMM asks the HES for a
    /// platform token with this challenge at boot.
    pub fn binding_challenge(&self) -> Vec<u8> {
        self.rak_hash_algo.digest(self.rak.encoded())
    }
}

/// One entry of the platform's software components claim (2399).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SwComponent {
    /// Key 1: what the component is ("BL2", "RMM", ...).
    pub component_type: Option<String>,
    /// Key 2: its measurement.
    pub measurement: Vec<u8>,
    /// Key 4: its version.
    pub version: Option<String>,
    /// Key 5: hash of the key that signed it.
    pub signer_id: Vec<u8>,
    /// Key 6: the measurement's hash algorithm ("sha-256").
    pub algorithm: Option<String>,
}

/// The claims of a platform token (signed by the CPAK).
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformClaims {
    /// Claim 265: the profile.
    pub profile: String,
    /// Claim 10: the challenge, the hash of the realm token's RAK claim.
    pub challenge: Vec<u8>,
    /// Claim 2396: the implementation id (32 bytes).
    pub implementation_id: [u8; 32],
    /// Claim 256: the instance id (33 bytes: 0x01 || H(CPAK public key)).
    pub instance_id: [u8; 33],
    /// Claim 2401: the platform configuration.
    pub config: Vec<u8>,
    /// Claim 2395: the security lifecycle state.
    pub lifecycle: u16,
    /// Claim 2399: the measured software components.
    pub sw_components: Vec<SwComponent>,
    /// Claim 2400: where to verify the token. Optional in the profile.
    pub verification_service: Option<String>,
    /// Claim 2402: the hash algorithm ("sha-256").
    pub hash_algo: String,
    /// Claims this crate does not interpret, in token order. The encoder
    /// appends them after the others.
    pub extra: Vec<(i64, Value)>,
}

impl PlatformClaims {
    /// The PSA security lifecycle state the lifecycle claim falls in
    /// (major state in bits 15..8), so tools can show "secured" rather than
    /// 12291.
    pub fn lifecycle_state(&self) -> &'static str {
        match self.lifecycle & 0xff00 {
            0x0000 => "unknown",
            0x1000 => "assembly-and-test",
            0x2000 => "psa-rot-provisioning",
            0x3000 => "secured",
            0x4000 => "non-psa-rot-debug",
            0x5000 => "recoverable-psa-rot-debug",
            0x6000 => "decommissioned",
            _ => "invalid",
        }
    }
}
