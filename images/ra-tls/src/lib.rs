//! Attested TLS (RA-TLS) for Arm CCA realms, on rustls 0.23 with the `ring`
//! provider.
//!
//! The realm proves what it is inside the TLS handshake: it generates a fresh
//! TLS key, asks the RMM for a CCA token whose realm challenge is
//! `SHA-512(verifier nonce || DER SubjectPublicKeyInfo)` (Islet's form), and
//! presents a self-signed certificate carrying the token in extension
//! [`OID_ISLET_CCA_TOKEN`] (1.3.3.3.7) and/or the TCG DICE conceptual message
//! wrapper extension [`OID_TCG_DICE_CMW`] (2.23.133.5.4.9).
//!
//! Where the nonce travels:
//! * realm as TLS server: in the ClientHello SNI ([`nonce_to_server_name`]);
//! * realm as TLS client: base64-encoded as the single acceptable-CA name of
//!   the CertificateRequest ([`nonce_to_ca_hint`]), which the client reads in
//!   `ResolvesClientCert::resolve(root_hint_subjects, ..)`.
//!
//! Attester side: [`Attester`], [`TlsKey`], [`AttestedCert`],
//! [`AttestingServerResolver`], [`AttestingClientResolver`].
//! Verifier side: [`CcaVerifier`] (token checks + pluggable [`Appraiser`]),
//! [`AttestedServerVerifier`] (rustls `ServerCertVerifier`, installed
//! through rustls' `dangerous()` door by [`AttestedServerVerifier::client_config`])
//! and [`AttestedClientVerifier`] (rustls `ClientCertVerifier`).
#![forbid(unsafe_code)]

mod attester;
mod error;
mod verifier;

use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha512};

pub use attester::{
    AttestedCert, Attester, AttestingClientResolver, AttestingServerResolver, CertOptions,
    EvidenceForm, KeyAlgorithm, TlsKey,
};
pub use error::{AttestError, Error};
pub use verifier::{
    Appraiser, AttestedClientVerifier, AttestedServerVerifier, CcaVerifier, EvidenceOid,
    ReferenceAppraiser, VerifiedRealm,
};

/// Re-exported so callers use the same rustls this crate was built with.
pub use rustls;

/// Islet's extension: the raw CCA token.
pub const OID_ISLET_CCA_TOKEN: &[u64] = &[1, 3, 3, 3, 7];
/// The TCG DICE conceptual message wrapper extension (Gramine >= 1.8, CCC
/// interoperable RA-TLS).
pub const OID_TCG_DICE_CMW: &[u64] = &[2, 23, 133, 5, 4, 9];

/// The length of the verifier's nonce.
pub const NONCE_LEN: usize = 64;

/// The realm challenge for a TLS key: `SHA-512(nonce || spki_der)`.
pub fn realm_challenge(nonce: &[u8], spki_der: &[u8]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update(nonce);
    h.update(spki_der);
    h.finalize().into()
}

/// The crypto provider this crate uses (rustls' `ring`).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fresh random nonce from the provider's secure RNG.
pub fn fresh_nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut n)
        .expect("the system RNG failed");
    n
}

const SNI_SUFFIX: &str = "nonce.ra-tls";

/// The SNI carrying `nonce` to a realm TLS server. A DNS name cannot hold
/// base64, so the nonce is lowercase hex in four 32-character labels
/// followed by `nonce.ra-tls`.
pub fn nonce_to_server_name(nonce: &[u8; NONCE_LEN]) -> String {
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let labels: Vec<&str> = (0..4).map(|i| &hex[i * 32..(i + 1) * 32]).collect();
    format!("{}.{SNI_SUFFIX}", labels.join("."))
}

/// The nonce in an SNI made by [`nonce_to_server_name`].
pub fn nonce_from_server_name(name: &str) -> Option<[u8; NONCE_LEN]> {
    let prefix = name.strip_suffix(SNI_SUFFIX)?.strip_suffix('.')?;
    let hex: String = prefix.split('.').collect();
    if hex.len() != 2 * NONCE_LEN || !prefix.split('.').all(|l| l.len() == 32) {
        return None;
    }
    let mut out = [0u8; NONCE_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The acceptable-CA name carrying `nonce` to a realm TLS client: the
/// nonce, standard base64, as the name's bytes.
pub fn nonce_to_ca_hint(nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .encode(nonce)
        .into_bytes()
}

/// The first acceptable-CA name that decodes as a base64 nonce.
pub fn nonce_from_ca_hints(hints: &[&[u8]]) -> Option<[u8; NONCE_LEN]> {
    hints.iter().find_map(|h| {
        base64::engine::general_purpose::STANDARD
            .decode(h)
            .ok()?
            .try_into()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_round_trip_and_is_a_dns_name() {
        let n: [u8; 64] = core::array::from_fn(|i| (i * 7) as u8);
        let name = nonce_to_server_name(&n);
        assert!(rustls::pki_types::ServerName::try_from(name.clone()).is_ok());
        assert_eq!(nonce_from_server_name(&name), Some(n));
        assert_eq!(nonce_from_server_name("example.com"), None);
    }

    #[test]
    fn ca_hint_round_trip() {
        let n = fresh_nonce();
        let h = nonce_to_ca_hint(&n);
        assert_eq!(nonce_from_ca_hints(&[b"junk", &h]), Some(n));
        assert_eq!(nonce_from_ca_hints(&[b"junk"]), None);
    }

    #[test]
    fn challenge_is_sha512_of_nonce_then_spki() {
        let c = realm_challenge(b"ab", b"cd");
        assert_eq!(c, <[u8; 64]>::from(Sha512::digest(b"abcd")));
    }
}
