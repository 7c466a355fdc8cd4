//! Appraisal against Veraison-format trust anchors and reference values.
//!
//! The result says which checks passed rather than giving one bool, so a
//! relying party (or a person reading `atoll token appraise`) can tell "the
//! firmware is unknown" from "the token is forged".

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::claims::{HashAlgo, SwComponent};
use crate::decode::CcaToken;
use crate::json::{hex_field, parse_json, read, InputError};
use crate::verify::PlatformKey;

/// A platform key the relying party trusts, optionally pinned to a platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustAnchor {
    /// The platform instance id (claim 256) the key belongs to, if pinned.
    pub instance_id: Option<Vec<u8>>,
    /// The implementation id (claim 2396), if pinned.
    pub implementation_id: Option<Vec<u8>>,
    /// The CPAK.
    pub key: PlatformKey,
}

/// A set of trust anchors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustAnchors(pub Vec<TrustAnchor>);

impl TrustAnchors {
    /// Parses `[{"instance-id", "implementation-id", "pkey": JWK}]` (hex ids,
    /// each optional), a single such object, or a bare JWK (a key trusted
    /// for any platform).
    pub fn from_json(text: &[u8]) -> Result<Self, InputError> {
        let v = parse_json(text, "trust anchors")?;
        let one = |(i, e): (usize, &Json)| -> Result<TrustAnchor, InputError> {
            let ctx = |f: &str| format!("trust anchor {i}: {f}");
            if e.get("kty").is_some() {
                return Ok(TrustAnchor {
                    instance_id: None,
                    implementation_id: None,
                    key: PlatformKey::from_jwk(e)?,
                });
            }
            let id = |name: &str| -> Result<Option<Vec<u8>>, InputError> {
                match e.get(name) {
                    None | Some(Json::Null) => Ok(None),
                    Some(Json::String(s)) => hex_field(s, &ctx(name)).map(Some),
                    Some(_) => Err(InputError::Field {
                        field: ctx(name),
                        reason: "must be a hex string".into(),
                    }),
                }
            };
            let pkey = e.get("pkey").ok_or_else(|| InputError::Field {
                field: ctx("pkey"),
                reason: "missing".into(),
            })?;
            Ok(TrustAnchor {
                instance_id: id("instance-id")?,
                implementation_id: id("implementation-id")?,
                key: PlatformKey::from_jwk(pkey)?,
            })
        };
        match &v {
            Json::Array(a) => a
                .iter()
                .enumerate()
                .map(one)
                .collect::<Result<_, _>>()
                .map(TrustAnchors),
            Json::Object(_) => Ok(TrustAnchors(vec![one((0, &v))?])),
            _ => Err(InputError::Field {
                field: "trust anchors".into(),
                reason: "must be an array of anchors or a JWK".into(),
            }),
        }
    }

    /// Reads a trust-anchor file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, InputError> {
        Self::from_json(&read(path.as_ref())?)
    }

    /// The anchors that apply to a platform with these ids.
    pub fn matching<'a>(
        &'a self,
        instance_id: &'a [u8],
        implementation_id: &'a [u8],
    ) -> impl Iterator<Item = &'a TrustAnchor> {
        self.0.iter().filter(move |a| {
            a.instance_id.as_deref().is_none_or(|i| i == instance_id)
                && a.implementation_id
                    .as_deref()
                    .is_none_or(|i| i == implementation_id)
        })
    }
}

