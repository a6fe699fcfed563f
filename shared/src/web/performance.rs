//! Performance pages: endpoints ranked by the time they cost with their p95 trend (`/performance`), one
//! endpoint's latency over time and its transactions (`/performance/endpoint`), the N+1 worklist ranked
//! by wasted time (`/performance/n-plus-one`), and the dashboard's performance half. Rankings, cards and
//! charts read the hourly rollups; transaction lists read the `transactions` table.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::format::{ms, opt_ms, total_time, Count};
use crate::model::time::{Ts, HOUR_US};
use crate::store::{
    EndpointStats, PerfWindow, Project, TransactionQuery, TransactionSort, TransactionSummary,
};

use super::chart::Sparkline;
use super::issues::deploys;
use super::perf_chart::{count_sparkline, duration_class, p95_trend, status_class, SeriesChart};
use super::{project_or_404, render, Chrome, WebResult, WebState};

/// Transactions per page on every list.
const PER_PAGE: u32 = 50;

/// The time ranges the pages offer: `(key, label, seconds)`.
pub const RANGES: [(&str, &str, i64); 5] = [
    ("1h", "1 hour", 3_600),
    ("6h", "6 hours", 6 * 3_600),
    ("24h", "24 hours", 24 * 3_600),
    ("7d", "7 days", 7 * 86_400),
    ("30d", "30 days", 30 * 86_400),
];

/// The query string every performance page understands (each uses what applies to it).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PerfQuery {
    range: Option<String>,
    environment: Option<String>,
    name: Option<String>,
    sort: Option<String>,
    page: Option<String>,
}

impl PerfQuery {
    fn text(v: &Option<String>) -> String {
        v.as_deref().unwrap_or("").trim().to_owned()
    }

    pub fn range(&self) -> (&'static str, &'static str, i64) {
        let key = self.range.as_deref().unwrap_or("24h");
        RANGES
            .iter()
            .copied()
            .find(|(k, _, _)| *k == key)
            .unwrap_or(RANGES[2])
    }

    fn page(&self) -> u32 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 100_000)
    }

    fn sort(&self) -> TransactionSort {
        match self.sort.as_deref() {
            Some("slowest") => TransactionSort::Slowest,
            _ => TransactionSort::Recent,
        }
    }

    /// The window ending now; the environment filter and, when `with_name`, the name filter.
    fn window(&self, now_us: i64, with_name: bool) -> PerfWindow {
        let (_, _, secs) = self.range();
        let opt = |v: &Option<String>| Some(Self::text(v)).filter(|s| !s.is_empty());
        PerfWindow {
            from_us: now_us - secs * 1_000_000,
            to_us: now_us,
            environment: opt(&self.environment),
            name: if with_name { opt(&self.name) } else { None },
        }
    }

    /// A URL of `path` carrying these filters, with `extra` pairs replacing theirs.
    fn url(&self, path: &str, keys: &[&str], extra: &[(&str, String)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("name", &self.name),
            ("range", &self.range),
            ("environment", &self.environment),
            ("sort", &self.sort),
        ] {
            if !keys.contains(&key) || extra.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let value = Self::text(value);
            if !value.is_empty() {
                q.append_pair(key, &value);
            }
        }
        for (k, v) in extra {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        let q = q.finish();
        if q.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{q}")
        }
    }
}

/// `/projects/{slug}/performance/endpoint?name=…` for an endpoint, keeping the range and environment.
fn endpoint_url(slug: &str, name: &str, q: &PerfQuery) -> String {
    q.url(
        &format!("/projects/{slug}/performance/endpoint"),
        &["range", "environment"],
        &[("name", name.to_owned())],
    )
}

/// An N+1 badge: `⚠ 12%`, coloured by share (red ≥ 50 %, orange ≥ 10 %, else grey), with the seed's tooltip.
#[derive(Debug, Clone)]
pub struct NPlusOneBadge {
    pub text: String,
    pub class: &'static str,
    pub title: String,
}

impl NPlusOneBadge {
    fn of(s: &EndpointStats) -> Option<Self> {
        if s.n_plus_one_count == 0 {
            return None;
        }
        let pct = s.n_plus_one_pct();
        Some(Self {
            text: format!("⚠ {}%", pct_text(pct)),
            class: if pct >= 50.0 {
                "bad"
            } else if pct >= 10.0 {
                "warn"
            } else {
                "muted-badge"
            },
            title: format!(
                "{} of {} transactions tripped the N+1 detector ({}%)",
                Count(s.n_plus_one_count),
                Count(s.count),
                pct_text(pct)
            ),
        })
    }
}

