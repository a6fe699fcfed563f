//! One transaction: where its time went (db / view / other), its HTTP request and context, tags and
//! measurements, the query patterns the N+1 detector saw, the span waterfall read back from the lake,
//! the error events of the same trace, and JSON (`.json`) and CSV (`.csv`, the spans) exports.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::format::{json_text, ms, opt_ms, processing_notes};
use crate::lake::SpanFact;
use crate::model::tag_pairs;
use crate::model::time::{us_to_ms, Ts};
use crate::store::{RecentEvent, TransactionDetail};

use super::perf_chart::{duration_class, status_class};
use super::{project_or_404, render, Chrome, WebError, WebResult, WebState};

/// How many errors of the trace the page lists.
const TRACE_EVENTS: u32 = 20;

/// The colour family of a span op, as the seed's: db, http, view (view/template/render/ui), cache,
/// queue, other.
pub fn op_family(op: &str) -> &'static str {
    let op = op.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| op.starts_with(p));
    if starts(&["db", "sql"]) {
        "db"
    } else if starts(&["http"]) {
        "http"
    } else if starts(&["view", "template", "render", "ui."]) {
        "view"
    } else if starts(&["cache"]) {
        "cache"
    } else if starts(&["queue"]) {
        "queue"
    } else {
        "other"
    }
}

/// A row of the waterfall: the bar's place and width in percent of the transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct WaterfallView {
    pub span_id: String,
    pub op: String,
    pub family: &'static str,
    pub description: String,
    pub depth: i32,
    /// `depth` capped for the indentation classes.
    pub indent: i32,
    pub left: f64,
    pub width: f64,
    pub offset: String,
    pub duration: String,
    pub duration_class: &'static str,
    pub status: Option<String>,
    pub tooltip: String,
}

/// The waterfall's rows, in `sequence` order: `left = (start - root start) / total`, clamped to 0..100,
/// and `width = duration / total`, clamped to 0.25..100 so even an instant span shows.
pub fn waterfall(spans: &[SpanFact], root_start_us: i64, total_ms: f64) -> Vec<WaterfallView> {
    let total = total_ms.max(f64::MIN_POSITIVE);
    spans
        .iter()
        .map(|s| {
            let offset_ms = us_to_ms(s.start_us - root_start_us);
            let left = (offset_ms / total * 100.0).clamp(0.0, 100.0);
            let dur = s.duration_ms.unwrap_or(0.0);
            let width = (dur / total * 100.0)
                .clamp(0.25, 100.0)
                .min((100.0 - left).max(0.25));
            let op = s.op.clone().unwrap_or_else(|| "default".into());
            let description = s.description.clone().unwrap_or_default();
            let depth = s.depth.unwrap_or(0).max(0);
            WaterfallView {
                span_id: s.span_id.clone(),
                family: op_family(&op),
                tooltip: format!("{op} · {description} · {}", ms(dur)),
                depth,
                indent: depth.min(12),
                left,
                width,
                offset: format!("+{}", ms(offset_ms.max(0.0))),
                duration: ms(dur),
                duration_class: duration_class(s.duration_ms),
                status: s.status.clone().filter(|st| st != "ok"),
                op,
                description,
            }
        })
        .collect()
}

/// A pattern the query analysis found.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternView {
    pub pattern: String,
    pub count: i64,
    pub distinct: i64,
    pub total: String,
    pub n_plus_one: bool,
}

fn pattern_rows(patterns: &Value) -> Vec<PatternView> {
    patterns
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| PatternView {
            pattern: p.get("pattern").map(json_text).unwrap_or_default(),
            count: p.get("count").and_then(Value::as_i64).unwrap_or(0),
            distinct: p
                .get("distinct_statements")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            total: p
                .get("total_ms")
                .and_then(Value::as_f64)
                .map_or_else(|| "–".into(), ms),
            n_plus_one: p
                .get("n_plus_one")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
        .collect()
}

/// `(key, value)` pairs of the payload's tags, whether an object or a list of pairs.
fn tags(payload: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = payload
        .and_then(|p| p.get("tags"))
        .into_iter()
        .flat_map(tag_pairs)
        .map(|(k, v)| (k.to_owned(), json_text(v)))
        .collect();
    out.sort();
    out
}

/// `(name, "value unit")` of the payload's measurements.
fn measurements(payload: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(map)) = payload.and_then(|p| p.get("measurements")) else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let value = v
                .get("value")
                .map(json_text)
                .unwrap_or_else(|| json_text(v));
            let unit = v.get("unit").and_then(Value::as_str).unwrap_or("");
            (k.clone(), format!("{value} {unit}").trim_end().to_owned())
        })
        .collect()
}