/// A reference value for one platform software component.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawComponent {
    component_type: Option<String>,
    measurement_value: String,
    signer_id: String,
    version: Option<String>,
    hash_algo_id: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawPlatform {
    implementation_id: String,
    platform_configuration: String,
    sw_components: Vec<RawComponent>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRealm {
    initial_measurement: String,
    extensible_measurements: Option<Vec<String>>,
    personalization_value: Option<String>,
    rak_hash_algorithm: String,
    hash_algorithm: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct RawReferenceValues {
    #[serde(default)]
    platform: Vec<RawPlatform>,
    #[serde(default)]
    realm: Vec<RawRealm>,
}

/// The expected state of one software component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentReference {
    /// Expected type, if constrained.
    pub component_type: Option<String>,
    /// Expected measurement.
    pub measurement: Vec<u8>,
    /// Expected signer id.
    pub signer_id: Vec<u8>,
    /// Expected version, if constrained.
    pub version: Option<String>,
    /// Expected measurement algorithm, if constrained.
    pub algorithm: Option<String>,
}

impl ComponentReference {
    /// Whether a token's component is this one.
    pub fn matches(&self, c: &SwComponent) -> bool {
        let opt = |want: &Option<String>, got: &Option<String>| want.is_none() || want == got;
        self.measurement == c.measurement
            && self.signer_id == c.signer_id
            && opt(&self.component_type, &c.component_type)
            && opt(&self.version, &c.version)
            && opt(&self.algorithm, &c.algorithm)
    }
}

/// Reference values for one platform implementation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformReference {
    /// The implementation id (claim 2396).
    pub implementation_id: Vec<u8>,
    /// The platform configuration (claim 2401).
    pub config: Vec<u8>,
    /// The firmware the platform may run.
    pub sw_components: Vec<ComponentReference>,
}

/// Reference values for one realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmReference {
    /// The RIM.
    pub rim: Vec<u8>,
    /// The REMs, if constrained.
    pub rems: Option<[Vec<u8>; 4]>,
    /// The personalization value, if constrained.
    pub personalization_value: Option<Vec<u8>>,
    /// The RAK binding hash algorithm.
    pub rak_hash_algo: HashAlgo,
    /// The measurement hash algorithm, if constrained (`atoll measure --json` gives it).
    pub measurement_hash_algo: Option<HashAlgo>,
}

/// Veraison-format reference values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferenceValues {
    /// Platform entries.
    pub platform: Vec<PlatformReference>,
    /// Realm entries.
    pub realm: Vec<RealmReference>,
}

fn hash_algo(name: &str, field: &str) -> Result<HashAlgo, InputError> {
    HashAlgo::from_name(name).ok_or_else(|| InputError::Field {
        field: field.into(),
        reason: format!("unknown hash algorithm {name:?}"),
    })
}

impl ReferenceValues {
    /// Parses `{"platform": [...], "realm": [...]}` (either may be absent).
    pub fn from_json(text: &[u8]) -> Result<Self, InputError> {
        let raw: RawReferenceValues =
            serde_json::from_slice(text).map_err(|source| InputError::Json {
                what: "reference values".into(),
                source,
            })?;
        let platform = raw
            .platform
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let f = |n: &str| format!("platform[{i}].{n}");
                Ok(PlatformReference {
                    implementation_id: hex_field(&p.implementation_id, &f("implementation-id"))?,
                    config: hex_field(&p.platform_configuration, &f("platform-configuration"))?,
                    sw_components: p
                        .sw_components
                        .iter()
                        .enumerate()
                        .map(|(j, c)| {
                            let f = |n: &str| format!("platform[{i}].sw-components[{j}].{n}");
                            Ok(ComponentReference {
                                component_type: c.component_type.clone(),
                                measurement: hex_field(
                                    &c.measurement_value,
                                    &f("measurement-value"),
                                )?,
                                signer_id: hex_field(&c.signer_id, &f("signer-id"))?,
                                version: c.version.clone(),
                                algorithm: c.hash_algo_id.clone(),
                            })
                        })
                        .collect::<Result<_, InputError>>()?,
                })
            })
            .collect::<Result<_, InputError>>()?;
        let realm = raw
            .realm
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let f = |n: &str| format!("realm[{i}].{n}");
                let rems = match &r.extensible_measurements {
                    None => None,
                    Some(v) => {
                        let v: Vec<Vec<u8>> = v
                            .iter()
                            .map(|s| hex_field(s, &f("extensible-measurements")))
                            .collect::<Result<_, _>>()?;
                        Some(<[Vec<u8>; 4]>::try_from(v).map_err(|_| InputError::Field {
                            field: f("extensible-measurements"),
                            reason: "must hold 4 entries".into(),
                        })?)
                    }
                };
                Ok(RealmReference {
                    rim: hex_field(&r.initial_measurement, &f("initial-measurement"))?,
                    rems,
                    personalization_value: r
                        .personalization_value
                        .as_deref()
                        .map(|s| hex_field(s, &f("personalization-value")))
                        .transpose()?,
                    rak_hash_algo: hash_algo(&r.rak_hash_algorithm, &f("rak-hash-algorithm"))?,
                    measurement_hash_algo: r
                        .hash_algorithm
                        .as_deref()
                        .map(|s| hash_algo(s, &f("hash-algorithm")))
                        .transpose()?,
                })
            })
            .collect::<Result<_, InputError>>()?;
        Ok(ReferenceValues { platform, realm })
    }

    /// Reads a reference-values file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, InputError> {
        Self::from_json(&read(path.as_ref())?)
    }
}

