//! JSON for relying parties: JWK keys, loading tokens from files, and a
//! JSON view of the claims (field names follow the Veraison reference-value
//! names so a token and its reference values read alike).

use std::path::{Path, PathBuf};

use base64::Engine;
use ciborium::Value;
use serde_json::{json, Map, Value as Json};

use crate::claims::{PlatformClaims, RakForm, RealmClaims, SwComponent};
use crate::decode::{decode, CcaToken, CollectionForm};
use crate::error::DecodeError;
use crate::verify::PlatformKey;

/// Why a file or JSON document could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A document is not valid JSON or does not have the expected shape.
    #[error("{what}: {source}")]
    Json {
        /// What was being read.
        what: String,
        /// serde_json's description.
        source: serde_json::Error,
    },
    /// A JWK is not an EC P-256 or P-384 public key.
    #[error("JWK: {0}")]
    Jwk(String),
    /// A hex field does not decode.
    #[error("{field}: not a hex string")]
    Hex {
        /// The field.
        field: String,
    },
    /// A field has a value of the wrong kind or size.
    #[error("{field}: {reason}")]
    Field {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A token file does not decode.
    #[error("{}: {source}", path.display())]
    Token {
        /// The file.
        path: PathBuf,
        /// The decoding error.
        source: DecodeError,
    },
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn parse_json(text: &[u8], what: &str) -> Result<Json, InputError> {
    serde_json::from_slice(text).map_err(|source| InputError::Json {
        what: what.into(),
        source,
    })
}

pub(crate) fn hex_field(v: &str, field: &str) -> Result<Vec<u8>, InputError> {
    hex::decode(v).map_err(|_| InputError::Hex {
        field: field.into(),
    })
}

/// Reads and decodes a token file.
pub fn load_token(path: impl AsRef<Path>) -> Result<CcaToken, InputError> {
    let path = path.as_ref();
    decode(&read(path)?).map_err(|source| InputError::Token {
        path: path.to_path_buf(),
        source,
    })
}

impl PlatformKey {
    /// Parses a JWK (`{"kty": "EC", "crv": "P-256"|"P-384", "x", "y"}`,
    /// base64url coordinates), the form Veraison and the vectors use.
    pub fn from_jwk(jwk: &Json) -> Result<Self, InputError> {
        let field = |name: &str| {
            jwk.get(name)
                .and_then(Json::as_str)
                .ok_or_else(|| InputError::Jwk(format!("missing string member {name:?}")))
        };
        if field("kty")? != "EC" {
            return Err(InputError::Jwk("kty is not \"EC\"".into()));
        }
        if jwk.get("d").is_some() {
            return Err(InputError::Jwk(
                "holds a private key (\"d\"); give the public key only".into(),
            ));
        }
        let coord = |name: &str| {
            let s = field(name)?;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s.trim_end_matches('='))
                .map_err(|_| InputError::Jwk(format!("{name} is not base64url")))
        };
        let (x, y) = (coord("x")?, coord("y")?);
        let bad = |crv: &str| InputError::Jwk(format!("x, y are not a point on {crv}"));
        match field("crv")? {
            "P-256" if x.len() == 32 && y.len() == 32 => {
                let p = p256::EncodedPoint::from_affine_coordinates(
                    x.as_slice().into(),
                    y.as_slice().into(),
                    false,
                );
                p256::ecdsa::VerifyingKey::from_encoded_point(&p)
                    .map(PlatformKey::P256)
                    .map_err(|_| bad("P-256"))
            }
            "P-384" if x.len() == 48 && y.len() == 48 => {
                let p = p384::EncodedPoint::from_affine_coordinates(
                    x.as_slice().into(),
                    y.as_slice().into(),
                    false,
                );
                p384::ecdsa::VerifyingKey::from_encoded_point(&p)
                    .map(PlatformKey::P384)
                    .map_err(|_| bad("P-384"))
            }
            "P-256" | "P-384" => Err(InputError::Jwk(
                "coordinate length does not fit the curve".into(),
            )),
            other => Err(InputError::Jwk(format!("unsupported curve {other:?}"))),
        }
    }

    /// The key as a JWK.
    pub fn to_jwk(&self) -> Json {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let point = self.to_sec1_bytes();
        let n = (point.len() - 1) / 2;
        json!({
            "kty": "EC",
            "crv": self.curve(),
            "x": b64(&point[1..1 + n]),
            "y": b64(&point[1 + n..]),
        })
    }
}