/// The time breakdown: db, view and everything else, in ms and percent of the total.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown {
    pub parts: Vec<BreakdownPart>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BreakdownPart {
    pub label: &'static str,
    pub family: &'static str,
    pub ms: String,
    pub pct: String,
    pub x: f64,
    pub w: f64,
}

impl Breakdown {
    fn new(total: Option<f64>, db: Option<f64>, view: Option<f64>) -> Self {
        let total = total.unwrap_or(0.0).max(0.0);
        let db = db.unwrap_or(0.0).clamp(0.0, total);
        let view = view.unwrap_or(0.0).clamp(0.0, total - db);
        let other = (total - db - view).max(0.0);
        let mut x = 0.0;
        let parts = [
            ("Database", "db", db),
            ("View", "view", view),
            ("Other", "other", other),
        ]
        .into_iter()
        .map(|(label, family, v)| {
            let w = if total > 0.0 { v / total * 100.0 } else { 0.0 };
            let part = BreakdownPart {
                label,
                family,
                ms: ms(v),
                pct: format!("{w:.0}%"),
                x,
                w,
            };
            x += w;
            part
        })
        .collect();
        Self { parts }
    }
}

pub struct TraceEventView {
    pub event: RecentEvent,
    pub url: String,
    pub when: Ts,
}

#[derive(Template)]
#[template(path = "transactions/detail.html")]
struct TransactionPage {
    chrome: Chrome,
    slug: String,
    tx: TransactionDetail,
    id: i64,
    when: Ts,
    duration: String,
    duration_class: &'static str,
    db: String,
    view: String,
    status_class: &'static str,
    breakdown: Breakdown,
    context: Vec<(&'static str, String)>,
    tags: Vec<(String, String)>,
    measurements: Vec<(String, String)>,
    patterns: Vec<PatternView>,
    total_queries: i64,
    n_plus_one_patterns: usize,
    wasted: Option<String>,
    rows: Vec<WaterfallView>,
    max_depth: i32,
    spans_error: Option<String>,
    trace_events: Vec<TraceEventView>,
    /// The log lines of the transaction's trace.
    trace_logs: Vec<super::logs::LogLine>,
    endpoint_url: String,
    /// What processing corrected (timestamps), as sentences.
    notes: Vec<String>,
}

/// What the URL asked for: the page, or an export.
enum Format {
    Html,
    Json,
    Csv,
}

fn parse_id(raw: &str) -> Option<(i64, Format)> {
    let (id, format) = if let Some(id) = raw.strip_suffix(".json") {
        (id, Format::Json)
    } else if let Some(id) = raw.strip_suffix(".csv") {
        (id, Format::Csv)
    } else {
        (raw, Format::Html)
    };
    Some((id.parse().ok().filter(|id: &i64| *id > 0)?, format))
}

/// The transaction's spans from the lake (root first); `Err` carries what to tell the reader.
async fn spans_of(
    state: &WebState,
    project_id: i64,
    tx: &TransactionDetail,
) -> Result<Vec<SpanFact>, String> {
    let Some(lake) = &state.lake else {
        return Err("This server has no lake reader configured, so spans cannot be shown.".into());
    };
    let s = &tx.summary;
    let start = s.start_us.unwrap_or(s.end_us);
    lake.transaction_spans(project_id, &s.span_id, start, s.end_us)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, transaction = s.id, "spans unreadable");
            "The spans of this transaction could not be read from the lake.".to_owned()
        })
}

