//! The read side of performance monitoring: endpoints ranked by impact and their hourly series come from
//! the rollups (never from raw transactions); transaction lists and a transaction's page from the
//! `transactions` table. A classic transaction's spans are in the lake only (`lake::read`).

use std::collections::BTreeMap;

use crate::protocol::ProjectId;

use super::rollups::{Grain, Rollup, Scope, Table};
use super::{Result, Store};

/// Which transactions a performance read covers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PerfWindow {
    /// Microseconds; rollups are hourly, so their reads cover every hour the window touches.
    pub from_us: i64,
    pub to_us: i64,
    pub environment: Option<String>,
    /// A substring of the endpoint (transaction) name, case-insensitive.
    pub name: Option<String>,
}

/// One endpoint's figures over a window (or, with an empty name, the whole project's): from the hourly
/// rollups (percentiles from their sketches, about ±1%), or computed exactly from transaction rows
/// ([`EndpointStats::from_transactions`], for what rollups do not know, such as releases).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct EndpointStats {
    pub name: String,
    pub count: i64,
    pub avg_ms: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The endpoint's impact: avg × count, the time spent in it.
    pub total_ms: f64,
    pub avg_db_ms: f64,
    pub avg_view_ms: f64,
    pub avg_queries: f64,
    pub max_queries: i64,
    pub n_plus_one_count: i64,
    /// Time of repeated queries an N+1 fix would save.
    pub wasted_ms: f64,
    pub errors_5xx: i64,
    /// Percentiles are exact (from rows), not from the hourly sketches.
    pub exact: bool,
}

impl EndpointStats {
    fn from_rollup(name: String, r: &Rollup) -> Self {
        let n = r.count.max(1) as f64;
        let [p50_ms, p95_ms, p99_ms] = r.sketch.quantiles([0.50, 0.95, 0.99]);
        Self {
            name,
            count: r.count,
            avg_ms: r.duration_sum / n,
            p50_ms,
            p95_ms,
            p99_ms,
            min_ms: r.sketch.min(),
            max_ms: r.sketch.max(),
            total_ms: r.duration_sum,
            avg_db_ms: r.db_sum / n,
            avg_view_ms: r.view_sum / n,
            avg_queries: r.query_sum as f64 / n,
            max_queries: r.query_max,
            n_plus_one_count: r.n_plus_one_count,
            wasted_ms: r.wasted_sum,
            errors_5xx: r.errors_5xx,
            exact: false,
        }
    }

    /// Exact figures from transaction rows (named `name`): percentiles by nearest rank over the durations.
    pub fn from_transactions(name: String, rows: &[TransactionSummary]) -> Self {
        let mut d: Vec<f64> = rows.iter().filter_map(|t| t.duration_ms).collect();
        d.sort_by(f64::total_cmp);
        let n = rows.len().max(1) as f64;
        let sum =
            |f: fn(&TransactionSummary) -> Option<f64>| rows.iter().filter_map(f).sum::<f64>();
        let total = d.iter().sum::<f64>();
        Self {
            name,
            count: rows.len() as i64,
            avg_ms: total / d.len().max(1) as f64,
            p50_ms: nearest_rank(&d, 0.50),
            p95_ms: nearest_rank(&d, 0.95),
            p99_ms: nearest_rank(&d, 0.99),
            min_ms: d.first().copied(),
            max_ms: d.last().copied(),
            total_ms: total,
            avg_db_ms: sum(|t| t.db_time_ms) / n,
            avg_view_ms: sum(|t| t.view_time_ms) / n,
            avg_queries: sum(|t| t.query_count.map(|q| q as f64)) / n,
            max_queries: rows.iter().filter_map(|t| t.query_count).max().unwrap_or(0),
            n_plus_one_count: rows.iter().filter(|t| t.has_n_plus_one).count() as i64,
            wasted_ms: sum(|t| t.n_plus_one_wasted_ms),
            errors_5xx: rows
                .iter()
                .filter(|t| t.http_status.is_some_and(|s| (500..600).contains(&s)))
                .count() as i64,
            exact: true,
        }
    }

    /// The share of transactions that tripped the N+1 detector, in percent.
    pub fn n_plus_one_pct(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.n_plus_one_count as f64 * 100.0 / self.count as f64
        }
    }

    /// The share of transactions that answered 5xx, in percent.
    pub fn error_rate_pct(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors_5xx as f64 * 100.0 / self.count as f64
        }
    }
}

/// The value at rank ⌈q·n⌉ of sorted values.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A window of a project as the performance pages rank it (see [`Store::perf_overview`]).
#[derive(Debug, Clone, Default)]
pub struct PerfOverview {
    /// The whole project (or every endpoint matching the window's name), percentiles included.
    pub totals: EndpointStats,
    /// Every endpoint, most time spent first, from its sums alone: without percentiles, min or max, which
    /// [`Store::endpoint_cells`] reads for the endpoints a page shows.
    pub endpoints: Vec<EndpointStats>,
}