/// A CBOR value as JSON (byte strings as hex), for claims this crate does not interpret.
pub fn cbor_to_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i).map_or_else(|_| Json::String(i.to_string()), Json::from)
        }
        Value::Bytes(b) => Json::String(hex::encode(b)),
        Value::Float(f) => json!(f),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Tag(t, inner) => json!({ "tag": t, "value": cbor_to_json(inner) }),
        Value::Array(a) => Json::Array(a.iter().map(cbor_to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, v)| {
                    let k = match cbor_to_json(k) {
                        Json::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, cbor_to_json(v))
                })
                .collect(),
        ),
        _ => Json::String(format!("{v:?}")),
    }
}

fn extra_json(extra: &[(i64, Value)]) -> Json {
    Json::Object(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), cbor_to_json(v)))
            .collect(),
    )
}

fn opt(m: &mut Map<String, Json>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.into(), Json::String(v.clone()));
    }
}

impl SwComponent {
    /// The component as JSON (Veraison field names).
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        opt(&mut m, "component-type", &self.component_type);
        m.insert(
            "measurement-value".into(),
            hex::encode(&self.measurement).into(),
        );
        opt(&mut m, "version", &self.version);
        m.insert("signer-id".into(), hex::encode(&self.signer_id).into());
        opt(&mut m, "hash-algo-id", &self.algorithm);
        Json::Object(m)
    }
}

impl PlatformClaims {
    /// The claims as JSON.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("profile".into(), self.profile.clone().into());
        m.insert("challenge".into(), hex::encode(&self.challenge).into());
        m.insert(
            "implementation-id".into(),
            hex::encode(self.implementation_id).into(),
        );
        m.insert("instance-id".into(), hex::encode(self.instance_id).into());
        m.insert(
            "platform-configuration".into(),
            hex::encode(&self.config).into(),
        );
        m.insert(
            "lifecycle".into(),
            json!({ "value": self.lifecycle, "state": self.lifecycle_state() }),
        );
        m.insert(
            "sw-components".into(),
            Json::Array(
                self.sw_components
                    .iter()
                    .map(SwComponent::to_json)
                    .collect(),
            ),
        );
        opt(&mut m, "verification-service", &self.verification_service);
        m.insert("hash-algo-id".into(), self.hash_algo.clone().into());
        if !self.extra.is_empty() {
            m.insert("other-claims".into(), extra_json(&self.extra));
        }
        Json::Object(m)
    }
}

impl RealmClaims {
    /// The claims as JSON.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        opt(&mut m, "profile", &self.profile);
        m.insert("challenge".into(), hex::encode(self.challenge).into());
        m.insert(
            "personalization-value".into(),
            hex::encode(self.personalization_value).into(),
        );
        m.insert("public-key".into(), hex::encode(self.rak.encoded()).into());
        m.insert(
            "public-key-form".into(),
            match self.rak.form() {
                RakForm::CoseKey => "cose-key",
                RakForm::RawPoint => "raw-point",
            }
            .into(),
        );
        m.insert(
            "hash-algorithm".into(),
            self.measurement_hash_algo.name().into(),
        );
        m.insert(
            "rak-hash-algorithm".into(),
            self.rak_hash_algo.name().into(),
        );
        m.insert("initial-measurement".into(), hex::encode(&self.rim).into());
        m.insert(
            "extensible-measurements".into(),
            Json::Array(self.rems.iter().map(|r| hex::encode(r).into()).collect()),
        );
        if !self.extra.is_empty() {
            m.insert("other-claims".into(), extra_json(&self.extra));
        }
        Json::Object(m)
    }
}

impl CcaToken {
    /// Both claim sets and the envelopes' algorithms as JSON.
    pub fn to_json(&self) -> Json {
        let mut platform = self.platform.claims.to_json();
        platform["algorithm"] = self.platform.envelope.algorithm().name().into();
        let mut realm = self.realm.claims.to_json();
        realm["algorithm"] = self.realm.envelope.algorithm().name().into();
        json!({
            "collection": match self.form {
                CollectionForm::Tag399 => "tag-399",
                CollectionForm::Tag907 => "tag-907",
            },
            "platform": platform,
            "realm": realm,
        })
    }
}