/// The outcome of one check.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The check passed.
    Pass,
    /// The check failed.
    Fail,
    /// The check could not be made (nothing to check against, or a
    /// prerequisite failed).
    NotChecked,
}

/// One check's outcome with a sentence saying why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Passed, failed or not made.
    pub status: Status,
    /// Why.
    pub detail: String,
}

impl Check {
    fn pass(detail: impl Into<String>) -> Self {
        Check {
            status: Status::Pass,
            detail: detail.into(),
        }
    }
    fn fail(detail: impl Into<String>) -> Self {
        Check {
            status: Status::Fail,
            detail: detail.into(),
        }
    }
    fn not_checked(detail: impl Into<String>) -> Self {
        Check {
            status: Status::NotChecked,
            detail: detail.into(),
        }
    }
}

/// The overall verdict, after the EAR trustworthiness tiers Veraison reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed.
    Affirming,
    /// Nothing failed, but some reference values were not available.
    Warning,
    /// A check failed, or a signature/binding/trust-anchor check was not made.
    Contraindicated,
}

/// Which checks passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Appraisal {
    /// A trust anchor applies to the token's platform.
    pub trust_anchor: Check,
    /// The platform token verifies with that anchor's key.
    pub platform_signature: Check,
    /// The realm token verifies with its RAK.
    pub realm_signature: Check,
    /// The platform challenge is the hash of the RAK claim.
    pub binding: Check,
    /// The platform's implementation, configuration and firmware are known.
    pub platform_reference_values: Check,
    /// The realm's measurements are known.
    pub realm_reference_values: Check,
}

