//! The tools' argument types, from which `tools/list` derives each `inputSchema`. The tools read the
//! values leniently through [`crate::mcp::args`] (a number may come as a digit string, a blank as
//! absent), so these types describe and are never built; `call` refuses any argument a tool's type does
//! not declare, so a tool cannot read a name its schema does not list.

// Never built, only described: see above.
#![allow(dead_code)]

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use crate::mcp::args::MAX_HOURS;

/// Schema-only argument kinds: what clients may send (the lenient readers accept numbers as text).
macro_rules! kind {
    ($(#[$doc:meta] $name:ident = $schema:tt;)*) => {$(
        #[$doc]
        pub struct $name;
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    )*};
}

kind! {
    /// A whole number, or a string of one.
    Int = { "type": ["integer", "string"] };
    /// A number, or a string of one.
    Num = { "type": ["number", "string"] };
    /// A project's slug, name or id.
    ProjectRef = { "type": ["string", "integer"] };
    /// Tag key → value, or that object as a JSON string.
    TagsArg = { "type": ["object", "string"], "additionalProperties": { "type": ["string", "number", "boolean"] } };
    /// An issue status, or `all`.
    StatusArg = { "type": "string", "enum": ["open", "resolved", "resolved_next_release", "ignored", "all"] };
    /// How a search orders issues.
    SortArg = { "type": "string", "enum": ["last_seen", "first_seen", "count"] };
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(JsonSchema)]
pub struct WindowArgs {
    /// Only the last N hours (1..168, clamped); with start_time or end_time, the window's length
    #[schemars(range(min = 1, max = MAX_HOURS))]
    hours: Option<Int>,
    /// Window start, ISO 8601 (e.g. 2026-11-25T09:00:00Z)
    start_time: Option<String>,
    /// Window end, ISO 8601 (default: now)
    end_time: Option<String>,
}

