//! Every way Relay lets an SDK authenticate, and the rule that they must not disagree.
//!
//! Sources, in Relay's order: `X-Sentry-Auth: Sentry sentry_key=…`, `Authorization: Sentry …`,
//! `Authorization: Basic base64(key:)`, the query string (`?sentry_key=…`, what JavaScript SDKs use to avoid a
//! CORS preflight), and on the envelope endpoint the envelope header `dsn`. More than one request-level source
//! is rejected; the envelope `dsn` may accompany one only if it names the same key.

use base64::Engine;
use http::HeaderMap;

use super::{Dsn, ProjectRef, PublicKey};

/// Where the key came from; kept for error messages and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthSource {
    SentryHeader,
    AuthorizationSentry,
    AuthorizationBasic,
    Query,
    EnvelopeDsn,
    /// The key as a path segment (the cron check-in endpoint).
    Path,
}

/// What the request says about who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub public_key: PublicKey,
    pub source: AuthSource,
    /// `sentry_client`, falling back to the User-Agent.
    pub client: Option<String>,
    /// The project named by an envelope `dsn` header (by id or slug), checked against the key's.
    pub dsn_project: Option<ProjectRef>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing authorization information")]
    Missing,
    #[error("multiple authorization payloads detected")]
    Multiple,
    #[error("bad authorization header: {0}")]
    Malformed(&'static str),
    #[error("the envelope dsn names a different key than the request")]
    DsnMismatch,
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(String),
}

/// Relay handles protocol versions up to 8; 7 is current.
const MAX_PROTOCOL_VERSION: u32 = 8;

/// Credentials from the request line and headers (everything but the envelope body).
pub fn from_request(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Credentials>, AuthError> {
    let mut found: Option<Credentials> = None;
    let mut add = |creds: Credentials| {
        if found.replace(creds).is_some() {
            return Err(AuthError::Multiple);
        }
        Ok(())
    };
    if let Some(value) = header_str(headers, "x-sentry-auth")? {
        add(from_sentry_pairs(
            strip_prefix_ci(value, "sentry ").ok_or(AuthError::Malformed(
                "X-Sentry-Auth must start with 'Sentry '",
            ))?,
            AuthSource::SentryHeader,
        )?)?;
    }
    if let Some(value) = header_str(headers, "authorization")? {
        if let Some(pairs) = strip_prefix_ci(value, "sentry ") {
            add(from_sentry_pairs(pairs, AuthSource::AuthorizationSentry)?)?;
        } else if let Some(b64) = strip_prefix_ci(value, "basic ") {
            add(from_basic(b64.trim())?)?;
        }
        // Other schemes (Bearer for a proxy, say) are not Sentry auth and are ignored, as in Relay.
    }
    if let Some(query) = query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        if pairs.iter().any(|(k, _)| k.starts_with("sentry_")) {
            add(from_pairs(pairs.into_iter(), AuthSource::Query)?)?;
        }
    }
    if let Some(creds) = found.as_mut() {
        if creds.client.is_none() {
            creds.client = header_str(headers, "user-agent")
                .ok()
                .flatten()
                .map(str::to_owned);
        }
    }
    Ok(found)
}

/// Folds the envelope's `dsn` header into the request credentials: it may authenticate alone, or confirm them.
pub fn with_envelope_dsn(
    request: Option<Credentials>,
    dsn: Option<&str>,
) -> Result<Credentials, AuthError> {
    let dsn = match dsn {
        Some(raw) => Some(
            Dsn::key_and_project(raw)
                .map_err(|_| AuthError::Malformed("envelope dsn header is not a DSN"))?,
        ),
        None => None,
    };
    match (request, dsn) {
        (Some(creds), None) => Ok(creds),
        (Some(mut creds), Some((public_key, project))) => {
            if public_key != creds.public_key {
                return Err(AuthError::DsnMismatch);
            }
            creds.dsn_project = Some(project);
            Ok(creds)
        }
        (None, Some((public_key, project))) => Ok(Credentials {
            public_key,
            source: AuthSource::EnvelopeDsn,
            client: None,
            dsn_project: Some(project),
        }),
        (None, None) => Err(AuthError::Missing),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| AuthError::Malformed("header is not visible ASCII")),
    }
}

fn strip_prefix_ci<'a>(value: &'a str, prefix: &str) -> Option<&'a str> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &value[prefix.len()..])
}

fn from_sentry_pairs(pairs: &str, source: AuthSource) -> Result<Credentials, AuthError> {
    let pairs = pairs.split(',').filter_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        Some((k.trim().to_owned(), v.trim().to_owned()))
    });
    from_pairs(pairs, source)
}

fn from_pairs(
    pairs: impl Iterator<Item = (String, String)>,
    source: AuthSource,
) -> Result<Credentials, AuthError> {
    let (mut key, mut client) = (None, None);
    for (k, v) in pairs {
        match k.as_str() {
            "sentry_key" => key = Some(v),
            "sentry_client" => client = Some(v),
            "sentry_version" => check_version(&v)?,
            _ => {}
        }
    }
    let key = key.ok_or(AuthError::Malformed("sentry_key is missing"))?;
    let public_key = key.parse().map_err(AuthError::Malformed)?;
    Ok(Credentials {
        public_key,
        source,
        client,
        dsn_project: None,
    })
}

