//! Transaction rollups, hourly and daily: written by the processor for each transaction stored for the
//! first time, summed in memory per batch and merged into the stored cells once.

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
    pub fn table(self) -> &'static str {
        match self {
            Self::Hour => "transaction_rollups",
            Self::Day => "transaction_rollups_daily",
        }
    }

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

    /// One stored cell by key (statements are cached by their static text, hence one per grain).
    fn select_sql(self) -> &'static str {
        macro_rules! select {
            ($table:literal, $column:literal) => {
                concat!(
                    "SELECT count, duration_sum, db_sum, view_sum, query_sum, query_max, n_plus_one_count, wasted_sum, errors_5xx, sketch FROM ",
                    $table, " WHERE project_id = ?1 AND name = ?2 AND environment = ?3 AND ", $column, " = ?4"
                )
            };
        }
        match self {
            Self::Hour => select!("transaction_rollups", "hour"),
            Self::Day => select!("transaction_rollups_daily", "day"),
        }
    }

    fn upsert_sql(self) -> &'static str {
        macro_rules! upsert {
            ($table:literal, $column:literal) => {
                concat!(
                    "INSERT OR REPLACE INTO ", $table, " (project_id, name, environment, ", $column,
                    ", count, duration_sum, duration_min, duration_max, db_sum, view_sum, query_sum, query_max, \
                     n_plus_one_count, wasted_sum, errors_5xx, sketch) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                )
            };
        }
        match self {
            Self::Hour => upsert!("transaction_rollups", "hour"),
            Self::Day => upsert!("transaction_rollups_daily", "day"),
        }
    }

    /// The start (Unix seconds) of the cell holding the instant `us`.
    pub fn start(self, us: i64) -> i64 {
        us.div_euclid(self.seconds() * 1_000_000) * self.seconds()
    }
}

fn cell_key(grain: Grain, project: i64, record: &TransactionRecord, end_us: i64) -> Key {
    (
        project,
        record.name.clone(),
        record.environment.clone().unwrap_or_default(),
        grain.start(end_us),
    )
}

/// Sums a batch's transactions per cell, hourly and daily, then merges each cell into the database once.
#[derive(Default)]
pub(super) struct RollupWriter {
    cells: HashMap<(Grain, Key), Rollup>,
}

impl RollupWriter {
    pub fn add(&mut self, t: &TransactionRow) {
        for grain in [Grain::Hour, Grain::Day] {
            let key = cell_key(grain, t.project_id.value(), &t.record, t.end_us);
            self.cells.entry((grain, key)).or_default().add(t);
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
        for grain in [Grain::Hour, Grain::Day] {
            let key = cell_key(grain, project, record, end_us);
            self.cells
                .entry((grain, key))
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
            for grain in [Grain::Hour, Grain::Day] {
                cells.insert((
                    grain,
                    cell_key(grain, t.project_id.value(), &t.record, t.end_us),
                ));
            }
        }
        cells
            .iter()
            .map(|(grain, key)| cell_read(*grain, key))
            .collect()
    }

    pub async fn flush(self, tx: &mut Cached) -> Result<()> {
        // Every cell's stored figures first, read together (one round trip to a libSQL server, or none
        // when read ahead).
        let cells: Vec<_> = self.cells.into_iter().collect();
        let reads = cells
            .iter()
            .map(|((grain, key), _)| cell_read(*grain, key))
            .collect();
        let stored = tx.reads(reads).await?;
        for (((grain, (project, name, environment, start)), mut cell), rows) in
            cells.into_iter().zip(stored)
        {
            if let Some(row) = rows.first() {
                cell.merge(&from_values(row));
            }
            tx.write(
                grain.upsert_sql(),
                libsql::params![
                    project,
                    name.as_str(),
                    environment.as_str(),
                    start,
                    cell.count,
                    cell.duration_sum,
                    cell.sketch.min(),
                    cell.sketch.max(),
                    cell.db_sum,
                    cell.view_sum,
                    cell.query_sum,
                    cell.query_max,
                    cell.n_plus_one_count,
                    cell.wasted_sum,
                    cell.errors_5xx,
                    cell.sketch.to_bytes()
                ],
            )
            .await?;
        }
        Ok(())
    }
}

/// The read of a cell's stored figures.
fn cell_read(
    grain: Grain,
    (project, name, environment, start): &Key,
) -> (&'static str, Vec<libsql::Value>) {
    let key = vec![
        libsql::Value::Integer(*project),
        libsql::Value::Text(name.clone()),
        libsql::Value::Text(environment.clone()),
        libsql::Value::Integer(*start),
    ];
    (grain.select_sql(), key)
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
            .entry((Grain::Day, key))
            .or_default()
            .merge(&from_values(&values));
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
