//! Performance tools: project-wide and per-endpoint figures ([`stats`]), hourly series ([`timeseries`]),
//! the N+1 worklist ([`n_plus_one`]), transaction lists ([`lists`]) and comparisons ([`compare`]); and
//! what they share here (private to them): the scope (project, window, environment) they read, the
//! endpoint a name means, figures as markdown and as answers. Figures over time windows come from the hourly rollups (percentiles from
//! their sketches, about ±1%); release-filtered figures are computed exactly from transaction rows, since
//! rollups do not know releases.

pub mod compare;
pub mod lists;
pub mod n_plus_one;
pub mod stats;
pub mod timeseries;

use schemars::JsonSchema;
use serde::Serialize;

use super::views::{tx_id, ProjectView, StatsView, WindowView};
use crate::mcp::args::{self, Args, ToolError, ToolResult, Window};
use crate::mcp::format::{code, iso, line, ms, opt_ms, pct};
use crate::store::{
    EndpointStats, PerfWindow, Project, Store, TransactionQuery, TransactionSort,
    TransactionSummary,
};

/// The default window of the performance tools, in hours.
const DEFAULT_HOURS: i64 = 24;
/// At most this many transaction rows feed a figure computed exactly from rows.
const MAX_ROWS: u32 = 10_000;
/// Rows per page of `Store::transactions` (its own cap).
const PAGE: u32 = 1_000;
/// Tag filters look through at most this many candidate transactions.
const MAX_TAG_SCAN: usize = 5_000;
/// Most buckets a timeseries returns.
const MAX_BUCKETS: i64 = 744;
/// The fewest buckets `buckets` may ask for (the seed's clamp).
const MIN_BUCKETS_ARG: i64 = 4;
/// Release comparisons without a window look this far back (the transactions' retention).
const RELEASE_LOOKBACK_DAYS: i64 = 90;
use crate::model::time::HOUR_US;

/// The project, time window and environment a performance tool reads.
struct Scope {
    pub project: Project,
    pub window: Window,
    pub environment: Option<String>,
}

impl Scope {
    fn perf(&self, name: Option<String>) -> PerfWindow {
        perf_window(&self.window, &self.environment, name)
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "Project {} · {} → {}",
            code(&self.project.slug),
            iso(self.window.start_us),
            iso(self.window.end_us)
        );
        if let Some(e) = &self.environment {
            s.push_str(&format!(" · environment {}", code(e)));
        }
        s
    }

    fn view(&self) -> ScopeView {
        ScopeView {
            project: ProjectView::from(&self.project),
            window: WindowView::from(&self.window),
            environment: self.environment.clone(),
        }
    }
}

/// What every performance tool answers with first: the project, window and environment it read.
#[derive(Serialize, JsonSchema)]
pub struct ScopeView {
    project: ProjectView,
    window: WindowView,
    environment: Option<String>,
}

fn perf_window(w: &Window, environment: &Option<String>, name: Option<String>) -> PerfWindow {
    PerfWindow {
        from_us: w.start_us,
        to_us: w.end_us,
        environment: environment.clone(),
        name,
    }
}

/// `time_range_hours` (the seed's name) counts as `hours`.
fn with_hours_alias(a: &Args) -> Args {
    let mut a = a.clone();
    if !a.contains_key("hours") {
        if let Some(h) = a.get("time_range_hours").cloned() {
            a.insert("hours".into(), h);
        }
    }
    a
}

async fn scope(store: &Store, a: &Args) -> ToolResult<Scope> {
    let project = args::project(store, a).await?;
    let window = args::window(&with_hours_alias(a), Some(DEFAULT_HOURS))?
        .ok_or_else(|| ToolError::new("no time window"))?;
    Ok(Scope {
        project,
        window,
        environment: args::string(a, "environment")?,
    })
}

fn hour_of(us: i64) -> i64 {
    crate::model::time::Ts(us).hour_start().0
}

/// Figures for the answer: the stats, their derived shares, and where the percentiles come from.
fn stats_view(s: &EndpointStats, capped: bool) -> StatsView {
    StatsView {
        stats: s.clone(),
        n_plus_one_pct: round1(s.n_plus_one_pct()),
        error_rate_pct: round1(s.error_rate_pct()),
        percentiles: if s.exact {
            "exact"
        } else {
            "hourly sketches, about ±1%"
        },
        capped_at_rows: capped.then_some(MAX_ROWS),
    }
}

