//! `get_transaction_stats` (a project's figures and its top endpoints) and `get_endpoint_summary` (one
//! endpoint's figures with its slowest and latest transactions).

use schemars::JsonSchema;
use serde::Serialize;

use super::{all_rows, resolve_endpoint, scope, stats_markdown, stats_view, tx_line, ScopeView};
use crate::mcp::args::{self, Args, ToolError, ToolResult};
use crate::mcp::format::{cell, code, ms, opt_ms, pct};
use crate::mcp::tools::views::{StatsView, TransactionView};
use crate::mcp::tools::Answer;
use crate::mcp::McpState;
use crate::store::{EndpointStats, TransactionQuery, TransactionSort};

#[derive(Serialize, JsonSchema)]
pub struct TransactionStatsAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    endpoint: Option<String>,
    totals: StatsView,
    /// How many endpoints had transactions (`endpoints` lists the top ones).
    endpoint_count: usize,
    endpoints: Vec<StatsView>,
}

pub async fn get_transaction_stats(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<TransactionStatsAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let limit = args::limit(a, 10, 50)?;
    let endpoints = store.endpoint_stats(s.project.id, &s.perf(None)).await?;
    let (endpoint, note) = match args::string(a, "endpoint")? {
        Some(e) => {
            let (name, note) = resolve_endpoint(store, &s, &e).await?;
            (Some(name), note)
        }
        None => (None, None),
    };
    let totals = store
        .perf_totals(s.project.id, &s.perf(None), endpoint.as_deref())
        .await?;
    let mut md = format!(
        "## Transaction stats — {}\n\n{}\n\n",
        s.project.slug,
        s.describe()
    );
    if let Some(n) = &note {
        md.push_str(&format!("{n}\n\n"));
    }
    match &endpoint {
        Some(e) => md.push_str(&format!("### Endpoint {}\n\n", code(e))),
        None => md.push_str("### All transactions\n\n"),
    }
    md.push_str(&stats_markdown(&totals, false));
    if endpoints.is_empty() {
        md.push_str("\nNo transactions in this window. Widen it with `hours` or `start_time`/`end_time`, or check `project` and `environment`.\n");
    } else {
        md.push_str(&format!(
            "\n### Top endpoints by impact (avg × count), {} of {}\n\n| Endpoint | Time spent | Count | Avg | P50 | P95 | P99 | N+1 % |\n|---|---|---|---|---|---|---|---|\n",
            endpoints.len().min(limit as usize),
            endpoints.len()
        ));
        for e in endpoints.iter().take(limit as usize) {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&e.name, 120),
                ms(e.total_ms),
                e.count,
                ms(e.avg_ms),
                opt_ms(e.p50_ms),
                opt_ms(e.p95_ms),
                opt_ms(e.p99_ms),
                pct(e.n_plus_one_pct()),
            ));
        }
        md.push_str("\nNext: get_endpoint_summary or get_endpoint_timeseries for one endpoint, find_n_plus_one_endpoints for query problems.\n");
    }
    let structured = TransactionStatsAnswer {
        scope: s.view(),
        endpoint,
        totals: stats_view(&totals, false),
        endpoint_count: endpoints.len(),
        endpoints: endpoints
            .iter()
            .take(limit as usize)
            .map(|e| stats_view(e, false))
            .collect(),
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}

#[derive(Serialize, JsonSchema)]
pub struct EndpointSummaryAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    endpoint: String,
    release: Option<String>,
    stats: StatsView,
    slowest: Option<TransactionView>,
    latest: Option<TransactionView>,
}

pub async fn get_endpoint_summary(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<EndpointSummaryAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let wanted = args::required_string(a, "endpoint")?;
    let release = args::string(a, "release")?;
    let (endpoint, note) = resolve_endpoint(store, &s, &wanted).await?;
    let query = TransactionQuery {
        window: s.perf(None),
        endpoint: Some(endpoint.clone()),
        release: release.clone(),
        ..TransactionQuery::default()
    };
    let (figures, capped) = match &release {
        Some(r) => {
            let (rows, capped) = all_rows(store, &s.project, query.clone()).await?;
            if rows.is_empty() {
                return Err(ToolError(format!(
                    "endpoint {endpoint:?} has transactions in this window, but none from release {r:?}; list_releases lists the releases"
                )));
            }
            (
                EndpointStats::from_transactions(endpoint.clone(), &rows),
                capped,
            )
        }
        None => (
            store
                .perf_totals(s.project.id, &s.perf(None), Some(&endpoint))
                .await?,
            false,
        ),
    };
    let sample = |sort: TransactionSort| {
        let q = TransactionQuery {
            sort,
            limit: 1,
            ..query.clone()
        };
        async move { store.transactions(s.project.id, &q).await }
    };
    let slowest = sample(TransactionSort::Slowest).await?.into_iter().next();
    let latest = sample(TransactionSort::Recent).await?.into_iter().next();

    let mut md = format!("## Endpoint {}\n\n{}", code(&endpoint), s.describe());
    if let Some(r) = &release {
        md.push_str(&format!(" · release {}", code(r)));
    }
    md.push_str("\n\n");
    if let Some(n) = &note {
        md.push_str(&format!("{n}\n\n"));
    }
    md.push_str(&stats_markdown(&figures, capped));
    if slowest.is_some() || latest.is_some() {
        md.push_str("\n### Samples\n\n");
        if let Some(t) = &slowest {
            md.push_str(&format!("Slowest:\n{}", tx_line(1, t, false)));
        }
        if let Some(t) = &latest {
            md.push_str(&format!("Most recent:\n{}", tx_line(1, t, false)));
        }
        md.push_str("\nNext: get_transaction or get_transaction_spans with an id above.\n");
    }
    let structured = EndpointSummaryAnswer {
        scope: s.view(),
        endpoint,
        release,
        stats: stats_view(&figures, capped),
        slowest: slowest.as_ref().map(TransactionView::from),
        latest: latest.as_ref().map(TransactionView::from),
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}
