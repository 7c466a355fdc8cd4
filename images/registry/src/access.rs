//! Who may do what on a connection.
//!
//! Each connection gets an [`Access`] when its handshake completes: a plain
//! or TLS listener grants what its configuration says; an RA-TLS listener
//! grants read access to the repositories the policy allows the attested
//! realm. Every request is checked against it before the registry sees it.

use hyper::{Method, StatusCode};

use crate::server::{oci_error, parse_query, parse_route, Body};
use crate::storage::valid_name;

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

    /// `None` when the request may go on, otherwise the 403 (`DENIED`) to
    /// send. Every refusal is logged with who asked and why.
    ///
    /// Only `GET` and `HEAD` are reads. With a repository list, a request
    /// must address one of those repositories (through the same route
    /// parser the registry serves it with), except the `/v2/` version
    /// check; a cross-repository mount also needs the source repository.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
    ) -> Option<hyper::Response<Body>> {
        let write = !matches!(*method, Method::GET | Method::HEAD);
        if write && !self.write {
            tracing::warn!("{}: {method} {path} denied: read-only access", self.who);
            return Some(denied("this connection may not push or delete"));
        }
        self.repositories.as_ref()?;
        let Some(rest) = path.strip_prefix("/v2") else {
            tracing::warn!("{}: {method} {path} denied: not a /v2 path", self.who);
            return Some(denied("not granted"));
        };
        if rest.is_empty() || rest == "/" {
            return None;
        }
        let Some((repo, _)) = rest.strip_prefix('/').and_then(parse_route) else {
            tracing::warn!("{}: {method} {path} denied: no repository", self.who);
            return Some(denied("not granted"));
        };
        if !self.allows_repository(&repo) {
            tracing::warn!(
                "{}: {method} {path} denied: repository {repo} not in policy",
                self.who
            );
            return Some(denied(&format!(
                "access to repository {repo} is not granted to this client"
            )));
        }
        if let Some(from) = parse_query(query.unwrap_or("")).get("from") {
            if !self.allows_repository(from) {
                tracing::warn!(
                    "{}: {method} {path} denied: mount source {from} not in policy",
                    self.who
                );
                return Some(denied(&format!(
                    "access to repository {from} is not granted to this client"
                )));
            }
        }
        None
    }
}

fn denied(message: &str) -> hyper::Response<Body> {
    oci_error(StatusCode::FORBIDDEN, "DENIED", message)
}

/// `*` matches every repository, `prefix/*` every repository under
/// `prefix/` (at any depth), anything else itself only.
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

/// Whether `pattern` is one [`pattern_matches`] understands: `*`,
/// `<name>/*` or a repository name. Anything else (`acme*`, `a/*/b`) is a
/// configuration mistake, refused at startup rather than never matching.
pub fn valid_pattern(pattern: &str) -> bool {
    pattern == "*"
        || pattern
            .strip_suffix("/*")
            .map_or(valid_name(pattern), valid_name)
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
    fn pattern_syntax() {
        assert!(valid_pattern("*"));
        assert!(valid_pattern("acme/*"));
        assert!(valid_pattern("acme/counter"));
        assert!(!valid_pattern("acme*"));
        assert!(!valid_pattern("a/*/b"));
        assert!(!valid_pattern("Acme/x"));
        assert!(!valid_pattern(""));
    }

    #[test]
    fn checks() {
        let realm = Access {
            write: false,
            repositories: Some(vec!["acme/*".into()]),
            who: "realm".into(),
        };
        let status = |m: &Method, p: &str, q: Option<&str>| {
            realm.check(m, p, q).map(|r| r.status().as_u16())
        };
        assert_eq!(status(&Method::GET, "/v2/", None), None);
        assert_eq!(status(&Method::GET, "/v2", None), None);
        assert_eq!(status(&Method::GET, "/v2/acme/app/manifests/1", None), None);
        assert_eq!(
            status(&Method::HEAD, "/v2/acme/app/blobs/sha256:00", None),
            None
        );
        assert_eq!(status(&Method::GET, "/v2/acme/app/tags/list", None), None);
        assert_eq!(
            status(&Method::GET, "/v2/other/app/manifests/1", None),
            Some(403)
        );
        // A name ending in an endpoint word is still parsed from the end.
        assert_eq!(
            status(&Method::GET, "/v2/other/blobs/x/manifests/1", None),
            Some(403)
        );
        assert_eq!(
            status(&Method::PUT, "/v2/acme/app/manifests/1", None),
            Some(403)
        );
        assert_eq!(
            status(&Method::DELETE, "/v2/acme/app/blobs/sha256:00", None),
            Some(403)
        );
        assert_eq!(status(&Method::GET, "/v2/_catalog", None), Some(403));
        assert_eq!(status(&Method::GET, "/metrics", None), Some(403));
        assert!(Access::full("dev")
            .check(&Method::PUT, "/v2/x/manifests/1", None)
            .is_none());
        let pusher = Access {
            write: true,
            repositories: Some(vec!["acme/*".into()]),
            who: "pusher".into(),
        };
        let mount = "/v2/acme/app/blobs/uploads/";
        assert!(pusher
            .check(&Method::POST, mount, Some("mount=sha256:00&from=acme/b"))
            .is_none());
        assert!(pusher
            .check(&Method::POST, mount, Some("mount=sha256:00&from=other/b"))
            .is_some());
    }
}
