//! Logs: the project's logs page (level, text in the body or attribute values, trace and time window; live while
//! it shows the newest records), the log lines of a trace on the event and transaction pages, and
//! `/projects/{slug}/traces/{trace_id}`, where a log line's trace leads: the trace's first transaction, or
//! its logs when no transaction of it is stored. Bodies and attributes were sent by an application: the
//! templates escape them.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::model::log::LEVELS;
use crate::model::time::{Ts, HOUR_US};
use crate::store::{LogQuery, StoredLog};

use super::{project_or_404, render, Chrome, WebResult, WebState};

/// Lines a page of the logs page lists.
const PAGE: u32 = 200;

/// Lines of one trace the event and transaction pages show.
const TRACE_LINES: u32 = 100;

/// How far from an event its trace's lines are looked for (the "few seconds around it", widened to
/// cover a request that ran long).
const AROUND_EVENT_US: i64 = 5 * 60 * 1_000_000;

/// One log line, ready to show.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub time: Ts,
    pub level: String,
    pub body: String,
    pub trace_id: Option<String>,
    /// Attribute name and value as text, `sentry.*` left out (they repeat the SDK's facts).
    pub attributes: Vec<(String, String)>,
}

impl LogLine {
    fn new(l: StoredLog) -> Self {
        let attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&l.attributes).unwrap_or_default();
        Self {
            time: Ts(l.timestamp),
            attributes: attributes
                .into_iter()
                .filter(|(k, _)| !k.starts_with("sentry."))
                .map(|(k, v)| {
                    let value = match &v["value"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k, value)
                })
                .collect(),
            level: l.level,
            body: l.body,
            trace_id: l.trace_id,
        }
    }
}

impl LogLine {
    /// The trace id's first 8 digits, as a link shows it.
    pub fn trace_short(&self) -> &str {
        let t = self.trace_id.as_deref().unwrap_or_default();
        t.get(..8).unwrap_or(t)
    }
}

/// The lines of `trace_id` within [`AROUND_EVENT_US`] of `at_us`, for the event and transaction pages.
pub async fn trace_lines(
    state: &WebState,
    project: i64,
    trace_id: Option<&str>,
    at_us: i64,
) -> WebResult<Vec<LogLine>> {
    let Some(trace) = trace_id.filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    let around = (at_us - AROUND_EVENT_US, at_us + AROUND_EVENT_US);
    let logs = state
        .store
        .trace_logs(project, trace, Some(around), TRACE_LINES)
        .await?;
    Ok(logs.into_iter().map(LogLine::new).collect())
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    /// The lowest level shown (`warn`: warnings and worse); empty for all.
    level: Option<String>,
    q: Option<String>,
    trace: Option<String>,
    /// The window, in hours back from now.
    hours: Option<String>,
    /// The page after the line `timestamp-rowid`.
    before: Option<String>,
}

/// The windows the page offers, in hours.
const WINDOWS: [(i64, &str); 4] = [
    (1, "Last hour"),
    (24, "Last 24 hours"),
    (168, "Last 7 days"),
    (720, "Last 30 days"),
];

#[derive(Template)]
#[template(path = "logs/list.html")]
struct LogsPage {
    chrome: Chrome,
    slug: String,
    lines: Vec<LogLine>,
    level: String,
    levels: Vec<&'static str>,
    q: String,
    trace: String,
    hours: i64,
    windows: &'static [(i64, &'static str)],
    /// The next page's URL, when there are more lines.
    older: Option<String>,
    /// Whether this is the newest page (the one live updates refresh).
    newest: bool,
}

/// `GET /projects/{slug}/logs`.
pub async fn list(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
    Query(query): Query<LogsQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let level = query.level.clone().unwrap_or_default();
    let q = query.q.clone().unwrap_or_default().trim().to_owned();
    let trace: String = query
        .trace
        .clone()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let hours = query
        .hours
        .as_deref()
        .and_then(|h| h.parse().ok())
        .filter(|h| WINDOWS.iter().any(|(w, _)| w == h))
        .unwrap_or(24);
    let before = query.before.as_deref().and_then(|b| b.parse().ok());
    let now = chrono::Utc::now().timestamp_micros();
    let found = state
        .store
        .search_logs(
            project.id.value(),
            &LogQuery {
                levels: at_or_above(&level),
                text: Some(q.clone()).filter(|q| !q.is_empty()),
                trace_id: Some(trace.clone()).filter(|t| !t.is_empty()),
                since_us: Some(now - hours * HOUR_US),
                until_us: None,
                before,
                limit: PAGE + 1,
            },
        )
        .await?;
    let older = (found.len() > PAGE as usize)
        .then(|| found.get(PAGE as usize - 1))
        .flatten()
        .map(|(_, id)| {
            let params = [
                ("level", level.as_str()),
                ("q", q.as_str()),
                ("trace", trace.as_str()),
                ("hours", &hours.to_string()),
                ("before", &id.to_string()),
            ];
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
                .finish();
            format!("/projects/{slug}/logs?{query}")
        });
    let lines = found
        .into_iter()
        .take(PAGE as usize)
        .map(|(log, _)| LogLine::new(log))
        .collect();
    let mut chrome = chrome
        .for_project(&state, &project, "logs", format!("Logs · {}", project.name))
        .await?;
    // Live: the newest page refreshes its lines when a record arrives.
    chrome.live_url = format!("/live.json?project={}&logs=1", project.slug);
    chrome.stamp = state.store.logs_stamp(project.id.value()).await?;
    render(&LogsPage {
        chrome,
        slug: project.slug.clone(),
        lines,
        level,
        levels: LEVELS.iter().map(|(name, _)| *name).collect(),
        q,
        trace,
        hours,
        windows: &WINDOWS,
        older,
        newest: before.is_none(),
    })
}

/// `level` and every level above it; nothing (every level) for an unknown one.
fn at_or_above(level: &str) -> Vec<String> {
    match LEVELS.iter().position(|(name, _)| *name == level) {
        Some(i) => LEVELS[i..].iter().map(|(n, _)| (*n).to_owned()).collect(),
        None => Vec::new(),
    }
}

/// `GET /projects/{slug}/traces/{trace_id}`: the trace's first transaction, else its logs.
pub async fn trace(
    State(state): State<WebState>,
    Path((slug, trace_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let trace: String = trace_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase();
    let first = state
        .store
        .trace_transactions(project.id, &trace, 1)
        .await?;
    let to = match first.first() {
        Some(t) => format!("/projects/{slug}/transactions/{}", t.id),
        None => format!("/projects/{slug}/logs?hours=720&trace={trace}"),
    };
    Ok(Redirect::to(&to).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_filter_keeps_that_level_and_worse() {
        assert_eq!(at_or_above("warn"), ["warn", "error", "fatal"]);
        assert_eq!(at_or_above(""), Vec::<String>::new());
        assert_eq!(at_or_above("nonsense"), Vec::<String>::new());
    }
}
