//! Keeping credentials out of logs: [`Secret`] for tokens and credential-bearing URLs held in memory, and
//! [`redact_url`] for the places that must name a URL in a log line or an error.

use std::fmt;

/// A token, password or URL whose path or query is a credential (a Slack webhook, an ntfy topic). Its
/// `Debug` and `Display` print `<redacted>`, so a derived `Debug` of whatever holds it stays safe to log;
/// [`Secret::expose`] is the one way to the value, at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `#[serde(with = "crate::secret::exposed")]`: writes and reads a [`Secret`]'s value, for the one place a
/// credential must travel in a document (an alert in the outbox carries the webhooks saved on the settings
/// page to the notify function, which has no database). Opt-in per field: `Secret` itself has no serde.
pub mod exposed {
    use super::Secret;

    pub fn serialize<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(Secret::from)
    }
}

/// `scheme://host[:port]/…` of a URL: enough to tell which service failed, without the user info, path or
/// query that carry its credentials (`https://hooks.slack.com/services/T0/B0/XXXX` → `https://hooks.slack.com/…`).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    match scheme {
        "" => format!("{host}/…"),
        scheme => format!("{scheme}://{host}/…"),
    }
}

/// Whether an `http://` URL names this machine (`localhost`, `127.0.0.0/8`, `[::1]`): the only place a
/// credential may travel over plain http, since no one else is on the path.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _port)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::from("tk_live_123");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
        assert_eq!(s.expose(), "tk_live_123");
    }

    #[test]
    fn urls_lose_credentials_path_and_query() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("https://user:pa55@ntfy.example:8443/topic?auth=tk"),
            "https://ntfy.example:8443/…"
        );
        assert_eq!(redact_url("ntfy.sh/secret-topic"), "ntfy.sh/…");
    }
}
