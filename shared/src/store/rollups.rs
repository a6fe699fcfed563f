//! Transaction rollups, hourly and daily, per endpoint and for the whole project: written by the
//! processor for each transaction stored for the first time, summed in memory per batch and merged into
//! the stored cells once.

use std::collections::{BTreeSet, HashMap};

use crate::model::TransactionRecord;
use crate::perf::sketch::LatencySketch;
use crate::perf::transaction::TransactionPerf;

use super::cached::Cached;
use super::rows::TransactionRow;
use super::Result;

/// One (project, endpoint, environment, hour) cell.
#[derive(Debug, Clone, Default)]
pub struct Rollup {
    pub count: i64,
    pub duration_sum: f64,
    pub db_sum: f64,
    pub view_sum: f64,
    pub query_sum: i64,
    pub query_max: i64,
    pub n_plus_one_count: i64,
    pub wasted_sum: f64,
    pub errors_5xx: i64,
    /// Durations in milliseconds; min and max come from it exactly.
    pub sketch: LatencySketch,
}

impl Rollup {
    pub fn add(&mut self, t: &TransactionRow) {
        let perf = &t.perf;
        self.count += 1;
        if let Some(ms) = duration_ms(t) {
            self.duration_sum += ms;
            self.sketch.add(ms);
        }
        self.db_sum += perf.db_time_ms.unwrap_or(0.0);
        self.view_sum += perf.view_time_ms.unwrap_or(0.0);
        let queries = i64::from(perf.query_count.unwrap_or(0));
        self.query_sum += queries;
        self.query_max = self.query_max.max(queries);
        self.n_plus_one_count += i64::from(perf.has_n_plus_one == Some(true));
        self.wasted_sum += perf.n_plus_one_wasted_ms.unwrap_or(0.0);
        self.errors_5xx += i64::from(t.record.http.status.is_some_and(|s| s >= 500));
    }

    /// Replaces one transaction's figures `old` by `new` (a streamed transaction whose late children
    /// changed them); its count and duration stay.
    pub fn correct(&mut self, old: &TransactionPerf, new: &TransactionPerf) {
        let f = |v: Option<f64>| v.unwrap_or(0.0);
        let q = |v: Option<i32>| i64::from(v.unwrap_or(0));
        let n = |v: Option<bool>| i64::from(v == Some(true));
        self.db_sum += f(new.db_time_ms) - f(old.db_time_ms);
        self.view_sum += f(new.view_time_ms) - f(old.view_time_ms);
        self.query_sum += q(new.query_count) - q(old.query_count);
        self.query_max = self.query_max.max(q(new.query_count));
        self.n_plus_one_count += n(new.has_n_plus_one) - n(old.has_n_plus_one);
        self.wasted_sum += f(new.n_plus_one_wasted_ms) - f(old.n_plus_one_wasted_ms);
    }

    pub fn merge(&mut self, other: &Rollup) {
        self.count += other.count;
        self.duration_sum += other.duration_sum;
        self.db_sum += other.db_sum;
        self.view_sum += other.view_sum;
        self.query_sum += other.query_sum;
        self.query_max = self.query_max.max(other.query_max);
        self.n_plus_one_count += other.n_plus_one_count;
        self.wasted_sum += other.wasted_sum;
        self.errors_5xx += other.errors_5xx;
        self.sketch.merge(&other.sketch);
    }

    /// Folds a stored cell (its columns `count` to `sketch` as read) into this one, its sketch straight
    /// from the stored bytes; a sketch that does not decode counts as empty.
    pub(super) fn merge_stored(&mut self, row: &[libsql::Value]) {
        let get = |i: usize| row.get(i).unwrap_or(&libsql::Value::Null);
        self.count += int(get(0));
        self.duration_sum += real(get(1));
        self.db_sum += real(get(2));
        self.view_sum += real(get(3));
        self.query_sum += int(get(4));
        self.query_max = self.query_max.max(int(get(5)));
        self.n_plus_one_count += int(get(6));
        self.wasted_sum += real(get(7));
        self.errors_5xx += int(get(8));
        if let libsql::Value::Blob(b) = get(9) {
            if let Err(e) = self.sketch.merge_bytes(b) {
                tracing::warn!(error = %e, "a stored latency sketch does not decode; counting it as empty");
            }
        }
    }
}

