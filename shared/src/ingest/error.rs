//! Every reason ingest refuses a request, and the one place that turns it into a Relay-style response:
//! a status, `X-Sentry-Error`, and `{"detail": …, "causes": […]}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::budget::OverBudget;
use crate::protocol::auth::AuthError;
use crate::protocol::decode::DecodeError;
use crate::protocol::store::StoreBodyError;
use crate::protocol::EnvelopeError;

use super::rate_limit::RateLimits;

#[derive(Debug, thiserror::Error)]
pub enum BadStoreRequest {
    #[error("invalid project id or slug in the URL")]
    BadProjectId,
    #[error("empty request body")]
    EmptyBody,
    #[error("request body exceeds {0} bytes")]
    BodyTooLarge(usize),
    #[error("failed to read the request body: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("unknown public key")]
    UnknownKey,
    #[error("this key is disabled")]
    DisabledKey,
    #[error("the key does not belong to project {0}")]
    WrongProject(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("invalid envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    StoreBody(#[from] StoreBodyError),
    #[error("envelope exceeds size limits: {0}")]
    Overflow(String),
    #[error("envelope contains more than one {0} item")]
    DuplicateItem(&'static str),
    #[error("invalid {item} item: {reason}")]
    InvalidItem { item: String, reason: String },
    #[error("rate limit exceeded: {}", .0.header())]
    RateLimited(RateLimits),
    #[error("the event could not be queued, try again")]
    QueueUnavailable(String),
    #[error("the queue is full, try again later")]
    QueueFull(String),
    #[error("project configuration is unavailable, try again")]
    ConfigUnavailable(String),
    #[error("{}", super::keys::LookupError::NotPublished)]
    KeysNotPublished,
    #[error("ingest is holding as many request bodies as its memory allows, try again shortly")]
    Busy,
    #[error("request needs more than the {0}-byte ingest memory budget")]
    OverMemoryBudget(usize),
}

/// Seconds a client is asked to wait when ingest is at its memory budget: bodies in flight are gone by then.
const BUSY_RETRY_AFTER_SECS: u32 = 2;
/// Seconds to wait when the keys could not be read: a passing failure of the database or the bucket.
const CONFIG_RETRY_AFTER_SECS: u32 = 5;
/// Seconds to wait when no key is published yet: someone has to create a project first.
const NOT_PUBLISHED_RETRY_AFTER_SECS: u32 = 60;

impl From<OverBudget> for BadStoreRequest {
    fn from(why: OverBudget) -> Self {
        match why {
            OverBudget::Busy => Self::Busy,
            OverBudget::TooLarge(total) => Self::OverMemoryBudget(total),
        }
    }
}

impl BadStoreRequest {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadProjectId
            | Self::EmptyBody
            | Self::BodyRead(_)
            | Self::Envelope(_)
            | Self::StoreBody(_)
            | Self::DuplicateItem(_)
            | Self::InvalidItem { .. } => StatusCode::BAD_REQUEST,
            Self::Auth(AuthError::Missing | AuthError::Malformed(_)) => StatusCode::UNAUTHORIZED,
            Self::Auth(
                AuthError::Multiple | AuthError::DsnMismatch | AuthError::UnsupportedVersion(_),
            ) => StatusCode::BAD_REQUEST,
            Self::UnknownKey | Self::DisabledKey | Self::WrongProject(_) => StatusCode::FORBIDDEN,
            Self::Decode(DecodeError::Unsupported(_) | DecodeError::Stacked(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Decode(DecodeError::TooLarge(_))
            | Self::BodyTooLarge(_)
            | Self::Overflow(_)
            | Self::OverMemoryBudget(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Decode(DecodeError::Corrupt(..)) => StatusCode::BAD_REQUEST,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::QueueUnavailable(_)
            | Self::QueueFull(_)
            | Self::ConfigUnavailable(_)
            | Self::KeysNotPublished
            | Self::Busy
            | Self::Decode(DecodeError::Refused) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Header values must be visible ASCII; a reason quoting hostile input is cleaned before it goes out.
fn header_safe(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect();
    HeaderValue::from_str(&clean).unwrap_or(HeaderValue::from_static("invalid request"))
}

impl IntoResponse for BadStoreRequest {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.to_string();
        // Shedding load is expected under a flood, and a new stack is refused until its first project:
        // logging each such refusal as an error would flood the log too.
        if status.is_server_error() && !matches!(self, Self::Busy | Self::KeysNotPublished) {
            tracing::error!(error = ?self, "ingest failed");
        } else {
            tracing::debug!(%detail, status = status.as_u16(), "ingest rejected a request");
        }
        let mut causes = Vec::new();
        let mut source = std::error::Error::source(&self);
        while let Some(e) = source {
            causes.push(e.to_string());
            source = e.source();
        }
        let body = serde_json::json!({ "detail": detail, "causes": causes });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert("x-sentry-error", header_safe(&detail));
        let retry_after = match self {
            Self::Busy | Self::Decode(DecodeError::Refused) => Some(BUSY_RETRY_AFTER_SECS),
            Self::ConfigUnavailable(_) => Some(CONFIG_RETRY_AFTER_SECS),
            Self::KeysNotPublished => Some(NOT_PUBLISHED_RETRY_AFTER_SECS),
            _ => None,
        };
        if let Some(secs) = retry_after {
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        if let Self::RateLimited(limits) = &self {
            headers.insert("retry-after", HeaderValue::from(limits.retry_after_secs()));
            headers.insert("x-sentry-rate-limits", header_safe(&limits.header()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_relay() {
        assert_eq!(BadStoreRequest::Auth(AuthError::Missing).status(), 401);
        assert_eq!(BadStoreRequest::Auth(AuthError::Multiple).status(), 400);
        assert_eq!(BadStoreRequest::UnknownKey.status(), 403);
        assert_eq!(
            BadStoreRequest::Decode(DecodeError::Stacked("gzip, br".into())).status(),
            415
        );
        assert_eq!(
            BadStoreRequest::Decode(DecodeError::TooLarge(1)).status(),
            413
        );
        assert_eq!(
            BadStoreRequest::QueueUnavailable("down".into()).status(),
            503
        );
    }

    #[test]
    fn rate_limit_response_carries_both_headers() {
        use super::super::rate_limit::RateLimit;
        use crate::protocol::DataCategory;
        use crate::store::QuotaScope;
        let r = BadStoreRequest::RateLimited(RateLimits(vec![
            RateLimit {
                categories: vec![DataCategory::Error, DataCategory::Transaction],
                scope: QuotaScope::Key,
                retry_after_secs: 42,
            },
            RateLimit {
                categories: vec![DataCategory::Span],
                scope: QuotaScope::Project,
                retry_after_secs: 42,
            },
        ]))
        .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "42");
        assert_eq!(
            r.headers()["x-sentry-rate-limits"],
            "42:error;transaction:key:key_quota, 42:span:project:project_quota"
        );
        assert!(r.headers()["x-sentry-error"]
            .to_str()
            .unwrap()
            .starts_with("rate limit exceeded"));
    }

    #[test]
    fn hostile_reasons_stay_valid_headers() {
        let r = BadStoreRequest::InvalidItem {
            item: "event".into(),
            reason: "bad \u{0}\n\u{e9}".into(),
        }
        .into_response();
        assert_eq!(r.headers()["x-sentry-error"], "invalid event item: bad ???");
    }

    #[test]
    fn a_full_memory_budget_is_a_503_to_retry_and_a_request_over_all_of_it_a_413() {
        let busy = BadStoreRequest::from(OverBudget::Busy).into_response();
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()["retry-after"], "2");
        let whole = BadStoreRequest::from(OverBudget::TooLarge(1 << 20)).into_response();
        assert_eq!(whole.status(), 413);
        assert!(whole.headers().get("retry-after").is_none());
    }

    #[test]
    fn keys_not_yet_published_or_unreadable_are_503s_to_retry() {
        let none = BadStoreRequest::KeysNotPublished.into_response();
        assert_eq!(none.status(), 503);
        assert_eq!(none.headers()["retry-after"], "60");
        assert!(none.headers()["x-sentry-error"]
            .to_str()
            .unwrap()
            .contains("splat project create"));
        let down = BadStoreRequest::ConfigUnavailable("s3 timed out".into()).into_response();
        assert_eq!(down.status(), 503);
        assert_eq!(down.headers()["retry-after"], "5");
    }
}
