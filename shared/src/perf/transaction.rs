//! What a transaction's span tree tells before it is stored: the spans in start order with their depth,
//! capped at [`MAX_SPANS`], and the time spent in the database and in views.

use std::collections::HashMap;

use crate::model::time::us_to_ms;
use crate::model::{SpanRecord, TransactionRecord};

use super::n_plus_one::{self, QueryAnalysis, QueryCrumb, SpanView};
use super::normalize::normalize_description;

/// Spans kept per transaction, the root included; the rest are counted and flagged as cut.
pub const MAX_SPANS: usize = 1000;

/// A transaction's children, sorted by start, capped, with each span's depth below the root.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanTree {
    pub children: Vec<SpanRecord>,
    /// Per child: 1 for a direct child of the root, and so on. A span whose parent is missing (dropped by
    /// the SDK or by the cap) hangs under the root.
    pub depths: Vec<i32>,
    /// How many children the SDK sent.
    pub sent: usize,
    pub truncated: bool,
}

impl SpanTree {
    pub fn new(root: &SpanRecord, mut children: Vec<SpanRecord>) -> Self {
        let sent = children.len();
        children.sort_by(|a, b| {
            (a.start_us.unwrap_or(i64::MAX), &a.span_id)
                .cmp(&(b.start_us.unwrap_or(i64::MAX), &b.span_id))
        });
        children.truncate(MAX_SPANS - 1);
        let depths = depths(root, &children);
        Self {
            truncated: sent > children.len(),
            children,
            depths,
            sent,
        }
    }
}

fn depths(root: &SpanRecord, children: &[SpanRecord]) -> Vec<i32> {
    let parent_of: HashMap<&str, Option<&str>> = children
        .iter()
        .map(|s| (s.span_id.as_str(), s.parent_span_id.as_deref()))
        .collect();
    children
        .iter()
        .map(|span| {
            let mut depth = 1;
            let mut parent = span.parent_span_id.as_deref();
            // Bounded walk: a cycle in hostile input ends at the cap instead of looping.
            while let Some(p) = parent.filter(|p| *p != root.span_id && depth < MAX_SPANS as i32) {
                match parent_of.get(p) {
                    Some(next) => {
                        depth += 1;
                        parent = *next;
                    }
                    None => break,
                }
            }
            depth
        })
        .collect()
}

/// A database span: `db`, `db.sql.query`, `db.sql.active_record` …, but not a cache (`db.redis`).
pub fn is_db(op: Option<&str>) -> bool {
    op.is_some_and(|op| (op == "db" || op.starts_with("db.")) && !op.starts_with("db.redis"))
}

/// Rendering: Rails' `view.*`, `template.render`, `ui.render`.
pub fn is_view(op: Option<&str>) -> bool {
    op.is_some_and(|op| op.starts_with("view") || op == "template.render" || op == "ui.render")
}

fn duration_ms(span: &SpanRecord) -> f64 {
    match (span.start_us, span.end_us) {
        (Some(s), Some(e)) if e >= s => us_to_ms(e - s),
        _ => 0.0,
    }
}

/// Database and view time: what the SDK measured, else the summed durations of the outermost database
/// (view) spans, so that a query span inside another database span is not counted twice.
pub fn time_breakdown(record: &TransactionRecord, tree: &SpanTree) -> (Option<f64>, Option<f64>) {
    let ops: HashMap<&str, Option<&str>> = tree
        .children
        .iter()
        .map(|s| (s.span_id.as_str(), s.op.as_deref()))
        .collect();
    let sum = |kind: fn(Option<&str>) -> bool| {
        let spans = tree.children.iter().filter(|s| {
            kind(s.op.as_deref())
                && !s
                    .parent_span_id
                    .as_deref()
                    .and_then(|p| ops.get(p))
                    .is_some_and(|op| kind(*op))
        });
        let mut any = false;
        let total = spans.inspect(|_| any = true).map(duration_ms).sum::<f64>();
        any.then_some(total)
    };
    (
        record.measured_db_ms.or_else(|| sum(is_db)),
        record.measured_view_ms.or_else(|| sum(is_view)),
    )
}

/// The figures stored with a transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionPerf {
    pub db_time_ms: Option<f64>,
    pub view_time_ms: Option<f64>,
    pub query_count: Option<i32>,
    pub has_n_plus_one: Option<bool>,
    pub n_plus_one_wasted_ms: Option<f64>,
    /// Spans the SDK sent, the root included.
    pub span_count: Option<i32>,
    pub spans_truncated: Option<bool>,
    /// The transaction's queries grouped by normalized text, worst first.
    pub query_patterns: Vec<n_plus_one::QueryPattern>,
}

impl TransactionPerf {
    /// `query_patterns` as stored: `[{pattern, count, distinct_statements, total_ms, n_plus_one}]`.
    pub fn patterns_json(&self) -> Option<String> {
        if self.query_patterns.is_empty() {
            return None;
        }
        let list: Vec<serde_json::Value> = self
            .query_patterns
            .iter()
            .map(|p| {
                serde_json::json!({
                    "pattern": p.pattern,
                    "count": p.count,
                    "distinct_statements": p.distinct_statements,
                    "total_ms": us_to_ms(p.total_us),
                    "n_plus_one": p.is_n_plus_one,
                })
            })
            .collect();
        Some(serde_json::Value::Array(list).to_string())
    }
}

