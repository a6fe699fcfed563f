//! A cron check-in as SDKs send it (a `check_in` envelope item) and as the HTTP check-in endpoint builds
//! it from its query string:
//!
//! ```text
//! {"check_in_id":"4ac1…","monitor_slug":"nightly-backup","status":"in_progress|ok|error",
//!  "duration":12.5,"environment":"production","release":"1.0",
//!  "monitor_config":{"schedule":{"type":"crontab","value":"0 3 * * *"},"timezone":"Europe/Berlin",
//!                    "checkin_margin":5,"max_runtime":30,"failure_issue_threshold":1,"recovery_threshold":1}}
//! ```
//!
//! Pure: no storage. Ingest parses every check-in to refuse a bad one with a reason (400), the processor
//! parses it again to store it. Unknown fields are ignored; numbers may arrive as strings.

use serde_json::{Map, Value};

mod schedule;

pub use schedule::{IntervalUnit, Schedule, ScheduleError};

/// What a check-in says about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInStatus {
    InProgress,
    Ok,
    Error,
}

impl CheckInStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "in_progress" => Some(Self::InProgress),
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

/// How a monitor expects its job to run: created or updated by any check-in that carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorConfig {
    pub schedule: Schedule,
    /// Minutes after the expected time before a check-in counts as missed (at least 1).
    pub checkin_margin: Option<i64>,
    /// Minutes a run may stay in progress before it counts as overrunning.
    pub max_runtime: Option<i64>,
    /// Consecutive failed runs before an issue opens.
    pub failure_issue_threshold: Option<i64>,
    /// Consecutive ok runs before the monitor's issues resolve.
    pub recovery_threshold: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckIn {
    /// 32 lowercase hex digits (a UUID without dashes); generated when the client sent none.
    pub check_in_id: String,
    pub monitor_slug: String,
    pub status: CheckInStatus,
    /// Seconds the run took, as the client measured it.
    pub duration_secs: Option<f64>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub config: Option<MonitorConfig>,
}

/// Why a check-in is refused; the message is the 400's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckInError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("`{0}` is required")]
    Missing(&'static str),
    #[error("`{field}` is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("invalid monitor_config: {0}")]
    Config(#[from] ScheduleError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> CheckInError {
    CheckInError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Longest slug kept, as Sentry's (longer ones are cut).
const MAX_SLUG: usize = 50;
const MAX_TEXT: usize = 200;

impl CheckIn {
    /// Parses a `check_in` item's payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, CheckInError> {
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| invalid("payload", e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(CheckInError::NotAnObject);
        };
        Self::from_object(&object)
    }

    /// Reads a check-in from its JSON fields (the HTTP endpoint merges its query string into these).
    pub fn from_object(o: &Map<String, Value>) -> Result<Self, CheckInError> {
        let slug = text(o, "monitor_slug")?.ok_or(CheckInError::Missing("monitor_slug"))?;
        let monitor_slug = slugify(&slug)
            .ok_or_else(|| invalid("monitor_slug", "needs at least one letter or digit"))?;
        let status = text(o, "status")?.ok_or(CheckInError::Missing("status"))?;
        let status = CheckInStatus::parse(&status).ok_or_else(|| {
            invalid(
                "status",
                format!("{status:?} is not in_progress, ok or error"),
            )
        })?;
        let check_in_id = match text(o, "check_in_id")? {
            Some(id) => uuid::Uuid::try_parse(&id)
                .map_err(|_| invalid("check_in_id", format!("{id:?} is not a UUID")))?,
            None => uuid::Uuid::new_v4(),
        }
        .simple()
        .to_string();
        let duration_secs = match number(o, "duration")? {
            Some(d) if d.is_finite() && d >= 0.0 => Some(d),
            Some(d) => {
                return Err(invalid(
                    "duration",
                    format!("{d} is not a number of seconds"),
                ))
            }
            None => None,
        };
        let config = match o.get("monitor_config") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => Some(config(c)?),
            Some(_) => return Err(invalid("monitor_config", "expected an object")),
        };
        Ok(Self {
            check_in_id,
            monitor_slug,
            status,
            duration_secs,
            environment: text(o, "environment")?.map(|e| clip(&e)),
            release: text(o, "release")?.map(|r| clip(&r)),
            config,
        })
    }
}

fn config(c: &Map<String, Value>) -> Result<MonitorConfig, CheckInError> {
    let Some(Value::Object(s)) = c.get("schedule") else {
        return Err(CheckInError::Missing("monitor_config.schedule"));
    };
    let ty = text(s, "type")?.ok_or(CheckInError::Missing("monitor_config.schedule.type"))?;
    let value = match s.get("value") {
        Some(Value::String(v)) => v.trim().to_owned(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(CheckInError::Missing("monitor_config.schedule.value")),
    };
    let unit = text(s, "unit")?;
    let timezone = text(c, "timezone")?;
    let schedule = Schedule::parse(&ty, &value, unit.as_deref(), timezone.as_deref())?;
    let minutes = |field: &'static str| -> Result<Option<i64>, CheckInError> {
        match number(c, field)? {
            None => Ok(None),
            Some(n) if n.fract() == 0.0 && (0.0..=1_000_000.0).contains(&n) => Ok(Some(n as i64)),
            Some(n) => Err(invalid(
                field,
                format!("{n} is not a whole number of minutes"),
            )),
        }
    };
    Ok(MonitorConfig {
        schedule,
        checkin_margin: minutes("checkin_margin")?,
        max_runtime: minutes("max_runtime")?,
        failure_issue_threshold: minutes("failure_issue_threshold")?,
        recovery_threshold: minutes("recovery_threshold")?,
    })
}