fn duration_ms(t: &TransactionRow) -> Option<f64> {
    let root = &t.record.root;
    let (start, end) = (root.start_us?, root.end_us?);
    (end >= start).then(|| (end - start) as f64 / 1000.0)
}

/// A cell's key: project, endpoint name (empty in a project cell), environment, start.
type Key = (i64, String, String, i64);

/// The two granularities rollups are kept at: hourly cells for charts and short windows, and daily cells
/// so that a long window reads 24 times fewer rows (a 30-day page over 50 endpoints: 4,500 instead of
/// 108,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Grain {
    Hour,
    Day,
}

impl Grain {
    /// The key column: Unix seconds at the start of the cell's hour or day.
    pub fn column(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    pub fn seconds(self) -> i64 {
        match self {
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The start (Unix seconds) of the cell holding the instant `us`.
    pub fn start(self, us: i64) -> i64 {
        us.div_euclid(self.seconds() * 1_000_000) * self.seconds()
    }
}

/// Whose figures a cell sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Scope {
    /// One endpoint (transaction name) in one environment.
    Endpoint,
    /// Every endpoint of the project in one environment: what totals and the project's charts read, one
    /// cell per environment and hour or day instead of one per endpoint (migration 38).
    Project,
}

/// One table of cells: a grain and a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Table {
    pub grain: Grain,
    pub scope: Scope,
}

/// A statement for each table (statements are cached by their static text, hence one per table).
macro_rules! per_table {
    ($table:expr, $make:ident) => {
        match ($table.grain, $table.scope) {
            (Grain::Hour, Scope::Endpoint) => $make!(
                "transaction_rollups",
                "project_id, name, environment, hour",
                "?, ?, ?, ?"
            ),
            (Grain::Day, Scope::Endpoint) => $make!(
                "transaction_rollups_daily",
                "project_id, name, environment, day",
                "?, ?, ?, ?"
            ),
            (Grain::Hour, Scope::Project) => $make!(
                "project_rollups",
                "project_id, environment, hour",
                "?, ?, ?"
            ),
            (Grain::Day, Scope::Project) => $make!(
                "project_rollups_daily",
                "project_id, environment, day",
                "?, ?, ?"
            ),
        }
    };
}

impl Table {
    /// Every table a transaction counts in.
    pub const ALL: [Table; 4] = [
        Table::new(Grain::Hour, Scope::Endpoint),
        Table::new(Grain::Day, Scope::Endpoint),
        Table::new(Grain::Hour, Scope::Project),
        Table::new(Grain::Day, Scope::Project),
    ];

    pub const fn new(grain: Grain, scope: Scope) -> Self {
        Self { grain, scope }
    }

    pub fn name(self) -> &'static str {
        macro_rules! name {
            ($table:literal, $key:literal, $marks:literal) => {
                $table
            };
        }
        per_table!(self, name)
    }