/// The narrowing both issue lists take.
#[derive(JsonSchema)]
pub struct IssueFilterArgs {
    /// Only issues seen in this environment
    environment: Option<String>,
    /// Only issues seen in this release
    release: Option<String>,
    /// Only issues of this level (error, warning, fatal, …)
    level: Option<String>,
    /// Project slug, name or id (default: every project, each item naming its own)
    project: Option<ProjectRef>,
    #[schemars(flatten)]
    window: WindowArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RecentIssuesArgs {
    /// Issue status (default open)
    #[schemars(extend("default" = "open"))]
    status: Option<StatusArg>,
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
    #[schemars(flatten)]
    filter: IssueFilterArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchIssuesArgs {
    /// Sentry's search syntax: `is:unresolved|resolved|ignored|regressed`, `level:error`, `environment:production`, `release:1.4.2`, `user.email:x@y.z`, `user.id:42`, any tag as `key:value` (`browser:Firefox`, quoted when it has spaces, `key:[a,b]` for either), `firstSeen:-24h` / `lastSeen:+7d` (also `>24h`, `<7d`, `>2026-01-31`), `!` to negate a term; other words and "quoted phrases" are matched (as prefixes, all of them) against titles, messages, exception types and values, and frame functions and files
    query: Option<String>,
    /// Issue status (default all)
    #[schemars(extend("default" = "all"))]
    status: Option<StatusArg>,
    /// Only issues with exactly this exception type
    exception_type: Option<String>,
    #[schemars(extend("default" = "last_seen"))]
    sort: Option<SortArg>,
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
    #[schemars(flatten)]
    filter: IssueFilterArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IssueArgs {
    /// The issue's number (as in `Issue #12`)
    issue_id: Int,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct IssueEventsArgs {
    /// The issue's number (as in `Issue #12`)
    issue_id: Int,
    /// How many to return (default 10, at most 50; larger values are clamped)
    #[schemars(range(min = 1, max = 50), extend("default" = 10))]
    limit: Option<Int>,
    #[schemars(flatten)]
    window: WindowArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EventArgs {
    /// Sentry event id (32 hex digits, dashes allowed)
    event_id: String,
    /// Project slug, name or id (default: every project)
    project: Option<ProjectRef>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ReleasesArgs {
    /// Project slug, name or id (default: every project, each item naming its own)
    project: Option<ProjectRef>,
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ProjectArgs {
    /// Project slug, name or id (default: every project, each item naming its own)
    project: Option<ProjectRef>,
}

/// What every performance tool reads: project, environment and the window (`hours` default 24,
/// `time_range_hours` its seed name).
#[derive(JsonSchema)]
pub struct PerfScopeArgs {
    /// Project slug, name or id (default: every project, at most 20, each answered in turn)
    project: Option<ProjectRef>,
    /// Only transactions from this environment
    environment: Option<String>,
    /// Only the last N hours (default 24, 1..168, clamped); with start_time or end_time, the window's length
    #[schemars(range(min = 1, max = MAX_HOURS))]
    hours: Option<Int>,
    /// Window start, ISO 8601 (e.g. 2026-11-25T09:00:00Z)
    start_time: Option<String>,
    /// Window end, ISO 8601 (default: now)
    end_time: Option<String>,
    /// Same as `hours` (the name older clients use)
    #[schemars(range(min = 1, max = MAX_HOURS))]
    time_range_hours: Option<Int>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransactionStatsArgs {
    /// Narrow the figures to this endpoint (transaction name; a unique substring also works)
    endpoint: Option<String>,
    /// How many to return (default 10, at most 50; larger values are clamped)
    #[schemars(range(min = 1, max = 50), extend("default" = 10))]
    limit: Option<Int>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EndpointSummaryArgs {
    /// The endpoint (transaction name, e.g. `GET /checkout` or `UsersController#show`); a unique substring also works
    endpoint: String,
    /// Only transactions of this release (figures are then computed exactly from transaction rows)
    release: Option<String>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EndpointTimeseriesArgs {
    /// The endpoint (transaction name, e.g. `GET /checkout` or `UsersController#show`); a unique substring also works
    endpoint: String,
    /// Only transactions of this release (figures are then computed exactly from transaction rows)
    release: Option<String>,
    /// Split the window into about this many buckets of whole hours (4..168, clamped); default one bucket per hour
    #[schemars(range(min = 4, max = MAX_HOURS))]
    buckets: Option<Int>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NPlusOneArgs {
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SlowTransactionsArgs {
    /// Only transactions at least this long, in milliseconds (default 1000)
    #[schemars(range(min = 0), extend("default" = 1000))]
    min_duration_ms: Option<Num>,
    /// Only transactions at most this long, in milliseconds
    #[schemars(range(min = 0))]
    max_duration_ms: Option<Num>,
    /// Only transactions that answered this HTTP status (e.g. 500)
    #[schemars(range(min = 100, max = 599))]
    http_status: Option<Int>,
    /// Only requests with this HTTP method (GET, POST, …; any case)
    http_method: Option<String>,
    /// Only transactions with all of these tags, e.g. {"region": "eu"} (keys: letters, digits, `_`, `.`, `-`; looks through the slowest 5000 candidates)
    tags: Option<TagsArg>,
    /// Only endpoints whose name contains this (case-insensitive)
    endpoint: Option<String>,
    /// Only transactions of this release
    release: Option<String>,
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransactionsByEndpointArgs {
    /// The endpoint (transaction name, e.g. `GET /checkout` or `UsersController#show`); a unique substring also works
    endpoint: String,
    /// Only transactions of this release
    release: Option<String>,
    /// How many to return (default 20, at most 100; larger values are clamped)
    #[schemars(range(min = 1, max = 100), extend("default" = 20))]
    limit: Option<Int>,
    /// Skip this many (paging: the answer gives next_offset)
    #[schemars(range(min = 0), extend("default" = 0))]
    offset: Option<Int>,
    #[schemars(flatten)]
    scope: PerfScopeArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CompareArgs {
    /// The endpoint (transaction name, e.g. `GET /checkout` or `UsersController#show`); a unique substring also works
    endpoint: String,
    /// Compare this release (before) …
    release_a: Option<String>,
    /// … with this release (after); both sides are computed exactly from transaction rows, at most 10,000 each
    release_b: Option<String>,
    /// Same as release_a
    before_release: Option<String>,
    /// Same as release_b
    after_release: Option<String>,
    /// Or a time (ISO 8601, e.g. a deploy): the hours_before hours before it against the hours_after hours after it, from the hourly rollups
    at: Option<String>,
    /// Or: the end of the before window (ISO 8601)
    before_timestamp: Option<String>,
    /// … and the start of the after window (ISO 8601)
    after_timestamp: Option<String>,
    /// Length of the before window in hours (default 24, at most 168)
    #[schemars(range(min = 1, max = MAX_HOURS), extend("default" = 24))]
    hours_before: Option<Int>,
    /// Length of the after window in hours (default 24, at most 168)
    #[schemars(range(min = 1, max = MAX_HOURS), extend("default" = 24))]
    hours_after: Option<Int>,
    /// Only transactions from this environment
    environment: Option<String>,
    /// Project slug, name or id (default: every project, at most 20, each answered in turn)
    project: Option<ProjectRef>,
    /// Release comparisons only (default: the last 90 days): Only the last N hours (1..168, clamped); with start_time or end_time, the window's length
    #[schemars(range(min = 1, max = MAX_HOURS))]
    hours: Option<Int>,
    /// Release comparisons only (default: the last 90 days): Window start, ISO 8601 (e.g. 2026-11-25T09:00:00Z)
    start_time: Option<String>,
    /// Release comparisons only (default: the last 90 days): Window end, ISO 8601 (default: now)
    end_time: Option<String>,
}

/// A transaction named by id, or a trace's root.
#[derive(JsonSchema)]
pub struct TransactionRefArgs {
    /// The transaction's event id (32 hex digits, dashes allowed) or its root span id (16 hex digits), as the transaction lists show it (alone it is looked for among each project's newest 50,000 transactions)
    transaction_id: Option<String>,
    /// Or a trace id (32 hex digits): the trace's first transaction, its root; with transaction_id, where to find that one (any age)
    trace_id: Option<String>,
    /// Project slug, name or id (default: every project)
    project: Option<ProjectRef>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransactionArgs {
    #[schemars(flatten)]
    transaction: TransactionRefArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransactionSpansArgs {
    #[schemars(flatten)]
    transaction: TransactionRefArgs,
    /// Only spans whose op starts with this (e.g. `db`)
    op_filter: Option<String>,
    /// How many to return (default 200, at most 1000; larger values are clamped)
    #[schemars(range(min = 1, max = 1000), extend("default" = 200))]
    limit: Option<Int>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TraceArgs {
    /// The trace id (32 hex digits), as get_event, get_transaction and get_investigation_context show it
    trace_id: String,
    /// How many to return (default 100, at most 1000; larger values are clamped)
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: Option<Int>,
    /// Only this project (slug, name or id; default: every project)
    project: Option<ProjectRef>,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SearchLogsArgs {
    /// Text the body or an attribute value (sentry.* left out) contains, case-insensitive for ASCII; under 3 characters, only the newest 100,000 records are looked through
    query: Option<String>,
    /// Only these levels, comma-separated (trace, debug, info, warn, error, fatal)
    level: Option<String>,
    /// Only the records of this trace (32 hex digits)
    trace_id: Option<String>,
    /// How many to return (default 100, at most 1000; larger values are clamped)
    #[schemars(range(min = 1, max = 1000), extend("default" = 100))]
    limit: Option<Int>,
    /// Project slug, name or id (default: every project, at most 20, each answered in turn)
    project: Option<ProjectRef>,
    /// The window (default: the last 24 hours)
    #[schemars(flatten)]
    window: WindowArgs,
}

#[derive(JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LogArgs {
    /// The record's id (32 hex digits), as search_logs and get_trace_logs list it
    log_id: String,
    /// Only this project (slug, name or id; default: every project)
    project: Option<ProjectRef>,
}
