//! Tool arguments: lenient reading (integers may come as digit strings), clamping as the seed clamps
//! (`hours` to 1..168, each `limit` to its tool's maximum), the `project` argument (slug, name or id) and
//! the time window (`hours`, positioned by `start_time`/`end_time`).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use crate::store::{IssueStatus, Project, Store};

/// A tool failure the caller should read: bad arguments, unknown ids, nothing to answer from.
#[derive(Debug)]
pub struct ToolError(pub String);

impl ToolError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl From<crate::store::StoreError> for ToolError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(format!("the database could not answer: {e}"))
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

pub type Args = Map<String, Value>;

/// A string argument; absent, null or blank is `None`. Numbers are accepted as their text.
pub fn string(args: &Args, name: &str) -> ToolResult<Option<String>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(ToolError(format!("`{name}` must be a string, got {other}"))),
    }
}

pub fn required_string(args: &Args, name: &str) -> ToolResult<String> {
    string(args, name)?.ok_or_else(|| ToolError(format!("`{name}` is required")))
}

/// An integer argument (a JSON number or a string of digits).
pub fn integer(args: &Args, name: &str) -> ToolResult<Option<i64>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| ToolError(format!("`{name}` must be a whole number, got {n}"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ToolError(format!("`{name}` must be a whole number, got {s:?}"))),
        Some(other) => Err(ToolError(format!(
            "`{name}` must be a whole number, got {other}"
        ))),
    }
}

/// A number argument (a JSON number or a numeric string).
pub fn number(args: &Args, name: &str) -> ToolResult<Option<f64>> {
    let bad = |v: &dyn std::fmt::Display| ToolError(format!("`{name}` must be a number, got {v}"));
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| bad(n)),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| bad(&format!("{s:?}"))),
        Some(other) => Err(bad(other)),
    }
}

/// `tags`: an object of tag key → value (a JSON string of one also works, as some clients send it).
/// Keys are checked as the seed checks them (`[a-zA-Z0-9_.-]+`); values are compared as text.
pub fn tags(args: &Args) -> ToolResult<Vec<(String, String)>> {
    let parsed;
    let map = match args.get("tags") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                parsed = m;
                &parsed
            }
            _ => {
                return Err(ToolError(format!(
                    "`tags` must be an object such as {{\"region\": \"eu\"}}, got {s:?}"
                )))
            }
        },
        Some(other) => {
            return Err(ToolError(format!(
                "`tags` must be an object such as {{\"region\": \"eu\"}}, got {other}"
            )))
        }
    };
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.len() <= 200
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    };
    map.iter()
        .map(|(k, v)| {
            if !key_ok(k) {
                return Err(ToolError(format!(
                    "tag key {k:?} is not valid: keys are letters, digits, `_`, `.` and `-`"
                )));
            }
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                other => {
                    return Err(ToolError(format!(
                        "tag {k:?} must have a string value, got {other}"
                    )))
                }
            };
            Ok((k.clone(), v))
        })
        .collect()
}

pub fn required_integer(args: &Args, name: &str) -> ToolResult<i64> {
    integer(args, name)?.ok_or_else(|| ToolError(format!("`{name}` is required")))
}

/// `limit`: default `default`, clamped to 1..=`max`.
pub fn limit(args: &Args, default: i64, max: i64) -> ToolResult<u32> {
    Ok(integer(args, "limit")?.unwrap_or(default).clamp(1, max) as u32)
}

/// The issue statuses a tool's `status` argument may name; `all` is `None`.
pub fn status(args: &Args, default: Option<IssueStatus>) -> ToolResult<Option<IssueStatus>> {
    match string(args, "status")?.map(|s| s.to_ascii_lowercase()) {
        None => Ok(default),
        Some(s) if s == "all" || s == "any" => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ToolError(format!(
                "`status` must be one of open, resolved, resolved_next_release, ignored, all; got {s:?}"
            ))
        }),
    }
}

/// The project a tool works on: `project` by id, slug or name (case-insensitive); without it, the first
/// project.
pub async fn project(store: &Store, args: &Args) -> ToolResult<Project> {
    let projects = store.list_projects().await?;
    let Some(wanted) = string(args, "project")? else {
        return projects.into_iter().next().ok_or_else(|| {
            ToolError::new("there are no projects yet; create one with `splat project create NAME`")
        });
    };
    find_project(&projects, &wanted).cloned()
}