/// `GET /projects/{slug}/transactions/{id}` (also `{id}.json` and `{id}.csv`).
pub async fn detail(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, raw_id)): Path<(String, String)>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let (id, format) = parse_id(&raw_id).ok_or(WebError::NotFound("transaction"))?;
    let tx = state
        .store
        .transaction_detail(project.id, id)
        .await?
        .ok_or(WebError::NotFound("transaction"))?;
    let spans = spans_of(&state, project.id.value(), &tx).await;
    let s = &tx.summary;
    let root_start = s
        .start_us
        .or_else(|| spans.as_ref().ok()?.first().map(|f| f.start_us))
        .unwrap_or(s.end_us);
    let total_ms = s
        .duration_ms
        .unwrap_or_else(|| us_to_ms(s.end_us - root_start));
    match format {
        Format::Json => return Ok(json_export(&tx, spans.unwrap_or_default(), root_start)),
        Format::Csv => return Ok(csv_export(id, &spans.unwrap_or_default(), root_start)),
        Format::Html => {}
    }
    let (spans, spans_error) = match spans {
        Ok(spans) => (spans, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let rows = waterfall(&spans, root_start, total_ms);
    let patterns = pattern_rows(&tx.query_patterns);
    let trace_events = state
        .store
        .trace_events(project.id, &s.trace_id, TRACE_EVENTS)
        .await?
        .into_iter()
        .map(|event| TraceEventView {
            url: format!("/projects/{}/events/{}", project.slug, event.event_id),
            when: Ts(event.timestamp),
            event,
        })
        .collect();
    let trace_logs =
        super::logs::trace_lines(&state, project.id.value(), Some(&s.trace_id), s.end_us).await?;
    let pct = |v: Option<f64>| match (v, s.duration_ms) {
        (Some(v), Some(t)) if t > 0.0 => format!("{} ({:.0}%)", ms(v), v / t * 100.0),
        (Some(v), _) => ms(v),
        (None, _) => "–".into(),
    };
    let mut context = Vec::new();
    let mut add = |k: &'static str, v: Option<&String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            context.push((k, v.clone()));
        }
    };
    add("Environment", s.environment.as_ref());
    add("Release", s.release.as_ref());
    add("Server", tx.server_name.as_ref());
    add("Platform", tx.platform.as_ref());
    add("SDK", tx.sdk_name.as_ref());
    add("Operation", s.op.as_ref());
    add("Status", s.status.as_ref());
    add("Event ID", s.event_id.as_ref());
    add("Trace ID", Some(&s.trace_id));
    add("Span ID", Some(&s.span_id));
    let source = if s.source == "span" {
        "streamed spans (span v2)".to_owned()
    } else {
        "transaction event".to_owned()
    };
    add("Sent as", Some(&source));
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "performance",
            format!("{} · Transaction #{id}", s.name),
        )
        .await?;
    let payload = tx.payload.as_ref();
    render(&TransactionPage {
        slug: project.slug.clone(),
        id,
        when: Ts(s.end_us),
        duration: opt_ms(s.duration_ms),
        duration_class: duration_class(s.duration_ms),
        db: pct(s.db_time_ms),
        view: pct(tx.view_time_ms),
        status_class: status_class(s.http_status),
        breakdown: Breakdown::new(s.duration_ms, s.db_time_ms, tx.view_time_ms),
        context,
        tags: tags(payload),
        measurements: measurements(payload),
        notes: processing_notes(payload),
        total_queries: s.query_count.unwrap_or(0),
        n_plus_one_patterns: patterns.iter().filter(|p| p.n_plus_one).count(),
        patterns,
        wasted: tx.n_plus_one_wasted_ms.filter(|w| *w > 0.0).map(ms),
        max_depth: rows.iter().map(|r| r.depth).max().unwrap_or(0),
        rows,
        spans_error,
        trace_events,
        trace_logs,
        endpoint_url: format!(
            "/projects/{}/performance/endpoint?{}",
            project.slug,
            form_urlencoded::Serializer::new(String::new())
                .append_pair("name", &s.name)
                .finish()
        ),
        tx,
        chrome,
    })
}

fn span_json(s: &SpanFact, root_start: i64) -> Value {
    json!({
        "span_id": s.span_id,
        "parent_span_id": s.parent_span_id,
        "trace_id": s.trace_id,
        "op": s.op,
        "description": s.description,
        "status": s.status,
        "start_us": s.start_us,
        "start_offset_ms": us_to_ms(s.start_us - root_start),
        "duration_ms": s.duration_ms,
        "depth": s.depth,
        "sequence": s.sequence,
        "group_hash": s.group_hash,
    })
}