    /// The columns of the primary key, comma-separated.
    pub fn key_columns(self) -> &'static str {
        macro_rules! key {
            ($table:literal, $key:literal, $marks:literal) => {
                $key
            };
        }
        per_table!(self, key)
    }

    /// One stored cell by key ([`Table::key_params`]).
    fn select_sql(self) -> &'static str {
        macro_rules! select {
            ($table:literal, $key:literal, $marks:literal) => {
                concat!(
                    "SELECT count, duration_sum, db_sum, view_sum, query_sum, query_max, n_plus_one_count, wasted_sum, errors_5xx, sketch FROM ",
                    $table, " WHERE (", $key, ") = (", $marks, ")"
                )
            };
        }
        per_table!(self, select)
    }

    /// A cell written whole: its key ([`Table::key_params`]), then its figures.
    fn upsert_sql(self) -> &'static str {
        macro_rules! upsert {
            ($table:literal, $key:literal, $marks:literal) => {
                concat!(
                    "INSERT OR REPLACE INTO ", $table, " (", $key,
                    ", count, duration_sum, duration_min, duration_max, db_sum, view_sum, query_sum, query_max, \
                     n_plus_one_count, wasted_sum, errors_5xx, sketch) VALUES (",
                    $marks, ", ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                )
            };
        }
        per_table!(self, upsert)
    }

    /// A key's values in the order of [`Table::key_columns`] (a project cell has no name).
    fn key_params(self, (project, name, environment, start): &Key) -> Vec<libsql::Value> {
        let mut key = vec![libsql::Value::Integer(*project)];
        if self.scope == Scope::Endpoint {
            key.push(libsql::Value::Text(name.clone()));
        }
        key.push(libsql::Value::Text(environment.clone()));
        key.push(libsql::Value::Integer(*start));
        key
    }

    /// The key of the cell of this table holding `record`, which ended at `end_us`.
    fn key_of(self, project: i64, record: &TransactionRecord, end_us: i64) -> Key {
        let name = match self.scope {
            Scope::Endpoint => record.name.clone(),
            Scope::Project => String::new(),
        };
        (
            project,
            name,
            record.environment.clone().unwrap_or_default(),
            self.grain.start(end_us),
        )
    }
}

/// Sums a batch's transactions per cell, hourly and daily, per endpoint and for the project, then merges
/// each cell into the database once.
#[derive(Default)]
pub(super) struct RollupWriter {
    cells: HashMap<(Table, Key), Rollup>,
}

impl RollupWriter {
    pub fn add(&mut self, t: &TransactionRow) {
        for table in Table::ALL {
            let key = table.key_of(t.project_id.value(), &t.record, t.end_us);
            self.cells.entry((table, key)).or_default().add(t);
        }
    }

    /// Corrects the cells of a transaction stored earlier whose figures changed from `old` to `new`.
    pub fn correct(
        &mut self,
        project: i64,
        record: &TransactionRecord,
        end_us: i64,
        old: &TransactionPerf,
        new: &TransactionPerf,
    ) {
        for table in Table::ALL {
            let key = table.key_of(project, record, end_us);
            self.cells
                .entry((table, key))
                .or_default()
                .correct(old, new);
        }
    }

    /// The reads of the cells these transactions count in (to read ahead: a batch writes its cells last).
    pub fn cell_reads_of(
        transactions: &[TransactionRow],
    ) -> Vec<(&'static str, Vec<libsql::Value>)> {
        let mut cells = BTreeSet::new();
        for t in transactions {
            for table in Table::ALL {
                cells.insert((
                    table,
                    table.key_of(t.project_id.value(), &t.record, t.end_us),
                ));
            }
        }
        cells
            .iter()
            .map(|(table, key)| cell_read(*table, key))
            .collect()
    }

    pub async fn flush(self, tx: &mut Cached) -> Result<()> {
        // Every cell's stored figures first, read together (one round trip to a libSQL server, or none
        // when read ahead).
        let cells: Vec<_> = self.cells.into_iter().collect();
        let reads = cells
            .iter()
            .map(|((table, key), _)| cell_read(*table, key))
            .collect();
        let stored = tx.reads(reads).await?;
        for (((table, key), mut cell), rows) in cells.into_iter().zip(stored) {
            if let Some(row) = rows.first() {
                cell.merge(&from_values(row));
            }
            let mut params = table.key_params(&key);
            params.extend([
                cell.count.into(),
                cell.duration_sum.into(),
                cell.sketch.min().into(),
                cell.sketch.max().into(),
                cell.db_sum.into(),
                cell.view_sum.into(),
                cell.query_sum.into(),
                cell.query_max.into(),
                cell.n_plus_one_count.into(),
                cell.wasted_sum.into(),
                cell.errors_5xx.into(),
                cell.sketch.to_bytes().into(),
            ]);
            tx.write(
                table.upsert_sql(),
                libsql::params::Params::Positional(params),
            )
            .await?;
        }
        Ok(())
    }
}

/// The read of a cell's stored figures.
fn cell_read(table: Table, key: &Key) -> (&'static str, Vec<libsql::Value>) {
    (table.select_sql(), table.key_params(key))
}