pub fn find_project<'a>(projects: &'a [Project], wanted: &str) -> ToolResult<&'a Project> {
    if let Ok(id) = wanted.parse::<i64>() {
        if let Some(p) = projects.iter().find(|p| p.id.value() == id) {
            return Ok(p);
        }
    }
    if let Some(p) = projects
        .iter()
        .find(|p| p.slug.eq_ignore_ascii_case(wanted))
    {
        return Ok(p);
    }
    let by_name: Vec<&Project> = projects
        .iter()
        .filter(|p| p.name.eq_ignore_ascii_case(wanted))
        .collect();
    match by_name.as_slice() {
        [one] => Ok(one),
        [] => Err(ToolError(format!(
            "no project {wanted:?}; the projects are: {}",
            slugs(projects)
        ))),
        many => Err(ToolError(format!(
            "{} projects are named {wanted:?}; use a slug: {}",
            many.len(),
            many.iter()
                .map(|p| p.slug.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn slugs(projects: &[Project]) -> String {
    if projects.is_empty() {
        return "(none)".into();
    }
    projects
        .iter()
        .map(|p| format!("{} (id {})", p.slug, p.id.value()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A time window in Unix microseconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_us: i64,
    pub end_us: i64,
}

impl Window {
    pub fn contains(&self, us: i64) -> bool {
        (self.start_us..=self.end_us).contains(&us)
    }
}

/// Longest `hours` window (the seed's clamp).
pub const MAX_HOURS: i64 = 168;

/// The window from `hours` (clamped to 1..=168) and `start_time`/`end_time` (ISO 8601): both ends given
/// win; one end with `hours` spans that many hours from it; `hours` alone ends now. With none of them,
/// `default_hours` (or no window at all).
pub fn window(args: &Args, default_hours: Option<i64>) -> ToolResult<Option<Window>> {
    let hours = integer(args, "hours")?.map(|h| h.clamp(1, MAX_HOURS));
    let start = string(args, "start_time")?
        .map(|s| parse_time(&s, "start_time"))
        .transpose()?;
    let end = string(args, "end_time")?
        .map(|s| parse_time(&s, "end_time"))
        .transpose()?;
    let span = |h: i64| h * crate::model::time::HOUR_US;
    let now = Utc::now().timestamp_micros();
    let w = match (start, end, hours.or(default_hours)) {
        (Some(s), Some(e), _) => Window {
            start_us: s,
            end_us: e,
        },
        (Some(s), None, Some(h)) => Window {
            start_us: s,
            end_us: s + span(h),
        },
        (Some(s), None, None) => Window {
            start_us: s,
            end_us: now,
        },
        (None, Some(e), h) => Window {
            start_us: e - span(h.unwrap_or(24)),
            end_us: e,
        },
        (None, None, Some(h)) => Window {
            start_us: now - span(h),
            end_us: now,
        },
        (None, None, None) => return Ok(None),
    };
    if w.end_us < w.start_us {
        return Err(ToolError::new("`end_time` is before `start_time`"));
    }
    Ok(Some(w))
}

fn parse_time(s: &str, name: &str) -> ToolResult<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_micros());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    Err(ToolError(format!(
        "`{name}` must be an ISO 8601 time such as 2026-11-25T09:00:00Z, got {s:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Args {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn integers_accept_digit_strings_and_limits_clamp() {
        assert_eq!(limit(&args(json!({"limit": "7"})), 20, 100).unwrap(), 7);
        assert_eq!(limit(&args(json!({"limit": 1000})), 20, 100).unwrap(), 100);
        assert_eq!(limit(&args(json!({"limit": -3})), 20, 100).unwrap(), 1);
        assert_eq!(limit(&args(json!({})), 20, 100).unwrap(), 20);
        assert!(limit(&args(json!({"limit": "many"})), 20, 100).is_err());
        assert!(limit(&args(json!({"limit": [1]})), 20, 100).is_err());
    }

    #[test]
    fn numbers_and_tags() {
        assert_eq!(number(&args(json!({"x": "2.5"})), "x").unwrap(), Some(2.5));
        assert_eq!(number(&args(json!({"x": 7})), "x").unwrap(), Some(7.0));
        assert!(number(&args(json!({"x": "slow"})), "x").is_err());
        assert!(number(&args(json!({"x": "NaN"})), "x").is_err());
        let mut t = tags(&args(json!({"tags": {"region": "eu", "n": 3}}))).unwrap();
        t.sort();
        assert_eq!(
            t,
            vec![("n".into(), "3".into()), ("region".into(), "eu".into())]
        );
        let t = tags(&args(json!({"tags": "{\"region\": \"eu\"}"}))).unwrap();
        assert_eq!(t, vec![("region".into(), "eu".into())]);
        assert!(tags(&args(json!({"tags": {"a b": "x"}}))).is_err());
        assert!(tags(&args(json!({"tags": {"k": {"nested": 1}}}))).is_err());
        assert!(tags(&args(json!({"tags": [1]}))).is_err());
        assert!(tags(&args(json!({}))).unwrap().is_empty());
    }

    #[test]
    fn windows() {
        let w = window(&args(json!({"hours": 10_000})), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            w.end_us - w.start_us,
            MAX_HOURS * crate::model::time::HOUR_US
        );
        let w = window(
            &args(json!({"start_time": "2026-11-01T00:00:00Z", "hours": 2})),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(w.end_us - w.start_us, 2 * crate::model::time::HOUR_US);
        assert!(window(&args(json!({})), None).unwrap().is_none());
        assert!(window(&args(json!({"start_time": "yesterday"})), None).is_err());
        assert!(window(
            &args(json!({"start_time": "2026-11-02", "end_time": "2026-11-01"})),
            None
        )
        .is_err());
    }
}