/// `{id}.json`: the transaction's row (as the page reads it) and its spans.
fn json_export(tx: &TransactionDetail, spans: Vec<SpanFact>, root_start: i64) -> Response {
    let s = &tx.summary;
    let body = json!({
        "transaction": {
            "id": s.id, "event_id": s.event_id, "trace_id": s.trace_id, "span_id": s.span_id,
            "parent_span_id": tx.parent_span_id, "name": s.name, "op": s.op, "status": s.status,
            "http_method": s.http_method, "http_url": tx.http_url, "http_status": s.http_status,
            "duration_ms": s.duration_ms, "start_us": s.start_us, "end_us": s.end_us,
            "environment": s.environment, "release": s.release, "server_name": tx.server_name,
            "platform": tx.platform, "sdk_name": tx.sdk_name, "db_time_ms": s.db_time_ms,
            "view_time_ms": tx.view_time_ms, "query_count": s.query_count,
            "has_n_plus_one": s.has_n_plus_one, "n_plus_one_wasted_ms": tx.n_plus_one_wasted_ms,
            "span_count": tx.span_count, "spans_truncated": tx.spans_truncated, "source": s.source,
            "query_patterns": tx.query_patterns, "payload": tx.payload,
        },
        "spans": spans.iter().map(|f| span_json(f, root_start)).collect::<Vec<_>>(),
    });
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"transaction-{}.json\"", s.id))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// One CSV field: quoted when it needs to be, and a leading `=`, `+`, `-` or `@` neutralised so a
/// spreadsheet never runs a span description as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub const CSV_HEADER: &str =
    "sequence,depth,span_id,parent_span_id,op,description,status,start_offset_ms,duration_ms";

/// `{id}.csv`: one line per span, root first.
fn csv_export(id: i64, spans: &[SpanFact], root_start: i64) -> Response {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for s in spans {
        let fields = [
            s.sequence.map(|v| v.to_string()).unwrap_or_default(),
            s.depth.map(|v| v.to_string()).unwrap_or_default(),
            s.span_id.clone(),
            s.parent_span_id.clone().unwrap_or_default(),
            s.op.clone().unwrap_or_default(),
            s.description.clone().unwrap_or_default(),
            s.status.clone().unwrap_or_default(),
            format!("{:.3}", us_to_ms(s.start_us - root_start)),
            s.duration_ms.map(|d| format!("{d:.3}")).unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"transaction-{id}-spans.csv\""
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_us: i64, dur: f64, depth: i32, op: &str) -> SpanFact {
        SpanFact {
            project_id: 1,
            start_us,
            trace_id: "t".into(),
            transaction_id: Some("r".into()),
            span_id: format!("s{start_us}"),
            parent_span_id: None,
            op: Some(op.into()),
            description: Some("d".into()),
            group_hash: None,
            status: Some("ok".into()),
            duration_ms: Some(dur),
            depth: Some(depth),
            sequence: Some(0),
        }
    }

    #[test]
    fn bars_are_placed_relative_to_the_root() {
        let rows = waterfall(
            &[
                span(0, 200.0, 0, "http.server"),
                span(50_000, 20.0, 1, "db.query"),
                span(199_999, 0.0, 2, "cache.get"),
            ],
            0,
            200.0,
        );
        assert_eq!((rows[0].left, rows[0].width), (0.0, 100.0));
        assert_eq!(
            (rows[1].left, rows[1].width, rows[1].family),
            (25.0, 10.0, "db")
        );
        assert_eq!(rows[2].width, 0.25, "an instant still shows");
        assert_eq!((rows[0].family, rows[2].family), ("http", "cache"));
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn ids_and_formats() {
        assert!(matches!(parse_id("12.csv"), Some((12, Format::Csv))));
        assert!(matches!(parse_id("12.json"), Some((12, Format::Json))));
        assert!(matches!(parse_id("12"), Some((12, Format::Html))));
        assert!(parse_id("x.json").is_none());
        assert!(parse_id("-1").is_none());
    }

    #[test]
    fn the_breakdown_adds_up() {
        let b = Breakdown::new(Some(200.0), Some(50.0), Some(30.0));
        let pcts: Vec<&str> = b.parts.iter().map(|p| p.pct.as_str()).collect();
        assert_eq!(pcts, ["25%", "15%", "60%"]);
        assert_eq!(b.parts[2].x, 40.0);
    }
}