fn pct_text(pct: f64) -> String {
    if pct >= 10.0 || pct == 0.0 {
        format!("{pct:.0}")
    } else {
        format!("{pct:.1}")
    }
}

/// A row of "Top endpoints by impact".
pub struct EndpointView {
    pub name: String,
    pub url: String,
    pub trend: Sparkline,
    pub time_spent: String,
    pub avg: String,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    /// The raw p95 for tests and tooltips.
    pub p95_raw: String,
    pub count: Count,
    pub avg_queries: String,
    pub max_queries: Count,
    pub n_plus_one: Option<NPlusOneBadge>,
    pub wasted: String,
    pub errors_5xx: Count,
}

/// The rows of the endpoints a page shows, in the order given (ranked by their sums): their percentiles
/// and trends from their own cells, read for them alone.
async fn endpoint_rows(
    state: &WebState,
    project: &Project,
    shown: &[EndpointStats],
    window: &PerfWindow,
    deploys: &[(i64, String)],
    q: &PerfQuery,
) -> WebResult<Vec<EndpointView>> {
    let names: Vec<String> = shown.iter().map(|s| s.name.clone()).collect();
    let cells = state
        .store
        .endpoint_cells(project.id, window, &names)
        .await?;
    let mut rows = Vec::with_capacity(names.len());
    for name in names {
        let s = cells.stats(&name);
        rows.push(EndpointView {
            url: endpoint_url(&project.slug, &name, q),
            trend: p95_trend(&cells.hours(&name), deploys, window.from_us, window.to_us),
            time_spent: total_time(s.total_ms),
            avg: ms(s.avg_ms),
            p50: opt_ms(s.p50_ms),
            p95: opt_ms(s.p95_ms),
            p99: opt_ms(s.p99_ms),
            p95_raw: s.p95_ms.map_or_else(String::new, |v| format!("{v:.3}")),
            count: Count(s.count),
            avg_queries: format!("{:.1}", s.avg_queries),
            max_queries: Count(s.max_queries),
            n_plus_one: NPlusOneBadge::of(&s),
            wasted: ms(s.wasted_ms),
            errors_5xx: Count(s.errors_5xx),
            name,
        });
    }
    Ok(rows)
}

/// A row of a transaction list.
pub struct TransactionView {
    pub id: i64,
    pub url: String,
    pub name: String,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub method: Option<String>,
    pub status: Option<i64>,
    pub status_class: &'static str,
    pub duration: String,
    pub duration_class: &'static str,
    pub db: Option<String>,
    pub queries: Option<i64>,
    pub n_plus_one: bool,
    pub when: Ts,
}

pub fn transaction_rows(slug: &str, list: Vec<TransactionSummary>) -> Vec<TransactionView> {
    list.into_iter()
        .map(|t| TransactionView {
            id: t.id,
            url: format!("/projects/{slug}/transactions/{}", t.id),
            environment: t.environment,
            release: t.release,
            method: t.http_method,
            status: t.http_status,
            status_class: status_class(t.http_status),
            duration: opt_ms(t.duration_ms),
            duration_class: duration_class(t.duration_ms),
            db: t.db_time_ms.map(ms),
            queries: t.query_count,
            n_plus_one: t.has_n_plus_one,
            when: Ts(t.end_us),
            name: t.name,
        })
        .collect()
}

/// The three percentile cards.
pub struct PercentileCards {
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub p95_raw: String,
    pub count: Count,
    pub avg: String,
}

impl PercentileCards {
    fn of(s: &EndpointStats) -> Self {
        Self {
            p50: opt_ms(s.p50_ms),
            p95: opt_ms(s.p95_ms),
            p99: opt_ms(s.p99_ms),
            p95_raw: s.p95_ms.map_or_else(String::new, |v| format!("{v:.3}")),
            count: Count(s.count),
            avg: if s.count > 0 {
                ms(s.avg_ms)
            } else {
                "–".into()
            },
        }
    }
}