/// Some endpoints' cells over a window, all environments merged, by start (an hour's, or a day's in a
/// long window): their full figures and their series (see [`Store::endpoint_cells`]).
#[derive(Debug, Clone, Default)]
pub struct EndpointCells(BTreeMap<String, BTreeMap<i64, Rollup>>);

impl EndpointCells {
    /// One endpoint over the whole window, percentiles included.
    pub fn stats(&self, name: &str) -> EndpointStats {
        let mut total = Rollup::default();
        self.0
            .get(name)
            .into_iter()
            .flat_map(BTreeMap::values)
            .for_each(|cell| total.merge(cell));
        EndpointStats::from_rollup(name.to_owned(), &total)
    }

    /// One endpoint, hour by hour (hours without transactions absent).
    pub fn hours(&self, name: &str) -> Vec<HourStats> {
        self.0
            .get(name)
            .map_or_else(Vec::new, |cells| series(name, cells))
    }
}

/// Cells by start as a chart's series, each point named `name`.
fn series(name: &str, cells: &BTreeMap<i64, Rollup>) -> Vec<HourStats> {
    cells
        .iter()
        .map(|(start, r)| HourStats {
            hour: *start,
            stats: EndpointStats::from_rollup(name.to_owned(), r),
        })
        .collect()
}

/// One hour of an endpoint (or of the project).
#[derive(Debug, Clone, PartialEq)]
pub struct HourStats {
    /// Unix seconds at the start of the hour (or of the bucket).
    pub hour: i64,
    pub stats: EndpointStats,
}

/// A transaction as lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionSummary {
    pub id: i64,
    pub event_id: Option<String>,
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub op: Option<String>,
    pub status: Option<String>,
    pub http_method: Option<String>,
    pub http_status: Option<i64>,
    pub duration_ms: Option<f64>,
    pub start_us: Option<i64>,
    pub end_us: i64,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub db_time_ms: Option<f64>,
    pub query_count: Option<i64>,
    pub has_n_plus_one: bool,
    /// `transaction` (classic) or `span` (a streamed segment).
    pub source: String,
    pub view_time_ms: Option<f64>,
    /// Time of repeated queries an N+1 fix would save.
    pub n_plus_one_wasted_ms: Option<f64>,
}

/// Everything the transaction page shows from the database.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionDetail {
    pub summary: TransactionSummary,
    pub parent_span_id: Option<String>,
    pub http_url: Option<String>,
    pub server_name: Option<String>,
    pub platform: Option<String>,
    pub sdk_name: Option<String>,
    pub view_time_ms: Option<f64>,
    pub n_plus_one_wasted_ms: Option<f64>,
    pub span_count: Option<i64>,
    pub spans_truncated: bool,
    /// `[{pattern, count, distinct_statements, total_ms, n_plus_one}]`, worst first.
    pub query_patterns: serde_json::Value,
    /// The event as sent (classic transactions): contexts, tags, measurements, request; a streamed one
    /// has only Splat's processing notes, when it has any (`splat.processing_notes`).
    pub payload: Option<serde_json::Value>,
}

/// How a transaction list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionSort {
    #[default]
    Recent,
    Slowest,
}

/// A page of transactions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransactionQuery {
    pub window: PerfWindow,
    /// Exactly this endpoint (the window's `name` is a substring filter).
    pub endpoint: Option<String>,
    pub min_duration_ms: Option<f64>,
    pub max_duration_ms: Option<f64>,
    pub release: Option<String>,
    pub http_status: Option<i64>,
    /// Compared case-insensitively.
    pub http_method: Option<String>,
    /// Only transactions that tripped the N+1 detector (the worklist's example links).
    pub n_plus_one_only: bool,
    pub sort: TransactionSort,
    pub limit: u32,
    pub offset: u32,
}

/// The statement of [`Store::transactions`], shaped so that its page costs the same at any data size.
///
/// Every filter is a bound parameter, and those not set read as `?N IS NULL`. The endpoint is the one filter
/// an index serves, so it is written as `name = ?6` when given: SQLite cannot search an index through
/// `?6 IS NULL OR name = ?6`, and an endpoint's page then walked the whole project's window. Slowest first
/// reads one hour (`?15`, the hour number of `end_time`) in duration order, through the index of durations
/// by hour (`transactions_endpoint_hour_duration`, `transactions_hour_duration`), and checks the window on
/// the way (`+end_time` keeps the planner off the time indexes); [`super::slowest`] picks the hours.
pub(super) fn transactions_sql(sort: TransactionSort, by_endpoint: bool) -> String {
    let (window, order) = match sort {
        TransactionSort::Recent => ("end_time BETWEEN ?2 AND ?3", "end_time DESC, id DESC"),
        TransactionSort::Slowest => (
            "end_time / 3600000000 = ?15 AND +end_time BETWEEN ?2 AND ?3",
            "duration_us DESC, id DESC",
        ),
    };
    let endpoint = if by_endpoint {
        "name = ?6"
    } else {
        "?6 IS NULL"
    };
    format!(
        "SELECT {SUMMARY_COLUMNS} FROM transactions
         WHERE project_id = ?1 AND {window} AND {endpoint}
           AND (?4 IS NULL OR environment = ?4)
           AND (?5 IS NULL OR name LIKE ?5 ESCAPE '\\')
           AND (?7 IS NULL OR duration_us >= ?7)
           AND (?8 IS NULL OR release = ?8)
           AND (?11 = 0 OR has_n_plus_one = 1)
           AND (?12 IS NULL OR duration_us <= ?12)
           AND (?13 IS NULL OR http_status = ?13)
           AND (?14 IS NULL OR upper(http_method) = upper(?14))
         ORDER BY {order} LIMIT ?9 OFFSET ?10"
    )
}

