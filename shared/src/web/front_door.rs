//! Which doors the UI answers at, checked before any page, cookie or token is produced.
//!
//! - **The Host allowlist** ([`HostPolicy`]) stops DNS rebinding: a page on `evil.example` can point its
//!   own name at 127.0.0.1 and then drive a local UI as a same-origin site (its `Origin`, `Sec-Fetch-Site`
//!   and the Host it sends all agree, so the CSRF checks pass). What it cannot change is the name it uses,
//!   so `splat serve` answers UI requests only for `localhost`, IP literals it is reachable at, the host of
//!   `SPLAT_PUBLIC_URL` and those in `SPLAT_ALLOWED_HOSTS`; anything else gets `421 Misdirected Request`.
//!   Ingest (SDKs use any name, no cookies), `/mcp` (bearer token) and `/_health` are other routers.
//! - **The origin secret** (`SPLAT_ORIGIN_SECRET`) closes the side door in AWS: the UI's function URL is
//!   public (Origin Access Control breaks form posts), so CloudFront adds a secret header that the function
//!   checks, and a request sent to the function URL directly is refused.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::WebState;
use crate::secret::Secret;

/// The header CloudFront adds to every request it forwards to the UI's origin.
pub const ORIGIN_SECRET_HEADER: &str = "x-splat-origin-secret";

/// The host names the UI answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Lower-case names without port or trailing dot (`localhost` always among them).
    names: Vec<String>,
    ips: IpRule,
}

#[derive(Debug, Clone)]
enum IpRule {
    /// Loopback addresses and these (the address `splat serve` is bound to).
    LoopbackAnd(Vec<IpAddr>),
    /// Any IP literal: bound to every interface, whichever address a client used is ours. An IP literal
    /// cannot be rebound, so this does not reopen the attack.
    Any,
}

impl Default for HostPolicy {
    /// Loopback only: `localhost` and loopback addresses.
    fn default() -> Self {
        Self::new(None, None, &[])
    }
}

impl HostPolicy {
    /// `localhost`, loopback, the `bound` address (every IP literal when bound to all interfaces), the host
    /// of `public_url` and each of `allowed` (host names, optionally with a port, which is ignored).
    pub fn new(bound: Option<IpAddr>, public_url: Option<&str>, allowed: &[String]) -> Self {
        let mut names = vec!["localhost".to_owned()];
        let public_host = public_url.map(|u| u.split_once("://").map_or(u, |(_, rest)| rest));
        for host in public_host
            .into_iter()
            .chain(allowed.iter().map(String::as_str))
        {
            let host = host.split('/').next().unwrap_or_default();
            if let Some(name) = hostname(host) {
                names.push(name);
            }
        }
        let ips = match bound {
            Some(ip) if ip.is_unspecified() => IpRule::Any,
            bound => IpRule::LoopbackAnd(bound.into_iter().collect()),
        };
        Self { names, ips }
    }

    /// Whether a `Host` (or `X-Forwarded-Host`) value names this server.
    pub fn allows(&self, host: &str) -> bool {
        let Some(name) = hostname(host) else {
            return false;
        };
        if let Ok(ip) = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            return match &self.ips {
                IpRule::Any => true,
                IpRule::LoopbackAnd(bound) => ip.is_loopback() || bound.contains(&ip),
            };
        }
        self.names.contains(&name)
    }
}

/// `Example.COM.:3030` → `example.com`; `[::1]:3030` → `[::1]`. `None` for what no browser would send.
fn hostname(host: &str) -> Option<String> {
    let host = host.trim();
    let name = if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; a port may follow them.
        &host[..=host.find(']')?]
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    ok.then_some(name)
}

/// The middleware in front of every UI route: the origin secret first (when set), then the Host
/// allowlist for `Host` and, when a proxy sent one, `X-Forwarded-Host`.
pub async fn guard(State(state): State<WebState>, req: Request<Body>, next: Next) -> Response {
    if let Some(refused) = without_origin_secret(state.origin_secret.as_ref(), req.headers()) {
        return refused;
    }
    if let Some(policy) = &state.hosts {
        for name in ["host", "x-forwarded-host"] {
            let Some(value) = req.headers().get(name) else {
                continue;
            };
            let host = value.to_str().unwrap_or_default();
            if !policy.allows(host) {
                tracing::warn!(header = name, host = %host.escape_debug(), "UI request for a host not in the allowlist");
                return refusal(
                    StatusCode::MISDIRECTED_REQUEST,
                    "Unknown host name",
                    format!(
                        "This Splat does not answer to the name {host:?}. If that is really its name, \
                         add it to SPLAT_ALLOWED_HOSTS (or set SPLAT_PUBLIC_URL) and restart it."
                    ),
                );
            }
        }
    }
    next.run(req).await
}

/// The 403 for a request that lacks the origin secret, when one is required (the UI's and the sign-in
/// function's door).
pub(crate) fn without_origin_secret(
    secret: Option<&Secret>,
    headers: &HeaderMap,
) -> Option<Response> {
    let secret = secret?;
    (!carries(headers, secret)).then(|| {
        refusal(
            StatusCode::FORBIDDEN,
            "This address is not the way in",
            "Open Splat through its CloudFront address, not its function URL.".into(),
        )
    })
}

fn carries(headers: &HeaderMap, secret: &Secret) -> bool {
    headers
        .get(ORIGIN_SECRET_HEADER)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(secret.expose().as_bytes())))
}

/// A bare page: no form, no token, no cookie, nothing from the database.
fn refusal(status: StatusCode, title: &str, detail: String) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{}</p></body></html>",
        escape(&detail)
    );
    (status, Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_policy_refuses_other_names() {
        let p = HostPolicy::default();
        for ok in [
            "localhost",
            "LOCALHOST:3030",
            "localhost.:80",
            "127.0.0.1:3030",
            "127.8.9.1",
            "[::1]:3030",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:3030",
            "localhost.evil.example",
            "10.0.0.5:3030",
            "",
            "[::1",
            "a b",
            "evil.example\u{0}",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
    }

    #[test]
    fn public_url_allowed_hosts_and_the_bound_address() {
        let p = HostPolicy::new(
            Some("192.168.1.20".parse().unwrap()),
            Some("https://splat.example.com/"),
            &["Tracker.Internal:8080".into()],
        );
        assert!(p.allows("splat.example.com"));
        assert!(p.allows("tracker.internal:3030"));
        assert!(p.allows("192.168.1.20:3030"));
        assert!(!p.allows("192.168.1.21:3030"));
        assert!(!p.allows("example.com"));
        let everywhere = HostPolicy::new(Some("0.0.0.0".parse().unwrap()), None, &[]);
        assert!(everywhere.allows("192.168.1.21:3030"));
        assert!(!everywhere.allows("evil.example:3030"));
    }
}
