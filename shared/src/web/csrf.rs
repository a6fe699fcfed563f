//! CSRF protection for every state change the UI makes (all of them are POSTs).
//!
//! Three checks, each enough on its own against a plain cross-site form post, together a defence in depth:
//! 1. **Fetch metadata**: a browser that sends `Sec-Fetch-Site` must say `same-origin` (or `none`, typed
//!    by the person); `cross-site` and `same-site` are refused.
//! 2. **Origin**: when present it must name the host the request was sent to (or `SPLAT_PUBLIC_URL`).
//! 3. **Double-submit token**: a random token lives in the `splat_csrf` cookie (`SameSite=Strict`,
//!    `HttpOnly`) and every form carries it in a hidden `csrf` field (scripts send `X-CSRF-Token`). The two
//!    must match, compared in constant time. Another site can make a browser send the cookie only
//!    (and with `SameSite=Strict` not even that), never read it to fill in the field.
//!
//! The middleware hands the token to handlers as a request extension ([`CsrfToken`]) and sets the cookie
//! on the response when the request came without one.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::BodyExt;
use subtle::ConstantTimeEq;

use super::error::WebError;
use super::WebState;

pub const COOKIE: &str = "splat_csrf";
pub const FIELD: &str = "csrf";
pub const HEADER: &str = "x-csrf-token";
/// Forms are small; anything bigger is not one of ours.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// This request's token, for hidden form fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrfToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Set by `protect`, which wraps every UI route; missing only if the router is miswired.
        parts
            .extensions
            .get::<CsrfToken>()
            .cloned()
            .ok_or(WebError::Forbidden("missing CSRF token"))
    }
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The value of cookie `name`, from every `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The middleware: checks unsafe requests, passes the token on, sets the cookie when it was missing.
pub async fn protect(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), COOKIE)
        .filter(|t| well_formed(t))
        .map(str::to_owned);
    let https = is_https(req.headers(), state.public_url.as_deref());
    let mut req = req;
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        req = match check(req, existing.as_deref(), state.public_url.as_deref()).await {
            Ok(req) => req,
            Err(e) => return e.into_response(),
        };
    }
    let token = existing.clone().unwrap_or_else(new_token);
    req.extensions_mut().insert(CsrfToken(token.clone()));
    let mut response = next.run(req).await;
    if existing.is_none() {
        let secure = if https { "; Secure" } else { "" };
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
        )) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

pub(crate) fn is_https(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    public_url.is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// Refuses a state change that is cross-site or whose token does not match the cookie; otherwise gives
/// the request back with its body intact for the handler.
async fn check(
    req: Request,
    cookie_token: Option<&str>,
    public_url: Option<&str>,
) -> Result<Request, WebError> {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(WebError::Forbidden(
                "cross-site request refused (Sec-Fetch-Site)",
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null");
        if !same_origin(origin, headers, public_url) {
            return Err(WebError::Forbidden("cross-origin request refused (Origin)"));
        }
    }
    let Some(expected) = cookie_token else {
        return Err(WebError::Forbidden(
            "missing CSRF cookie: reload the page and try again",
        ));
    };
    let header_token = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let bytes = match http_body_util::Limited::new(body, MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(WebError::BadRequest("form too large".into())),
    };
    let sent = header_token.or_else(|| form_field(&bytes, FIELD));
    let matches = sent.is_some_and(|sent| bool::from(sent.as_bytes().ct_eq(expected.as_bytes())));
    if !matches {
        return Err(WebError::Forbidden(
            "missing or wrong CSRF token: reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_field(body: &Bytes, name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `Origin` is `scheme://host[:port]`; it must match the `Host` the browser sent to, or the public URL.
fn same_origin(origin: &str, headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let Some((_, origin_host)) = origin.split_once("://") else {
        return false; // `null` (sandboxed frames, some redirects) and garbage
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok());
    if host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host)) {
        return true;
    }
    public_url.is_some_and(|u| u.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; splat_csrf=tok; b=2"),
        );
        h.insert(header::HOST, HeaderValue::from_static("splat.local:3030"));
        assert_eq!(cookie(&h, COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_origin("http://splat.local:3030", &h, None));
        assert!(!same_origin("http://evil.example", &h, None));
        assert!(!same_origin("null", &h, None));
        assert!(same_origin(
            "https://errors.example.com",
            &h,
            Some("https://errors.example.com")
        ));
        assert!(well_formed(&new_token()));
        assert!(!well_formed("short"));
    }
}
