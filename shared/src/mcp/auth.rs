//! The bearer token in front of `/mcp`: `Authorization: Bearer <MCP_AUTH_TOKEN>`, compared in constant time.
//! Without a configured token every request is refused, and the refusal says how to turn MCP on.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// JSON-RPC code of the refusal (the seed's, in the implementation-defined server error range).
pub const UNAUTHORIZED_CODE: i64 = -32001;

/// Whether `authorization` (the header's value) carries `expected` as a bearer token.
pub fn bearer_matches(authorization: Option<&[u8]>, expected: &str) -> bool {
    let Some(value) = authorization else {
        return false;
    };
    let Some(scheme_end) = value.iter().position(|b| *b == b' ') else {
        return false;
    };
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return false;
    }
    let presented = rest.trim_ascii();
    // `ct_eq` on slices of different lengths is false without comparing contents; the length itself is
    // not a secret worth hiding.
    bool::from(presented.ct_eq(expected.as_bytes()))
}

pub(crate) async fn require_bearer(
    State(token): State<Arc<Option<Secret>>>,
    request: Request,
    next: Next,
) -> Response {
    let message = match Option::as_ref(&token).map(Secret::expose) {
        None => {
            "Unauthorized: MCP is disabled on this server; set MCP_AUTH_TOKEN and connect with \
                 `Authorization: Bearer <token>`"
        }
        Some(expected) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if bearer_matches(presented, expected) {
                return next.run(request).await;
            }
            "Unauthorized: Invalid or missing authentication token (send `Authorization: Bearer <MCP_AUTH_TOKEN>`)"
        }
    };
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": UNAUTHORIZED_CODE, "message": message },
        "id": null,
    });
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::WWW_AUTHENTICATE, "Bearer realm=\"splat\""),
        ],
        Body::from(body.to_string()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::bearer_matches;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(bearer_matches(Some(b"Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some(b"bearer  s3cret "), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer s3cretX"), "s3cret"));
        assert!(!bearer_matches(Some(b"Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"s3cret"), "s3cret"));
        assert!(!bearer_matches(Some(b"Bearer "), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }
}
