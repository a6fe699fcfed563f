//! The event page — exception chain, stack trace, breadcrumbs, request, user, tags, contexts, SDK and the
//! raw JSON — and [`EventView`], the display model of a payload that the issue page reuses for its latest
//! event.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::format::{json_block, json_text};
use crate::model::time::Ts;
use crate::model::{Event, Exception, Frame, Stacktrace};
use crate::protocol::EventId;
use crate::store::{Issue, Project, StoredEvent};

use super::feedback::FeedbackSection;
use super::{project_or_404, render, Chrome, WebError, WebResult, WebState};

/// One line of source around a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLine {
    pub lineno: Option<i64>,
    pub code: String,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FrameView {
    pub function: String,
    /// `app/views.py:10:5`, or the module when there is no file.
    pub location: String,
    pub package: Option<String>,
    pub in_app: bool,
    pub source: Vec<SourceLine>,
    pub vars: Vec<(String, String)>,
    /// Shown expanded: the innermost in-app frame (or the innermost frame when none is in-app).
    pub open: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionView {
    pub ty: String,
    pub value: Option<String>,
    pub module: Option<String>,
    /// `generic · unhandled`.
    pub mechanism: Option<String>,
    pub unhandled: bool,
    /// Innermost (where it was raised) first.
    pub frames: Vec<FrameView>,
    /// The minified frames source maps replaced (innermost first), shown on demand.
    pub raw_frames: Vec<FrameView>,
    /// Not the exception that was raised but one of its causes.
    pub is_cause: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreadcrumbView {
    pub time: String,
    pub category: String,
    pub level: String,
    pub message: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RequestView {
    pub method: String,
    pub url: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub data: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub entries: Vec<(String, String)>,
}

/// An event payload, arranged for display. Built leniently from whatever the SDK sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView {
    pub message: Option<String>,
    /// The raised exception first, then its causes.
    pub exceptions: Vec<ExceptionView>,
    pub breadcrumbs: Vec<BreadcrumbView>,
    pub request: Option<RequestView>,
    pub user: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub contexts: Vec<Section>,
    pub sdk: Vec<(String, String)>,
    pub extra: Vec<(String, String)>,
    /// Level, platform, environment, release, server, transaction …: what the header shows.
    pub facts: Vec<(&'static str, String)>,
    pub raw: String,
    /// Retention replaced the payload by its marker ([`crate::store::EXPIRED_PAYLOAD`]).
    pub expired: bool,
    /// What processing corrected (timestamps), as sentences.
    pub processing_notes: Vec<String>,
}

fn frame_view(f: &Frame) -> FrameView {
    let file = f
        .filename
        .clone()
        .or_else(|| f.abs_path.clone())
        .or_else(|| f.module.clone())
        .unwrap_or_else(|| "?".into());
    let location = match (f.lineno, f.colno) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file,
    };
    let mut source = Vec::new();
    if let Some(line) = &f.context_line {
        let start = f.lineno.map(|l| l - f.pre_context.len() as i64);
        let numbered = |i: usize| start.map(|s| s + i as i64);
        for (i, code) in f.pre_context.iter().enumerate() {
            source.push(SourceLine {
                lineno: numbered(i),
                code: code.clone(),
                current: false,
            });
        }
        source.push(SourceLine {
            lineno: f.lineno,
            code: line.clone(),
            current: true,
        });
        for (i, code) in f.post_context.iter().enumerate() {
            source.push(SourceLine {
                lineno: f.lineno.map(|l| l + 1 + i as i64),
                code: code.clone(),
                current: false,
            });
        }
    }
    let vars = match &f.vars {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect(),
        _ => Vec::new(),
    };
    FrameView {
        function: f
            .function
            .clone()
            .or_else(|| f.raw_function.clone())
            .unwrap_or_else(|| "?".into()),
        location,
        package: f.package.clone(),
        in_app: f.in_app == Some(true),
        source,
        vars,
        open: false,
    }
}

fn frames_innermost_first(stack: Option<&Stacktrace>) -> Vec<FrameView> {
    let mut frames: Vec<FrameView> = stack
        .map(|s| s.frames.iter().rev().map(frame_view).collect())
        .unwrap_or_default();
    let open = frames.iter().position(|f| f.in_app).unwrap_or(0);
    if let Some(f) = frames.get_mut(open) {
        f.open = true;
    }
    frames
}

fn exception_view(e: &Exception, is_cause: bool) -> ExceptionView {
    let mechanism = e.mechanism.as_ref().map(|m| {
        let mut parts = vec![m.ty.clone().unwrap_or_else(|| "mechanism".into())];
        match m.handled {
            Some(true) => parts.push("handled".into()),
            Some(false) => parts.push("unhandled".into()),
            None => {}
        }
        parts.join(" · ")
    });
    ExceptionView {
        ty: e.ty.clone().unwrap_or_else(|| "Error".into()),
        value: e.value.clone(),
        module: e.module.clone(),
        mechanism,
        unhandled: e.mechanism.as_ref().and_then(|m| m.handled) == Some(false),
        frames: frames_innermost_first(e.stacktrace.as_ref()),
        raw_frames: e
            .raw_stacktrace
            .iter()
            .flat_map(|s| s.frames.iter().rev().map(frame_view))
            .collect(),
        is_cause,
    }
}

/// Key/value rows of a JSON object; values as one line of text.
fn entries(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), json_text(v))).collect(),
        _ => Vec::new(),
    }
}

