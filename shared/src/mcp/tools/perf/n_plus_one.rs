//! `find_n_plus_one_endpoints`: endpoints whose transactions repeat a query pattern, ranked by the time
//! the repeats waste, each with an example transaction.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{round1, scope, Scope, ScopeView};
use crate::mcp::args::{self, Args, ToolResult};
use crate::mcp::format::{cell, code, iso, line, ms, opt_ms, pct};
use crate::mcp::tools::views::{tx_id, Object, TransactionView};
use crate::mcp::tools::Answer;
use crate::mcp::McpState;
use crate::store::{EndpointStats, Store, TransactionQuery, TransactionSummary};

#[derive(Serialize, JsonSchema)]
pub struct NPlusOneAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    /// How many endpoints had N+1 transactions (`endpoints` lists the worst ones).
    total: usize,
    endpoints: Vec<NPlusOneEndpointView>,
}

#[derive(Serialize, JsonSchema)]
struct NPlusOneEndpointView {
    name: String,
    count: i64,
    n_plus_one_count: i64,
    n_plus_one_pct: f64,
    wasted_ms: f64,
    wasted_per_affected_ms: f64,
    avg_queries: f64,
    max_queries: i64,
    avg_ms: f64,
    p95_ms: Option<f64>,
    example: Option<ExampleView>,
}

/// A recent N+1 transaction of the endpoint, with its worst query pattern.
#[derive(Serialize, JsonSchema)]
struct ExampleView {
    transaction: TransactionView,
    /// `{pattern, count, distinct_statements, total_ms, n_plus_one}`.
    pattern: Option<Object>,
}

/// A recent transaction of `endpoint` that tripped the N+1 detector, with its worst repeated pattern.
async fn n_plus_one_example(
    store: &Store,
    s: &Scope,
    endpoint: &str,
) -> ToolResult<Option<(TransactionSummary, Option<Value>)>> {
    let recent = store
        .transactions(
            s.project.id,
            &TransactionQuery {
                window: s.perf(None),
                endpoint: Some(endpoint.to_owned()),
                limit: 200,
                ..TransactionQuery::default()
            },
        )
        .await?;
    let Some(t) = recent.into_iter().find(|t| t.has_n_plus_one) else {
        return Ok(None);
    };
    let pattern = store
        .transaction_detail(s.project.id, t.id)
        .await?
        .and_then(|d| worst_pattern(&d.query_patterns));
    Ok(Some((t, pattern)))
}

fn worst_pattern(patterns: &Value) -> Option<Value> {
    let list = patterns.as_array()?;
    list.iter()
        .find(|p| p["n_plus_one"].as_bool() == Some(true))
        .or_else(|| list.first())
        .cloned()
}

pub async fn find_n_plus_one_endpoints(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<NPlusOneAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let limit = args::limit(a, 20, 100)?;
    let mut endpoints: Vec<EndpointStats> = store
        .endpoint_stats(s.project.id, &s.perf(None))
        .await?
        .into_iter()
        .filter(|e| e.n_plus_one_count > 0)
        .collect();
    endpoints.sort_by(|a, b| {
        b.wasted_ms
            .total_cmp(&a.wasted_ms)
            .then(b.n_plus_one_count.cmp(&a.n_plus_one_count))
            .then(a.name.cmp(&b.name))
    });
    let total = endpoints.len();
    endpoints.truncate(limit as usize);
    let mut md = format!(
        "## Endpoints with N+1 queries — {}\n\n{}\n\n",
        s.project.slug,
        s.describe()
    );
    if endpoints.is_empty() {
        md.push_str("No transaction in this window repeated a query pattern often enough to count as N+1. Widen the window with `hours` or `start_time`/`end_time`.\n");
    } else {
        md.push_str(&format!(
            "{} of {total} endpoints, ranked by time wasted in repeated queries (what fixing the N+1 would save).\n\n| Endpoint | N+1 / Total | % affected | Wasted total | Wasted per affected | Avg queries | Max queries | Avg | P95 |\n|---|---|---|---|---|---|---|---|---|\n",
            endpoints.len()
        ));
    }
    let mut list = Vec::new();
    let mut examples = String::new();
    for e in &endpoints {
        let per = e.wasted_ms / e.n_plus_one_count.max(1) as f64;
        md.push_str(&format!(
            "| {} | {} / {} | {} | {} | {} | {:.1} | {} | {} | {} |\n",
            cell(&e.name, 120),
            e.n_plus_one_count,
            e.count,
            pct(e.n_plus_one_pct()),
            ms(e.wasted_ms),
            ms(per),
            e.avg_queries,
            e.max_queries,
            ms(e.avg_ms),
            opt_ms(e.p95_ms),
        ));
        let example = n_plus_one_example(store, &s, &e.name).await?;
        let mut example_view = None;
        if let Some((t, pattern)) = &example {
            examples.push_str(&format!(
                "- {}: transaction `{}` ({}, {})",
                code(&line(&e.name, 120)),
                tx_id(t),
                opt_ms(t.duration_ms),
                iso(t.end_us)
            ));
            if let Some(p) = pattern {
                examples.push_str(&format!(
                    "\n  - worst pattern ×{} ({} distinct statements, {}): {}",
                    p["count"].as_u64().unwrap_or(0),
                    p["distinct_statements"].as_u64().unwrap_or(0),
                    ms(p["total_ms"].as_f64().unwrap_or(0.0)),
                    code(&line(p["pattern"].as_str().unwrap_or(""), 400))
                ));
            }
            examples.push('\n');
            example_view = Some(ExampleView {
                transaction: TransactionView::from(t),
                pattern: pattern.as_ref().and_then(Value::as_object).cloned(),
            });
        }
        list.push(NPlusOneEndpointView {
            name: e.name.clone(),
            count: e.count,
            n_plus_one_count: e.n_plus_one_count,
            n_plus_one_pct: round1(e.n_plus_one_pct()),
            wasted_ms: e.wasted_ms,
            wasted_per_affected_ms: per,
            avg_queries: e.avg_queries,
            max_queries: e.max_queries,
            avg_ms: e.avg_ms,
            p95_ms: e.p95_ms,
            example: example_view,
        });
    }
    if !examples.is_empty() {
        md.push_str(&format!(
            "\n### Example transactions\n\n{examples}\nNext: get_transaction or get_transaction_spans with an example id.\n"
        ));
    }
    Ok(Answer {
        markdown: md,
        structured: NPlusOneAnswer {
            scope: s.view(),
            total,
            endpoints: list,
        },
    })
}
