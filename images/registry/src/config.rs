//! The registry's configuration file.
//!
//! ```toml
//! storage = "/var/lib/atoll-registry"
//! trust_anchors = "cpak.json"          # RA-TLS: Veraison trust anchors or a JWK
//!
//! [[listener]]
//! address = "127.0.0.1:5000"
//! mode = "tls"                         # http | tls | ra-tls
//! access = "read-write"                # read-write | read-only (ra-tls: always read-only)
//! cert = "tls/registry.pem"            # PEM chain, server first
//! key = "tls/registry-key.pem"
//! client_ca = "tls/pushers.pem"        # optional (tls): clients must present a certificate from it
//!
//! [[listener]]
//! address = "127.0.0.1:5001"
//! mode = "ra-tls"
//! cert = "tls/registry.pem"
//! key = "tls/registry-key.pem"
//!
//! [[realm]]                            # RA-TLS policy
//! name = "demo"
//! reference_values = "realm-ref.json"  # `atoll measure --json` output (Veraison)
//! repositories = ["acme/*"]
//! ```
//!
//! Relative paths are relative to the configuration file. Everything is
//! loaded and checked at startup: a mistake is a clear error before the
//! registry listens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use atoll_cca_token::appraise::{ReferenceValues, TrustAnchors};

use crate::access::valid_pattern;
use serde::Deserialize;

/// What a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plain HTTP: development only.
    Http,
    /// TLS with the registry's certificate.
    Tls,
    /// TLS where every client is an attested realm.
    RaTls,
}

/// Read-write or read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Pull and push.
    #[default]
    ReadWrite,
    /// Pull only.
    ReadOnly,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListener {
    address: SocketAddr,
    mode: Mode,
    #[serde(default)]
    access: Option<AccessMode>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    name: String,
    reference_values: PathBuf,
    repositories: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    storage: PathBuf,
    trust_anchors: Option<PathBuf>,
    #[serde(default)]
    listener: Vec<RawListener>,
    #[serde(default)]
    realm: Vec<RawRealm>,
}

/// A listener, checked.
#[derive(Clone, Debug)]
pub struct Listener {
    /// Where.
    pub address: SocketAddr,
    /// How.
    pub mode: Mode,
    /// Whether pushes are allowed.
    pub write: bool,
    /// Server certificate chain (DER), for TLS modes.
    pub cert_chain: Vec<Vec<u8>>,
    /// Server key (PEM: PKCS#8, SEC1 or PKCS#1), for TLS modes.
    pub key_pem: Option<Vec<u8>>,
    /// Client CA roots (DER), for mutual TLS.
    pub client_ca: Vec<Vec<u8>>,
}

/// A realm the RA-TLS listeners serve.
#[derive(Clone, Debug)]
pub struct RealmPolicy {
    /// Its name in logs.
    pub name: String,
    /// What its tokens must show.
    pub reference_values: ReferenceValues,
    /// Repository patterns it may pull.
    pub repositories: Vec<String>,
}

/// The whole configuration, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// Storage root.
    pub storage: PathBuf,
    /// Listeners.
    pub listeners: Vec<Listener>,
    /// Platform trust anchors (RA-TLS).
    pub trust_anchors: Option<TrustAnchors>,
    /// Realm policy (RA-TLS).
    pub realms: Vec<RealmPolicy>,
}