impl EventView {
    /// Whether the page needs its side column (tags, user).
    pub fn has_side(&self) -> bool {
        !self.tags.is_empty() || !self.user.is_empty()
    }

    pub fn from_payload(payload: &Value) -> Self {
        let event = Event::from_value(payload);
        let mut exceptions: Vec<ExceptionView> = event
            .exceptions
            .iter()
            .rev()
            .enumerate()
            .map(|(i, e)| exception_view(e, i > 0))
            .collect();
        if exceptions.iter().all(|e| e.frames.is_empty()) {
            // No exception stack (a message, or a native crash): the crashed thread's stack.
            if let Some(thread) = event.threads.iter().find(|t| {
                (t.crashed || t.current)
                    && t.stacktrace.as_ref().is_some_and(|s| !s.frames.is_empty())
            }) {
                let frames = frames_innermost_first(thread.stacktrace.as_ref());
                match exceptions.first_mut() {
                    Some(first) => first.frames = frames,
                    None => exceptions.push(ExceptionView {
                        ty: format!(
                            "Thread {}",
                            thread
                                .name
                                .clone()
                                .or_else(|| thread.id.clone())
                                .unwrap_or_default()
                        ),
                        value: None,
                        module: None,
                        mechanism: None,
                        unhandled: false,
                        frames,
                        raw_frames: Vec::new(),
                        is_cause: false,
                    }),
                }
            }
        }
        let request = event.request.as_ref().map(|r| {
            let raw = payload.get("request");
            RequestView {
                method: r.method.clone().unwrap_or_default(),
                url: r.url.clone().unwrap_or_default(),
                query: raw
                    .and_then(|r| r.get("query_string"))
                    .map(json_text)
                    .filter(|q| !q.is_empty() && q != "null")
                    .unwrap_or_default(),
                headers: r.headers.clone(),
                data: raw
                    .and_then(|r| r.get("data"))
                    .filter(|d| !d.is_null())
                    .map(json_block),
            }
        });
        let mut contexts: Vec<Section> = event
            .contexts
            .iter()
            .map(|(name, v)| Section {
                name: name.clone(),
                entries: entries(Some(v)),
            })
            .collect();
        contexts.sort_by(|a, b| a.name.cmp(&b.name));
        let mut sdk = Vec::new();
        if let Some(Value::Object(map)) = payload.get("sdk") {
            for (k, v) in map {
                let text = match (k.as_str(), v) {
                    ("integrations", Value::Array(items)) => {
                        items.iter().map(json_text).collect::<Vec<_>>().join(", ")
                    }
                    ("packages", Value::Array(items)) => items
                        .iter()
                        .map(|p| {
                            let field = |f: &str| p.get(f).map(json_text).unwrap_or_default();
                            format!("{}@{}", field("name"), field("version"))
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => json_text(v),
                };
                sdk.push((k.clone(), text));
            }
        }
        let facts = [
            ("level", event.level.clone()),
            ("platform", event.platform.clone()),
            ("environment", event.environment.clone()),
            ("release", event.release.clone()),
            ("dist", event.dist.clone()),
            ("server", event.server_name.clone()),
            ("transaction", event.transaction.clone()),
            ("logger", event.logger.clone()),
            ("trace", event.trace_id.clone()),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
        Self {
            message: event.message.clone(),
            exceptions,
            breadcrumbs: event
                .breadcrumbs
                .iter()
                .map(|b| BreadcrumbView {
                    time: b.timestamp_us.map(|t| Ts(t).clock()).unwrap_or_default(),
                    category: b
                        .category
                        .clone()
                        .or_else(|| b.ty.clone())
                        .unwrap_or_else(|| "default".into()),
                    level: b.level.clone().unwrap_or_else(|| "info".into()),
                    message: b.message.clone().unwrap_or_default(),
                    data: b.data.as_ref().map(json_text).unwrap_or_default(),
                })
                .collect(),
            request,
            user: entries(payload.get("user")),
            tags: event.tags.clone(),
            contexts,
            sdk,
            extra: entries(payload.get("extra")),
            facts,
            raw: serde_json::to_string_pretty(payload).unwrap_or_default(),
            expired: payload["splat"]["payload_expired"] == Value::Bool(true),
            processing_notes: crate::format::processing_notes(Some(payload)),
        }
    }
}

#[derive(Template)]
#[template(path = "events/detail.html")]
struct EventPage {
    chrome: Chrome,
    slug: String,
    event: StoredEvent,
    issue: Option<Issue>,
    view: EventView,
    timestamp: Ts,
    received: Ts,
    older: Option<String>,
    newer: Option<String>,
    feedback: FeedbackSection,
    /// The transaction of the event's trace (its root, the earliest), when one is stored.
    transaction: Option<TraceTransaction>,
    /// The log lines of the event's trace around it, and that trace id (empty when it has none).
    trace_logs: Vec<super::logs::LogLine>,
    trace_id: String,
}

/// Where an event's trace id leads.
struct TraceTransaction {
    url: String,
    name: String,
}

/// Event ids in URLs are 32 hex digits; a dashed UUID is accepted and normalised.
fn parse_event_id(s: &str) -> WebResult<String> {
    s.parse::<EventId>()
        .map(|id| id.to_string())
        .map_err(|_| WebError::NotFound("event"))
}

/// The project and one of its events, by the ids in the URL; 404 for either unknown.
pub(super) async fn event_or_404(
    state: &WebState,
    slug: &str,
    event_id: &str,
) -> WebResult<(Project, String, StoredEvent)> {
    let project = project_or_404(state, slug).await?;
    let event_id = parse_event_id(event_id)?;
    let event = state
        .store
        .event(project.id, &event_id)
        .await?
        .ok_or(WebError::NotFound("event"))?;
    Ok((project, event_id, event))
}

/// `GET /projects/{slug}/events/{event_id}`.
pub async fn detail(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, event_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let (project, event_id, event) = event_or_404(&state, &slug, &event_id).await?;
    let (issue, (older, newer)) = match event.issue_id {
        Some(id) => (
            state.store.issue(id).await?,
            state.store.event_neighbours_of(&event).await?,
        ),
        None => (None, (None, None)),
    };
    let feedback = state.store.event_feedback(project.id, &event_id).await?;
    let view = EventView::from_payload(&event.payload);
    let trace = view
        .facts
        .iter()
        .find(|(k, _)| *k == "trace")
        .map(|(_, v)| v.clone());
    let transaction = match trace {
        Some(trace) => state
            .store
            .trace_transactions(project.id, &trace, 1)
            .await?
            .into_iter()
            .next()
            .map(|t| TraceTransaction {
                url: format!("/projects/{}/transactions/{}", project.slug, t.id),
                name: t.name,
            }),
        None => None,
    };
    let trace_id = event.payload["contexts"]["trace"]["trace_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let trace_logs =
        super::logs::trace_lines(&state, project.id.value(), Some(&trace_id), event.timestamp)
            .await?;
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "issues",
            format!("Event {} · {}", &event_id[..8], event.title),
        )
        .await?;
    render(&EventPage {
        feedback: {
            let count = feedback.len() as i64;
            FeedbackSection::new(&project.slug, feedback, count)
        },
        chrome,
        slug: project.slug.clone(),
        view,
        transaction,
        timestamp: Ts(event.timestamp),
        received: Ts(event.received_at),
        event,
        issue,
        older,
        newer,
        trace_logs,
        trace_id,
    })
}

/// `GET /projects/{slug}/events/{event_id}/json`: the payload as stored, for download.
pub async fn raw_json(
    State(state): State<WebState>,
    Path((slug, event_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let (_, event_id, event) = event_or_404(&state, &slug, &event_id).await?;
    let body = serde_json::to_string_pretty(&event.payload).unwrap_or_default();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{event_id}.json\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_innermost_first_with_numbered_context() {
        let view = EventView::from_payload(&serde_json::json!({
            "exception": {"values": [
                {"type": "KeyError", "value": "cause"},
                {"type": "ValueError", "value": "raised", "mechanism": {"type": "generic", "handled": false},
                 "stacktrace": {"frames": [
                    {"function": "outer", "filename": "lib.py", "lineno": 3, "in_app": false},
                    {"function": "inner", "filename": "app.py", "lineno": 10, "colno": 4, "in_app": true,
                     "pre_context": ["a", "b"], "context_line": "boom()", "post_context": ["c"], "vars": {"x": 1, "s": "t"}}
                 ]}}
            ]},
            "user": {"id": 7, "segment": "paid"},
            "request": {"url": "http://h/p", "method": "POST", "query_string": "a=1", "headers": [["Accept", "*/*"]]}
        }));
        let raised = &view.exceptions[0];
        assert_eq!(
            (raised.ty.as_str(), raised.is_cause, raised.unhandled),
            ("ValueError", false, true)
        );
        assert_eq!(raised.mechanism.as_deref(), Some("generic · unhandled"));
        assert_eq!(view.exceptions[1].ty, "KeyError");
        assert!(view.exceptions[1].is_cause);
        let inner = &raised.frames[0];
        assert_eq!(
            (inner.function.as_str(), inner.location.as_str()),
            ("inner", "app.py:10:4")
        );
        assert!(inner.in_app && inner.open && !raised.frames[1].open);
        let lines: Vec<_> = inner.source.iter().map(|l| (l.lineno, l.current)).collect();
        assert_eq!(
            lines,
            vec![
                (Some(8), false),
                (Some(9), false),
                (Some(10), true),
                (Some(11), false)
            ]
        );
        assert_eq!(
            inner.vars,
            vec![("s".into(), "t".into()), ("x".into(), "1".into())]
        );
        assert_eq!(
            view.user,
            vec![("id".into(), "7".into()), ("segment".into(), "paid".into())]
        );
        let request = view.request.unwrap();
        assert_eq!(
            (request.method.as_str(), request.query.as_str()),
            ("POST", "a=1")
        );
    }
}
