//! Who may do what on a connection.
//!
//! Each connection gets an [`Access`] when its handshake completes: a plain
//! or TLS listener grants what its configuration says; an RA-TLS listener
//! grants read access to the repositories the policy allows the attested
//! realm. Every request is checked against it before the registry sees it.

use hyper::{Method, StatusCode};

use crate::server::{oci_error, Body};

/// What one connection may do.
#[derive(Clone, Debug)]
pub struct Access {
    /// Pushes, deletes and mounts are allowed.
    pub write: bool,
    /// Repository patterns readable (and, with `write`, writable); `None`
    /// allows every repository.
    pub repositories: Option<Vec<String>>,
    /// Who is on the other end, for logs (peer address, realm policy
    /// names).
    pub who: String,
}

impl Access {
    /// Everything (the development and plain TLS modes).
    pub fn full(who: impl Into<String>) -> Self {
        Self {
            write: true,
            repositories: None,
            who: who.into(),
        }
    }

    /// Whether `repo` matches one of the patterns.
    pub fn allows_repository(&self, repo: &str) -> bool {
        match &self.repositories {
            None => true,
            Some(patterns) => patterns.iter().any(|p| pattern_matches(p, repo)),
        }
    }

    /// `None` when the request may go on, otherwise the 403 to send.
    pub fn check(&self, method: &Method, path: &str) -> Option<hyper::Response<Body>> {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        if write && !self.write {
            tracing::warn!("{}: {method} {path} denied: read-only access", self.who);
            return Some(oci_error(
                StatusCode::FORBIDDEN,
                "DENIED",
                "this listener is read-only",
            ));
        }
        if let Some(repo) = repository_of(path) {
            if !self.allows_repository(&repo) {
                tracing::warn!(
                    "{}: {method} {path} denied: repository {repo} not in policy",
                    self.who
                );
                return Some(oci_error(
                    StatusCode::FORBIDDEN,
                    "DENIED",
                    &format!("access to repository {repo} is not granted to this client"),
                ));
            }
        } else if self.repositories.is_some() && path.trim_end_matches('/') != "/v2" {
            return Some(oci_error(StatusCode::FORBIDDEN, "DENIED", "not granted"));
        }
        None
    }
}

/// `*` matches everything, `prefix/*` every repository under `prefix/`,
/// anything else itself only.
pub fn pattern_matches(pattern: &str, repo: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => repo
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1),
        None => pattern == repo,
    }
}

/// The repository a `/v2/<name>/...` path addresses.
pub fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let cut = |k: usize| Some(segs[..n - k].join("/"));
    if n >= 3 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        cut(3)
    } else if n >= 3 && matches!(segs[n - 2], "blobs" | "manifests" | "referrers" | "tags") {
        cut(2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "a/b"));
        assert!(pattern_matches("acme/*", "acme/counter"));
        assert!(pattern_matches("acme/*", "acme/x/y"));
        assert!(!pattern_matches("acme/*", "acme"));
        assert!(!pattern_matches("acme/*", "acmex/counter"));
        assert!(pattern_matches("acme/counter", "acme/counter"));
        assert!(!pattern_matches("acme/counter", "acme/counter2"));
    }

    #[test]
    fn repositories_of_paths() {
        assert_eq!(
            repository_of("/v2/a/b/blobs/sha256:00").as_deref(),
            Some("a/b")
        );
        assert_eq!(repository_of("/v2/a/manifests/1.0").as_deref(), Some("a"));
        assert_eq!(repository_of("/v2/a/blobs/uploads/").as_deref(), Some("a"));
        assert_eq!(
            repository_of("/v2/a/blobs/uploads/xyz").as_deref(),
            Some("a")
        );
        assert_eq!(repository_of("/v2/a/tags/list").as_deref(), Some("a"));
        assert_eq!(
            repository_of("/v2/a/referrers/sha256:00").as_deref(),
            Some("a")
        );
        assert_eq!(repository_of("/v2/"), None);
    }

    #[test]
    fn checks() {
        let realm = Access {
            write: false,
            repositories: Some(vec!["acme/*".into()]),
            who: "realm".into(),
        };
        assert!(realm.check(&Method::GET, "/v2/").is_none());
        assert!(realm
            .check(&Method::GET, "/v2/acme/app/manifests/1")
            .is_none());
        assert!(realm
            .check(&Method::GET, "/v2/other/app/manifests/1")
            .is_some());
        assert!(realm
            .check(&Method::PUT, "/v2/acme/app/manifests/1")
            .is_some());
        assert!(realm.check(&Method::GET, "/v2/_catalog").is_some());
        assert!(Access::full("dev")
            .check(&Method::PUT, "/v2/x/manifests/1")
            .is_none());
    }
}