/// A range tab: label, URL, current.
pub struct RangeTab {
    pub key: &'static str,
    pub label: &'static str,
    pub url: String,
    pub current: bool,
}

fn range_tabs(q: &PerfQuery, path: &str, keys: &[&str]) -> Vec<RangeTab> {
    let current = q.range().0;
    RANGES
        .iter()
        .map(|(key, label, _)| RangeTab {
            key,
            label,
            url: q.url(path, keys, &[("range", (*key).to_owned())]),
            current: *key == current,
        })
        .collect()
}

/// Paging links for a list that asked for one row more than it shows.
fn pager(
    q: &PerfQuery,
    path: &str,
    keys: &[&str],
    page: u32,
    more: bool,
) -> (Option<String>, Option<String>) {
    let at = |p: u32| {
        let mut extra = vec![];
        if p > 1 {
            extra.push(("page", p.to_string()));
        }
        format!("{}#transactions", q.url(path, keys, &extra))
    };
    ((page > 1).then(|| at(page - 1)), more.then(|| at(page + 1)))
}

#[derive(Template)]
#[template(path = "performance/index.html")]
struct PerformancePage {
    chrome: Chrome,
    slug: String,
    range_key: &'static str,
    range_label: &'static str,
    ranges: &'static [(&'static str, &'static str, i64)],
    environments: Vec<String>,
    environment: String,
    name: String,
    filtered: bool,
    cards: PercentileCards,
    endpoints: Vec<EndpointView>,
    endpoints_total: usize,
    n_plus_one_url: String,
    transactions: Vec<TransactionView>,
    first: u64,
    prev_url: Option<String>,
    next_url: Option<String>,
}

/// `GET /projects/{slug}/performance`: cards, top endpoints by impact, recent transactions.
pub async fn index(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
    Query(q): Query<PerfQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let now = Ts::now().0;
    let window = q.window(now, true);
    let deploys = deploys(&state, project.id).await?;
    let overview = state.store.perf_overview(project.id, &window).await?;
    let totals = overview.totals.clone();
    let mut stats = overview.endpoints.clone();
    let endpoints_total = stats.len();
    // The seed's 20, or every match when the list is filtered by name.
    stats.truncate(if window.name.is_some() { 200 } else { 20 });
    let endpoints = endpoint_rows(&state, &project, &stats, &window, &deploys, &q).await?;
    let page = q.page();
    let mut list = state
        .store
        .transactions(
            project.id,
            &TransactionQuery {
                window: window.clone(),
                limit: PER_PAGE + 1,
                offset: (page - 1) * PER_PAGE,
                ..TransactionQuery::default()
            },
        )
        .await?;
    let more = list.len() > PER_PAGE as usize;
    list.truncate(PER_PAGE as usize);
    let path = format!("/projects/{}/performance", project.slug);
    let keys = ["name", "range", "environment"];
    let (prev_url, next_url) = pager(&q, &path, &keys, page, more);
    let (range_key, range_label, _) = q.range();
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "performance",
            format!("Performance · {}", project.name),
        )
        .await?;
    render(&PerformancePage {
        slug: project.slug.clone(),
        range_key,
        range_label,
        ranges: &RANGES,
        environments: state.store.perf_environments(project.id).await?,
        environment: PerfQuery::text(&q.environment),
        name: PerfQuery::text(&q.name),
        filtered: window.environment.is_some() || window.name.is_some(),
        cards: PercentileCards::of(&totals),
        endpoints,
        endpoints_total,
        n_plus_one_url: q.url(
            &format!("/projects/{}/performance/n-plus-one", project.slug),
            &["range", "environment"],
            &[],
        ),
        transactions: transaction_rows(&project.slug, list),
        first: u64::from(page - 1) * u64::from(PER_PAGE) + 1,
        prev_url,
        next_url,
        chrome,
    })
}

