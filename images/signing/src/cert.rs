//! The X.509 chain root CA -> vendor: building it and validating it.
//!
//! The root is self-signed with `basicConstraints cA=TRUE` (critical) and
//! `keyUsage keyCertSign, cRLSign`; a vendor certificate has `cA=FALSE`,
//! `keyUsage digitalSignature, nonRepudiation`, `extKeyUsage codeSigning`
//! and subject/authority key identifiers. All signatures are
//! ecdsa-with-SHA384 by P-384 keys.

use std::time::{Duration, SystemTime};

use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p384::pkcs8::DecodePublicKey;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::{Any, SetOfVec, Utf8StringRef};
use x509_cert::der::oid::{AssociatedOid, ObjectIdentifier};
use x509_cert::der::{Decode, Encode, EncodePem};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

use crate::SigningError;

/// ecdsa-with-SHA384 (RFC 5758).
pub const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// The longest chain accepted, root included.
const MAX_CHAIN: usize = 4;

/// Why a certificate chain is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A certificate could not be decoded.
    #[error("certificate {index} of the chain: {detail}")]
    Decode {
        /// Position in the chain (0 = vendor).
        index: usize,
        /// The decoder's complaint.
        detail: String,
    },
    /// The chain is empty or too long.
    #[error("the certificate chain has {0} certificates (1 to {MAX_CHAIN} expected)")]
    Length(usize),
    /// No trusted root has the name of the chain's last issuer.
    #[error("{subject} is issued by {issuer}, which is not a trusted root")]
    UntrustedIssuer {
        /// The last certificate of the chain.
        subject: String,
        /// Its issuer.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("the signature of {subject} does not verify with the key of {issuer}")]
    BadSignature {
        /// The certificate.
        subject: String,
        /// The issuer whose key was tried.
        issuer: String,
    },
    /// A certificate is not valid yet.
    #[error("{subject} is not valid before {not_before}")]
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Its notBefore.
        not_before: String,
    },
    /// A certificate has expired.
    #[error("{subject} expired at {not_after}")]
    Expired {
        /// The certificate.
        subject: String,
        /// Its notAfter.
        not_after: String,
    },
    /// An issuing certificate is not a CA (basicConstraints cA, keyCertSign).
    #[error("{subject} is not a CA certificate but issues {child}")]
    NotCa {
        /// The would-be issuer.
        subject: String,
        /// The certificate it issued.
        child: String,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error("{subject}: path length constraint exceeded")]
    PathLength {
        /// The CA.
        subject: String,
    },
    /// The vendor certificate may not sign (keyUsage without digitalSignature,
    /// or a CA certificate).
    #[error("{subject} is not a signing certificate: {detail}")]
    NotSigningCert {
        /// The certificate.
        subject: String,
        /// What is wrong.
        detail: String,
    },
    /// A critical extension this validator does not understand.
    #[error("{subject} has an unsupported critical extension {oid}")]
    UnknownCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension.
        oid: String,
    },
    /// Not signed with ecdsa-with-SHA384, or not a P-384 key.
    #[error("{subject}: unsupported algorithm or key ({detail})")]
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
        /// What was found.
        detail: String,
    },
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidityPeriod {
    /// Start (inclusive).
    pub not_before: SystemTime,
    /// End (inclusive).
    pub not_after: SystemTime,
}

impl ValidityPeriod {
    /// From one minute ago (clock skew) for `days` days.
    pub fn days_from_now(days: u32) -> Self {
        let now = SystemTime::now();
        ValidityPeriod {
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(u64::from(days) * 86_400),
        }
    }

    fn to_x509(self) -> Result<Validity, SigningError> {
        let t = |s: SystemTime| {
            // Whole seconds: DER times have no fractions.
            let secs = s
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|_| SigningError::Certificate("time before 1970".into()))?
                .as_secs();
            Time::try_from(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
                .map_err(|e| SigningError::Certificate(format!("time: {e}")))
        };
        Ok(Validity {
            not_before: t(self.not_before)?,
            not_after: t(self.not_after)?,
        })
    }
}

/// A name with one common name (CN) attribute.
pub fn common_name(cn: &str) -> Result<Name, SigningError> {
    let err = |e: x509_cert::der::Error| SigningError::Certificate(format!("name {cn:?}: {e}"));
    if cn.is_empty() {
        return Err(SigningError::Certificate("empty common name".into()));
    }
    let value = Any::encode_from(&Utf8StringRef::new(cn).map_err(err)?).map_err(err)?;
    let atv = AttributeTypeAndValue { oid: CN, value };
    let rdn = RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).map_err(err)?);
    Ok(RdnSequence(vec![rdn]))
}

fn serial() -> SerialNumber {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40; // positive, 16 significant bytes
    SerialNumber::new(&bytes).expect("16-byte serial")
}

