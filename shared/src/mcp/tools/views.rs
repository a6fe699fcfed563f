//! The pieces of answers several tools share, as types: each tool's `structuredContent` is one of its
//! own answer types serialized, and the `outputSchema` it declares is derived from that same type, so
//! the two cannot drift. An `Option` field is always written (as null when absent) and so is required.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::mcp::args::Window;
use crate::mcp::format::{code, iso, line};
use crate::model::{Breadcrumb, Event, Frame};
use crate::store::{EndpointStats, EventListItem, Issue, Project, RecentEvent, TransactionSummary};

/// An object of anything, as the SDK sent it (contexts, measurements, a query pattern).
pub type Object = Map<String, Value>;

#[derive(Serialize, JsonSchema)]
pub struct ProjectView {
    pub id: i64,
    pub slug: String,
    pub name: String,
}

impl From<&Project> for ProjectView {
    fn from(p: &Project) -> Self {
        Self {
            id: p.id.value(),
            slug: p.slug.clone(),
            name: p.name.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct WindowView {
    pub start: String,
    pub end: String,
}

impl From<&Window> for WindowView {
    fn from(w: &Window) -> Self {
        Self {
            start: iso(w.start_us),
            end: iso(w.end_us),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct IssueView {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub culprit: Option<String>,
    pub status: &'static str,
    pub level: String,
    pub platform: Option<String>,
    pub exception_type: Option<String>,
    pub count: i64,
    pub users: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub regressed: bool,
    pub last_event_id: Option<String>,
}

impl From<&Issue> for IssueView {
    fn from(i: &Issue) -> Self {
        Self {
            id: i.id,
            project_id: i.project_id.value(),
            title: i.title.clone(),
            culprit: i.culprit.clone(),
            status: i.status.as_str(),
            level: i.level.clone(),
            platform: i.platform.clone(),
            exception_type: i.exception_type.clone(),
            count: i.times_seen,
            users: i.users_seen,
            first_seen: iso(i.first_seen),
            last_seen: iso(i.last_seen),
            first_release: i.first_release.clone(),
            last_release: i.last_release.clone(),
            regressed: i.regressed_at.is_some(),
            last_event_id: i.last_event_id.clone(),
        }
    }
}

/// An event as lists show it.
#[derive(Serialize, JsonSchema)]
pub struct EventItemView {
    pub event_id: String,
    pub timestamp: String,
    pub title: String,
    pub level: String,
    pub release: Option<String>,
    pub environment: Option<String>,
}

impl From<&EventListItem> for EventItemView {
    fn from(e: &EventListItem) -> Self {
        Self {
            event_id: e.event_id.clone(),
            timestamp: iso(e.timestamp),
            title: e.title.clone(),
            level: e.level.clone(),
            release: e.release.clone(),
            environment: e.environment.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct FrameView {
    pub function: Option<String>,
    pub module: Option<String>,
    pub filename: Option<String>,
    pub lineno: Option<i64>,
    pub colno: Option<i64>,
    pub in_app: bool,
    pub context_line: Option<String>,
    pub pre_context: Vec<String>,
    pub post_context: Vec<String>,
    pub vars: Option<Value>,
}

impl From<&Frame> for FrameView {
    fn from(f: &Frame) -> Self {
        Self {
            function: f.function.clone().or_else(|| f.raw_function.clone()),
            module: f.module.clone(),
            filename: f.filename.clone().or_else(|| f.abs_path.clone()),
            lineno: f.lineno,
            colno: f.colno,
            in_app: f.in_app.unwrap_or(false),
            context_line: f.context_line.clone(),
            pre_context: f.pre_context.clone(),
            post_context: f.post_context.clone(),
            vars: f.vars.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct ExceptionView {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub value: Option<String>,
    pub module: Option<String>,
    pub handled: Option<bool>,
    pub frames: Vec<FrameView>,
}

#[derive(Serialize, JsonSchema)]
pub struct BreadcrumbView {
    pub timestamp: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub category: Option<String>,
    pub level: Option<String>,
    pub message: Option<String>,
    pub data: Option<Value>,
}

impl From<&Breadcrumb> for BreadcrumbView {
    fn from(b: &Breadcrumb) -> Self {
        Self {
            timestamp: b.timestamp_us.map(iso),
            ty: b.ty.clone(),
            category: b.category.clone(),
            level: b.level.clone(),
            message: b.message.clone(),
            data: b.data.clone(),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct RequestView {
    pub url: Option<String>,
    pub method: Option<String>,
    pub query_string: Option<String>,
    /// `[name, value]` pairs, in the order sent.
    pub headers: Vec<(String, String)>,
}

#[derive(Serialize, JsonSchema)]
pub struct UserView {
    pub id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct SdkView {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// The parts of an event `get_event` and `get_investigation_context` show.
#[derive(Serialize, JsonSchema)]
pub struct EventView {
    pub level: Option<String>,
    pub platform: Option<String>,
    pub release: Option<String>,
    pub environment: Option<String>,
    pub server_name: Option<String>,
    pub transaction: Option<String>,
    pub message: Option<String>,
    pub trace_id: Option<String>,
    pub exceptions: Vec<ExceptionView>,
    pub breadcrumbs: Vec<BreadcrumbView>,
    pub request: Option<RequestView>,
    pub user: Option<UserView>,
    pub tags: BTreeMap<String, String>,
    pub contexts: Object,
    pub sdk: SdkView,
}

impl From<&Event> for EventView {
    fn from(event: &Event) -> Self {
        let exceptions = event
            .exceptions
            .iter()
            .map(|e| ExceptionView {
                ty: e.ty.clone(),
                value: e.value.clone(),
                module: e.module.clone(),
                handled: e.mechanism.as_ref().and_then(|m| m.handled),
                frames: e
                    .stacktrace
                    .as_ref()
                    .map(|s| s.frames.iter().map(FrameView::from).collect())
                    .unwrap_or_default(),
            })
            .collect();
        Self {
            level: event.level.clone(),
            platform: event.platform.clone(),
            release: event.release.clone(),
            environment: event.environment.clone(),
            server_name: event.server_name.clone(),
            transaction: event.transaction.clone(),
            message: event.message.clone(),
            trace_id: event.trace_id.clone(),
            exceptions,
            breadcrumbs: event.breadcrumbs.iter().map(BreadcrumbView::from).collect(),
            request: event.request.as_ref().map(|r| RequestView {
                url: r.url.clone(),
                method: r.method.clone(),
                query_string: r.query_string.clone(),
                headers: r.headers.clone(),
            }),
            user: event.user.as_ref().map(|u| UserView {
                id: u.id.clone(),
                email: u.email.clone(),
                username: u.username.clone(),
                ip_address: u.ip_address.clone(),
            }),
            tags: text_map(&event.tags),
            contexts: event.contexts.clone(),
            sdk: SdkView {
                name: event.sdk_name.clone(),
                version: event.sdk_version.clone(),
            },
        }
    }
}

/// Key-value pairs as an object (a repeated key keeps its last value).
pub fn text_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

/// The id the transaction lists show: the event id, or a streamed segment's root span id.
pub fn tx_id(t: &TransactionSummary) -> &str {
    t.event_id.as_deref().unwrap_or(&t.span_id)
}

/// A transaction as lists show it.
#[derive(Serialize, JsonSchema)]
pub struct TransactionView {
    pub id: String,
    pub row_id: i64,
    pub event_id: Option<String>,
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub http_method: Option<String>,
    pub http_status: Option<i64>,
    pub duration_ms: Option<f64>,
    pub timestamp: String,
    pub start: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub db_time_ms: Option<f64>,
    pub query_count: Option<i64>,
    pub has_n_plus_one: bool,
    pub source: String,
}

impl From<&TransactionSummary> for TransactionView {
    fn from(t: &TransactionSummary) -> Self {
        Self {
            id: tx_id(t).to_owned(),
            row_id: t.id,
            event_id: t.event_id.clone(),
            trace_id: t.trace_id.clone(),
            span_id: t.span_id.clone(),
            name: t.name.clone(),
            op: t.op.clone(),
            status: t.status.clone(),
            http_method: t.http_method.clone(),
            http_status: t.http_status,
            duration_ms: t.duration_ms,
            timestamp: iso(t.end_us),
            start: t.start_us.map(iso),
            environment: t.environment.clone(),
            release: t.release.clone(),
            db_time_ms: t.db_time_ms,
            query_count: t.query_count,
            has_n_plus_one: t.has_n_plus_one,
            source: t.source.clone(),
        }
    }
}

/// Figures: the stats, their derived shares, and where the percentiles come from.
#[derive(Serialize, JsonSchema)]
pub struct StatsView {
    #[serde(flatten)]
    pub stats: EndpointStats,
    pub n_plus_one_pct: f64,
    pub error_rate_pct: f64,
    /// `exact`, or `hourly sketches, about ±1%`.
    pub percentiles: &'static str,
    /// The figures come from at most this many transaction rows, the newest (absent: from all of them).
    pub capped_at_rows: Option<u32>,
}

/// An error event of a trace.
#[derive(Serialize, JsonSchema)]
pub struct TraceEventView {
    pub event_id: String,
    pub issue_id: Option<i64>,
    pub timestamp: String,
    pub title: String,
    pub level: String,
    pub environment: Option<String>,
    pub release: Option<String>,
}

impl From<&RecentEvent> for TraceEventView {
    fn from(e: &RecentEvent) -> Self {
        Self {
            event_id: e.event_id.clone(),
            issue_id: e.issue_id,
            timestamp: iso(e.timestamp),
            title: e.title.clone(),
            level: e.level.clone(),
            environment: e.environment.clone(),
            release: e.release.clone(),
        }
    }
}

/// An error event of a trace as a list line.
pub fn trace_event_line(e: &RecentEvent) -> String {
    format!(
        "{} · {} · {} — event `{}`{}",
        iso(e.timestamp),
        e.level,
        code(&line(&e.title, 200)),
        e.event_id,
        e.issue_id
            .map(|i| format!(" · issue #{i}"))
            .unwrap_or_default()
    )
}