fn from_basic(b64: &str) -> Result<Credentials, AuthError> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| AuthError::Malformed("basic credentials are not base64"))?;
    let text = String::from_utf8(decoded)
        .map_err(|_| AuthError::Malformed("basic credentials are not UTF-8"))?;
    let key = text.split(':').next().unwrap_or_default();
    let public_key = key.parse().map_err(AuthError::Malformed)?;
    Ok(Credentials {
        public_key,
        source: AuthSource::AuthorizationBasic,
        client: None,
        dsn_project: None,
    })
}

fn check_version(v: &str) -> Result<(), AuthError> {
    match v.parse::<u32>() {
        Ok(n) if n <= MAX_PROTOCOL_VERSION => Ok(()),
        _ => Err(AuthError::UnsupportedVersion(v.chars().take(16).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn key_of(
        h: &[(&'static str, &str)],
        q: Option<&str>,
    ) -> Result<Option<(String, AuthSource)>, AuthError> {
        from_request(&headers(h), q).map(|c| c.map(|c| (c.public_key.to_string(), c.source)))
    }

    #[test]
    fn every_source_relay_accepts() {
        let k = |s| Ok(Some(("abc".to_string(), s)));
        assert_eq!(
            key_of(
                &[(
                    "x-sentry-auth",
                    "Sentry sentry_version=7, sentry_client=sentry.python/2.0, sentry_key=abc"
                )],
                None
            ),
            k(AuthSource::SentryHeader)
        );
        assert_eq!(
            key_of(
                &[("x-sentry-auth", "sentry sentry_key=abc,sentry_secret=x")],
                None
            ),
            k(AuthSource::SentryHeader)
        );
        assert_eq!(
            key_of(&[("authorization", "Sentry sentry_key=abc")], None),
            k(AuthSource::AuthorizationSentry)
        );
        // base64("abc:") — the password is ignored.
        assert_eq!(
            key_of(&[("authorization", "Basic YWJjOg==")], None),
            k(AuthSource::AuthorizationBasic)
        );
        assert_eq!(
            key_of(
                &[],
                Some("sentry_key=abc&sentry_version=7&sentry_client=sentry.javascript.node%2F11")
            ),
            k(AuthSource::Query)
        );
        assert_eq!(key_of(&[], Some("foo=bar")), Ok(None));
        assert_eq!(key_of(&[("authorization", "Bearer zzz")], None), Ok(None));
    }

    #[test]
    fn client_falls_back_to_user_agent() {
        let c = from_request(
            &headers(&[("user-agent", "sentry.rust/0.49")]),
            Some("sentry_key=abc"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.client.as_deref(), Some("sentry.rust/0.49"));
        let c = from_request(
            &headers(&[("user-agent", "ua")]),
            Some("sentry_key=abc&sentry_client=js"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.client.as_deref(), Some("js"));
    }

    #[test]
    fn two_sources_are_rejected_even_when_equal() {
        assert_eq!(
            key_of(
                &[("x-sentry-auth", "Sentry sentry_key=abc")],
                Some("sentry_key=abc")
            ),
            Err(AuthError::Multiple)
        );
        assert_eq!(
            key_of(
                &[
                    ("x-sentry-auth", "Sentry sentry_key=abc"),
                    ("authorization", "Sentry sentry_key=abc")
                ],
                None
            ),
            Err(AuthError::Multiple)
        );
    }

    #[test]
    fn malformed_credentials() {
        assert!(matches!(
            key_of(&[("x-sentry-auth", "Bearer abc")], None),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            key_of(&[("x-sentry-auth", "Sentry sentry_version=7")], None),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            key_of(&[("authorization", "Basic !!!")], None),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            key_of(&[], Some("sentry_key=a%20b")),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            key_of(&[], Some("sentry_key=abc&sentry_version=9")),
            Err(AuthError::UnsupportedVersion(_))
        ));
    }

    #[test]
    fn envelope_dsn_authenticates_alone_or_must_agree() {
        let dsn = Some("https://abc@example.com/42");
        let c = with_envelope_dsn(None, dsn).unwrap();
        assert_eq!(
            (c.public_key.as_str(), c.source, c.dsn_project),
            ("abc", AuthSource::EnvelopeDsn, Some("42".parse().unwrap()))
        );
        let req = from_request(&HeaderMap::new(), Some("sentry_key=abc")).unwrap();
        assert_eq!(
            with_envelope_dsn(req.clone(), dsn).unwrap().source,
            AuthSource::Query
        );
        assert_eq!(
            with_envelope_dsn(req.clone(), Some("https://other@example.com/42")),
            Err(AuthError::DsnMismatch)
        );
        assert_eq!(with_envelope_dsn(None, None), Err(AuthError::Missing));
        assert!(matches!(
            with_envelope_dsn(req, Some("garbage")),
            Err(AuthError::Malformed(_))
        ));
    }
}