/// A string field; blank and null are absent, numbers are read as their text.
fn text(o: &Map<String, Value>, field: &'static str) -> Result<Option<String>, CheckInError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid(field, "expected a string")),
    }
}

/// A number field; digit strings (a query string's values) count too.
fn number(o: &Map<String, Value>, field: &'static str) -> Result<Option<f64>, CheckInError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid(field, format!("{s:?} is not a number"))),
        Some(_) => Err(invalid(field, "expected a number")),
    }
}

/// Sentry's slug rule: lowercase letters, digits, `-` and `_`; anything else becomes `-`, runs of it
/// collapse, and the result is at most 50 characters. `None` when nothing is left.
pub fn slugify(raw: &str) -> Option<String> {
    let mut slug = String::new();
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(MAX_SLUG).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    slug.chars()
        .any(|c| c.is_ascii_alphanumeric())
        .then_some(slug)
}

fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

/// Defaults of an unset `monitor_config` field, as Sentry's: minutes of margin and of runtime, and runs in a
/// row that open and resolve an issue.
pub const DEFAULT_MARGIN_MINUTES: i64 = 1;
pub const DEFAULT_MAX_RUNTIME_MINUTES: i64 = 30;
pub const DEFAULT_THRESHOLD: i64 = 1;

/// What became of one run, as stored: what the client said (`in_progress`, `ok`, `error`), or what the
/// evaluation concluded (`missed`: a slot without a check-in; `timeout`: in progress past `max_runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    InProgress,
    Ok,
    Error,
    Missed,
    Timeout,
}

impl RunStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_progress" => Some(Self::InProgress),
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            "missed" => Some(Self::Missed),
            "timeout" => Some(Self::Timeout),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Missed => "missed",
            Self::Timeout => "timeout",
        }
    }

    /// What the monitor is, when this is its latest run: the word the UI and MCP show.
    pub fn monitor_state(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Ok => "ok",
            Self::Error => "failed",
            Self::Missed => "missed",
            Self::Timeout => "overrun",
        }
    }

    /// Counts toward `failure_issue_threshold`.
    pub fn is_failure(self) -> bool {
        match self {
            Self::Error | Self::Missed | Self::Timeout => true,
            Self::InProgress | Self::Ok => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_python_sdk_sends() {
        let c = CheckIn::from_payload(br#"{"check_in_id":"4AC1A8B6-0C39-4B3A-9D9F-6E1F8B3C2D10","monitor_slug":"Nightly Backup",
            "status":"ok","duration":12.5,"environment":"production","release":"1.0",
            "monitor_config":{"schedule":{"type":"crontab","value":"0 3 * * *"},"timezone":"Europe/Berlin",
            "checkin_margin":5,"max_runtime":30,"failure_issue_threshold":2,"recovery_threshold":"1"}}"#)
            .unwrap();
        assert_eq!(c.check_in_id, "4ac1a8b60c394b3a9d9f6e1f8b3c2d10");
        assert_eq!(c.monitor_slug, "nightly-backup");
        assert_eq!(c.status, CheckInStatus::Ok);
        assert_eq!(c.duration_secs, Some(12.5));
        let config = c.config.unwrap();
        assert_eq!(
            (
                config.checkin_margin,
                config.max_runtime,
                config.failure_issue_threshold,
                config.recovery_threshold
            ),
            (Some(5), Some(30), Some(2), Some(1))
        );
    }

    #[test]
    fn refuses_bad_check_ins_with_a_reason() {
        let err = |json: &str| {
            CheckIn::from_payload(json.as_bytes())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(r#"{"status":"ok"}"#), "`monitor_slug` is required");
        assert_eq!(err(r#"{"monitor_slug":"a"}"#), "`status` is required");
        assert!(
            err(r#"{"monitor_slug":"a","status":"done"}"#).contains("not in_progress, ok or error")
        );
        assert!(
            err(r#"{"monitor_slug":"a","status":"ok","check_in_id":"x"}"#).contains("not a UUID")
        );
        assert!(err(r#"{"monitor_slug":"!!","status":"ok"}"#).contains("monitor_slug"));
        assert!(err(r#"{"monitor_slug":"a","status":"ok","duration":-1}"#).contains("duration"));
        assert!(err(r#"{"monitor_slug":"a","status":"ok","monitor_config":{"schedule":{"type":"crontab","value":"61 * * * *"}}}"#)
            .starts_with("invalid monitor_config"));
        assert!(err(r#"{"monitor_slug":"a","status":"ok","monitor_config":{"schedule":{"type":"crontab","value":"* * * * *"},"timezone":"Mars/Olympus"}}"#)
            .contains("Mars/Olympus"));
        assert_eq!(err("[1]"), "not a JSON object");
    }

    #[test]
    fn a_check_in_without_an_id_gets_one() {
        let c = CheckIn::from_payload(br#"{"monitor_slug":"a","status":"in_progress"}"#).unwrap();
        assert_eq!(c.check_in_id.len(), 32);
        assert_eq!(c.config, None);
    }

    #[test]
    fn slugs_follow_sentry() {
        assert_eq!(
            slugify("My Job: nightly!").as_deref(),
            Some("my-job-nightly")
        );
        assert_eq!(slugify("a_b-c").as_deref(), Some("a_b-c"));
        assert_eq!(slugify(&"x".repeat(80)).map(|s| s.len()), Some(50));
        assert_eq!(slugify("--"), None);
    }
}