#[derive(Template)]
#[template(path = "performance/endpoint.html")]
struct EndpointPage {
    chrome: Chrome,
    name: String,
    back_url: String,
    range_label: &'static str,
    tabs: Vec<RangeTab>,
    sorts: Vec<(String, &'static str, bool)>,
    cards: PercentileCards,
    stats: EndpointStats,
    avg_db: String,
    avg_view: String,
    avg_queries: String,
    n_plus_one: Option<NPlusOneBadge>,
    wasted: String,
    chart: SeriesChart,
    transactions: Vec<TransactionView>,
    prev_url: Option<String>,
    next_url: Option<String>,
}

/// `GET /projects/{slug}/performance/endpoint?name=…`: one endpoint over the window.
pub async fn endpoint(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
    Query(q): Query<PerfQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let name = q.name.clone().unwrap_or_default();
    let now = Ts::now().0;
    let window = q.window(now, false);
    let deploys = deploys(&state, project.id).await?;
    let stats = state
        .store
        .perf_totals(project.id, &window, Some(&name))
        .await?;
    let hours = state
        .store
        .perf_series(project.id, &window, Some(&name))
        .await?;
    let page = q.page();
    let mut list = state
        .store
        .transactions(
            project.id,
            &TransactionQuery {
                window: window.clone(),
                endpoint: Some(name.clone()),
                sort: q.sort(),
                limit: PER_PAGE + 1,
                offset: (page - 1) * PER_PAGE,
                ..TransactionQuery::default()
            },
        )
        .await?;
    let more = list.len() > PER_PAGE as usize;
    list.truncate(PER_PAGE as usize);
    let path = format!("/projects/{}/performance/endpoint", project.slug);
    let keys = ["name", "range", "environment", "sort"];
    let (prev_url, next_url) = pager(&q, &path, &keys, page, more);
    let current_sort = q.sort();
    let sorts = [
        ("recent", "Most recent", TransactionSort::Recent),
        ("slowest", "Slowest", TransactionSort::Slowest),
    ]
    .into_iter()
    .map(|(key, label, sort)| {
        (
            format!(
                "{}#transactions",
                q.url(&path, &keys, &[("sort", key.to_owned())])
            ),
            label,
            sort == current_sort,
        )
    })
    .collect();
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "performance",
            format!("{name} · Performance"),
        )
        .await?;
    render(&EndpointPage {
        back_url: q.url(
            &format!("/projects/{}/performance", project.slug),
            &["range", "environment"],
            &[],
        ),
        range_label: q.range().1,
        tabs: range_tabs(&q, &path, &keys),
        sorts,
        cards: PercentileCards::of(&stats),
        avg_db: ms(stats.avg_db_ms),
        avg_view: ms(stats.avg_view_ms),
        avg_queries: format!("{:.1}", stats.avg_queries),
        n_plus_one: NPlusOneBadge::of(&stats),
        wasted: ms(stats.wasted_ms),
        chart: SeriesChart::new(&hours, &deploys, window.from_us, window.to_us),
        transactions: transaction_rows(&project.slug, list),
        prev_url,
        next_url,
        stats,
        name,
        chrome,
    })
}

/// A row of the N+1 worklist.
pub struct NPlusOneView {
    pub row: EndpointView,
    pub n_plus_one_count: Count,
    pub avg_wasted: String,
    pub example_url: Option<String>,
}

#[derive(Template)]
#[template(path = "performance/n_plus_one.html")]
struct NPlusOnePage {
    chrome: Chrome,
    back_url: String,
    range_label: &'static str,
    tabs: Vec<RangeTab>,
    rows: Vec<NPlusOneView>,
}

/// `GET /projects/{slug}/performance/n-plus-one`: endpoints whose transactions repeat queries, ranked by
/// the time a fix would save, each with its newest example.
pub async fn n_plus_one(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
    Query(q): Query<PerfQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let now = Ts::now().0;
    let window = q.window(now, false);
    let deploys = deploys(&state, project.id).await?;
    let overview = state.store.perf_overview(project.id, &window).await?;
    let mut stats: Vec<EndpointStats> = overview
        .endpoints
        .iter()
        .filter(|s| s.n_plus_one_count > 0)
        .cloned()
        .collect();
    stats.sort_by(|a, b| {
        b.wasted_ms
            .total_cmp(&a.wasted_ms)
            .then(a.name.cmp(&b.name))
    });
    stats.truncate(50);
    let counts: Vec<(i64, f64)> = stats
        .iter()
        .map(|s| (s.n_plus_one_count, s.wasted_ms))
        .collect();
    let endpoints = endpoint_rows(&state, &project, &stats, &window, &deploys, &q).await?;
    let mut rows = Vec::with_capacity(endpoints.len());
    for (row, (n, wasted)) in endpoints.into_iter().zip(counts) {
        let example = state
            .store
            .transactions(
                project.id,
                &TransactionQuery {
                    window: window.clone(),
                    endpoint: Some(row.name.clone()),
                    n_plus_one_only: true,
                    limit: 1,
                    ..TransactionQuery::default()
                },
            )
            .await?;
        rows.push(NPlusOneView {
            n_plus_one_count: Count(n),
            avg_wasted: ms(wasted / n.max(1) as f64),
            example_url: example
                .first()
                .map(|t| format!("/projects/{}/transactions/{}", project.slug, t.id)),
            row,
        });
    }
    let path = format!("/projects/{}/performance/n-plus-one", project.slug);
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "performance",
            format!("N+1 queries · {}", project.name),
        )
        .await?;
    render(&NPlusOnePage {
        back_url: q.url(
            &format!("/projects/{}/performance", project.slug),
            &["range", "environment"],
            &[],
        ),
        range_label: q.range().1,
        tabs: range_tabs(&q, &path, &["range", "environment"]),
        rows,
        chrome,
    })
}