/// A configuration mistake: the message names the file, listener or realm
/// entry and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn pem_der(path: &Path, what: &str) -> Result<Vec<(String, Vec<u8>)>, ConfigError> {
    let text =
        std::fs::read(path).map_err(|e| ConfigError(format!("{what} {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for item in rustls::pki_types::pem::PemObject::pem_slice_iter(&text) {
        let (kind, der): (rustls::pki_types::pem::SectionKind, Vec<u8>) =
            item.map_err(|e| ConfigError(format!("{what} {}: bad PEM: {e:?}", path.display())))?;
        out.push((format!("{kind:?}"), der));
    }
    if out.is_empty() {
        return Err(ConfigError(format!(
            "{what} {}: no PEM section",
            path.display()
        )));
    }
    Ok(out)
}

fn certs(path: &Path, what: &str) -> Result<Vec<Vec<u8>>, ConfigError> {
    let certs: Vec<Vec<u8>> = pem_der(path, what)?
        .into_iter()
        .filter(|(k, _)| k == "Certificate")
        .map(|(_, d)| d)
        .collect();
    if certs.is_empty() {
        return Err(ConfigError(format!(
            "{what} {}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

impl Config {
    /// The quick development mode (`--root DIR --listen ADDR
    /// --insecure-http`): one plain HTTP read-write listener.
    pub fn dev_http(storage: impl Into<PathBuf>, address: SocketAddr) -> Self {
        Config {
            storage: storage.into(),
            listeners: vec![Listener {
                address,
                mode: Mode::Http,
                write: true,
                cert_chain: Vec::new(),
                key_pem: None,
                client_ca: Vec::new(),
            }],
            trust_anchors: None,
            realms: Vec::new(),
        }
    }

    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let raw: RawConfig =
            toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                base.join(p)
            }
        };
        if raw.listener.is_empty() {
            return Err(ConfigError(format!("{}: no [[listener]]", path.display())));
        }
        let mut listeners: Vec<Listener> = Vec::new();
        for (i, l) in raw.listener.iter().enumerate() {
            let ctx = format!("listener {i} ({})", l.address);
            if l.address.port() != 0 && listeners.iter().any(|o| o.address == l.address) {
                return Err(ConfigError(format!("{ctx}: address used twice")));
            }
            let write = match (l.mode, l.access) {
                (Mode::RaTls, Some(AccessMode::ReadWrite)) => {
                    return Err(ConfigError(format!(
                        "{ctx}: ra-tls listeners are read-only (realms pull, vendors push over tls)"
                    )))
                }
                (Mode::RaTls, _) => false,
                (_, a) => a.unwrap_or_default() == AccessMode::ReadWrite,
            };
            let (cert_chain, key) = match l.mode {
                Mode::Http => {
                    if l.cert.is_some() || l.key.is_some() || l.client_ca.is_some() {
                        return Err(ConfigError(format!(
                            "{ctx}: http takes no cert, key or client_ca"
                        )));
                    }
                    (Vec::new(), None)
                }
                Mode::Tls | Mode::RaTls => {
                    let (Some(c), Some(k)) = (&l.cert, &l.key) else {
                        return Err(ConfigError(format!("{ctx}: cert and key are required")));
                    };
                    let chain = certs(&rel(c), "certificate");
                    let chain =
                        chain.map_err(|ConfigError(e)| ConfigError(format!("{ctx}: {e}")))?;
                    let key_path = rel(k);
                    let pem = std::fs::read(&key_path).map_err(|e| {
                        ConfigError(format!("{ctx}: key {}: {e}", key_path.display()))
                    })?;
                    <rustls::pki_types::PrivateKeyDer<'static> as rustls::pki_types::pem::PemObject>::from_pem_slice(&pem)
                        .map_err(|e| ConfigError(format!("{ctx}: key {}: no usable private key ({e:?})", key_path.display())))?;
                    (chain, Some(pem))
                }
            };
            let client_ca = match (&l.client_ca, l.mode) {
                (Some(p), Mode::Tls) => certs(&rel(p), "client CA")
                    .map_err(|ConfigError(e)| ConfigError(format!("{ctx}: {e}")))?,
                (Some(_), _) => {
                    return Err(ConfigError(format!(
                        "{ctx}: client_ca is only for tls listeners"
                    )))
                }
                (None, _) => Vec::new(),
            };
            listeners.push(Listener {
                address: l.address,
                mode: l.mode,
                write,
                cert_chain,
                key_pem: key,
                client_ca,
            });
        }
        let has_ra = listeners.iter().any(|l| l.mode == Mode::RaTls);
        let trust_anchors = match &raw.trust_anchors {
            Some(p) => Some(
                TrustAnchors::load(rel(p))
                    .map_err(|e| ConfigError(format!("trust anchors {}: {e}", rel(p).display())))?,
            ),
            None => None,
        };
        let mut realms: Vec<RealmPolicy> = Vec::new();
        for r in &raw.realm {
            if r.name.is_empty() {
                return Err(ConfigError("a [[realm]] has an empty name".into()));
            }
            if realms.iter().any(|o| o.name == r.name) {
                return Err(ConfigError(format!("realm {}: name used twice", r.name)));
            }
            if r.repositories.is_empty() {
                return Err(ConfigError(format!("realm {}: no repositories", r.name)));
            }
            if let Some(bad) = r.repositories.iter().find(|p| !valid_pattern(p)) {
                return Err(ConfigError(format!(
                    "realm {}: repository pattern {bad:?}: use \"*\", \"<name>/*\" or a repository name",
                    r.name
                )));
            }
            let refs = ReferenceValues::load(rel(&r.reference_values)).map_err(|e| {
                ConfigError(format!(
                    "realm {}: reference values {}: {e}",
                    r.name,
                    rel(&r.reference_values).display()
                ))
            })?;
            if refs.realm.is_empty() {
                return Err(ConfigError(format!(
                    "realm {}: the reference values name no realm (RIM)",
                    r.name
                )));
            }
            realms.push(RealmPolicy {
                name: r.name.clone(),
                reference_values: refs,
                repositories: r.repositories.clone(),
            });
        }
        if has_ra && (trust_anchors.is_none() || realms.is_empty()) {
            return Err(ConfigError(
                "an ra-tls listener needs trust_anchors and at least one [[realm]]".into(),
            ));
        }
        Ok(Config {
            storage: rel(&raw.storage),
            listeners,
            trust_anchors,
            realms,
        })
    }
}
