//! The signature artifact: a detached signature over an OCI manifest digest.
//!
//! ```text
//! artifact manifest  application/vnd.oci.image.manifest.v1+json
//!   artifactType     application/vnd.atoll.signature.v1+json
//!   config           the OCI 1.1 empty descriptor ({} , 2 bytes)
//!   layers[0]        application/vnd.dsse.envelope.v1+json: the envelope
//!   subject          descriptor of the signed manifest
//! envelope (DSSE)    {payloadType, payload: base64(payload JSON),
//!                     signatures: [{keyid, sig: base64(DER ECDSA P-384/SHA-384
//!                     over PAE(payloadType, payload)), certificates:
//!                     [base64 DER, vendor first]}]}
//! payload            {"manifest": {mediaType, digest, size}, "annotations": {..}}
//! ```
//!
//! Everything works on in-memory bytes: a registry client fetches the artifact
//! manifest (found through the referrers API of the signed manifest's digest)
//! and hands [`SignatureArtifact::parse`] a function that fetches blobs.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use oci_spec::image::{Descriptor, Digest, ImageManifest, ImageManifestBuilder, MediaType};
use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p384::ecdsa::{DerSignature, SigningKey};
use serde::{Deserialize, Serialize};
use x509_cert::der::Encode;
use x509_cert::Certificate;

use crate::cert;
use crate::{sha256_digest, SigningError};

/// `artifactType` of signature artifacts.
pub const ARTIFACT_TYPE: &str = "application/vnd.atoll.signature.v1+json";
/// Media type of the envelope layer.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// DSSE `payloadType` of the signed payload.
pub const PAYLOAD_TYPE: &str = "application/vnd.atoll.signature.payload.v1+json";
/// The OCI 1.1 empty JSON blob `{}` and its digest.
pub const EMPTY_JSON: &[u8] = b"{}";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// Largest envelope accepted.
const MAX_ENVELOPE: usize = 1 << 20;

/// A blob of the artifact with its descriptor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its descriptor, as in the artifact manifest.
    pub descriptor: Descriptor,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// What the vendor signs: the manifest's descriptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedSubject {
    /// Media type of the signed manifest (OCI manifest or index).
    pub media_type: String,
    /// `sha256:<hex>` of the manifest bytes.
    pub digest: String,
    /// Length of the manifest bytes.
    pub size: u64,
}

/// The signed payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedPayload {
    /// The signed manifest.
    pub manifest: SignedSubject,
    /// Signed annotations (e.g. the application name and version).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeSignature {
    #[serde(default)]
    keyid: String,
    sig: String,
    certificates: Vec<String>,
}

/// DSSE pre-authentication encoding.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn digest(bytes: &[u8]) -> Digest {
    Digest::from_str(&sha256_digest(bytes)).expect("a sha256 digest is valid")
}

/// The descriptor of an OCI manifest or index, from its bytes.
pub fn manifest_subject(manifest: &[u8]) -> Result<SignedSubject, SigningError> {
    let v: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| SigningError::Manifest(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| SigningError::Manifest("not a JSON object".into()))?;
    if obj.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(SigningError::Manifest("schemaVersion is not 2".into()));
    }
    let media_type = match obj.get("mediaType") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err(SigningError::Manifest("mediaType is not a string".into())),
        None if obj.contains_key("manifests") => MediaType::ImageIndex.to_string(),
        None => MediaType::ImageManifest.to_string(),
    };
    Ok(SignedSubject {
        media_type,
        digest: sha256_digest(manifest),
        size: manifest.len() as u64,
    })
}

/// A signature artifact: the artifact manifest and its two blobs.
#[derive(Clone, Debug)]
pub struct SignatureArtifact {
    /// The artifact manifest's bytes (push these, as they are).
    pub manifest: Vec<u8>,
    /// Its descriptor, with `artifactType` (for an index or a referrers list).
    pub descriptor: Descriptor,
    /// The parsed artifact manifest.
    pub parsed: ImageManifest,
    /// The empty config blob.
    pub config: Blob,
    /// The envelope layer.
    pub envelope: Blob,
}

/// What a successful verification established.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The signed manifest (equal to the verified manifest's descriptor).
    pub subject: SignedSubject,
    /// The signed annotations.
    pub annotations: BTreeMap<String, String>,
    /// The chain as carried in the envelope, vendor first.
    pub chain: Vec<Certificate>,
    /// Index in the trusted roots of the root that anchors the chain.
    pub root_index: usize,
}

