//! Decoding of the collection (tag 399 or 907), the two COSE_Sign1
//! envelopes and both claim sets.
//!
//! Every malformation is a [`DecodeError`]; nothing here panics on any
//! input (checked by the property tests in `tests/never_panic.rs`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ciborium::Value;
use coset::{
    iana, Algorithm, CborSerializable, CoseSign1, RegisteredLabelWithPrivate,
    TaggedCborSerializable,
};

use crate::claims::{key, HashAlgo, PlatformClaims, RealmClaims, RealmPublicKey, SwComponent};
use crate::encode::SignatureAlgorithm;
use crate::error::{DecodeError, TagFound, TokenPart};

/// CBOR tag of the RMM 1.0 collection.
pub const TAG_CCA_TOKEN: u64 = 399;
/// CBOR tag of the CMW collection newer firmware emits.
pub const TAG_CMW_COLLECTION: u64 = 907;
/// CoAP content format of a COSE_Sign1 in a tag-907 collection entry.
pub const CONTENT_FORMAT_COSE_SIGN1: i128 = 263;

/// Which collection form the token came in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CollectionForm {
    /// Tag 399, map values are byte strings (RMM 1.0).
    Tag399,
    /// Tag 907, map values are `[263, bstr]` (CMW collection).
    Tag907,
}

/// A decoded COSE_Sign1 envelope, kept so its signature can be checked
/// against exactly the bytes that were signed.
#[derive(Clone, Debug)]
pub struct SignedEnvelope {
    sign1: CoseSign1,
    alg: SignatureAlgorithm,
}

impl SignedEnvelope {
    /// The algorithm named in the protected header.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.alg
    }

    /// The COSE Sig_structure over the protected header (as encoded in the
    /// token) and the payload: what the signature covers.
    pub fn to_be_signed(&self) -> Vec<u8> {
        self.sign1.tbs_data(&[])
    }

    /// The r||s signature.
    pub fn signature(&self) -> &[u8] {
        &self.sign1.signature
    }

    /// The encoded claims.
    pub fn payload(&self) -> &[u8] {
        // Never empty in practice: decode_envelope refuses a detached payload.
        self.sign1.payload.as_deref().unwrap_or_default()
    }
}

/// A decoded platform token.
#[derive(Clone, Debug)]
pub struct PlatformToken {
    /// Its claims.
    pub claims: PlatformClaims,
    /// Its envelope (algorithm, signature, signed bytes).
    pub envelope: SignedEnvelope,
}

/// A decoded realm token.
#[derive(Clone, Debug)]
pub struct RealmToken {
    /// Its claims.
    pub claims: RealmClaims,
    /// Its envelope (algorithm, signature, signed bytes).
    pub envelope: SignedEnvelope,
}

/// A decoded CCA attestation token: both tokens, not yet verified.
#[derive(Clone, Debug)]
pub struct CcaToken {
    /// The collection form it came in.
    pub form: CollectionForm,
    /// The platform token.
    pub platform: PlatformToken,
    /// The realm token.
    pub realm: RealmToken,
}

impl CcaToken {
    /// Decodes a whole token (tag 399 or 907). Does not verify anything.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes)
    }
}

/// Decodes a whole token (tag 399 or 907). Does not verify anything.
pub fn decode(bytes: &[u8]) -> Result<CcaToken, DecodeError> {
    let part = TokenPart::Collection;
    let (tag, inner) = match parse_cbor(bytes, part)? {
        Value::Tag(t, inner) => (t, *inner),
        _ => {
            return Err(DecodeError::UnexpectedTag {
                found: TagFound(None),
            })
        }
    };
    let form = match tag {
        TAG_CCA_TOKEN => CollectionForm::Tag399,
        TAG_CMW_COLLECTION => CollectionForm::Tag907,
        t => {
            return Err(DecodeError::UnexpectedTag {
                found: TagFound(Some(t)),
            })
        }
    };
    let Value::Map(entries) = inner else {
        return Err(DecodeError::WrongType {
            part,
            what: "the collection",
            expected: "a map",
        });
    };
    let mut platform = None;
    let mut realm = None;
    for (k, v) in entries {
        let key_num = match k {
            Value::Integer(i) if i128::from(i) == i128::from(key::COLLECTION_PLATFORM) => {
                key::COLLECTION_PLATFORM
            }
            Value::Integer(i) if i128::from(i) == i128::from(key::COLLECTION_REALM) => {
                key::COLLECTION_REALM
            }
            other => {
                return Err(DecodeError::UnexpectedEntry {
                    key: describe_key(&other),
                })
            }
        };
        let slot = if key_num == key::COLLECTION_PLATFORM {
            &mut platform
        } else {
            &mut realm
        };
        if slot.is_some() {
            return Err(DecodeError::DuplicateEntry { key: key_num });
        }
        *slot = Some(unwrap_entry(v, form, key_num)?);
    }
    let platform = platform.ok_or(DecodeError::MissingEntry {
        key: key::COLLECTION_PLATFORM,
        name: "platform token",
    })?;
    let realm = realm.ok_or(DecodeError::MissingEntry {
        key: key::COLLECTION_REALM,
        name: "realm token",
    })?;
    Ok(CcaToken {
        form,
        platform: decode_platform_token(&platform)?,
        realm: decode_realm_token(&realm)?,
    })
}

