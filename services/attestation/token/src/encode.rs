//! Deterministic encoding of the claims, the COSE_Sign1 envelopes and the
//! tag-399 collection, with signing split into steps.
//!
//! The RMM cannot always sign in one call (the realm asks for its token
//! through repeated RSI_ATTESTATION_TOKEN_CONTINUE calls, and the key may sit
//! behind another service), so signing is: build an [`UnsignedToken`], take
//! its [`UnsignedToken::to_be_signed`] bytes (the COSE Sig_structure) to
//! whoever holds the key, then [`UnsignedToken::assemble`] the signature.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ciborium::Value;
use coset::{iana, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};

use crate::claims::{key, PlatformClaims, RealmClaims, SwComponent};
use crate::error::EncodeError;

/// The COSE signature algorithms CCA tokens use.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256 (some platform tokens).
    Es256,
    /// ECDSA P-384 with SHA-384 (realm tokens, most platform tokens).
    Es384,
}

impl SignatureAlgorithm {
    /// Length of the r||s signature.
    pub const fn signature_len(self) -> usize {
        match self {
            SignatureAlgorithm::Es256 => 64,
            SignatureAlgorithm::Es384 => 96,
        }
    }

    /// The COSE name.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
        }
    }

    pub(crate) fn cose(self) -> iana::Algorithm {
        match self {
            SignatureAlgorithm::Es256 => iana::Algorithm::ES256,
            SignatureAlgorithm::Es384 => iana::Algorithm::ES384,
        }
    }
}

/// Something that can sign a Sig_structure: the RMM's RAK, a HES client, an HSM.
pub trait TokenSigner {
    /// The algorithm the signer produces; it goes in the protected header.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// Signs `to_be_signed` (the whole Sig_structure; the signer hashes it)
    /// and returns r||s.
    fn sign(&self, to_be_signed: &[u8]) -> Result<Vec<u8>, EncodeError>;
}

impl TokenSigner for p384::ecdsa::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es384
    }
    fn sign(&self, to_be_signed: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let sig: p384::ecdsa::Signature = ecdsa::signature::Signer::try_sign(self, to_be_signed)
            .map_err(|e| EncodeError::Signer(alloc::format!("{e}")))?;
        Ok(sig.to_bytes().to_vec())
    }
}

impl TokenSigner for p256::ecdsa::SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::Es256
    }
    fn sign(&self, to_be_signed: &[u8]) -> Result<Vec<u8>, EncodeError> {
        let sig: p256::ecdsa::Signature = ecdsa::signature::Signer::try_sign(self, to_be_signed)
            .map_err(|e| EncodeError::Signer(alloc::format!("{e}")))?;
        Ok(sig.to_bytes().to_vec())
    }
}

/// A COSE_Sign1 whose payload and protected header are fixed, awaiting its signature.
#[derive(Clone, Debug)]
pub struct UnsignedToken {
    sign1: CoseSign1,
    alg: SignatureAlgorithm,
}

impl UnsignedToken {
    /// Wraps an encoded claims map: protected header `{1: alg}`, empty
    /// unprotected header.
    pub fn new(payload: Vec<u8>, alg: SignatureAlgorithm) -> Self {
        let sign1 = CoseSign1Builder::new()
            .protected(HeaderBuilder::new().algorithm(alg.cose()).build())
            .payload(payload)
            .build();
        UnsignedToken { sign1, alg }
    }

    /// The algorithm the signature must use.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    /// The bytes to sign: the COSE Sig_structure
    /// `["Signature1", protected, h'', payload]`.
    pub fn to_be_signed(&self) -> Vec<u8> {
        self.sign1.tbs_data(&[])
    }

    /// Puts the r||s `signature` in place and returns the tagged COSE_Sign1.
    pub fn assemble(self, signature: &[u8]) -> Result<Vec<u8>, EncodeError> {
        if signature.len() != self.alg.signature_len() {
            return Err(EncodeError::SignatureLength {
                alg: self.alg.name(),
                expected: self.alg.signature_len(),
                found: signature.len(),
            });
        }
        let mut sign1 = self.sign1;
        sign1.signature = signature.to_vec();
        sign1
            .to_tagged_vec()
            .map_err(|e| EncodeError::Cbor(alloc::format!("{e}")))
    }

    /// Signs with `signer` in one go.
    pub fn sign(self, signer: &impl TokenSigner) -> Result<Vec<u8>, EncodeError> {
        if signer.algorithm() != self.alg {
            return Err(EncodeError::SignerAlgorithm {
                token: self.alg.name(),
                signer: signer.algorithm().name(),
            });
        }
        let sig = signer.sign(&self.to_be_signed())?;
        self.assemble(&sig)
    }

    /// Signs with a P-384 key (the RAK, or a P-384 CPAK).
    pub fn sign_with(self, key: &p384::ecdsa::SigningKey) -> Result<Vec<u8>, EncodeError> {
        self.sign(key)
    }
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn text(s: &str) -> Value {
    Value::Text(String::from(s))
}

fn to_bytes(v: &Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out)
        .map_err(|e| EncodeError::Cbor(alloc::format!("{e:?}")))?;
    Ok(out)
}