/// Fills the daily rollups from the hourly ones already stored (once, when the daily table is created).
pub(super) async fn backfill_daily(conn: &libsql::Connection) -> Result<()> {
    let mut rows = conn
        .query(
            "SELECT project_id, name, environment, hour, count, duration_sum, db_sum, view_sum, query_sum, query_max,
                n_plus_one_count, wasted_sum, errors_5xx, sketch
             FROM transaction_rollups",
            (),
        )
        .await?;
    let mut writer = RollupWriter::default();
    let daily = Table::new(Grain::Day, Scope::Endpoint);
    while let Some(row) = rows.next().await? {
        let values: Vec<libsql::Value> = (4..14)
            .map(|i| row.get_value(i))
            .collect::<std::result::Result<_, _>>()?;
        let hour: i64 = row.get(3)?;
        let key = (
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            Grain::Day.start(hour * 1_000_000),
        );
        writer
            .cells
            .entry((daily, key))
            .or_default()
            .merge(&from_values(&values));
    }
    drop(rows);
    writer.flush(&mut Cached::new(conn)).await
}

/// How many hourly or daily starts [`backfill_project`] merges at a time: a month of hours, so that
/// its memory stays a month of a project's cells whatever the days kept.
const BACKFILL_STARTS: i64 = 720;

/// Fills the project cells, hourly and daily, from the endpoint cells already stored (once, when their
/// tables are created), a project and a month of starts at a time.
pub(super) async fn backfill_project(conn: &libsql::Connection) -> Result<()> {
    let mut projects = Vec::new();
    let mut rows = conn.query("SELECT id FROM projects", ()).await?;
    while let Some(row) = rows.next().await? {
        projects.push(row.get::<i64>(0)?);
    }
    drop(rows);
    for project in projects {
        for grain in [Grain::Hour, Grain::Day] {
            let Some((first, last)) = stored_starts(conn, grain, project).await? else {
                continue;
            };
            let step = BACKFILL_STARTS * grain.seconds();
            for from in (first..=last).step_by(step as usize) {
                backfill_project_cells(conn, grain, project, (from, from + step - 1)).await?;
            }
        }
    }
    Ok(())
}

/// The first and last start of a project's endpoint cells of one grain (each found by the primary key:
/// `min` and `max` in one statement would read every cell).
async fn stored_starts(
    conn: &libsql::Connection,
    grain: Grain,
    project: i64,
) -> Result<Option<(i64, i64)>> {
    let (table, column) = (Table::new(grain, Scope::Endpoint).name(), grain.column());
    let mut rows = conn
        .query(
            &format!(
                "SELECT (SELECT min({column}) FROM {table} WHERE project_id = ?1),
                        (SELECT max({column}) FROM {table} WHERE project_id = ?1)"
            ),
            [project],
        )
        .await?;
    Ok(match rows.next().await? {
        Some(row) => row.get::<Option<i64>>(0)?.zip(row.get::<Option<i64>>(1)?),
        None => None,
    })
}

/// Sums a project's endpoint cells of one grain with starts in `first..=last` into its project cells.
async fn backfill_project_cells(
    conn: &libsql::Connection,
    grain: Grain,
    project: i64,
    (first, last): (i64, i64),
) -> Result<()> {
    let (table, column) = (Table::new(grain, Scope::Endpoint).name(), grain.column());
    let to = Table::new(grain, Scope::Project);
    let mut rows = conn
        .query(
            &format!(
                "SELECT environment, {column}, count, duration_sum, db_sum, view_sum, query_sum, query_max,
                    n_plus_one_count, wasted_sum, errors_5xx, sketch
                 FROM {table} WHERE project_id = ?1 AND {column} BETWEEN ?2 AND ?3"
            ),
            (project, first, last),
        )
        .await?;
    let mut writer = RollupWriter::default();
    while let Some(row) = rows.next().await? {
        let values: Vec<libsql::Value> = (2..12)
            .map(|i| row.get_value(i))
            .collect::<std::result::Result<_, _>>()?;
        let key = (project, String::new(), row.get(0)?, row.get(1)?);
        writer
            .cells
            .entry((to, key))
            .or_default()
            .merge_stored(&values);
    }
    drop(rows);
    writer.flush(&mut Cached::new(conn)).await
}

