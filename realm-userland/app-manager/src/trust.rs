//! The trust bundle: which vendors and which registries the realm trusts.
//!
//! The bundle is part of the realm image: an image of the realm description
//! loaded, measured, at [`TRUST_BUNDLE_IPA`]. It is therefore covered by the
//! RIM, so the host cannot swap it without changing what the realm attests
//! to (and a registry that appraises the RIM then refuses the realm, and a
//! realm with vendor-signed metadata does not even activate). The
//! app-manager reads it from realm memory, never from a file the host
//! hands it.
//!
//! Layout: [`MAGIC`] (8 bytes), the JSON length (`u32`, little endian),
//! then UTF-8 JSON `{"vendor_roots": [PEM...], "registry_roots": [PEM...]}`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// Where the trust bundle sits in the realm's IPA space: the base of the
/// conventional first RAM region, where the realm image is loaded.
pub const TRUST_BUNDLE_IPA: u64 = 0x4000_0000;
/// First bytes of a trust bundle.
pub const MAGIC: [u8; 8] = *b"ATOLLTB1";
/// Largest JSON part: a handful of certificates.
pub const MAX_JSON: usize = 60 * 1024;
/// Bytes before the JSON.
pub const HEADER_LEN: usize = 12;

/// Why a trust bundle is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// No bundle at the expected place.
    #[error("no trust bundle in the realm image (bad magic at IPA {TRUST_BUNDLE_IPA:#x})")]
    Missing,
    /// The length field is out of range.
    #[error("trust bundle length {0} is above the limit of {MAX_JSON} bytes")]
    TooLarge(usize),
    /// The JSON or a certificate does not parse.
    #[error("trust bundle: {0}")]
    Malformed(String),
    /// No vendor root: nothing could ever be installed.
    #[error("trust bundle names no vendor root CA")]
    NoVendorRoots,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleJson {
    vendor_roots: Vec<String>,
    #[serde(default)]
    registry_roots: Vec<String>,
}

/// The realm's trust anchors.
#[derive(Clone, Debug)]
pub struct TrustBundle {
    /// Root CAs that certify application vendors.
    pub vendor_roots: Vec<Certificate>,
    /// Root CAs that certify registries' TLS certificates (DER).
    pub registry_roots: Vec<Vec<u8>>,
}

fn certs_from_pem(pem: &str) -> Result<Vec<Certificate>, TrustError> {
    let certs = Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| TrustError::Malformed(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TrustError::Malformed("empty certificate PEM".into()));
    }
    Ok(certs)
}

impl TrustBundle {
    /// Builds a bundle from PEM files (one or more certificates each).
    pub fn from_pem_files(vendor: &[&Path], registry: &[&Path]) -> Result<Self, TrustError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| TrustError::Malformed(format!("{}: {e}", p.display())))
        };
        let mut vendor_roots = Vec::new();
        for p in vendor {
            vendor_roots.extend(certs_from_pem(&read(p)?)?);
        }
        let mut registry_roots = Vec::new();
        for p in registry {
            for c in certs_from_pem(&read(p)?)? {
                registry_roots.push(
                    c.to_der()
                        .map_err(|e| TrustError::Malformed(e.to_string()))?,
                );
            }
        }
        if vendor_roots.is_empty() {
            return Err(TrustError::NoVendorRoots);
        }
        Ok(Self {
            vendor_roots,
            registry_roots,
        })
    }

    /// The bundle's bytes, to load into the realm image.
    pub fn encode(&self) -> Result<Vec<u8>, TrustError> {
        let pem = |der: &[u8]| {
            let cert =
                Certificate::from_der(der).map_err(|e| TrustError::Malformed(e.to_string()))?;
            atoll_signing::cert::to_pem(&[cert]).map_err(|e| TrustError::Malformed(e.to_string()))
        };
        let json = BundleJson {
            vendor_roots: self
                .vendor_roots
                .iter()
                .map(|c| atoll_signing::cert::to_pem(std::slice::from_ref(c)))
                .collect::<Result<_, _>>()
                .map_err(|e| TrustError::Malformed(e.to_string()))?,
            registry_roots: self
                .registry_roots
                .iter()
                .map(|d| pem(d))
                .collect::<Result<_, _>>()?,
        };
        let json = serde_json::to_vec(&json).map_err(|e| TrustError::Malformed(e.to_string()))?;
        if json.len() > MAX_JSON {
            return Err(TrustError::TooLarge(json.len()));
        }
        let mut out = Vec::with_capacity(HEADER_LEN + json.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_le_bytes());
        out.extend_from_slice(&json);
        Ok(out)
    }

    /// Checks a header and returns the JSON length that follows.
    pub fn json_len(header: &[u8; HEADER_LEN]) -> Result<usize, TrustError> {
        if header[..8] != MAGIC {
            return Err(TrustError::Missing);
        }
        let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        if len > MAX_JSON {
            return Err(TrustError::TooLarge(len));
        }
        Ok(len)
    }

    /// Parses the JSON part.
    pub fn decode_json(json: &[u8]) -> Result<Self, TrustError> {
        let parsed: BundleJson =
            serde_json::from_slice(json).map_err(|e| TrustError::Malformed(e.to_string()))?;
        let mut vendor_roots = Vec::new();
        for pem in &parsed.vendor_roots {
            vendor_roots.extend(certs_from_pem(pem)?);
        }
        if vendor_roots.is_empty() {
            return Err(TrustError::NoVendorRoots);
        }
        let mut registry_roots = Vec::new();
        for pem in &parsed.registry_roots {
            for c in certs_from_pem(pem)? {
                registry_roots.push(
                    c.to_der()
                        .map_err(|e| TrustError::Malformed(e.to_string()))?,
                );
            }
        }
        Ok(Self {
            vendor_roots,
            registry_roots,
        })
    }

    /// Parses a whole bundle.
    pub fn decode(bytes: &[u8]) -> Result<Self, TrustError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(TrustError::Missing)?;
        let len = Self::json_len(header)?;
        let json = bytes
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or_else(|| TrustError::Malformed("truncated".into()))?;
        Self::decode_json(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atoll_signing::cert::{create_root, ValidityPeriod};

    fn root(cn: &str) -> Certificate {
        let key = atoll_signing::keys::generate();
        create_root(&key, cn, ValidityPeriod::days_from_now(30)).unwrap()
    }

    #[test]
    fn round_trip() {
        let bundle = TrustBundle {
            vendor_roots: vec![root("Vendor CA")],
            registry_roots: vec![root("Registry CA").to_der().unwrap()],
        };
        let bytes = bundle.encode().unwrap();
        let back = TrustBundle::decode(&bytes).unwrap();
        assert_eq!(back.vendor_roots, bundle.vendor_roots);
        assert_eq!(back.registry_roots, bundle.registry_roots);
    }

    #[test]
    fn bad_bundles_are_refused() {
        assert!(matches!(
            TrustBundle::decode(&[0; 64]),
            Err(TrustError::Missing)
        ));
        let mut big = MAGIC.to_vec();
        big.extend_from_slice(&(MAX_JSON as u32 + 1).to_le_bytes());
        assert!(matches!(
            TrustBundle::decode(&big),
            Err(TrustError::TooLarge(_))
        ));
        let mut empty = MAGIC.to_vec();
        let json = br#"{"vendor_roots":[]}"#;
        empty.extend_from_slice(&(json.len() as u32).to_le_bytes());
        empty.extend_from_slice(json);
        assert!(matches!(
            TrustBundle::decode(&empty),
            Err(TrustError::NoVendorRoots)
        ));
    }
}