impl Appraisal {
    /// The checks with their names, in report order.
    pub fn checks(&self) -> [(&'static str, &Check); 6] {
        [
            ("trust anchor", &self.trust_anchor),
            ("platform signature", &self.platform_signature),
            ("realm signature", &self.realm_signature),
            ("binding", &self.binding),
            ("platform reference values", &self.platform_reference_values),
            ("realm reference values", &self.realm_reference_values),
        ]
    }

    /// The overall verdict.
    pub fn verdict(&self) -> Verdict {
        let checks = self.checks();
        if checks.iter().any(|(_, c)| c.status == Status::Fail)
            || checks[..4].iter().any(|(_, c)| c.status != Status::Pass)
        {
            Verdict::Contraindicated
        } else if checks.iter().all(|(_, c)| c.status == Status::Pass) {
            Verdict::Affirming
        } else {
            Verdict::Warning
        }
    }
}

/// Appraises a decoded token: finds the trust anchor for its platform,
/// verifies both signatures and the binding, and compares its claims with
/// the reference values.
pub fn appraise(token: &CcaToken, anchors: &TrustAnchors, refs: &ReferenceValues) -> Appraisal {
    let p = &token.platform.claims;
    let candidates: Vec<&TrustAnchor> = anchors
        .matching(&p.instance_id, &p.implementation_id)
        .collect();
    let (trust_anchor, platform_signature) = if candidates.is_empty() {
        (
            Check::fail(format!(
                "no trust anchor for instance id {} (implementation id {})",
                hex::encode(p.instance_id),
                hex::encode(p.implementation_id)
            )),
            Check::not_checked("no trust anchor"),
        )
    } else {
        let ta = Check::pass(format!(
            "{} anchor(s) apply to instance id {}",
            candidates.len(),
            hex::encode(p.instance_id)
        ));
        let results: Vec<_> = candidates
            .iter()
            .map(|a| token.platform.verify(&a.key))
            .collect();
        let sig = match results.iter().position(Result::is_ok) {
            Some(i) => Check::pass(format!(
                "{} with the {} key of anchor {}",
                token.platform.envelope.algorithm().name(),
                candidates[i].key.curve(),
                anchors
                    .0
                    .iter()
                    .position(|a| std::ptr::eq(a, candidates[i]))
                    .unwrap_or(i)
            )),
            None => Check::fail(
                results
                    .iter()
                    .filter_map(|r| r.as_ref().err().map(ToString::to_string))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        (ta, sig)
    };
    let realm_signature = match token.realm.verify() {
        Ok(()) => Check::pass("ES384 with the realm public key"),
        Err(e) => Check::fail(e.to_string()),
    };
    let binding = match token.verify_binding() {
        Ok(()) => Check::pass(format!(
            "platform challenge = {}(realm public key claim)",
            token.realm.claims.rak_hash_algo.name()
        )),
        Err(e) => Check::fail(e.to_string()),
    };
    Appraisal {
        trust_anchor,
        platform_signature,
        realm_signature,
        binding,
        platform_reference_values: appraise_platform(token, refs),
        realm_reference_values: appraise_realm(token, refs),
    }
}

fn appraise_platform(token: &CcaToken, refs: &ReferenceValues) -> Check {
    let p = &token.platform.claims;
    if refs.platform.is_empty() {
        return Check::not_checked("no platform reference values");
    }
    let mut why = Vec::new();
    for (i, r) in refs.platform.iter().enumerate() {
        if r.implementation_id != p.implementation_id {
            continue;
        }
        if r.config != p.config {
            why.push(format!(
                "platform[{i}]: platform configuration {} differs",
                hex::encode(&p.config)
            ));
            continue;
        }
        let unknown: Vec<String> = p
            .sw_components
            .iter()
            .enumerate()
            .filter(|(_, c)| !r.sw_components.iter().any(|rc| rc.matches(c)))
            .map(|(j, c)| match &c.component_type {
                Some(t) => format!("{t} ({})", hex::encode(&c.measurement)),
                None => format!("#{j} ({})", hex::encode(&c.measurement)),
            })
            .collect();
        if unknown.is_empty() {
            return Check::pass(format!(
                "implementation, configuration and {} software component(s) match platform[{i}]",
                p.sw_components.len()
            ));
        }
        why.push(format!(
            "platform[{i}]: unknown software component(s): {}",
            unknown.join(", ")
        ));
    }
    if why.is_empty() {
        Check::fail(format!(
            "no platform reference values for implementation id {}",
            hex::encode(p.implementation_id)
        ))
    } else {
        Check::fail(why.join("; "))
    }
}

fn appraise_realm(token: &CcaToken, refs: &ReferenceValues) -> Check {
    let r = &token.realm.claims;
    if refs.realm.is_empty() {
        return Check::not_checked("no realm reference values");
    }
    let mut why = Vec::new();
    for (i, e) in refs.realm.iter().enumerate() {
        if e.rim != r.rim {
            continue;
        }
        let mut diffs = Vec::new();
        if let Some(rems) = &e.rems {
            for (n, (want, got)) in rems.iter().zip(&r.rems).enumerate() {
                if want != got {
                    diffs.push(format!("REM{n} {}", hex::encode(got)));
                }
            }
        }
        if e.personalization_value
            .as_deref()
            .is_some_and(|v| v != r.personalization_value)
        {
            diffs.push(format!(
                "personalization value {}",
                hex::encode(r.personalization_value)
            ));
        }
        if e.rak_hash_algo != r.rak_hash_algo {
            diffs.push(format!("RAK hash algorithm {}", r.rak_hash_algo.name()));
        }
        if e.measurement_hash_algo
            .is_some_and(|a| a != r.measurement_hash_algo)
        {
            diffs.push(format!("hash algorithm {}", r.measurement_hash_algo.name()));
        }
        if diffs.is_empty() {
            return Check::pass(format!("RIM and constrained claims match realm[{i}]"));
        }
        why.push(format!(
            "realm[{i}] has this RIM but differs in {}",
            diffs.join(", ")
        ));
    }
    if why.is_empty() {
        Check::fail(format!(
            "RIM {} is not among the reference values",
            hex::encode(&r.rim)
        ))
    } else {
        Check::fail(why.join("; "))
    }
}