pub(super) const SUMMARY_COLUMNS: &str = "id, event_id, trace_id, span_id, name, op, status, http_method, http_status,
    duration_us, start_time, end_time, environment, release, db_time_ms, query_count, has_n_plus_one, source,
    view_time_ms, n_plus_one_wasted_ms";

/// The most environments the performance page's filter lists.
pub const MAX_ENVIRONMENTS: i64 = 200;

/// Each environment found from the one before it up the index, so the cost is per environment and not
/// per rollup cell (a DISTINCT over the cells read 54 ms at 100 M transactions and grew with the 540 days
/// rollups are kept); the limit bounds a project whose SDKs send a new one every time.
const ENVIRONMENTS_SQL: &str = "WITH RECURSIVE next (environment) AS (
        SELECT min(environment) FROM transaction_rollups_daily WHERE project_id = ?1 AND environment > ''
        UNION ALL
        SELECT (SELECT min(environment) FROM transaction_rollups_daily
                WHERE project_id = ?1 AND environment > next.environment)
        FROM next WHERE next.environment IS NOT NULL
    )
    SELECT environment FROM next WHERE environment IS NOT NULL LIMIT ?2";

/// Windows longer than this chart day by day, and their series read whole days from the daily rollups.
pub const DAILY_AFTER_US: i64 = 7 * crate::model::time::DAY_US;

/// What a read needs of a window's cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// Their sum over the window: its whole days from the daily cells, whatever its length.
    Sum,
    /// Their series, as the charts draw it: hour by hour up to [`DAILY_AFTER_US`], day by day beyond.
    Series,
}

/// The cells that cover every hour a window touches, as `(grain, first start, last start)`: its whole
/// days daily and the hours before and after them hourly, or, for the series of a window a chart draws
/// hour by hour, every hour hourly.
fn cover(window: &PerfWindow, detail: Detail) -> Vec<(Grain, i64, i64)> {
    const HOUR: i64 = 3_600;
    const DAY: i64 = 86_400;
    let (first_hour, last_hour) = (
        Grain::Hour.start(window.from_us),
        Grain::Hour.start(window.to_us),
    );
    if detail == Detail::Series && window.to_us - window.from_us <= DAILY_AFTER_US {
        return vec![(Grain::Hour, first_hour, last_hour)];
    }
    // The first day starting at or after the first hour, and the last day whose last hour is covered.
    let first_day = (first_hour + DAY - 1).div_euclid(DAY) * DAY;
    let last_day = (last_hour - (DAY - HOUR)).div_euclid(DAY) * DAY;
    if first_day > last_day {
        return vec![(Grain::Hour, first_hour, last_hour)];
    }
    let mut cover = Vec::new();
    if first_hour < first_day {
        cover.push((Grain::Hour, first_hour, first_day - HOUR));
    }
    cover.push((Grain::Day, first_day, last_day));
    if last_day + DAY <= last_hour {
        cover.push((Grain::Hour, last_day + DAY, last_hour));
    }
    cover
}