/// Figures as a markdown list.
fn stats_markdown(s: &EndpointStats, capped: bool) -> String {
    let mut md = format!("- Transactions: {}\n", s.count);
    if s.count == 0 {
        return md;
    }
    md.push_str(&format!(
        "- Avg: {} · P50: {} · P95: {} · P99: {}\n- Min: {} · Max: {}\n- Time spent (avg × count): {}\n",
        ms(s.avg_ms),
        opt_ms(s.p50_ms),
        opt_ms(s.p95_ms),
        opt_ms(s.p99_ms),
        opt_ms(s.min_ms),
        opt_ms(s.max_ms),
        ms(s.total_ms),
    ));
    let mut time = vec![format!("DB avg {}", ms(s.avg_db_ms))];
    if s.avg_view_ms > 0.0 {
        time.push(format!("view avg {}", ms(s.avg_view_ms)));
    }
    md.push_str(&format!("- {}\n", time.join(" · ")));
    md.push_str(&format!(
        "- Queries: avg {:.1}, max {}\n",
        s.avg_queries, s.max_queries
    ));
    md.push_str(&format!(
        "- N+1: {} of {} transactions ({}){}\n- 5xx responses: {} ({})\n",
        s.n_plus_one_count,
        s.count,
        pct(s.n_plus_one_pct()),
        if s.wasted_ms > 0.0 {
            format!(", {} in repeated queries", ms(s.wasted_ms))
        } else {
            String::new()
        },
        s.errors_5xx,
        pct(s.error_rate_pct()),
    ));
    md.push_str(&if s.exact {
        format!(
            "- Percentiles exact, from {} transaction rows{}\n",
            s.count,
            if capped {
                format!(" (capped at the newest {MAX_ROWS})")
            } else {
                String::new()
            }
        )
    } else {
        "- Percentiles from hourly sketches (about ±1%); the window covers whole hours\n".into()
    });
    md
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Transaction rows matching `q`, newest first, up to [`MAX_ROWS`]; and whether there were more.
async fn all_rows(
    store: &Store,
    project: &Project,
    mut q: TransactionQuery,
) -> ToolResult<(Vec<TransactionSummary>, bool)> {
    let mut out = Vec::new();
    q.sort = TransactionSort::Recent;
    q.limit = PAGE;
    q.offset = 0;
    loop {
        let page = store.transactions(project.id, &q).await?;
        let n = page.len();
        out.extend(page);
        if n < PAGE as usize {
            return Ok((out, false));
        }
        if out.len() >= MAX_ROWS as usize {
            out.truncate(MAX_ROWS as usize);
            q.offset = MAX_ROWS;
            q.limit = 1;
            let more = !store.transactions(project.id, &q).await?.is_empty();
            return Ok((out, more));
        }
        q.offset += PAGE;
    }
}

/// The endpoint a tool names, checked against the window: exactly that name, or the one endpoint whose
/// name contains it (case-insensitive). Unknown or ambiguous names are errors that list the candidates.
async fn resolve_endpoint(
    store: &Store,
    s: &Scope,
    wanted: &str,
) -> ToolResult<(String, Option<String>)> {
    let totals = store
        .perf_totals(s.project.id, &s.perf(None), Some(wanted))
        .await?;
    if totals.count > 0 {
        return Ok((wanted.to_owned(), None));
    }
    let like = store
        .endpoint_stats(s.project.id, &s.perf(Some(wanted.to_owned())))
        .await?;
    match like.as_slice() {
        [one] => Ok((
            one.name.clone(),
            Some(format!(
                "No endpoint is named exactly {}; using {}, the one endpoint whose name contains it.",
                code(wanted),
                code(&one.name)
            )),
        )),
        [] => {
            let top = store.endpoint_stats(s.project.id, &s.perf(None)).await?;
            let names: Vec<String> = top.iter().take(10).map(|e| format!("{:?}", e.name)).collect();
            Err(ToolError(format!(
                "no transactions for endpoint {wanted:?} in project {} between {} and {}{}; {}",
                s.project.slug,
                iso(s.window.start_us),
                iso(s.window.end_us),
                s.environment
                    .as_deref()
                    .map(|e| format!(" (environment {e:?})"))
                    .unwrap_or_default(),
                if names.is_empty() {
                    "there are no transactions at all in that window: widen it with `hours` or `start_time`/`end_time`".to_owned()
                } else {
                    format!(
                        "endpoints with transactions then (most time spent first): {}",
                        names.join(", ")
                    )
                }
            )))
        }
        many => Err(ToolError(format!(
            "{} endpoints contain {wanted:?}; name one exactly: {}",
            many.len(),
            many.iter()
                .take(20)
                .map(|e| format!("{:?}", e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One transaction as a list line.
fn tx_line(n: usize, t: &TransactionSummary, with_name: bool) -> String {
    let mut parts = vec![opt_ms(t.duration_ms), iso(t.end_us)];
    if t.http_method.is_some() || t.http_status.is_some() {
        parts.push(format!(
            "{} {}",
            t.http_method.as_deref().unwrap_or("").to_ascii_uppercase(),
            t.http_status.map(|s| s.to_string()).unwrap_or_default()
        ));
    }
    if let Some(db) = t.db_time_ms {
        parts.push(format!("DB {}", ms(db)));
    }
    if let Some(q) = t.query_count {
        parts.push(format!("{q} queries"));
    }
    if t.has_n_plus_one {
        parts.push("N+1".into());
    }
    if let Some(e) = &t.environment {
        parts.push(format!("env {}", code(&line(e, 60))));
    }
    if let Some(r) = &t.release {
        parts.push(format!("release {}", code(&line(r, 80))));
    }
    // The trace goes with the id: get_transaction finds a transaction of any age by both at once.
    format!(
        "{n}. {}{} — id {} · trace {}\n",
        if with_name {
            format!("{} · ", code(&line(&t.name, 200)))
        } else {
            String::new()
        },
        parts.join(" · "),
        code(&line(tx_id(t), 64)),
        code(&line(&t.trace_id, 64))
    )
}
