//! User feedback, in its two wire shapes: the `feedback` item (an event whose `contexts.feedback` holds
//! the message, what `capture_feedback` sends) and the legacy `user_report` item (`{event_id, name, email,
//! comments}`). Both become one [`Feedback`]; every field is read leniently and clipped, since it is text a
//! stranger typed into a form.

use serde::Deserialize;
use serde_json::Value;

use super::{clip, payload_value, PayloadError};
use crate::protocol::{lenient, EventId};

/// The longest message kept (Sentry caps feedback messages at 4096 characters; a little room for more).
const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Names, emails and URLs.
const MAX_FIELD_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub message: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
    /// The event the user was reacting to, when the SDK knew it.
    pub associated_event_id: Option<EventId>,
    /// When the SDK says it was written.
    pub timestamp_us: Option<i64>,
}

#[derive(Deserialize)]
struct UserReport {
    #[serde(default, deserialize_with = "lenient::event_id")]
    event_id: Option<EventId>,
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    email: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    comments: Option<String>,
}

fn field(s: Option<String>) -> Option<String> {
    s.map(|s| clip(s.trim(), MAX_FIELD_BYTES))
        .filter(|s| !s.is_empty())
}

fn text(v: &Value, key: &str) -> Option<String> {
    field(lenient::string(v.get(key).cloned().unwrap_or(Value::Null)).unwrap_or(None))
}

impl Feedback {
    /// A `feedback` item: an event payload with `contexts.feedback`. The user's own `user` context
    /// fills a missing name or email, as Sentry does.
    pub fn from_feedback_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        let v = payload_value(payload)?;
        let context = &v["contexts"]["feedback"];
        let user = &v["user"];
        Ok(Self {
            message: text(context, "message")
                .map(|m| clip(&m, MAX_MESSAGE_BYTES))
                .unwrap_or_default(),
            name: text(context, "name")
                .or_else(|| text(user, "name"))
                .or_else(|| text(user, "username")),
            email: text(context, "contact_email").or_else(|| text(user, "email")),
            url: text(context, "url"),
            associated_event_id: text(context, "associated_event_id").and_then(|s| s.parse().ok()),
            timestamp_us: v
                .get("timestamp")
                .and_then(|t| lenient::timestamp(t.clone()).unwrap_or(None)),
        })
    }

    /// A legacy `user_report` item: `{event_id, name, email, comments}`.
    pub fn from_user_report(payload: &[u8]) -> Result<Self, PayloadError> {
        let report: UserReport = serde_json::from_value(payload_value(payload)?)
            .map_err(|e| PayloadError(e.to_string()))?;
        Ok(Self {
            message: report
                .comments
                .map(|m| clip(m.trim(), MAX_MESSAGE_BYTES))
                .unwrap_or_default(),
            name: field(report.name),
            email: field(report.email),
            url: None,
            associated_event_id: report.event_id,
            timestamp_us: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes_leniently() {
        let f = Feedback::from_feedback_payload(
            br#"{"timestamp": 1700000000.5, "user": {"email": "u@example.com"},
                "contexts": {"feedback": {"message": " It broke <b>here</b> ", "name": 7,
                "associated_event_id": "0123456789abcdef0123456789abcdef", "url": "https://shop/cart"}}}"#,
        )
        .unwrap();
        assert_eq!(f.message, "It broke <b>here</b>");
        assert_eq!(f.name.as_deref(), Some("7"));
        assert_eq!(f.email.as_deref(), Some("u@example.com"));
        assert_eq!(
            f.associated_event_id.map(|id| id.to_string()).as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(f.timestamp_us, Some(1_700_000_000_500_000));

        let r = Feedback::from_user_report(
            br#"{"event_id": "not an id", "name": "", "email": ["x"], "comments": "slow"}"#,
        )
        .unwrap();
        assert_eq!(
            (r.message.as_str(), r.name, r.email, r.associated_event_id),
            ("slow", None, None, None)
        );
        assert!(Feedback::from_user_report(b"[1]").is_err());
        let long = format!(r#"{{"comments": "{}"}}"#, "x".repeat(100_000));
        assert!(
            Feedback::from_user_report(long.as_bytes())
                .unwrap()
                .message
                .len()
                < 17_000
        );
    }
}