impl Verified {
    /// The vendor certificate's subject.
    pub fn vendor(&self) -> String {
        cert::subject(&self.chain[0])
    }
}

fn artifact_err(s: impl Into<String>) -> SigningError {
    SigningError::Artifact(s.into())
}

impl SignatureArtifact {
    /// Signs `manifest` (the exact bytes of an OCI manifest or index) with
    /// the vendor `key`; `chain` is the vendor certificate first, then its
    /// issuers (the root may be included).
    pub fn sign(
        manifest: &[u8],
        key: &SigningKey,
        chain: &[Certificate],
        annotations: BTreeMap<String, String>,
    ) -> Result<Self, SigningError> {
        let leaf = chain
            .first()
            .ok_or(SigningError::Chain(cert::ChainError::Length(0)))?;
        if cert::public_key(leaf)? != *key.verifying_key() {
            return Err(SigningError::KeyMismatch {
                subject: cert::subject(leaf),
            });
        }
        let subject = manifest_subject(manifest)?;
        let payload = serde_json::to_vec(&SignedPayload {
            manifest: subject.clone(),
            annotations,
        })
        .map_err(|e| SigningError::Envelope(e.to_string()))?;
        let sig: DerSignature = key.sign(&pae(PAYLOAD_TYPE, &payload));
        let certificates = chain
            .iter()
            .map(|c| c.to_der().map(|d| B64.encode(d)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SigningError::Certificate(e.to_string()))?;
        let envelope = serde_json::to_vec(&Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: B64.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: cert::fingerprint(leaf),
                sig: B64.encode(sig.as_bytes()),
                certificates,
            }],
        })
        .map_err(|e| SigningError::Envelope(e.to_string()))?;

        let config = Blob {
            descriptor: Descriptor::new(MediaType::EmptyJSON, 2, digest(EMPTY_JSON)),
            data: EMPTY_JSON.to_vec(),
        };
        let envelope = Blob {
            descriptor: Descriptor::new(
                MediaType::Other(ENVELOPE_MEDIA_TYPE.into()),
                envelope.len() as u64,
                digest(&envelope),
            ),
            data: envelope,
        };
        let subject_desc = Descriptor::new(
            MediaType::from(subject.media_type.as_str()),
            subject.size,
            digest(manifest),
        );
        let parsed = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .artifact_type(MediaType::Other(ARTIFACT_TYPE.into()))
            .config(config.descriptor.clone())
            .layers(vec![envelope.descriptor.clone()])
            .subject(subject_desc)
            .build()
            .map_err(|e| artifact_err(e.to_string()))?;
        let bytes = serde_json::to_vec(&parsed).map_err(|e| artifact_err(e.to_string()))?;
        let mut descriptor =
            Descriptor::new(MediaType::ImageManifest, bytes.len() as u64, digest(&bytes));
        descriptor.set_artifact_type(Some(MediaType::Other(ARTIFACT_TYPE.into())));
        Ok(SignatureArtifact {
            manifest: bytes,
            descriptor,
            parsed,
            config,
            envelope,
        })
    }

    /// Parses an artifact manifest and fetches its blobs with `fetch`
    /// (`None` = missing), checking each blob against its descriptor.
    pub fn parse(
        manifest: &[u8],
        mut fetch: impl FnMut(&Descriptor) -> Option<Vec<u8>>,
    ) -> Result<Self, SigningError> {
        let parsed: ImageManifest =
            serde_json::from_slice(manifest).map_err(|e| artifact_err(e.to_string()))?;
        if parsed.schema_version() != 2 || parsed.media_type() != &Some(MediaType::ImageManifest) {
            return Err(artifact_err("not an OCI image manifest (schemaVersion 2)"));
        }
        match parsed.artifact_type() {
            Some(t) if t.to_string() == ARTIFACT_TYPE => {}
            other => {
                return Err(artifact_err(format!(
                    "artifactType is {other:?}, expected {ARTIFACT_TYPE}"
                )))
            }
        }
        if parsed.subject().is_none() {
            return Err(artifact_err("no subject"));
        }
        let config_desc = parsed.config();
        if config_desc.media_type() != &MediaType::EmptyJSON
            || config_desc.digest().to_string() != EMPTY_DIGEST
        {
            return Err(artifact_err("config is not the empty descriptor"));
        }
        let [layer] = parsed.layers().as_slice() else {
            return Err(artifact_err("expected exactly one layer"));
        };
        if layer.media_type().to_string() != ENVELOPE_MEDIA_TYPE {
            return Err(artifact_err(format!(
                "layer media type {}, expected {ENVELOPE_MEDIA_TYPE}",
                layer.media_type()
            )));
        }
        if layer.size() > MAX_ENVELOPE as u64 {
            return Err(artifact_err("envelope too large"));
        }
        let mut get = |d: &Descriptor| -> Result<Blob, SigningError> {
            let data = fetch(d).ok_or_else(|| SigningError::BlobMissing {
                digest: d.digest().to_string(),
            })?;
            let actual = sha256_digest(&data);
            if actual != d.digest().to_string() || data.len() as u64 != d.size() {
                return Err(SigningError::BlobMismatch {
                    digest: d.digest().to_string(),
                    actual,
                    size: data.len() as u64,
                });
            }
            Ok(Blob {
                descriptor: d.clone(),
                data,
            })
        };
        let config = get(config_desc)?;
        let envelope = get(layer)?;
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            manifest.len() as u64,
            digest(manifest),
        );
        descriptor.set_artifact_type(Some(MediaType::Other(ARTIFACT_TYPE.into())));
        Ok(SignatureArtifact {
            manifest: manifest.to_vec(),
            descriptor,
            config,
            envelope,
            parsed,
        })
    }

    /// The blobs to push before the artifact manifest.
    pub fn blobs(&self) -> [&Blob; 2] {
        [&self.config, &self.envelope]
    }

    /// The `subject` of the artifact manifest.
    pub fn subject(&self) -> Option<&Descriptor> {
        self.parsed.subject().as_ref()
    }

    /// Verifies that this artifact is a valid signature of `manifest` (its
    /// exact bytes) by a vendor certified by one of `roots`, at time `now`.
    pub fn verify(
        &self,
        manifest: &[u8],
        roots: &[Certificate],
        now: SystemTime,
    ) -> Result<Verified, SigningError> {
        let env_err = |s: String| SigningError::Envelope(s);
        let env: Envelope =
            serde_json::from_slice(&self.envelope.data).map_err(|e| env_err(e.to_string()))?;
        if env.payload_type != PAYLOAD_TYPE {
            return Err(env_err(format!("payloadType {}", env.payload_type)));
        }
        let [sig] = env.signatures.as_slice() else {
            return Err(env_err("expected exactly one signature".into()));
        };
        let ders = sig
            .certificates
            .iter()
            .map(|c| B64.decode(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| env_err(format!("certificate: {e}")))?;
        let chain = cert::from_der_list(&ders)?;
        let root_index = cert::verify_chain(&chain, roots, now)?;
        let leaf = &chain[0];
        let payload = B64
            .decode(&env.payload)
            .map_err(|e| env_err(format!("payload: {e}")))?;
        let sig_bytes = B64
            .decode(&sig.sig)
            .map_err(|e| env_err(format!("sig: {e}")))?;
        let bad = || SigningError::BadSignature {
            subject: cert::subject(leaf),
        };
        let signature = DerSignature::from_bytes(&sig_bytes).map_err(|_| bad())?;
        cert::public_key(leaf)?
            .verify(&pae(&env.payload_type, &payload), &signature)
            .map_err(|_| bad())?;
        // Only now, authenticated, is the payload worth reading.
        let signed: SignedPayload =
            serde_json::from_slice(&payload).map_err(|e| env_err(format!("payload: {e}")))?;
        let actual = manifest_subject(manifest)?;
        if signed.manifest.digest != actual.digest {
            return Err(SigningError::DigestMismatch {
                signed: signed.manifest.digest,
                actual: actual.digest,
            });
        }
        if signed.manifest != actual {
            return Err(SigningError::PayloadMismatch(format!(
                "signed {:?}, manifest is {:?}",
                signed.manifest, actual
            )));
        }
        match self.subject() {
            Some(s) if s.digest().to_string() == actual.digest => {}
            _ => {
                return Err(artifact_err(
                    "the artifact's subject is not the verified manifest",
                ))
            }
        }
        Ok(Verified {
            subject: actual,
            annotations: signed.annotations,
            chain,
            root_index,
        })
    }
}