fn spki(key: &VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, SigningError> {
    SubjectPublicKeyInfoOwned::from_key(*key)
        .map_err(|e| SigningError::Certificate(format!("public key: {e}")))
}

fn build_err(e: x509_cert::builder::Error) -> SigningError {
    SigningError::Certificate(e.to_string())
}

/// A self-signed root CA certificate for `key`.
pub fn create_root(
    key: &SigningKey,
    name: &str,
    validity: ValidityPeriod,
) -> Result<Certificate, SigningError> {
    let builder = CertificateBuilder::new(
        Profile::Root,
        serial(),
        validity.to_x509()?,
        common_name(name)?,
        spki(key.verifying_key())?,
        key,
    )
    .map_err(build_err)?;
    builder.build::<DerSignature>().map_err(build_err)
}

/// A vendor (code-signing) certificate for `vendor_key`, issued by the CA.
///
/// Fails if `ca_key` is not the key `ca_cert` certifies.
pub fn issue_vendor(
    ca_key: &SigningKey,
    ca_cert: &Certificate,
    vendor_key: &VerifyingKey,
    name: &str,
    validity: ValidityPeriod,
) -> Result<Certificate, SigningError> {
    if public_key(ca_cert).ok().as_ref() != Some(ca_key.verifying_key()) {
        return Err(SigningError::KeyMismatch {
            subject: subject(ca_cert),
        });
    }
    let mut builder = CertificateBuilder::new(
        Profile::Leaf {
            issuer: ca_cert.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        },
        serial(),
        validity.to_x509()?,
        common_name(name)?,
        spki(vendor_key)?,
        ca_key,
    )
    .map_err(build_err)?;
    builder
        .add_extension(&ExtendedKeyUsage(vec![KP_CODE_SIGNING]))
        .map_err(build_err)?;
    builder.build::<DerSignature>().map_err(build_err)
}

/// The subject of a certificate, as text (`CN=...`).
pub fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// The P-384 key a certificate certifies.
pub fn public_key(cert: &Certificate) -> Result<VerifyingKey, ChainError> {
    let der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| ChainError::UnsupportedAlgorithm {
            subject: subject(cert),
            detail: e.to_string(),
        })?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| ChainError::UnsupportedAlgorithm {
        subject: subject(cert),
        detail: format!("public key: {e}"),
    })
}

/// SHA-256 fingerprint of a certificate's DER, in hex.
pub fn fingerprint(cert: &Certificate) -> String {
    use sha2::Digest as _;
    let der = cert.to_der().unwrap_or_default();
    hex::encode(sha2::Sha256::digest(der))
}

/// Certificates as concatenated PEM.
pub fn to_pem(certs: &[Certificate]) -> Result<String, SigningError> {
    let mut out = String::new();
    for c in certs {
        out.push_str(
            &c.to_pem(x509_cert::der::pem::LineEnding::LF)
                .map_err(|e| SigningError::Certificate(e.to_string()))?,
        );
    }
    Ok(out)
}

/// Reads one or more PEM certificates (`BEGIN CERTIFICATE`).
pub fn from_pem(text: &str) -> Result<Vec<Certificate>, ChainError> {
    let certs = Certificate::load_pem_chain(text.as_bytes()).map_err(|e| ChainError::Decode {
        index: 0,
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(ChainError::Length(0));
    }
    Ok(certs)
}

/// Decodes DER certificates.
pub fn from_der_list(ders: &[Vec<u8>]) -> Result<Vec<Certificate>, ChainError> {
    ders.iter()
        .enumerate()
        .map(|(index, d)| {
            Certificate::from_der(d).map_err(|e| ChainError::Decode {
                index,
                detail: e.to_string(),
            })
        })
        .collect()
}

/// What the validator reads from a certificate's extensions.
struct Exts {
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
}

fn extensions(cert: &Certificate) -> Result<Exts, ChainError> {
    let mut out = Exts {
        basic: None,
        key_usage: None,
    };
    let bad = |detail: String| ChainError::Decode { index: 0, detail };
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        let v = ext.extn_value.as_bytes();
        if ext.extn_id == BasicConstraints::OID {
            out.basic = Some(BasicConstraints::from_der(v).map_err(|e| bad(e.to_string()))?);
        } else if ext.extn_id == KeyUsage::OID {
            out.key_usage = Some(KeyUsage::from_der(v).map_err(|e| bad(e.to_string()))?);
        } else if ext.critical
            && ext.extn_id != SubjectKeyIdentifier::OID
            && ext.extn_id != AuthorityKeyIdentifier::OID
            && ext.extn_id != ExtendedKeyUsage::OID
        {
            return Err(ChainError::UnknownCriticalExtension {
                subject: subject(cert),
                oid: ext.extn_id.to_string(),
            });
        }
    }
    Ok(out)
}