/// Spans doing the same thing (same op, same normalized description) share this 16-hex-digit hash.
pub fn group_hash(op: Option<&str>, description: &str) -> String {
    use md5::Digest;
    let mut hasher = md5::Md5::new();
    hasher.update(op.unwrap_or_default().as_bytes());
    hasher.update([0]);
    hasher.update(description.as_bytes());
    hex::encode(&hasher.finalize()[..8])
}

/// A span's description as it may be stored.
pub fn describe(span: &SpanRecord) -> Option<String> {
    let text = span.name.as_deref()?;
    Some(normalize_description(
        span.op.as_deref().unwrap_or_default(),
        text,
        span.db_system.as_deref(),
    ))
}

/// A classic transaction, analysed: its figures and its children's stored descriptions.
pub fn analyze(
    record: &TransactionRecord,
    tree: &SpanTree,
) -> (TransactionPerf, Vec<Option<String>>) {
    let descriptions: Vec<Option<String>> = tree.children.iter().map(describe).collect();
    let views: Vec<SpanView> = tree
        .children
        .iter()
        .zip(&descriptions)
        .filter_map(|(s, d)| {
            Some(SpanView {
                span_id: &s.span_id,
                parent_span_id: s.parent_span_id.as_deref(),
                op: s.op.as_deref().unwrap_or_default(),
                description: d.as_deref().unwrap_or_default(),
                raw_description: s.name.as_deref().unwrap_or_default(),
                start_us: s.start_us?,
                end_us: s.end_us?,
            })
        })
        .collect();
    let queries = query_analysis(record, &views);
    let (db, view) = time_breakdown(record, tree);
    let perf = TransactionPerf {
        db_time_ms: db,
        view_time_ms: view,
        query_count: Some(queries.query_count.min(i32::MAX as u32) as i32),
        has_n_plus_one: Some(queries.has_n_plus_one),
        n_plus_one_wasted_ms: Some(us_to_ms(queries.wasted_us)),
        span_count: Some((tree.sent + 1).min(i32::MAX as usize) as i32),
        spans_truncated: Some(tree.truncated),
        query_patterns: queries.patterns.into_iter().take(50).collect(),
    };
    (perf, descriptions)
}

/// Sentry's span rule; for Rails, whose SDK records queries as breadcrumbs, the seed's breadcrumb rule.
fn query_analysis(record: &TransactionRecord, views: &[SpanView]) -> QueryAnalysis {
    if record.sql_breadcrumbs.is_empty() {
        return n_plus_one::analyze_spans(&record.root.span_id, views);
    }
    let normalized: Vec<String> = record
        .sql_breadcrumbs
        .iter()
        .map(|sql| normalize_description("db", sql, None))
        .collect();
    let crumbs: Vec<QueryCrumb> = record
        .sql_breadcrumbs
        .iter()
        .zip(&normalized)
        .map(|(sql, normalized)| QueryCrumb { sql, normalized })
        .collect();
    n_plus_one::analyze_breadcrumbs(&crumbs, views)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: &str, op: &str, start: i64, end: i64) -> SpanRecord {
        SpanRecord {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: Some(parent.into()),
            segment_id: Some("root".into()),
            is_segment: false,
            name: None,
            op: Some(op.into()),
            status: None,
            start_us: Some(start),
            end_us: Some(end),
            data: None,
            db_system: None,
        }
    }

    fn root() -> SpanRecord {
        SpanRecord {
            parent_span_id: None,
            is_segment: true,
            ..span("root", "", "http.server", 0, 100_000)
        }
    }

    #[test]
    fn children_sorted_with_depths() {
        let tree = SpanTree::new(
            &root(),
            vec![
                span("c", "b", "db", 30, 40),
                span("a", "root", "view", 10, 20),
                span("b", "root", "db", 20, 50),
                span("orphan", "gone", "db", 60, 70),
            ],
        );
        let ids: Vec<&str> = tree.children.iter().map(|s| s.span_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "orphan"]);
        assert_eq!(tree.depths, [1, 1, 2, 1]);
        assert!(!tree.truncated);
    }

    #[test]
    fn cap_flags_the_cut_and_cycles_end() {
        let many: Vec<SpanRecord> = (0..1500)
            .map(|i| span(&format!("s{i:04}"), "root", "db", i, i + 1))
            .collect();
        let tree = SpanTree::new(&root(), many);
        assert_eq!(
            (tree.children.len(), tree.sent, tree.truncated),
            (999, 1500, true)
        );
        let cyclic = SpanTree::new(
            &root(),
            vec![span("x", "y", "db", 1, 2), span("y", "x", "db", 1, 2)],
        );
        assert!(cyclic.depths.iter().all(|d| *d <= MAX_SPANS as i32));
    }

    #[test]
    fn db_time_counts_outermost_spans_and_prefers_measurements() {
        let record = TransactionRecord {
            root: root(),
            name: "GET /".into(),
            environment: None,
            release: None,
            platform: None,
            sdk_name: None,
            server_name: None,
            http: Default::default(),
            measured_db_ms: None,
            measured_view_ms: None,
            sql_breadcrumbs: Vec::new(),
        };
        let tree = SpanTree::new(
            &root(),
            vec![
                span("q1", "root", "db", 0, 10_000),
                span("q1a", "q1", "db.sql.query", 1_000, 9_000),
                span("q2", "root", "db.sql.active_record", 20_000, 25_000),
                span("r", "root", "db.redis", 30_000, 90_000),
            ],
        );
        assert_eq!(time_breakdown(&record, &tree), (Some(15.0), None));
        let measured = TransactionRecord {
            measured_db_ms: Some(3.5),
            ..record
        };
        assert_eq!(time_breakdown(&measured, &tree).0, Some(3.5));
    }
}
