//! The DSN: `{scheme}://{public_key}[:{secret}]@{host}{path}/{project_id}`.

use std::fmt;
use std::str::FromStr;

use super::{ProjectId, ProjectRef, PublicKey};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    pub scheme: String,
    pub public_key: PublicKey,
    /// Host with its port, as written.
    pub host: String,
    /// Path prefix before the project id, without trailing slash (usually empty).
    pub path: String,
    pub project_id: ProjectId,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid DSN: {0}")]
pub struct ParseDsnError(&'static str);

impl Dsn {
    pub fn new(scheme: &str, public_key: PublicKey, host: &str, project_id: ProjectId) -> Self {
        Self {
            scheme: scheme.into(),
            public_key,
            host: host.into(),
            path: String::new(),
            project_id,
        }
    }
}

/// A DSN's parts as written: scheme, key, host, path prefix, and the last path segment (the project).
fn parts(s: &str) -> Result<(&str, PublicKey, &str, &str, &str), ParseDsnError> {
    let (scheme, rest) = s.split_once("://").ok_or(ParseDsnError("missing scheme"))?;
    if scheme != "http" && scheme != "https" {
        return Err(ParseDsnError("scheme must be http or https"));
    }
    let (userinfo, rest) = rest
        .split_once('@')
        .ok_or(ParseDsnError("missing public key"))?;
    // The secret is deprecated and ignored, but old DSNs still carry it (often empty: `key:@host`).
    let key = userinfo.split(':').next().unwrap_or_default();
    let public_key = key.parse().map_err(ParseDsnError)?;
    let (host, path) = rest
        .split_once('/')
        .ok_or(ParseDsnError("missing project id"))?;
    if host.is_empty() {
        return Err(ParseDsnError("missing host"));
    }
    let path = path.trim_end_matches('/');
    let (prefix, project) = path.rsplit_once('/').map_or(("", path), |(p, id)| (p, id));
    Ok((scheme, public_key, host, prefix, project))
}

impl Dsn {
    /// The key and the project a DSN names, by id or (as the seed's DSNs did) by slug.
    pub fn key_and_project(s: &str) -> Result<(PublicKey, ProjectRef), ParseDsnError> {
        let (_, key, _, _, project) = parts(s)?;
        Ok((key, project.parse().map_err(ParseDsnError)?))
    }
}

impl FromStr for Dsn {
    type Err = ParseDsnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, public_key, host, prefix, project) = parts(s)?;
        let project_id = project.parse().map_err(ParseDsnError)?;
        let path = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{prefix}")
        };
        Ok(Self {
            scheme: scheme.into(),
            public_key,
            host: host.into(),
            path,
            project_id,
        })
    }
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}{}/{}",
            self.scheme, self.public_key, self.host, self.path, self.project_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dsn_names_its_project_by_id_or_slug() {
        let (key, project) = Dsn::key_and_project("http://abc@h:3030/my-shop/").unwrap();
        assert_eq!(key.as_str(), "abc");
        assert!(project.names(ProjectId::new(3), "my-shop"));
        assert!(!project.names(ProjectId::new(3), "other"));
        let (_, project) = Dsn::key_and_project("http://abc@h/7").unwrap();
        assert!(project.names(ProjectId::new(7), "shop"));
        assert!(!project.names(ProjectId::new(8), "shop"));
        assert!(Dsn::key_and_project("http://abc@h/a%20b").is_err());
        // A Dsn proper, as Splat prints it, stays numeric.
        assert!("http://abc@h/my-shop".parse::<Dsn>().is_err());
    }

    #[test]
    fn parses_plain_secret_and_prefixed_dsns() {
        let d: Dsn = "http://abc123@127.0.0.1:3030/7".parse().unwrap();
        assert_eq!(
            (d.public_key.as_str(), d.host.as_str(), d.project_id.value()),
            ("abc123", "127.0.0.1:3030", 7)
        );
        assert_eq!(d.to_string(), "http://abc123@127.0.0.1:3030/7");
        let d: Dsn = "https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42"
            .parse()
            .unwrap();
        assert_eq!(d.public_key.as_str(), "e12d836b15bb49d7bbf99e64295d995b");
        let d: Dsn = "https://k@h/sentry/42".parse().unwrap();
        assert_eq!(
            (d.path.as_str(), d.to_string().as_str()),
            ("/sentry", "https://k@h/sentry/42")
        );
    }

    #[test]
    fn rejects_broken_dsns() {
        for bad in [
            "",
            "abc",
            "ftp://k@h/1",
            "http://h/1",
            "http://k@h",
            "http://k@h/x",
            "http://k@/1",
            "http://@h/1",
        ] {
            assert!(bad.parse::<Dsn>().is_err(), "{bad}");
        }
    }
}