fn describe_key(v: &Value) -> String {
    match v {
        Value::Integer(i) => format!("{}", i128::from(*i)),
        Value::Text(t) => format!("{t:?}"),
        _ => String::from("(not an integer)"),
    }
}

fn unwrap_entry(v: Value, form: CollectionForm, key: u64) -> Result<Vec<u8>, DecodeError> {
    match (form, v) {
        (CollectionForm::Tag399, Value::Bytes(b)) => Ok(b),
        (CollectionForm::Tag399, _) => Err(DecodeError::WrongType {
            part: TokenPart::Collection,
            what: "a collection entry",
            expected: "a byte string",
        }),
        (CollectionForm::Tag907, Value::Array(a)) => match <[Value; 2]>::try_from(a) {
            Ok([Value::Integer(cf), Value::Bytes(b)])
                if i128::from(cf) == CONTENT_FORMAT_COSE_SIGN1 =>
            {
                Ok(b)
            }
            Ok([Value::Integer(cf), _]) => Err(DecodeError::ContentFormat {
                key,
                found: Some(i128::from(cf)),
            }),
            _ => Err(DecodeError::ContentFormat { key, found: None }),
        },
        (CollectionForm::Tag907, _) => Err(DecodeError::ContentFormat { key, found: None }),
    }
}

/// Parses exactly one CBOR item, refusing trailing bytes.
fn parse_cbor(bytes: &[u8], part: TokenPart) -> Result<Value, DecodeError> {
    let mut rest = bytes;
    let v: Value = ciborium::de::from_reader(&mut rest).map_err(|e| DecodeError::Cbor {
        part,
        detail: format!("{e}"),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { part });
    }
    Ok(v)
}

fn decode_envelope(bytes: &[u8], part: TokenPart) -> Result<SignedEnvelope, DecodeError> {
    let cose = |e: coset::CoseError| DecodeError::Cose {
        part,
        detail: format!("{e}"),
    };
    // Tokens carry tag 18; accept an untagged COSE_Sign1 too, as Veraison does.
    let sign1 = if bytes.first() == Some(&0xd2) {
        CoseSign1::from_tagged_slice(bytes).map_err(cose)?
    } else {
        CoseSign1::from_slice(bytes).map_err(cose)?
    };
    let alg = match &sign1.protected.header.alg {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) => {
            SignatureAlgorithm::Es384
        }
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => {
            SignatureAlgorithm::Es256
        }
        other => {
            return Err(DecodeError::UnsupportedAlgorithm {
                part,
                alg: describe_alg(other.as_ref()),
            })
        }
    };
    if sign1.payload.is_none() {
        return Err(DecodeError::DetachedPayload { part });
    }
    Ok(SignedEnvelope { sign1, alg })
}

fn describe_alg(alg: Option<&Algorithm>) -> String {
    match alg {
        None => String::from("none"),
        Some(RegisteredLabelWithPrivate::Assigned(a)) => format!("{}", *a as i64),
        Some(RegisteredLabelWithPrivate::PrivateUse(i)) => format!("{i}"),
        Some(RegisteredLabelWithPrivate::Text(t)) => format!("{t:?}"),
    }
}

