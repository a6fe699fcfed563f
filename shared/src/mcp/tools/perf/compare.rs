//! `compare_endpoint_performance`: an endpoint's figures on two sides (two releases, or before and after
//! a time) with the change and a verdict on p95.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::{
    all_rows, hour_of, perf_window, resolve_endpoint, round1, stats_view, tx_line,
    with_hours_alias, Scope, DEFAULT_HOURS, HOUR_US, MAX_ROWS, RELEASE_LOOKBACK_DAYS,
};
use crate::mcp::args::{self, Args, ToolError, ToolResult, Window};
use crate::mcp::format::{code, iso, opt_ms, pct};
use crate::mcp::tools::views::{ProjectView, StatsView, TransactionView, WindowView};
use crate::mcp::tools::Answer;
use crate::mcp::McpState;
use crate::store::{EndpointStats, TransactionQuery, TransactionSort, TransactionSummary};

/// One side of a comparison.
struct Side {
    label: String,
    window: Window,
    release: Option<String>,
    figures: EndpointStats,
    /// Rows were capped at [`MAX_ROWS`].
    capped: bool,
    slowest: Option<TransactionSummary>,
}

impl Side {
    fn view(&self) -> SideView {
        SideView {
            label: self.label.clone(),
            window: WindowView::from(&self.window),
            release: self.release.clone(),
            stats: stats_view(&self.figures, self.capped),
            slowest: self.slowest.as_ref().map(TransactionView::from),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct CompareAnswer {
    project: ProjectView,
    environment: Option<String>,
    endpoint: String,
    mode: Mode,
    /// The before side (`release_a`, or the hours before the time).
    a: SideView,
    /// The after side.
    b: SideView,
    change_pct: ChangeView,
    verdict: String,
}

/// What is compared: two releases, or the hours before and after a time.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Releases,
    Time,
}

#[derive(Serialize, JsonSchema)]
struct SideView {
    label: String,
    window: WindowView,
    release: Option<String>,
    stats: StatsView,
    slowest: Option<TransactionView>,
}

/// The change from side a to side b, in percent (absent: nothing to compare).
#[derive(Serialize, JsonSchema)]
struct ChangeView {
    count: Option<f64>,
    avg: Option<f64>,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// An average of figures, absent when there were no transactions to average.
fn avg(s: &EndpointStats, v: f64) -> Option<f64> {
    (s.count > 0).then_some(v)
}

fn change_pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(round1((b - a) * 100.0 / a)),
        _ => None,
    }
}

fn alias(a: &Args, names: &[&str]) -> ToolResult<Option<String>> {
    for n in names {
        if let Some(v) = args::string(a, n)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn time_arg(a: &Args, names: &[&str]) -> ToolResult<Option<i64>> {
    for n in names {
        let mut one = Args::new();
        if let Some(v) = a.get(*n) {
            one.insert("start_time".into(), v.clone());
            one.insert("hours".into(), json!(1));
            if let Some(w) = args::window(&one, None).map_err(|_| {
                ToolError(format!(
                    "`{n}` must be an ISO 8601 time such as 2026-11-25T09:00:00Z, got {v}"
                ))
            })? {
                return Ok(Some(w.start_us));
            }
        }
    }
    Ok(None)
}

pub async fn compare_endpoint_performance(
    state: &McpState,
    a: &Args,
) -> ToolResult<Answer<CompareAnswer>> {
    let store = &state.store;
    let wanted = args::required_string(a, "endpoint")?;
    let release_a = alias(a, &["release_a", "before_release"])?;
    let release_b = alias(a, &["release_b", "after_release"])?;
    let hours = |name: &str| -> ToolResult<i64> {
        Ok(args::integer(a, name)?
            .unwrap_or(DEFAULT_HOURS)
            .clamp(1, args::MAX_HOURS))
    };
    let (hours_before, hours_after) = (hours("hours_before")?, hours("hours_after")?);
    let project = args::project(store, a).await?;
    let environment = args::string(a, "environment")?;
    let now = chrono::Utc::now().timestamp_micros();

    let (mode, windows, releases, note_split) = match (&release_a, &release_b) {
        (Some(ra), Some(rb)) => {
            let w = match args::window(&with_hours_alias(a), None)? {
                Some(w) => w,
                None => Window {
                    start_us: now - RELEASE_LOOKBACK_DAYS * 24 * HOUR_US,
                    end_us: now,
                },
            };
            (Mode::Releases, [w, w], [Some(ra.clone()), Some(rb.clone())], None)
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ToolError::new(
                "give both `release_a` and `release_b` (the releases to compare), or `at` (a time: the hours before it against the hours after it)",
            ))
        }
        (None, None) => {
            let at = time_arg(a, &["at"])?;
            let before_ts = time_arg(a, &["before_timestamp"])?;
            let after_ts = time_arg(a, &["after_timestamp"])?;
            let (before_end, after_start, note) = match (at, before_ts, after_ts) {
                (Some(t), _, _) => {
                    // Rollups are hourly: split on the hour so no hour counts on both sides.
                    let split = hour_of(t);
                    let note = (split != t).then(|| {
                        format!(
                            "Rollups are hourly, so the split is at {}, the start of the hour of `at`.",
                            iso(split)
                        )
                    });
                    (split - 1, split, note)
                }
                (None, Some(b), Some(af)) => (b, af, None),
                (None, Some(t), None) | (None, None, Some(t)) => (t - 1, t, None),
                (None, None, None) => {
                    return Err(ToolError::new(
                        "say what to compare: `release_a` and `release_b`, or `at` (an ISO 8601 time such as a deploy: the `hours_before` hours before it against the `hours_after` hours after it)",
                    ))
                }
            };
            if after_start <= before_end {
                return Err(ToolError::new(
                    "`after_timestamp` must be later than `before_timestamp`",
                ));
            }
            let before = Window {
                start_us: before_end + 1 - hours_before * HOUR_US,
                end_us: before_end,
            };
            let after = Window {
                start_us: after_start,
                end_us: after_start + hours_after * HOUR_US - 1,
            };
            (Mode::Time, [before, after], [None, None], note)
        }
    };

    let union = Scope {
        project: project.clone(),
        window: Window {
            start_us: windows[0].start_us.min(windows[1].start_us),
            end_us: windows[0].end_us.max(windows[1].end_us),
        },
        environment: environment.clone(),
    };
    let (endpoint, note) = resolve_endpoint(store, &union, &wanted).await?;

    let mut sides = Vec::new();
    for (i, (w, release)) in windows.iter().zip(releases.iter()).enumerate() {
        let query = TransactionQuery {
            window: perf_window(w, &environment, None),
            endpoint: Some(endpoint.clone()),
            release: release.clone(),
            ..TransactionQuery::default()
        };
        let (figures, capped) = match release {
            Some(_) => {
                let (rows, capped) = all_rows(store, &project, query.clone()).await?;
                (
                    EndpointStats::from_transactions(endpoint.clone(), &rows),
                    capped,
                )
            }
            None => (
                store
                    .perf_totals(
                        project.id,
                        &perf_window(w, &environment, None),
                        Some(&endpoint),
                    )
                    .await?,
                false,
            ),
        };
        let slowest = store
            .transactions(
                project.id,
                &TransactionQuery {
                    sort: TransactionSort::Slowest,
                    limit: 1,
                    ..query
                },
            )
            .await?
            .into_iter()
            .next();
        let label = match release {
            Some(r) => format!("release {r}"),
            None if i == 0 => "before".to_owned(),
            None => "after".to_owned(),
        };
        sides.push(Side {
            label,
            window: *w,
            release: release.clone(),
            figures,
            capped,
            slowest,
        });
    }
    let (sa, sb) = (&sides[0], &sides[1]);
    let (fa, fb) = (&sa.figures, &sb.figures);

    let mut md = format!(
        "## {} — {} vs {}\n\nProject {}{}\n\n",
        code(&endpoint),
        sa.label,
        sb.label,
        code(&project.slug),
        environment
            .as_deref()
            .map(|e| format!(" · environment {}", code(e)))
            .unwrap_or_default()
    );
    for n in [&note, &note_split].into_iter().flatten() {
        md.push_str(&format!("{n}\n\n"));
    }
    for side in &sides {
        md.push_str(&format!(
            "- {}: {} → {}{}\n",
            side.label,
            iso(side.window.start_us),
            iso(side.window.end_us),
            if side.capped {
                format!(" (the newest {MAX_ROWS} transactions)")
            } else {
                String::new()
            }
        ));
    }
    md.push_str(&format!(
        "\n| | {} | {} | Change |\n|---|---|---|---|\n",
        sa.label.replace('|', "\\|"),
        sb.label.replace('|', "\\|")
    ));
    let fmt_change = |c: Option<f64>| c.map(|c| format!("{c:+.1}%")).unwrap_or_else(|| "—".into());
    md.push_str(&format!(
        "| Requests | {} | {} | {} |\n",
        fa.count,
        fb.count,
        fmt_change(change_pct(Some(fa.count as f64), Some(fb.count as f64)))
    ));
    let rows: [(&str, Option<f64>, Option<f64>); 6] = [
        ("Avg", avg(fa, fa.avg_ms), avg(fb, fb.avg_ms)),
        ("P50", fa.p50_ms, fb.p50_ms),
        ("P95", fa.p95_ms, fb.p95_ms),
        ("P99", fa.p99_ms, fb.p99_ms),
        ("Max", fa.max_ms, fb.max_ms),
        ("Avg DB", avg(fa, fa.avg_db_ms), avg(fb, fb.avg_db_ms)),
    ];
    for (name, x, y) in rows {
        md.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            opt_ms(x),
            opt_ms(y),
            fmt_change(change_pct(x, y))
        ));
    }
    md.push_str(&format!(
        "| N+1 % | {} | {} | |\n| 5xx % | {} | {} | |\n",
        pct(fa.n_plus_one_pct()),
        pct(fb.n_plus_one_pct()),
        pct(fa.error_rate_pct()),
        pct(fb.error_rate_pct())
    ));
    let p95_change = change_pct(fa.p95_ms, fb.p95_ms);
    let verdict = match (fa.count, fb.count, p95_change) {
        (0, _, _) => format!(
            "No transactions for {}: nothing to compare against.",
            sa.label
        ),
        (_, 0, _) => format!(
            "No transactions for {}: nothing to compare against.",
            sb.label
        ),
        (_, _, Some(c)) if c <= -5.0 => format!(
            "P95 improved by {:.1}% ({} → {}).",
            -c,
            opt_ms(fa.p95_ms),
            opt_ms(fb.p95_ms)
        ),
        (_, _, Some(c)) if c >= 5.0 => format!(
            "P95 degraded by {c:.1}% ({} → {}).",
            opt_ms(fa.p95_ms),
            opt_ms(fb.p95_ms)
        ),
        (_, _, Some(c)) => format!(
            "P95 about the same ({c:+.1}%, {} → {}).",
            opt_ms(fa.p95_ms),
            opt_ms(fb.p95_ms)
        ),
        _ => "P95 cannot be compared.".into(),
    };
    md.push_str(&format!("\n**{verdict}**\n\n"));
    md.push_str(if mode == Mode::Releases {
        "Percentiles computed exactly from each release's transaction rows.\n"
    } else {
        "Percentiles from hourly sketches (about ±1%).\n"
    });
    for side in &sides {
        if let Some(t) = &side.slowest {
            md.push_str(&format!(
                "\nSlowest request, {}:\n{}",
                side.label,
                tx_line(1, t, false)
            ));
        }
    }
    let structured = CompareAnswer {
        project: ProjectView::from(&project),
        environment,
        mode,
        a: sa.view(),
        b: sb.view(),
        change_pct: ChangeView {
            count: change_pct(Some(fa.count as f64), Some(fb.count as f64)),
            avg: change_pct(avg(fa, fa.avg_ms), avg(fb, fb.avg_ms)),
            p50: change_pct(fa.p50_ms, fb.p50_ms),
            p95: p95_change,
            p99: change_pct(fa.p99_ms, fb.p99_ms),
        },
        verdict,
        endpoint,
    };
    Ok(Answer {
        markdown: md,
        structured,
    })
}