fn int(v: &libsql::Value) -> i64 {
    match v {
        libsql::Value::Integer(n) => *n,
        libsql::Value::Real(f) => *f as i64,
        _ => 0,
    }
}

fn real(v: &libsql::Value) -> f64 {
    match v {
        libsql::Value::Real(f) => *f,
        libsql::Value::Integer(n) => *n as f64,
        _ => 0.0,
    }
}

/// A stored cell; a sketch that does not decode counts as empty rather than failing the batch forever.
pub(super) fn from_values(row: &[libsql::Value]) -> Rollup {
    let mut cell = Rollup::default();
    cell.merge_stored(row);
    cell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// The backfill sums every endpoint cell of a project into its project cells, per environment and
    /// start, across the chunks it reads a month at a time, and leaves other projects' cells alone.
    #[tokio::test]
    async fn backfill_sums_endpoint_cells_into_project_cells_across_chunks() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id.value();
        let other = store.create_project("Other").await.unwrap().id.value();
        let conn = store.conn();
        // Three months of hours apart, so that the hourly backfill reads several chunks.
        let hours = [0, 1_000 * 3_600, 2_000 * 3_600];
        let cells = [
            (project, "GET /a", "production", 5.0),
            (project, "GET /b", "production", 50.0),
            (project, "GET /a", "staging", 500.0),
            (other, "GET /a", "production", 7.0),
        ];
        for hour in hours {
            for (project, name, environment, ms) in cells {
                let mut sketch = LatencySketch::new();
                sketch.add(ms);
                for grain in [Grain::Hour, Grain::Day] {
                    let table = Table::new(grain, Scope::Endpoint).name();
                    let column = grain.column();
                    conn.execute(
                        &format!(
                            "INSERT INTO {table} (project_id, name, environment, {column}, count, duration_sum, db_sum,
                                 view_sum, query_sum, query_max, n_plus_one_count, wasted_sum, errors_5xx, sketch)
                             VALUES (?1, ?2, ?3, ?4, 1, ?5, 0, 0, 2, 2, 0, 0, 0, ?6)"
                        ),
                        libsql::params![project, name, environment, grain.start(hour * 1_000_000), ms, sketch.to_bytes()],
                    )
                    .await
                    .unwrap();
                }
            }
        }
        backfill_project(&conn).await.unwrap();

        // Per start: the project's production (two endpoints) and staging, the other project's production.
        let per_start = [
            (project, "production", 2, 55.0, 4, Some(50.0)),
            (project, "staging", 1, 500.0, 2, Some(500.0)),
        ];
        let other_per_start = [(other, "production", 1, 7.0, 2, Some(7.0))];
        let mut want: Vec<_> = hours.iter().flat_map(|_| per_start).collect();
        want.extend(hours.iter().flat_map(|_| other_per_start));
        for grain in [Grain::Hour, Grain::Day] {
            let (table, column) = (Table::new(grain, Scope::Project).name(), grain.column());
            let mut rows = conn
                .query(
                    &format!(
                        "SELECT project_id, environment, count, duration_sum, query_sum, sketch FROM {table}
                         ORDER BY project_id, {column}, environment"
                    ),
                    (),
                )
                .await
                .unwrap();
            let mut seen = Vec::new();
            while let Some(row) = rows.next().await.unwrap() {
                let sketch = LatencySketch::from_bytes(&row.get::<Vec<u8>>(5).unwrap()).unwrap();
                seen.push((
                    row.get::<i64>(0).unwrap(),
                    row.get::<String>(1).unwrap(),
                    row.get::<i64>(2).unwrap(),
                    row.get::<f64>(3).unwrap(),
                    row.get::<i64>(4).unwrap(),
                    sketch.max().map(f64::round),
                ));
            }
            let want: Vec<_> = want
                .iter()
                .map(|&(p, env, n, sum, q, max)| (p, env.to_owned(), n, sum, q, max))
                .collect();
            assert_eq!(seen, want, "{table}");
        }
    }
}