/// The claims map, with keys checked to be unique integers.
struct Claims {
    part: TokenPart,
    entries: Vec<(i64, Option<Value>)>,
}

impl Claims {
    fn parse(payload: &[u8], part: TokenPart) -> Result<Self, DecodeError> {
        let Value::Map(m) = parse_cbor(payload, part)? else {
            return Err(DecodeError::WrongType {
                part,
                what: "the claims",
                expected: "a map",
            });
        };
        let mut entries: Vec<(i64, Option<Value>)> = Vec::with_capacity(m.len());
        for (k, v) in m {
            let k = match k {
                Value::Integer(i) => {
                    i64::try_from(i).map_err(|_| DecodeError::ClaimKeyNotInteger { part })?
                }
                _ => return Err(DecodeError::ClaimKeyNotInteger { part }),
            };
            if entries.iter().any(|(e, _)| *e == k) {
                return Err(DecodeError::DuplicateClaim { part, key: k });
            }
            entries.push((k, Some(v)));
        }
        Ok(Claims { part, entries })
    }

    fn take(&mut self, key: i64) -> Option<Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.take())
    }

    fn required(&mut self, key: i64, name: &'static str) -> Result<Value, DecodeError> {
        self.take(key).ok_or(DecodeError::MissingClaim {
            part: self.part,
            key,
            name,
        })
    }

    fn type_err(&self, key: i64, name: &'static str, expected: &'static str) -> DecodeError {
        DecodeError::ClaimType {
            part: self.part,
            key,
            name,
            expected,
        }
    }

    fn bytes(&mut self, key: i64, name: &'static str) -> Result<Vec<u8>, DecodeError> {
        match self.required(key, name)? {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.type_err(key, name, "a byte string")),
        }
    }

    fn fixed<const N: usize>(
        &mut self,
        key: i64,
        name: &'static str,
        expected: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(key, name)?;
        let found = b.len();
        <[u8; N]>::try_from(b).map_err(|_| DecodeError::ClaimLength {
            part: self.part,
            key,
            name,
            expected,
            found,
        })
    }

    fn text(&mut self, key: i64, name: &'static str) -> Result<String, DecodeError> {
        match self.required(key, name)? {
            Value::Text(t) => Ok(t),
            _ => Err(self.type_err(key, name, "a text string")),
        }
    }

    fn optional_text(
        &mut self,
        key: i64,
        name: &'static str,
    ) -> Result<Option<String>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t)),
            Some(_) => Err(self.type_err(key, name, "a text string")),
        }
    }

    fn hash_algo(&mut self, key: i64, name: &'static str) -> Result<HashAlgo, DecodeError> {
        let t = self.text(key, name)?;
        HashAlgo::from_name(&t).ok_or(DecodeError::UnknownHashAlgorithm {
            part: self.part,
            key,
            name: t,
        })
    }

    /// The claims not taken, in token order.
    fn rest(self) -> Vec<(i64, Value)> {
        self.entries
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

/// Decodes a realm token (a COSE_Sign1) on its own.
pub fn decode_realm_token(bytes: &[u8]) -> Result<RealmToken, DecodeError> {
    let part = TokenPart::Realm;
    let envelope = decode_envelope(bytes, part)?;
    let mut c = Claims::parse(envelope.payload(), part)?;
    let challenge = c.fixed::<64>(key::CHALLENGE, "challenge", "64")?;
    let personalization_value = c.fixed::<64>(key::REALM_RPV, "personalization value", "64")?;
    let rak = RealmPublicKey::from_claim_bytes(&c.bytes(key::REALM_PUB_KEY, "realm public key")?)?;
    let measurement_hash_algo = c.hash_algo(key::REALM_HASH_ALGO, "measurement hash algorithm")?;
    let rak_hash_algo = c.hash_algo(key::REALM_PUB_KEY_HASH_ALGO, "public key hash algorithm")?;
    let profile = c.optional_text(key::PROFILE, "profile")?;
    let rim = c.bytes(key::REALM_RIM, "initial measurement")?;
    let rems = match c.required(key::REALM_REMS, "extensible measurements")? {
        Value::Array(a) => {
            let found = a.len();
            let rems: Vec<Vec<u8>> = a
                .into_iter()
                .map(|v| match v {
                    Value::Bytes(b) => Ok(b),
                    _ => Err(DecodeError::RemCount { found }),
                })
                .collect::<Result<_, _>>()?;
            <[Vec<u8>; 4]>::try_from(rems).map_err(|_| DecodeError::RemCount { found })?
        }
        _ => return Err(c.type_err(key::REALM_REMS, "extensible measurements", "an array")),
    };
    Ok(RealmToken {
        claims: RealmClaims {
            challenge,
            personalization_value,
            rak,
            measurement_hash_algo,
            rak_hash_algo,
            profile,
            rim,
            rems,
            extra: c.rest(),
        },
        envelope,
    })
}

/// Decodes a platform token (a COSE_Sign1) on its own.
pub fn decode_platform_token(bytes: &[u8]) -> Result<PlatformToken, DecodeError> {
    let part = TokenPart::Platform;
    let envelope = decode_envelope(bytes, part)?;
    let mut c = Claims::parse(envelope.payload(), part)?;
    let profile = c.text(key::PROFILE, "profile")?;
    let challenge = c.bytes(key::CHALLENGE, "challenge")?;
    if !matches!(challenge.len(), 32 | 48 | 64) {
        return Err(DecodeError::ClaimLength {
            part,
            key: key::CHALLENGE,
            name: "challenge",
            expected: "32, 48 or 64",
            found: challenge.len(),
        });
    }
    let implementation_id =
        c.fixed::<32>(key::PLAT_IMPLEMENTATION_ID, "implementation id", "32")?;
    let instance_id = c.fixed::<33>(key::PLAT_INSTANCE_ID, "instance id", "33")?;
    let config = c.bytes(key::PLAT_CONFIG, "platform configuration")?;
    let lifecycle = match c.required(key::PLAT_LIFECYCLE, "lifecycle")? {
        Value::Integer(i) => u16::try_from(i).ok(),
        _ => None,
    }
    .ok_or_else(|| c.type_err(key::PLAT_LIFECYCLE, "lifecycle", "an integer in 0..=65535"))?;
    let sw_components = match c.required(key::PLAT_SW_COMPONENTS, "software components")? {
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| sw_component(i, v))
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(c.type_err(key::PLAT_SW_COMPONENTS, "software components", "an array")),
    };
    let verification_service =
        c.optional_text(key::PLAT_VERIFICATION_SERVICE, "verification service")?;
    let hash_algo = c.text(key::PLAT_HASH_ALGO, "hash algorithm")?;
    Ok(PlatformToken {
        claims: PlatformClaims {
            profile,
            challenge,
            implementation_id,
            instance_id,
            config,
            lifecycle,
            sw_components,
            verification_service,
            hash_algo,
            extra: c.rest(),
        },
        envelope,
    })
}

