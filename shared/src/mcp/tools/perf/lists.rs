//! Transaction lists: `search_slow_transactions` (slowest first, with filters) and
//! `get_transactions_by_endpoint` (one endpoint's, newest first, paged).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{resolve_endpoint, scope, tx_line, ScopeView, MAX_TAG_SCAN};
use crate::mcp::args::{self, Args, ToolError, ToolResult};
use crate::mcp::format::{code, ms};
use crate::mcp::tools::lookup::tags_of;
use crate::mcp::tools::views::{text_map, TransactionView};
use crate::mcp::tools::Answer;
use crate::mcp::McpState;
use crate::store::{Project, Store, TransactionQuery, TransactionSort, TransactionSummary};

/// The slowest transactions matching `q` whose tags include every one of `tags`, up to `limit`: pages
/// through at most [`MAX_TAG_SCAN`] candidates (tags live in the stored payload, not in a column). Returns
/// them and whether the scan stopped before the candidates ran out.
async fn slowest_with_tags(
    store: &Store,
    project: &Project,
    mut q: TransactionQuery,
    tags: &[(String, String)],
    limit: usize,
) -> ToolResult<(Vec<TransactionSummary>, bool)> {
    let mut out = Vec::new();
    q.limit = 200;
    q.offset = 0;
    while (q.offset as usize) < MAX_TAG_SCAN {
        let page = store.transactions(project.id, &q).await?;
        let ids: Vec<i64> = page.iter().map(|t| t.id).collect();
        let payloads = store.transaction_payloads(project.id, &ids).await?;
        let n = page.len();
        for t in page {
            let have = payloads.get(&t.id).map(tags_of).unwrap_or_default();
            if tags.iter().all(|want| have.contains(want)) {
                out.push(t);
                if out.len() >= limit {
                    return Ok((out, false));
                }
            }
        }
        if n < q.limit as usize {
            return Ok((out, false));
        }
        q.offset += q.limit;
    }
    Ok((out, true))
}

#[derive(Serialize, JsonSchema)]
pub struct SlowTransactionsAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    min_duration_ms: f64,
    max_duration_ms: Option<f64>,
    endpoint: Option<String>,
    release: Option<String>,
    http_status: Option<i64>,
    http_method: Option<String>,
    tags: BTreeMap<String, String>,
    /// Tag filters stopped at the slowest candidates: there may be more matches beyond them.
    tag_scan_capped: bool,
    transactions: Vec<TransactionView>,
}