/// The dashboard's performance half.
pub struct DashboardPerf {
    pub transactions_24h: Sparkline,
    pub p50: String,
    pub p95: String,
    pub top_endpoints: Vec<EndpointView>,
    pub error_rate: ErrorRate,
    pub performance_url: String,
}

/// The error-rate card: errors as a share of errors plus transactions, or errors per hour when there are
/// no transactions to compare with.
pub struct ErrorRate {
    pub value: String,
    pub basis: String,
}

impl ErrorRate {
    pub fn new(errors: i64, transactions: i64, hours: i64) -> Self {
        if transactions > 0 {
            let pct = errors as f64 * 100.0 / (errors + transactions) as f64;
            Self {
                value: format!("{pct:.2}%"),
                basis: format!(
                    "{} errors / ({} errors + {} transactions), 24 h",
                    Count(errors),
                    Count(errors),
                    Count(transactions)
                ),
            }
        } else {
            Self {
                value: format!("{:.1}/h", errors as f64 / hours.max(1) as f64),
                basis: "error events per hour, 24 h (no transactions to compare with)".into(),
            }
        }
    }
}

/// Transactions in the last 24 h by hour, p50/p95, the five endpoints costing most time, the error rate.
pub async fn dashboard_perf(
    state: &WebState,
    project: &Project,
    deploys: &[(i64, String)],
    errors_24h: i64,
    now: i64,
) -> WebResult<DashboardPerf> {
    let q = PerfQuery::default();
    let since = Ts(now).hour_start().0 - 23 * HOUR_US;
    let window = PerfWindow {
        from_us: since,
        to_us: now,
        ..PerfWindow::default()
    };
    let overview = state.store.perf_overview(project.id, &window).await?;
    let hours = state.store.perf_hours(project.id, &window, None).await?;
    let totals = &overview.totals;
    let top = &overview.endpoints[..overview.endpoints.len().min(5)];
    let top_endpoints = endpoint_rows(state, project, top, &window, deploys, &q).await?;
    Ok(DashboardPerf {
        transactions_24h: count_sparkline(&hours, deploys, 24, now),
        p50: opt_ms(totals.p50_ms),
        p95: opt_ms(totals.p95_ms),
        top_endpoints,
        error_rate: ErrorRate::new(errors_24h, totals.count, 24),
        performance_url: format!("/projects/{}/performance", project.slug),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_filters_and_drop_empty_ones() {
        let q = PerfQuery {
            range: Some("7d".into()),
            environment: Some(" ".into()),
            name: Some("GET /a&b".into()),
            ..PerfQuery::default()
        };
        assert_eq!(
            q.url(
                "/p",
                &["name", "range", "environment"],
                &[("page", "2".into())]
            ),
            "/p?name=GET+%2Fa%26b&range=7d&page=2"
        );
        assert_eq!(q.range().2, 7 * 86_400);
        assert_eq!(PerfQuery::default().range().0, "24h");
    }

    #[test]
    fn error_rate_says_what_it_is() {
        assert_eq!(ErrorRate::new(1, 3, 24).value, "25.00%");
        let none = ErrorRate::new(48, 0, 24);
        assert_eq!(none.value, "2.0/h");
        assert!(none.basis.contains("per hour"));
    }
}
