//! `get_endpoint_timeseries`: one endpoint's figures bucket by bucket of whole hours.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{
    all_rows, hour_of, resolve_endpoint, scope, ScopeView, HOUR_US, MAX_BUCKETS, MAX_ROWS,
    MIN_BUCKETS_ARG,
};
use crate::mcp::args::{self, Args, ToolError, ToolResult};
use crate::mcp::format::{code, iso, opt_ms};
use crate::mcp::tools::Answer;
use crate::mcp::McpState;
use crate::store::{EndpointStats, TransactionQuery, TransactionSummary};

#[derive(Serialize, JsonSchema)]
pub struct TimeseriesAnswer {
    #[serde(flatten)]
    scope: ScopeView,
    endpoint: String,
    release: Option<String>,
    bucket_hours: i64,
    total: i64,
    /// Every bucket of the window in order, empty ones with a count of 0.
    buckets: Vec<BucketView>,
    /// The figures come from at most this many transaction rows, the newest (absent: from all of them).
    capped_at_rows: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct BucketView {
    start: String,
    count: i64,
    avg_ms: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// How many hours each timeseries bucket spans: one, or with `buckets` (4..168, as the seed clamps) the
/// window split into that many buckets snapped to whole hours.
fn bucket_hours(a: &Args, window_hours: i64) -> ToolResult<i64> {
    Ok(match args::integer(a, "buckets")? {
        None => 1,
        Some(b) => {
            let b = b.clamp(MIN_BUCKETS_ARG, args::MAX_HOURS);
            (window_hours + b - 1) / b
        }
    }
    .max(1))
}

pub async fn get_endpoint_timeseries(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<TimeseriesAnswer>> {
    let store = &state.store;
    let s = scope(store, a).await?;
    let wanted = args::required_string(a, "endpoint")?;
    let release = args::string(a, "release")?;
    let first = hour_of(s.window.start_us);
    let hours = (hour_of(s.window.end_us) - first) / HOUR_US + 1;
    let width = bucket_hours(a, hours)?;
    let buckets = (hours + width - 1) / width;
    if buckets > MAX_BUCKETS {
        return Err(ToolError(format!(
            "the window spans {buckets} buckets; a timeseries has at most {MAX_BUCKETS}: narrow `start_time`/`end_time` or pass `buckets`"
        )));
    }
    let (endpoint, note) = resolve_endpoint(store, &s, &wanted).await?;
    let mut by_bucket: BTreeMap<i64, EndpointStats> = BTreeMap::new();
    let mut capped = false;
    let bucket_of =
        |us: i64| first + (hour_of(us) - first).div_euclid(width * HOUR_US) * width * HOUR_US;
    match &release {
        Some(r) => {
            let (rows, c) = all_rows(
                store,
                &s.project,
                TransactionQuery {
                    window: s.perf(None),
                    endpoint: Some(endpoint.clone()),
                    release: Some(r.clone()),
                    ..TransactionQuery::default()
                },
            )
            .await?;
            capped = c;
            let mut grouped: BTreeMap<i64, Vec<TransactionSummary>> = BTreeMap::new();
            for t in rows {
                grouped.entry(bucket_of(t.end_us)).or_default().push(t);
            }
            for (b, rows) in grouped {
                by_bucket.insert(b, EndpointStats::from_transactions(endpoint.clone(), &rows));
            }
        }
        None => {
            for h in store
                .perf_buckets(s.project.id, &s.perf(None), Some(&endpoint), width)
                .await?
            {
                by_bucket.insert(h.hour * 1_000_000, h.stats);
            }
        }
    }
    let mut md = format!("## Timeseries of {}\n\n{}", code(&endpoint), s.describe());
    if let Some(r) = &release {
        md.push_str(&format!(" · release {}", code(r)));
    }
    md.push_str("\n\n");
    if let Some(n) = &note {
        md.push_str(&format!("{n}\n\n"));
    }
    md.push_str(&format!(
        "{buckets} buckets of {width} hour(s) (UTC, empty buckets shown as 0); percentiles {}.\n\n| Bucket start | Count | Avg | P50 | P95 | P99 |\n|---|---|---|---|---|---|\n",
        if release.is_some() {
            if capped {
                format!("exact from the newest {MAX_ROWS} transaction rows")
            } else {
                "exact from transaction rows".into()
            }
        } else {
            "from hourly sketches (about ±1%)".into()
        }
    ));
    let mut list = Vec::new();
    let mut total = 0;
    for i in 0..buckets {
        let start = first + i * width * HOUR_US;
        let f = by_bucket.get(&start);
        let count = f.map_or(0, |f| f.count);
        total += count;
        let avg = f.map(|f| f.avg_ms);
        let p = |q: fn(&EndpointStats) -> Option<f64>| f.and_then(q);
        md.push_str(&format!(
            "| {} | {count} | {} | {} | {} | {} |\n",
            iso(start),
            opt_ms(avg),
            opt_ms(p(|f| f.p50_ms)),
            opt_ms(p(|f| f.p95_ms)),
            opt_ms(p(|f| f.p99_ms))
        ));
        list.push(BucketView {
            start: iso(start),
            count,
            avg_ms: avg,
            p50_ms: p(|f| f.p50_ms),
            p95_ms: p(|f| f.p95_ms),
            p99_ms: p(|f| f.p99_ms),
        });
    }
    md.push_str(&format!("\nTotal: {total} transactions.\n"));
    let structured = TimeseriesAnswer {
        scope: s.view(),
        endpoint,
        release,
        bucket_hours: width,
        total,
        buckets: list,
        capped_at_rows: capped.then_some(MAX_ROWS),
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}