fn like(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Which cells a rollup read folds.
#[derive(Debug, Clone, Copy)]
enum Of<'a> {
    /// The project's own cells, a row per environment and start (the name given to the fold is empty).
    Project,
    /// Every endpoint's cells matching the window's name filter, a row per endpoint, environment and start.
    Endpoints,
    /// One endpoint's cells, a row per environment and start.
    Endpoint(&'a str),
    /// These endpoints' cells, a row per endpoint, environment and start.
    Named(&'a [String]),
    /// Every endpoint matching the window's name filter, its figures summed over the cells read and
    /// without a sketch: one row per endpoint (start 0), what ranks endpoints.
    EndpointSums,
}

impl<'a> Of<'a> {
    /// One endpoint's cells, or else the whole project as the window filters it: the project's own
    /// cells, or, when the window filters endpoints by name, those endpoints'.
    fn endpoint_or_whole(endpoint: Option<&'a str>, window: &PerfWindow) -> Self {
        match (endpoint, &window.name) {
            (Some(endpoint), _) => Of::Endpoint(endpoint),
            (None, None) => Of::Project,
            (None, Some(_)) => Of::Endpoints,
        }
    }
}

impl Of<'_> {
    fn scope(self) -> Scope {
        match self {
            Of::Project => Scope::Project,
            Of::Endpoints | Of::Endpoint(_) | Of::Named(_) | Of::EndpointSums => Scope::Endpoint,
        }
    }

    /// The statement reading these cells of one grain, each row a start, a name, then [`FIGURES`] (or
    /// their sums). Parameters: ?1 the project, ?2 and ?3 the first and last start, ?4 the environment,
    /// and for endpoints' cells ?5 the name filter's pattern and ?6 [`Of::names_param`].
    fn sql(self, grain: Grain) -> String {
        let (table, column) = (Table::new(grain, self.scope()).name(), grain.column());
        let cells = format!(
            "FROM {table} WHERE project_id = ?1 AND {column} BETWEEN ?2 AND ?3 AND (?4 IS NULL OR environment = ?4)"
        );
        // One name is compared, many looked up: per row, a lookup costs more than a compare, and an
        // endpoint's page reads a month of hours.
        let names = match self {
            Of::Endpoint(_) => "name = ?6",
            Of::Named(_) => "name IN (SELECT value FROM json_each(?6))",
            Of::Project | Of::Endpoints | Of::EndpointSums => "?6 IS NULL",
        };
        let endpoints = format!("AND (?5 IS NULL OR name LIKE ?5 ESCAPE '\\') AND {names}");
        match self {
            Of::Project => format!("SELECT {column}, '', {FIGURES} {cells}"),
            Of::Endpoints | Of::Endpoint(_) | Of::Named(_) => {
                format!("SELECT {column}, name, {FIGURES} {cells} {endpoints}")
            }
            Of::EndpointSums => {
                format!("SELECT 0, name, {SUMMED_FIGURES} {cells} {endpoints} GROUP BY name")
            }
        }
    }

    /// The endpoint, or the endpoints as a JSON array, that [`Of::sql`] binds to ?6.
    fn names_param(self) -> Option<String> {
        match self {
            Of::Endpoint(name) => Some(name.to_owned()),
            Of::Named(names) => Some(serde_json::json!(names).to_string()),
            Of::Project | Of::Endpoints | Of::EndpointSums => None,
        }
    }
}

/// A stored cell's figures in the order [`Rollup::merge_stored`] takes them.
const FIGURES: &str =
    "count, duration_sum, db_sum, view_sum, query_sum, query_max, n_plus_one_count, wasted_sum,
    errors_5xx, sketch";

/// [`FIGURES`] summed over many cells, without the sketch.
const SUMMED_FIGURES: &str =
    "sum(count), sum(duration_sum), sum(db_sum), sum(view_sum), sum(query_sum),
    max(query_max), sum(n_plus_one_count), sum(wasted_sum), sum(errors_5xx), NULL";

impl Store {
    /// Folds each rollup cell covering a window, as `fold(start in Unix seconds, endpoint, stored
    /// cell)` (the cell as [`Rollup::merge_stored`] takes it), as [`cover`] gives them for `detail`: a
    /// cell's start is a day's or an hour's.
    async fn fold_window_cells(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        (of, detail): (Of<'_>, Detail),
        fold: &mut impl FnMut(i64, &str, &[libsql::Value]),
    ) -> Result<()> {
        for cells in cover(window, detail) {
            self.fold_cells(cells, project, window, of, fold).await?;
        }
        Ok(())
    }

    /// Folds the cells of one grain whose start is in `first..=last` (Unix seconds; as [`cover`] gives
    /// them). Cells are folded as they are read, straight from their stored bytes: pages read thousands.
    async fn fold_cells(
        &self,
        (grain, first, last): (Grain, i64, i64),
        project: ProjectId,
        window: &PerfWindow,
        of: Of<'_>,
        fold: &mut impl FnMut(i64, &str, &[libsql::Value]),
    ) -> Result<()> {
        let mut params: Vec<libsql::Value> = vec![
            project.value().into(),
            first.into(),
            last.into(),
            window.environment.clone().into(),
        ];
        if of.scope() == Scope::Endpoint {
            params.push(window.name.as_deref().map(like).into());
            params.push(of.names_param().into());
        }
        let sql = of.sql(grain);
        let mut rows = self
            .conn()
            .query(&sql, libsql::params::Params::Positional(params))
            .await?;
        let mut values = Vec::with_capacity(10);
        while let Some(row) = rows.next().await? {
            values.clear();
            for i in 2..12 {
                values.push(row.get_value(i)?);
            }
            fold(row.get(0)?, row.get_str(1)?, &values);
        }
        Ok(())
    }

    /// What the performance pages rank from rollups: the project's totals over the window, from its own
    /// cells (percentiles from a cell per environment and start), and every endpoint's sums, most time
    /// spent first. A page then reads the cells of the endpoints it shows ([`Store::endpoint_cells`]):
    /// their sketches are most of what a window's cells hold.
    pub async fn perf_overview(
        &self,
        project: ProjectId,
        window: &PerfWindow,
    ) -> Result<PerfOverview> {
        let totals = self.perf_totals(project, window, None).await?;
        let endpoints = self.ranked(project, window, Of::EndpointSums).await?;
        Ok(PerfOverview { totals, endpoints })
    }

    /// Every endpoint's figures over the window from the cells `of` reads (each endpoint's cells, or
    /// their sums), most time spent first.
    async fn ranked(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        of: Of<'_>,
    ) -> Result<Vec<EndpointStats>> {
        let mut by_name: BTreeMap<String, Rollup> = BTreeMap::new();
        self.fold_window_cells(
            project,
            window,
            (of, Detail::Sum),
            &mut |_, name, stored| {
                match by_name.get_mut(name) {
                    Some(cell) => cell,
                    None => by_name.entry(name.to_owned()).or_default(),
                }
                .merge_stored(stored)
            },
        )
        .await?;
        let mut stats: Vec<EndpointStats> = by_name
            .into_iter()
            .map(|(name, r)| EndpointStats::from_rollup(name, &r))
            .collect();
        stats.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms).then(a.name.cmp(&b.name)));
        Ok(stats)
    }

    /// The cells of the endpoints `names` over the window, environments merged: their figures with
    /// percentiles, and their series.
    pub async fn endpoint_cells(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        names: &[String],
    ) -> Result<EndpointCells> {
        let mut cells: BTreeMap<String, BTreeMap<i64, Rollup>> = BTreeMap::new();
        if names.is_empty() {
            return Ok(EndpointCells(cells));
        }
        let read = (Of::Named(names), Detail::Series);
        self.fold_window_cells(project, window, read, &mut |start, name, stored| {
            let starts = match cells.get_mut(name) {
                Some(starts) => starts,
                None => cells.entry(name.to_owned()).or_default(),
            };
            starts.entry(start).or_default().merge_stored(stored);
        })
        .await?;
        Ok(EndpointCells(cells))
    }

    /// Endpoints over the window with their percentiles, most time spent first.
    pub async fn endpoint_stats(
        &self,
        project: ProjectId,
        window: &PerfWindow,
    ) -> Result<Vec<EndpointStats>> {
        self.ranked(project, window, Of::Endpoints).await
    }

    /// The whole project (or one endpoint) over the window as one set of figures.
    pub async fn perf_totals(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        endpoint: Option<&str>,
    ) -> Result<EndpointStats> {
        let of = Of::endpoint_or_whole(endpoint, window);
        let mut total = Rollup::default();
        self.fold_window_cells(project, window, (of, Detail::Sum), &mut |_, _, stored| {
            total.merge_stored(stored)
        })
        .await?;
        Ok(EndpointStats::from_rollup(
            endpoint.unwrap_or_default().to_owned(),
            &total,
        ))
    }

    /// Hour by hour over the window, for the project or one endpoint; hours without transactions are
    /// absent (charts fill them).
    pub async fn perf_hours(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        endpoint: Option<&str>,
    ) -> Result<Vec<HourStats>> {
        self.perf_buckets(project, window, endpoint, 1).await
    }

    /// The series a chart of the window draws, for the project or one endpoint: hour by hour up to
    /// [`DAILY_AFTER_US`], beyond it day by day (whole days from the daily cells, the hours at the
    /// window's ends hourly), as the performance page's trends are. Starts without transactions are
    /// absent.
    pub async fn perf_series(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        endpoint: Option<&str>,
    ) -> Result<Vec<HourStats>> {
        let mut by_start: BTreeMap<i64, Rollup> = BTreeMap::new();
        let read = (Of::endpoint_or_whole(endpoint, window), Detail::Series);
        self.fold_window_cells(project, window, read, &mut |start, _, stored| {
            by_start.entry(start).or_default().merge_stored(stored)
        })
        .await?;
        Ok(series(endpoint.unwrap_or_default(), &by_start))
    }

    /// Like [`Store::perf_hours`], in buckets of `bucket_hours` whole hours counted from the window's
    /// first hour (the sketches merge, so a bucket's percentiles are as good as an hour's).
    pub async fn perf_buckets(
        &self,
        project: ProjectId,
        window: &PerfWindow,
        endpoint: Option<&str>,
        bucket_hours: i64,
    ) -> Result<Vec<HourStats>> {
        let width = bucket_hours.max(1) * 3_600;
        let (origin, last) = (
            Grain::Hour.start(window.from_us),
            Grain::Hour.start(window.to_us),
        );
        let mut by_hour: BTreeMap<i64, Rollup> = BTreeMap::new();
        // Buckets may be narrower than a day, so always from the hourly cells.
        let mut fold = |hour: i64, _: &str, stored: &[libsql::Value]| {
            let bucket = origin + (hour - origin).div_euclid(width) * width;
            by_hour.entry(bucket).or_default().merge_stored(stored);
        };
        let of = Of::endpoint_or_whole(endpoint, window);
        self.fold_cells((Grain::Hour, origin, last), project, window, of, &mut fold)
            .await?;
        Ok(series(endpoint.unwrap_or_default(), &by_hour))
    }

    /// The environments transactions were sent from, for the filter (the first [`MAX_ENVIRONMENTS`]
    /// by name).
    pub async fn perf_environments(&self, project: ProjectId) -> Result<Vec<String>> {
        let mut rows = self
            .conn()
            .query(
                ENVIRONMENTS_SQL,
                libsql::params![project.value(), MAX_ENVIRONMENTS],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(row.get(0)?);
        }
        Ok(out)
    }

    /// A page of transactions, newest or slowest first.
    pub async fn transactions(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
    ) -> Result<Vec<TransactionSummary>> {
        match q.sort {
            TransactionSort::Recent => {
                let limit = i64::from(q.limit.clamp(1, 1000));
                self.transaction_rows(project, q, limit, i64::from(q.offset), None)
                    .await
            }
            TransactionSort::Slowest => self.slowest_transactions(project, q).await,
        }
    }

    /// The rows of [`transactions_sql`] for `q`'s sort: `limit` from `offset`, and for slowest first, of
    /// the one hour `hour` (an hour number of `end_time`).
    pub(super) async fn transaction_rows(
        &self,
        project: ProjectId,
        q: &TransactionQuery,
        limit: i64,
        offset: i64,
        hour: Option<i64>,
    ) -> Result<Vec<TransactionSummary>> {
        let sql = transactions_sql(q.sort, q.endpoint.is_some());
        let w = &q.window;
        let mut params = vec![
            project.value().into(),
            w.from_us.into(),
            w.to_us.into(),
            w.environment.clone().into(),
            w.name.as_deref().map(like).into(),
            q.endpoint.clone().into(),
            q.min_duration_ms.map(|ms| (ms * 1000.0) as i64).into(),
            q.release.clone().into(),
            limit.into(),
            offset.into(),
            i64::from(q.n_plus_one_only).into(),
            q.max_duration_ms.map(|ms| (ms * 1000.0) as i64).into(),
            q.http_status.into(),
            q.http_method.clone().into(),
        ];
        params.extend(hour.map(libsql::Value::from));
        let mut rows = self
            .conn()
            .query(&sql, libsql::params::Params::Positional(params))
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(summary(&row)?);
        }
        Ok(out)
    }

    /// One transaction by its row id, with what its page shows.
    pub async fn transaction_detail(
        &self,
        project: ProjectId,
        id: i64,
    ) -> Result<Option<TransactionDetail>> {
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, parent_span_id, http_url, server_name, platform, sdk_name,
                span_count, spans_truncated, query_patterns, payload
             FROM transactions WHERE project_id = ?1 AND id = ?2"
        );
        let mut rows = self.conn().query(&sql, (project.value(), id)).await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let payload: Option<Vec<u8>> = row.get(28)?;
        let payload = match payload {
            Some(frame) => self
                .payload_bytes(&frame, super::MAX_PAYLOAD_BYTES)
                .await
                .ok(),
            None => None,
        };
        let patterns: Option<String> = row.get(27)?;
        let summary = summary(&row)?;
        Ok(Some(TransactionDetail {
            view_time_ms: summary.view_time_ms,
            n_plus_one_wasted_ms: summary.n_plus_one_wasted_ms,
            summary,
            parent_span_id: row.get(20)?,
            http_url: row.get(21)?,
            server_name: row.get(22)?,
            platform: row.get(23)?,
            sdk_name: row.get(24)?,
            span_count: row.get(25)?,
            spans_truncated: row.get::<Option<i64>>(26)?.unwrap_or(0) != 0,
            query_patterns: patterns
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or(serde_json::Value::Array(Vec::new())),
            payload: payload.and_then(|p| serde_json::from_slice(&p).ok()),
        }))
    }

    /// The payloads (the event as sent) of transactions by row id; streamed segments have none (or only
    /// Splat's processing notes).
    pub async fn transaction_payloads(
        &self,
        project: ProjectId,
        ids: &[i64],
    ) -> Result<BTreeMap<i64, serde_json::Value>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT id, payload FROM transactions
                 WHERE project_id = ?1 AND id IN (SELECT value FROM json_each(?2)) AND payload IS NOT NULL",
                (project.value(), serde_json::json!(ids).to_string()),
            )
            .await?;
        let mut out = BTreeMap::new();
        while let Some(row) = rows.next().await? {
            let payload: Vec<u8> = row.get(1)?;
            if let Some(v) = self
                .payload_bytes(&payload, super::MAX_PAYLOAD_BYTES)
                .await
                .ok()
                .and_then(|p| serde_json::from_slice(&p).ok())
            {
                out.insert(row.get(0)?, v);
            }
        }
        Ok(out)
    }

    /// A transaction's row id from its event id or root span id: within `trace_id` when given (the unique
    /// key holds a trace's few rows in their hours), otherwise among the project's `newest` transactions only.
    /// Neither id has an index of its own (a random id would scatter every insert over the file), so a
    /// lookup by either alone is bounded: unbounded, an unknown id walked every row of the project
    /// (minutes at 100 M, for any id anyone types).
    pub async fn transaction_id(
        &self,
        project: ProjectId,
        event_or_span_id: &str,
        trace_id: Option<&str>,
        newest: u32,
    ) -> Result<Option<i64>> {
        let id = event_or_span_id;
        let mut rows = match trace_id {
            Some(trace) => {
                self.conn()
                    .query(
                        super::transaction_keys::ID_IN_TRACE,
                        (project.value(), trace, id),
                    )
                    .await?
            }
            None => {
                self.conn()
                    .query(BY_ID_AMONG_NEWEST, (project.value(), id, i64::from(newest)))
                    .await?
            }
        };
        Ok(match rows.next().await? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }
}

