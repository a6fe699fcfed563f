//! The database on a libSQL server (`SPLAT_DATABASE_URL`, sqld or Turso) instead of a local file: every
//! statement goes over Hrana-over-HTTP, authenticated with a JWT (`SPLAT_DATABASE_TOKEN`).
//!
//! libsql's own TLS (`tls` feature) would bring a second rustls stack; `remote_connector` gives it TCP and
//! rustls 0.23 with the aws-lc-rs provider and the system's roots, as the rest of Splat uses.

use crate::secret::Secret;

/// Where the database server is and the token that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDatabase {
    /// `libsql://host` (https), `https://host[:port]`, or `http://` to this machine only.
    pub url: String,
    pub token: Secret,
}

impl RemoteDatabase {
    /// `SPLAT_DATABASE_URL` and `SPLAT_DATABASE_TOKEN`; none when the URL is unset (a local file then).
    /// A URL that could leak the token (plain http to another machine) or a missing token is refused.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let set = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(url) = set("SPLAT_DATABASE_URL") else {
            return Ok(None);
        };
        let shown = crate::secret::redact_url(&url);
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            anyhow::bail!("SPLAT_DATABASE_URL must be libsql://host, https://host or http://127.0.0.1:port (no user info), got {shown}");
        }
        match scheme.to_ascii_lowercase().as_str() {
            "libsql" | "https" => {}
            // Over plain http anyone on the path could read the token, and with it the database.
            "http" if crate::secret::is_loopback_url(&url) => {}
            "http" => anyhow::bail!(
                "SPLAT_DATABASE_URL must be https:// or libsql:// (http:// only for a server on this machine), got {shown}"
            ),
            _ => anyhow::bail!(
                "SPLAT_DATABASE_URL must be a libsql://, https:// or http:// URL, got {shown}"
            ),
        }
        let token = set("SPLAT_DATABASE_TOKEN").ok_or_else(|| {
            anyhow::anyhow!(
                "SPLAT_DATABASE_URL is set but SPLAT_DATABASE_TOKEN is not (the server's JWT)"
            )
        })?;
        Ok(Some(Self {
            url: url.trim_end_matches('/').to_owned(),
            token: Secret::from(token),
        }))
    }

    /// The libsql client for this server (no request is sent until the first statement).
    #[cfg(feature = "remote-db")]
    pub(super) async fn database(&self) -> libsql::Result<libsql::Database> {
        libsql::Builder::new_remote(self.url.clone(), self.token.expose().to_owned())
            .connector(super::remote_connector::Connector::new())
            .build()
            .await
    }

    /// Without the `remote-db` feature (the fuzz targets' build) there is no client to open.
    #[cfg(not(feature = "remote-db"))]
    pub(super) async fn database(&self) -> libsql::Result<libsql::Database> {
        Err(libsql::Error::Misuse(
            "this build of Splat has no remote database client (the remote-db feature)".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> anyhow::Result<Option<RemoteDatabase>> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        RemoteDatabase::from_lookup(&|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn urls_and_tokens() {
        assert_eq!(parse(&[]).unwrap(), None, "unset: the local file");
        assert_eq!(parse(&[("SPLAT_DATABASE_URL", " ")]).unwrap(), None);
        let token = ("SPLAT_DATABASE_TOKEN", "jwt-secret");
        for ok in [
            "libsql://db-me.turso.io",
            "https://db.example.com:8443/",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            let remote = parse(&[("SPLAT_DATABASE_URL", ok), token])
                .unwrap()
                .unwrap();
            assert_eq!(remote.url, ok.trim_end_matches('/'));
            assert_eq!(remote.token.expose(), "jwt-secret");
            assert!(!format!("{remote:?}").contains("jwt-secret"));
        }
        for (bad, why) in [
            (
                "http://db.example.com",
                "http:// only for a server on this machine",
            ),
            ("http://127.0.0.1@db.example.com", "no user info"),
            ("https://user:pw@db.example.com", "no user info"),
            ("ws://127.0.0.1:8080", "must be a libsql://"),
            ("db.example.com", "must be"),
            ("file:///tmp/splat.db", "must be"),
        ] {
            let err = parse(&[("SPLAT_DATABASE_URL", bad), token])
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains("pw@"),
                "credentials never reach an error: {err}"
            );
        }
        let err = parse(&[("SPLAT_DATABASE_URL", "libsql://db.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SPLAT_DATABASE_TOKEN is not"), "{err}");
    }
}