fn check_dates(cert: &Certificate, now: SystemTime) -> Result<(), ChainError> {
    let v = &cert.tbs_certificate.validity;
    if now < v.not_before.to_system_time() {
        return Err(ChainError::NotYetValid {
            subject: subject(cert),
            not_before: v.not_before.to_string(),
        });
    }
    if now > v.not_after.to_system_time() {
        return Err(ChainError::Expired {
            subject: subject(cert),
            not_after: v.not_after.to_string(),
        });
    }
    Ok(())
}

fn check_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), ChainError> {
    let unsupported = |detail: String| ChainError::UnsupportedAlgorithm {
        subject: subject(cert),
        detail,
    };
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA384
        || cert.tbs_certificate.signature != cert.signature_algorithm
    {
        return Err(unsupported(format!(
            "signature algorithm {}",
            cert.signature_algorithm.oid
        )));
    }
    let key = public_key(issuer)?;
    let bad = || ChainError::BadSignature {
        subject: subject(cert),
        issuer: subject(issuer),
    };
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| unsupported(e.to_string()))?;
    let sig_bytes = cert.signature.as_bytes().ok_or_else(bad)?;
    let sig = DerSignature::from_bytes(sig_bytes).map_err(|_| bad())?;
    key.verify(&tbs, &sig).map_err(|_| bad())
}

fn check_ca(ca: &Certificate, child: &Certificate, below: usize) -> Result<(), ChainError> {
    let e = extensions(ca)?;
    let not_ca = || ChainError::NotCa {
        subject: subject(ca),
        child: subject(child),
    };
    let basic = e.basic.ok_or_else(not_ca)?;
    if !basic.ca {
        return Err(not_ca());
    }
    if let Some(ku) = e.key_usage {
        if !ku.key_cert_sign() {
            return Err(not_ca());
        }
    }
    if let Some(max) = basic.path_len_constraint {
        if below > usize::from(max) {
            return Err(ChainError::PathLength {
                subject: subject(ca),
            });
        }
    }
    Ok(())
}

/// Validates `chain` (vendor certificate first, then any intermediates; the
/// root may be included or not) against the trusted `roots` at time `now`.
///
/// Checks each certificate's dates, that every issuer is a CA (and its path
/// length constraint), each signature (ecdsa-with-SHA384), that the vendor
/// certificate may sign (digitalSignature, not a CA) and that the chain ends
/// at one of `roots`, which is itself in date and a CA. Returns the index in
/// `roots` of the root that anchors the chain.
pub fn verify_chain(
    chain: &[Certificate],
    roots: &[Certificate],
    now: SystemTime,
) -> Result<usize, ChainError> {
    let mut path: Vec<&Certificate> = chain.iter().collect();
    // A chain that carries the trusted root itself: drop it, the trusted copy
    // is what counts.
    if path.len() > 1 {
        if let Some(last) = path.last() {
            if roots.iter().any(|r| r == *last) {
                path.pop();
            }
        }
    }
    if path.is_empty() || path.len() >= MAX_CHAIN {
        return Err(ChainError::Length(chain.len()));
    }
    let leaf = path[0];
    let le = extensions(leaf)?;
    if le.basic.is_some_and(|b| b.ca) {
        return Err(ChainError::NotSigningCert {
            subject: subject(leaf),
            detail: "it is a CA certificate".into(),
        });
    }
    if le.key_usage.is_some_and(|ku| !ku.digital_signature()) {
        return Err(ChainError::NotSigningCert {
            subject: subject(leaf),
            detail: "keyUsage lacks digitalSignature".into(),
        });
    }
    for (i, cert) in path.iter().enumerate() {
        check_dates(cert, now)?;
        if let Some(issuer) = path.get(i + 1) {
            if issuer.tbs_certificate.subject != cert.tbs_certificate.issuer {
                return Err(ChainError::UntrustedIssuer {
                    subject: subject(cert),
                    issuer: cert.tbs_certificate.issuer.to_string(),
                });
            }
            check_ca(issuer, cert, i)?;
            check_signed_by(cert, issuer)?;
        }
    }
    let top = path[path.len() - 1];
    let below = path.len() - 1;
    let mut last_err = None;
    for (index, root) in roots.iter().enumerate() {
        if root.tbs_certificate.subject != top.tbs_certificate.issuer {
            continue;
        }
        let attempt = check_dates(root, now)
            .and_then(|()| check_ca(root, top, below))
            .and_then(|()| check_signed_by(top, root))
            .and_then(|()| check_signed_by(root, root));
        match attempt {
            Ok(()) => return Ok(index),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| ChainError::UntrustedIssuer {
        subject: subject(top),
        issuer: top.tbs_certificate.issuer.to_string(),
    }))
}