/// [`Store::transaction_id`] without a trace: the project's newest `?3` rows, newest first along
/// `transactions_project_time`.
const BY_ID_AMONG_NEWEST: &str = "SELECT id FROM (SELECT id, event_id, span_id FROM transactions
    WHERE project_id = ?1 ORDER BY end_time DESC LIMIT ?3) WHERE event_id = ?2 OR span_id = ?2 LIMIT 1";

pub(super) fn summary(row: &libsql::Row) -> Result<TransactionSummary> {
    Ok(TransactionSummary {
        id: row.get(0)?,
        event_id: row.get(1)?,
        trace_id: row.get(2)?,
        span_id: row.get(3)?,
        name: row.get(4)?,
        op: row.get(5)?,
        status: row.get(6)?,
        http_method: row.get(7)?,
        http_status: row.get(8)?,
        duration_ms: row.get::<Option<i64>>(9)?.map(|us| us as f64 / 1000.0),
        start_us: row.get(10)?,
        end_us: row.get(11)?,
        environment: row.get(12)?,
        release: row.get(13)?,
        db_time_ms: row.get(14)?,
        query_count: row.get(15)?,
        has_n_plus_one: row.get::<Option<i64>>(16)?.unwrap_or(0) != 0,
        source: row.get(17)?,
        view_time_ms: row.get(18)?,
        n_plus_one_wasted_ms: row.get(19)?,
    })
}