fn sw_component(index: usize, v: Value) -> Result<SwComponent, DecodeError> {
    let err = |reason| DecodeError::SwComponent { index, reason };
    let Value::Map(m) = v else {
        return Err(err("not a map"));
    };
    let mut c = SwComponent::default();
    let (mut measurement, mut signer_id) = (None, None);
    let mut seen = [false; 7];
    for (k, v) in m {
        let k = match k {
            Value::Integer(i) => u8::try_from(i)
                .ok()
                .filter(|k| matches!(k, 1 | 2 | 4 | 5 | 6)),
            _ => None,
        }
        .ok_or(err("unknown key (expected 1, 2, 4, 5 or 6)"))?;
        if core::mem::replace(&mut seen[usize::from(k)], true) {
            return Err(err("duplicate key"));
        }
        match (k, v) {
            (1, Value::Text(t)) => c.component_type = Some(t),
            (2, Value::Bytes(b)) => measurement = Some(b),
            (4, Value::Text(t)) => c.version = Some(t),
            (5, Value::Bytes(b)) => signer_id = Some(b),
            (6, Value::Text(t)) => c.algorithm = Some(t),
            (1 | 4 | 6, _) => return Err(err("type, version and algorithm must be text")),
            _ => return Err(err("measurement and signer id must be byte strings")),
        }
    }
    c.measurement = measurement.ok_or(err("missing measurement (key 2)"))?;
    c.signer_id = signer_id.ok_or(err("missing signer id (key 5)"))?;
    Ok(c)
}