impl RealmClaims {
    /// The claims map in the reference RMM's order: 10, 44235, 44237,
    /// 44236, 44240, 265 (if set), 44238, 44239, then [`RealmClaims::extra`].
    pub fn to_value(&self) -> Value {
        let mut m = vec![
            (int(key::CHALLENGE), Value::Bytes(self.challenge.to_vec())),
            (
                int(key::REALM_RPV),
                Value::Bytes(self.personalization_value.to_vec()),
            ),
            (
                int(key::REALM_PUB_KEY),
                Value::Bytes(self.rak.encoded().to_vec()),
            ),
            (
                int(key::REALM_HASH_ALGO),
                text(self.measurement_hash_algo.name()),
            ),
            (
                int(key::REALM_PUB_KEY_HASH_ALGO),
                text(self.rak_hash_algo.name()),
            ),
        ];
        if let Some(p) = &self.profile {
            m.push((int(key::PROFILE), text(p)));
        }
        m.push((int(key::REALM_RIM), Value::Bytes(self.rim.clone())));
        m.push((
            int(key::REALM_REMS),
            Value::Array(self.rems.iter().map(|r| Value::Bytes(r.clone())).collect()),
        ));
        m.extend(self.extra.iter().map(|(k, v)| (int(*k), v.clone())));
        Value::Map(m)
    }

    /// The encoded claims map (the COSE payload).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        to_bytes(&self.to_value())
    }

    /// The realm token awaiting its ES384 signature by the RAK.
    pub fn unsigned_token(&self) -> Result<UnsignedToken, EncodeError> {
        Ok(UnsignedToken::new(
            self.encode()?,
            SignatureAlgorithm::Es384,
        ))
    }

    /// Signs the realm token with the RAK. Refuses a key other than the one
    /// in claim 44237, since the token would never verify.
    pub fn sign_with(&self, rak: &p384::ecdsa::SigningKey) -> Result<Vec<u8>, EncodeError> {
        if p384::PublicKey::from(rak.verifying_key()) != *self.rak.public_key() {
            return Err(EncodeError::RakMismatch);
        }
        self.unsigned_token()?.sign_with(rak)
    }
}

impl SwComponent {
    /// The component map: keys 1, 2, 4, 5, 6, optional ones omitted.
    pub fn to_value(&self) -> Value {
        let mut m = Vec::new();
        if let Some(t) = &self.component_type {
            m.push((int(1), text(t)));
        }
        m.push((int(2), Value::Bytes(self.measurement.clone())));
        if let Some(v) = &self.version {
            m.push((int(4), text(v)));
        }
        m.push((int(5), Value::Bytes(self.signer_id.clone())));
        if let Some(a) = &self.algorithm {
            m.push((int(6), text(a)));
        }
        Value::Map(m)
    }
}

impl PlatformClaims {
    /// The claims map in the reference order: 265, 10, 2396, 256, 2401,
    /// 2395, 2399, 2400 (if set), 2402, then [`PlatformClaims::extra`].
    pub fn to_value(&self) -> Value {
        let mut m = vec![
            (int(key::PROFILE), text(&self.profile)),
            (int(key::CHALLENGE), Value::Bytes(self.challenge.clone())),
            (
                int(key::PLAT_IMPLEMENTATION_ID),
                Value::Bytes(self.implementation_id.to_vec()),
            ),
            (
                int(key::PLAT_INSTANCE_ID),
                Value::Bytes(self.instance_id.to_vec()),
            ),
            (int(key::PLAT_CONFIG), Value::Bytes(self.config.clone())),
            (int(key::PLAT_LIFECYCLE), int(i64::from(self.lifecycle))),
            (
                int(key::PLAT_SW_COMPONENTS),
                Value::Array(
                    self.sw_components
                        .iter()
                        .map(SwComponent::to_value)
                        .collect(),
                ),
            ),
        ];
        if let Some(v) = &self.verification_service {
            m.push((int(key::PLAT_VERIFICATION_SERVICE), text(v)));
        }
        m.push((int(key::PLAT_HASH_ALGO), text(&self.hash_algo)));
        m.extend(self.extra.iter().map(|(k, v)| (int(*k), v.clone())));
        Value::Map(m)
    }

    /// The encoded claims map (the COSE payload).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        to_bytes(&self.to_value())
    }

    /// The platform token awaiting its signature by the CPAK.
    pub fn unsigned_token(&self, alg: SignatureAlgorithm) -> Result<UnsignedToken, EncodeError> {
        Ok(UnsignedToken::new(self.encode()?, alg))
    }

    /// Signs the platform token with `cpak` (ES384 or ES256 by its curve).
    pub fn sign(&self, cpak: &impl TokenSigner) -> Result<Vec<u8>, EncodeError> {
        self.unsigned_token(cpak.algorithm())?.sign(cpak)
    }

    /// Signs the platform token with a P-384 CPAK.
    pub fn sign_with(&self, cpak: &p384::ecdsa::SigningKey) -> Result<Vec<u8>, EncodeError> {
        self.sign(cpak)
    }
}

/// The RMM 1.0 collection: tag 399 around `{44234: platform, 44241: realm}`,
/// in that order. Both arguments are tagged COSE_Sign1 bytes.
pub fn encode_collection(
    platform_token: &[u8],
    realm_token: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let v = Value::Tag(
        399,
        Box::new(Value::Map(vec![
            (
                Value::Integer(key::COLLECTION_PLATFORM.into()),
                Value::Bytes(platform_token.to_vec()),
            ),
            (
                Value::Integer(key::COLLECTION_REALM.into()),
                Value::Bytes(realm_token.to_vec()),
            ),
        ])),
    );
    to_bytes(&v)
}