pub async fn search_slow_transactions(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<SlowTransactionsAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let limit = args::limit(a, 20, 100)?;
    let min = args::number(a, "min_duration_ms")?
        .unwrap_or(1000.0)
        .clamp(0.0, 86_400_000.0);
    let max = args::number(a, "max_duration_ms")?.map(|m| m.clamp(0.0, 86_400_000.0));
    if max.is_some_and(|m| m < min) {
        return Err(ToolError(format!(
            "`max_duration_ms` ({}) is below `min_duration_ms` ({min}; 1000 unless given)",
            max.unwrap_or(0.0)
        )));
    }
    let http_status = args::integer(a, "http_status")?;
    if http_status.is_some_and(|c| !(100..=599).contains(&c)) {
        return Err(ToolError(format!(
            "`http_status` must be an HTTP status code (100..599), got {}",
            http_status.unwrap_or(0)
        )));
    }
    let http_method = args::string(a, "http_method")?.map(|m| m.to_ascii_uppercase());
    if let Some(m) = http_method
        .as_deref()
        .filter(|m| !m.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(ToolError(format!(
            "`http_method` must be a method such as GET or POST, got {m:?}"
        )));
    }
    let tags = args::tags(a)?;
    let endpoint = args::string(a, "endpoint")?;
    let release = args::string(a, "release")?;
    let q = TransactionQuery {
        window: s.perf(endpoint.clone()),
        min_duration_ms: Some(min),
        max_duration_ms: max,
        release: release.clone(),
        http_status,
        http_method: http_method.clone(),
        sort: TransactionSort::Slowest,
        limit,
        ..TransactionQuery::default()
    };
    let (found, scan_capped) = if tags.is_empty() {
        (store.transactions(s.project.id, &q).await?, false)
    } else {
        slowest_with_tags(store, &s.project, q, &tags, limit as usize).await?
    };
    let mut md = format!(
        "## Slow transactions — {}\n\n{} · at least {}",
        s.project.slug,
        s.describe(),
        ms(min)
    );
    if let Some(m) = max {
        md.push_str(&format!(", at most {}", ms(m)));
    }
    if let Some(e) = &endpoint {
        md.push_str(&format!(" · endpoint contains {}", code(e)));
    }
    for (name, v) in [("release", &release), ("method", &http_method)] {
        if let Some(v) = v {
            md.push_str(&format!(" · {name} {}", code(v)));
        }
    }
    if let Some(c) = http_status {
        md.push_str(&format!(" · status {c}"));
    }
    for (k, v) in &tags {
        md.push_str(&format!(" · tag {}", code(&format!("{k}={v}"))));
    }
    md.push_str("\n\n");
    if found.is_empty() {
        md.push_str(
            "No transactions match. Lower `min_duration_ms`, drop a filter or widen the window.\n",
        );
    } else {
        md.push_str(&format!("{} slowest first:\n\n", found.len()));
        for (n, t) in found.iter().enumerate() {
            md.push_str(&tx_line(n + 1, t, true));
        }
        md.push_str("\nNext: get_transaction or get_transaction_spans with an id above.\n");
    }
    if scan_capped {
        md.push_str(&format!(
            "\nTag filters looked at the slowest {MAX_TAG_SCAN} transactions only; narrow the window or add filters to see beyond them.\n"
        ));
    }
    let structured = SlowTransactionsAnswer {
        scope: s.view(),
        min_duration_ms: min,
        max_duration_ms: max,
        endpoint,
        release,
        http_status,
        http_method,
        tags: text_map(&tags),
        tag_scan_capped: scan_capped,
        transactions: found.iter().map(TransactionView::from).collect(),
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}

#[derive(Serialize, JsonSchema)]
pub struct ByEndpointAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    endpoint: String,
    release: Option<String>,
    offset: u32,
    /// The `offset` of the next page (absent: this is the last).
    next_offset: Option<u32>,
    transactions: Vec<TransactionView>,
}

pub async fn get_transactions_by_endpoint(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<ByEndpointAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let wanted = args::required_string(a, "endpoint")?;
    let limit = args::limit(a, 20, 100)?;
    let offset = args::integer(a, "offset")?.unwrap_or(0).clamp(0, 100_000) as u32;
    let release = args::string(a, "release")?;
    let (endpoint, note) = resolve_endpoint(store, &s, &wanted).await?;
    let found = store
        .transactions(
            s.project.id,
            &TransactionQuery {
                window: s.perf(None),
                endpoint: Some(endpoint.clone()),
                release: release.clone(),
                sort: TransactionSort::Recent,
                limit,
                offset,
                ..TransactionQuery::default()
            },
        )
        .await?;
    let mut md = format!("## Transactions of {}\n\n{}", code(&endpoint), s.describe());
    if let Some(r) = &release {
        md.push_str(&format!(" · release {}", code(r)));
    }
    md.push_str("\n\n");
    if let Some(n) = &note {
        md.push_str(&format!("{n}\n\n"));
    }
    let next = (found.len() == limit as usize).then_some(offset + limit);
    if found.is_empty() {
        md.push_str("No transactions on this page.\n");
    } else {
        md.push_str(&format!(
            "Newest first, {} from offset {offset}:\n\n",
            found.len()
        ));
        for (n, t) in found.iter().enumerate() {
            md.push_str(&tx_line(offset as usize + n + 1, t, false));
        }
        if let Some(n) = next {
            md.push_str(&format!("\nMore: call again with `offset: {n}`.\n"));
        }
    }
    let structured = ByEndpointAnswer {
        scope: s.view(),
        endpoint,
        release,
        offset,
        next_offset: next,
        transactions: found.iter().map(TransactionView::from).collect(),
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}