/// The parameters of [`transactions_sql`] for a plan: project 1, all time, endpoint `GET /`, no other
/// filter, 21 rows.
#[cfg(test)]
pub(super) fn list_params() -> Vec<libsql::Value> {
    let none = || libsql::Value::Null;
    vec![
        1.into(),
        0.into(),
        i64::MAX.into(),
        none(),
        none(),
        "GET /".into(),
        none(),
        none(),
        21.into(),
        0.into(),
        0.into(),
        none(),
        none(),
        none(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each shape of the list reaches its rows through the index that serves it: a plan that lost it still
    /// answers, only by reading the whole window (what a 10 M transaction database showed).
    #[tokio::test]
    async fn each_transaction_list_walks_the_index_that_serves_it() {
        let store = Store::open_in_memory().await.unwrap();
        let params = || libsql::params::Params::Positional(list_params());
        // Slowest first reads an hour at a time: store/slowest.rs checks its plans.
        for (sort, by_endpoint, seek, sorts) in [
            (TransactionSort::Recent, false, "transactions_project_time (project_id=? AND end_time>? AND end_time<?)", false),
            (TransactionSort::Recent, true, "transactions_endpoint_time (project_id=? AND name=? AND end_time>? AND end_time<?)", false),
        ] {
            let sql = transactions_sql(sort, by_endpoint);
            let plan = store.query_plan(&sql, params()).await;
            let want = format!("SEARCH transactions USING INDEX {seek}");
            assert!(plan.iter().any(|l| l == &want), "{sort:?} {by_endpoint}\n{plan:#?}");
            assert_eq!(
                plan.iter().any(|l| l.contains("TEMP B-TREE")),
                sorts,
                "{sort:?} {by_endpoint}\n{plan:#?}"
            );
        }
    }

    /// Every read of rollup cells seeks its project and window through the primary key of the table for
    /// its scope and grain: a plan that lost it reads every cell the project has (540 days of them).
    #[tokio::test]
    async fn rollup_reads_seek_their_window_through_the_primary_key() {
        let store = Store::open_in_memory().await.unwrap();
        let names = ["GET /a".to_owned(), "GET /b".to_owned()];
        let reads = [
            Of::Project,
            Of::Endpoints,
            Of::Endpoint("GET /a"),
            Of::Named(&names),
            Of::EndpointSums,
        ];
        for grain in [Grain::Hour, Grain::Day] {
            for of in reads {
                let (table, column) = (Table::new(grain, of.scope()).name(), grain.column());
                let mut params: Vec<libsql::Value> =
                    vec![1.into(), 0.into(), 1_000_000.into(), libsql::Value::Null];
                if of.scope() == Scope::Endpoint {
                    params.extend([libsql::Value::Null, of.names_param().into()]);
                }
                let plan = store
                    .query_plan(&of.sql(grain), libsql::params::Params::Positional(params))
                    .await;
                let seek = format!(
                    "SEARCH {table} USING PRIMARY KEY (project_id=? AND {column}>? AND {column}<?)"
                );
                assert!(
                    plan.iter().any(|l| l.ends_with(&seek)),
                    "{of:?} {grain:?}\n{plan:#?}"
                );
                assert!(
                    !plan.iter().any(|l| l.contains(&format!("SCAN {table}"))),
                    "{plan:#?}"
                );
            }
        }
    }

    /// The environment filter lists each environment once, by name, without the empty one, and finds them
    /// through the index: a plan that scans reads every rollup cell the project has.
    #[tokio::test]
    async fn environments_are_listed_by_skipping_through_the_index() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        let other = store.create_project("Other").await.unwrap();
        let cells = [
            (project.id, "staging", 0),
            (project.id, "", 0),
            (project.id, "production", 0),
            (project.id, "production", 86_400),
            (project.id, "staging", 86_400),
            (other.id, "dev", 0),
        ];
        for (n, (project_id, environment, day)) in cells.into_iter().enumerate() {
            store
                .conn()
                .execute(
                    "INSERT INTO transaction_rollups_daily (project_id, name, environment, day, count, duration_sum,
                         db_sum, view_sum, query_sum, query_max, n_plus_one_count, wasted_sum, errors_5xx, sketch)
                     VALUES (?1, ?2, ?3, ?4, 1, 1, 0, 0, 0, 0, 0, 0, 0, x'')",
                    libsql::params![project_id.value(), format!("GET /{n}"), environment, day],
                )
                .await
                .unwrap();
        }
        assert_eq!(
            store.perf_environments(project.id).await.unwrap(),
            ["production", "staging"]
        );
        assert_eq!(store.perf_environments(other.id).await.unwrap(), ["dev"]);
        let plan = store
            .query_plan(ENVIRONMENTS_SQL, libsql::params![1, MAX_ENVIRONMENTS])
            .await;
        let seek = "SEARCH transaction_rollups_daily USING COVERING INDEX transaction_rollups_daily_environment (project_id=? AND environment>?)";
        assert!(plan.iter().any(|l| l.ends_with(seek)), "{plan:#?}");
        assert!(
            !plan.iter().any(|l| l.contains("SCAN transaction_rollups")),
            "{plan:#?}"
        );
    }

    /// A lookup by id alone reads the newest rows only, so an unknown id costs a bounded read; with its
    /// trace, a transaction of any age is found through the unique key.
    #[tokio::test]
    async fn a_lookup_by_id_is_bounded_unless_its_trace_is_given() {
        use crate::model::time::HOUR_US;
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap();
        for n in 0..5 {
            store
                .conn()
                .execute(
                    "INSERT INTO transactions (project_id, event_id, trace_id, span_id, name, end_time, source, received_at)
                     VALUES (?1, ?2, ?3, ?4, 'GET /', ?5, 'transaction', 0)",
                    libsql::params![project.id.value(), format!("{n:032x}"), format!("{:032x}", 100 + n), format!("{:016x}", 200 + n), HOUR_US * n],
                )
                .await
                .unwrap();
        }
        let find = |id: String, trace: Option<String>| {
            let store = &store;
            async move {
                store
                    .transaction_id(project.id, &id, trace.as_deref(), 3)
                    .await
                    .unwrap()
            }
        };
        // The three newest (in hours 2 to 4) by event id or span id; the two oldest not.
        assert!(find(format!("{:032x}", 4), None).await.is_some());
        assert!(find(format!("{:016x}", 202), None).await.is_some());
        assert_eq!(find(format!("{:032x}", 1), None).await, None);
        // With its trace, the oldest too (four hours before the newest); with another trace, nothing.
        assert!(find(format!("{:032x}", 0), Some(format!("{:032x}", 100)))
            .await
            .is_some());
        assert!(find(format!("{:016x}", 200), Some(format!("{:032x}", 100)))
            .await
            .is_some());
        assert_eq!(
            find(format!("{:032x}", 0), Some(format!("{:032x}", 101))).await,
            None
        );

        let plan = store
            .query_plan(BY_ID_AMONG_NEWEST, libsql::params![1, "x", 3])
            .await;
        assert!(
            plan.iter()
                .any(|l| l
                    == "SEARCH transactions USING INDEX transactions_project_time (project_id=?)")
                && !plan.iter().any(|l| l.contains("TEMP B-TREE")),
            "{plan:#?}"
        );
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 0.95), Some(190.0));
        assert_eq!(nearest_rank(&v, 0.50), Some(100.0));
        assert_eq!(nearest_rank(&[7.0], 0.99), Some(7.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
