//! The columns promoted out of an error event.

use super::{clip, Event, PayloadError};

/// The columns promoted out of an error event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    pub timestamp_us: Option<i64>,
    pub level: String,
    pub platform: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub server_name: Option<String>,
    pub transaction: Option<String>,
    pub title: String,
    pub exception_type: Option<String>,
    pub exception_value: Option<String>,
    pub message: Option<String>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub trace_id: Option<String>,
}

fn first_line(s: &str) -> &str {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
}

impl EventSummary {
    /// The tags an event files under its issue, searchable as `key:value`: the SDK's, then environment,
    /// release, level, `user.id` and `user.email` (as Sentry makes them searchable).
    pub fn issue_tags(&self, e: &Event) -> Vec<(String, String)> {
        let mut tags = e.tags.clone();
        let named = |key: &str, v: &Option<String>| v.clone().map(|v| (key.to_owned(), v));
        tags.extend(named("environment", &self.environment));
        tags.extend(named("release", &self.release));
        tags.push(("level".to_owned(), self.level.clone()));
        if let Some(user) = &e.user {
            tags.extend(named("user.id", &user.id));
            tags.extend(named("user.email", &user.email));
        }
        tags
    }

    pub fn from_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        Ok(Self::from_event(&Event::from_payload(payload)?))
    }

    /// Title as Sentry shows it: `Type: first line of value` of the raised exception, else the message.
    pub fn from_event(e: &Event) -> Self {
        let main = e.main_exception();
        let exception_type = main.and_then(|x| x.ty.clone());
        let exception_value = main.and_then(|x| x.value.clone());
        let title = match (&exception_type, &exception_value, &e.message) {
            (Some(t), Some(v), _) => format!("{t}: {}", first_line(v)),
            (Some(t), None, _) => t.clone(),
            (None, Some(v), _) => first_line(v).to_owned(),
            (None, None, Some(m)) => first_line(m).to_owned(),
            (None, None, None) => "<unlabeled event>".to_owned(),
        };
        Self {
            timestamp_us: e.timestamp_us,
            level: e.level.clone().unwrap_or_else(|| "error".into()),
            platform: e.platform.clone(),
            release: e.release.clone(),
            environment: e.environment.clone(),
            server_name: e.server_name.clone(),
            transaction: e.transaction.clone(),
            title: clip(&title, 1024),
            exception_type: exception_type.map(|s| clip(&s, 512)),
            exception_value: exception_value.map(|s| clip(&s, 4096)),
            message: e.message.as_deref().map(|s| clip(s, 4096)),
            sdk_name: e.sdk_name.clone(),
            sdk_version: e.sdk_version.clone(),
            trace_id: e.trace_id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_as_values_or_list_and_messages() {
        let e = EventSummary::from_payload(br#"{"exception":{"values":[{"type":"KeyError","value":"a"},{"type":"ValueError","value":"bad\nsecond"}]},"level":"warning","timestamp":1700000000.5}"#).unwrap();
        assert_eq!(
            (e.title.as_str(), e.level.as_str(), e.timestamp_us),
            ("ValueError: bad", "warning", Some(1_700_000_000_500_000))
        );
        let e = EventSummary::from_payload(br#"{"exception":[{"type":"Error","value":"boom"}],"timestamp":"2024-01-02T03:04:05Z"}"#).unwrap();
        assert_eq!(e.title, "Error: boom");
        let e =
            EventSummary::from_payload(br#"{"logentry":{"message":"hi %s","formatted":"hi bob"}}"#)
                .unwrap();
        assert_eq!((e.title.as_str(), e.level.as_str()), ("hi bob", "error"));
        let e = EventSummary::from_payload(br#"{"message":"plain"}"#).unwrap();
        assert_eq!(e.title, "plain");
        assert_eq!(
            EventSummary::from_payload(b"{}").unwrap().title,
            "<unlabeled event>"
        );
    }

    #[test]
    fn odd_types_never_fail_an_event() {
        let e = EventSummary::from_payload(br#"{"level":5,"release":1.2,"environment":["x"],"exception":"nope","timestamp":"garbage","sdk":7,"contexts":null}"#).unwrap();
        assert_eq!(
            (
                e.level.as_str(),
                e.release.as_deref(),
                e.environment,
                e.timestamp_us
            ),
            ("5", Some("1.2"), None, None)
        );
        assert!(EventSummary::from_payload(b"[1,2]").is_err());
        assert!(EventSummary::from_payload(b"{").is_err());
    }
}
