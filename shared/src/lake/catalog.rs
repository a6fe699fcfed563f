//! The DuckLake catalog inside `splat.db`: the tables DuckDB's ducklake extension reads (spec 1.0), created
//! by a migration, and the rows that register each batch's files. This is the recipe proven in
//! `reference/ducklake-foreign-writer.md` §2.1; every step it calls required is here, because leaving one
//! out gives silently wrong query results (table column stats drive DuckDB's pruning and min/max folding;
//! `next_file_id` hands out file ids; `record_count` answers `count(*)` and is never lowered).

use std::collections::BTreeMap;
use std::future::Future;

use libsql::params::IntoParams;

use super::columns::{compare_stat, has_bounds};
use super::tables::{TableDef, ALL};
use super::{LakeError, LakeFile};

type Result<T> = std::result::Result<T, LakeError>;

/// Rows as values, as a read returns them.
pub type Rows = Vec<Vec<libsql::Value>>;

/// The database holding the catalog tables, as the lake sees it: somewhere to run catalog statements.
/// [`crate::store::Store`] is one; the lake knows nothing else of the database.
pub trait CatalogDb: Send + Sync {
    /// A connection for the catalog's statements (on a libSQL server, one of its own per call).
    fn catalog_connection(&self) -> libsql::Connection;
}

/// A write transaction its caller holds, in which files are registered, replaced or ended: the processor's
/// batch (which on a libSQL server sends its writes in batches) or one that maintenance opens.
pub trait CatalogTx: Send {
    /// A write whose result is not read.
    fn write(
        &mut self,
        sql: &'static str,
        params: impl IntoParams + Send,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Several reads at once (on a server, one round trip); each one's rows.
    fn reads(
        &mut self,
        queries: Vec<(&'static str, Vec<libsql::Value>)>,
    ) -> impl Future<Output = Result<Vec<Rows>>> + Send;
}

/// A plain transaction, statement by statement (maintenance: a short transaction of its own).
impl CatalogTx for libsql::Transaction {
    async fn write(&mut self, sql: &'static str, params: impl IntoParams + Send) -> Result<()> {
        self.execute(sql, params).await?;
        Ok(())
    }

    async fn reads(
        &mut self,
        queries: Vec<(&'static str, Vec<libsql::Value>)>,
    ) -> Result<Vec<Rows>> {
        let mut all = Vec::with_capacity(queries.len());
        for (sql, params) in queries {
            let mut rows = self.query(sql, params).await?;
            let mut found = Vec::new();
            while let Some(row) = rows.next().await? {
                found.push(
                    (0..row.column_count())
                        .map(|i| row.get_value(i))
                        .collect::<libsql::Result<Vec<_>>>()?,
                );
            }
            all.push(found);
        }
        Ok(all)
    }
}

/// The first row of a read, if there is one.
async fn first_row(
    tx: &mut impl CatalogTx,
    sql: &'static str,
    params: Vec<libsql::Value>,
) -> Result<Option<Vec<libsql::Value>>> {
    let rows = tx
        .reads(vec![(sql, params)])
        .await?
        .pop()
        .unwrap_or_default();
    Ok(rows.into_iter().next())
}

/// Points the catalog at where the files live: a folder (`data/lake/`) or `s3://bucket/lake/`. Stock DuckDB
/// attaching the database finds the files there, and refuses a different `DATA_PATH` unless told to
/// override, so the path is kept current whenever the writer opens.
pub async fn set_data_path(conn: &libsql::Connection, data_path: &str) -> libsql::Result<()> {
    let tx = conn
        .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
        .await?;
    tx.execute(
        "DELETE FROM ducklake_metadata WHERE key = 'data_path' AND scope IS NULL",
        (),
    )
    .await?;
    tx.execute(
        "INSERT INTO ducklake_metadata (key, value, scope, scope_id) VALUES ('data_path', ?1, NULL, NULL)",
        [data_path],
    )
    .await?;
    tx.commit().await
}

/// Where a table's file counts and column bounds stand.
#[derive(Debug, Default)]
struct TableTotals {
    record_count: i64,
    next_row_id: i64,
    file_size_bytes: i64,
    exists: bool,
}

/// A column's bounds in the table stats: contains_null, contains_nan, min, max.
type Bound = (bool, Option<bool>, Option<String>, Option<String>);

/// What registering files reads first, in one round trip to a libSQL server: the newest snapshot, and
/// every table's totals and column bounds (three tables, a few dozen rows).
struct Stats {
    last_snapshot: Vec<libsql::Value>,
    totals: BTreeMap<i64, TableTotals>,
    bounds: BTreeMap<i64, BTreeMap<i64, Bound>>,
}

const LAST_SNAPSHOT: &str =
    "SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot
    ORDER BY snapshot_id DESC LIMIT 1";

/// The reads registering files starts with (the newest snapshot, table totals, column bounds), for a
/// caller that reads ahead: nothing but registering changes what they read.
pub fn state_reads() -> Vec<(&'static str, Vec<libsql::Value>)> {
    vec![
        (LAST_SNAPSHOT, Vec::new()),
        (
            "SELECT table_id, record_count, next_row_id, file_size_bytes FROM ducklake_table_stats",
            Vec::new(),
        ),
        (
            "SELECT table_id, column_id, contains_null, contains_nan, min_value, max_value
             FROM ducklake_table_column_stats",
            Vec::new(),
        ),
    ]
}

impl Stats {
    async fn read(tx: &mut impl CatalogTx) -> Result<Self> {
        let mut found = tx.reads(state_reads()).await?.into_iter();
        let mut next = || found.next().unwrap_or_default();
        let last_snapshot = next().into_iter().next().unwrap_or_default();
        let totals = next()
            .iter()
            .map(|row| {
                let totals = TableTotals {
                    record_count: int(row, 1).unwrap_or(0),
                    next_row_id: int(row, 2).unwrap_or(0),
                    file_size_bytes: int(row, 3).unwrap_or(0),
                    exists: true,
                };
                (int(row, 0).unwrap_or(-1), totals)
            })
            .collect();
        let mut bounds: BTreeMap<i64, BTreeMap<i64, Bound>> = BTreeMap::new();
        for row in next() {
            let bound = (
                int(&row, 2).unwrap_or(0) != 0,
                int(&row, 3).map(|n| n != 0),
                text(&row, 4),
                text(&row, 5),
            );
            let table = bounds.entry(int(&row, 0).unwrap_or(-1)).or_default();
            table.insert(int(&row, 1).unwrap_or(-1), bound);
        }
        Ok(Self {
            last_snapshot,
            totals,
            bounds,
        })
    }
}

fn int(row: &[libsql::Value], i: usize) -> Option<i64> {
    match row.get(i) {
        Some(libsql::Value::Integer(n)) => Some(*n),
        _ => None,
    }
}

fn text(row: &[libsql::Value], i: usize) -> Option<String> {
    match row.get(i) {
        Some(libsql::Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Registers the files as one new snapshot inside the caller's transaction (the batch's single commit).
/// Returns the snapshot id, or `None` when there is nothing to register.
pub async fn register(tx: &mut impl CatalogTx, files: &[LakeFile]) -> Result<Option<i64>> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut stats = Stats::read(tx).await?;
    let (snapshot, next_file_id) =
        insert_snapshot(tx, &stats.last_snapshot, files.len() as i64).await?;
    let mut by_table: BTreeMap<i64, Vec<(i64, &LakeFile)>> = BTreeMap::new();
    for (i, file) in files.iter().enumerate() {
        by_table
            .entry(file.table.id)
            .or_default()
            .push((next_file_id + i as i64, file));
    }
    let changes: Vec<String> = by_table
        .keys()
        .map(|id| format!("inserted_into_table:{id}"))
        .collect();
    record_changes(tx, snapshot, &changes.join(","), "processor batch").await?;
    for (table_id, files) in &by_table {
        let table = ALL
            .iter()
            .find(|t| t.id == *table_id)
            .ok_or_else(|| LakeError::Catalog(format!("unknown lake table {table_id}")))?;
        let new = NewRows::Counted;
        register_table_files(tx, table, snapshot, files, new, &mut stats).await?;
    }
    Ok(Some(snapshot))
}

/// Adds the next snapshot, handing out `file_ids` new file ids; returns it and the first of those ids.
/// The schema version and catalog ids carry over: the tables keep their shape.
pub(crate) async fn new_snapshot(tx: &mut impl CatalogTx, file_ids: i64) -> Result<(i64, i64)> {
    let last = first_row(tx, LAST_SNAPSHOT, Vec::new())
        .await?
        .unwrap_or_default();
    insert_snapshot(tx, &last, file_ids).await
}

/// The snapshot after `last` (the newest one's row, see [`LAST_SNAPSHOT`]).
async fn insert_snapshot(
    tx: &mut impl CatalogTx,
    last: &[libsql::Value],
    file_ids: i64,
) -> Result<(i64, i64)> {
    let [Some(snapshot), Some(schema_version), Some(next_catalog_id), Some(next_file_id)] =
        [0, 1, 2, 3].map(|i| int(last, i))
    else {
        return Err(LakeError::Catalog(
            "the lake catalog has no snapshot".into(),
        ));
    };
    let snapshot = snapshot + 1;
    tx.write(
        "INSERT INTO ducklake_snapshot VALUES (?1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), ?2, ?3, ?4)",
        (snapshot, schema_version, next_catalog_id, next_file_id + file_ids),
    )
    .await?;
    Ok((snapshot, next_file_id))
}

/// Ends columns of a table in a snapshot with the next schema version (DuckDB's `DROP COLUMN`: readers
/// reload the table's shape), for a table's old columns once no live file holds them.
pub(crate) async fn end_columns(
    tx: &mut impl CatalogTx,
    table: &TableDef,
    column_ids: &[i64],
) -> Result<()> {
    tx.write(
        "INSERT INTO ducklake_snapshot
         SELECT snapshot_id + 1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), schema_version + 1, next_catalog_id, next_file_id
         FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1",
        (),
    )
    .await?;
    let last = first_row(tx, LAST_SNAPSHOT, Vec::new()).await?;
    let [Some(snapshot), Some(schema_version)] =
        [0, 1].map(|i| int(last.as_deref().unwrap_or_default(), i))
    else {
        return Err(LakeError::Catalog(
            "the lake catalog has no snapshot".into(),
        ));
    };
    let change = format!("altered_table:{}", table.id);
    record_changes(tx, snapshot, &change, "drop the old text id columns").await?;
    tx.write(
        "INSERT INTO ducklake_schema_versions VALUES (?1, ?2, ?3)",
        (snapshot, schema_version, table.id),
    )
    .await?;
    let ids = serde_json::Value::from(column_ids.to_vec()).to_string();
    tx.write(
        "UPDATE ducklake_column SET end_snapshot = ?1
         WHERE table_id = ?2 AND end_snapshot IS NULL AND column_id IN (SELECT value FROM json_each(?3))",
        libsql::params![snapshot, table.id, ids],
    )
    .await
}

/// What a snapshot did, in DuckDB's vocabulary (`inserted_into_table:1,deleted_from_table:2`).
pub(crate) async fn record_changes(
    tx: &mut impl CatalogTx,
    snapshot: i64,
    changes: &str,
    message: &str,
) -> Result<()> {
    tx.write(
        "INSERT INTO ducklake_snapshot_changes VALUES (?1, ?2, 'splat', ?3, NULL)",
        (snapshot, changes, message),
    )
    .await
}

/// Whether a registered file's rows are new to the table (a batch) or already counted (a compacted copy of
/// rows in files it replaces: `record_count` must neither grow nor, per the recipe, ever be lowered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewRows {
    Counted,
    AlreadyCounted,
}

/// Replaces live files of one table by one file holding the same rows (compaction), as one snapshot:
/// the new file is registered, the old ones end. Returns false, changing nothing, when any old file is
/// no longer live (another run got there first).
pub(crate) async fn replace_files(
    tx: &mut impl CatalogTx,
    old_file_ids: &[i64],
    file: &LakeFile,
) -> Result<bool> {
    for id in old_file_ids {
        let live = first_row(
            tx,
            "SELECT 1 FROM ducklake_data_file WHERE data_file_id = ?1 AND end_snapshot IS NULL",
            vec![libsql::Value::Integer(*id)],
        )
        .await?;
        if live.is_none() {
            return Ok(false);
        }
    }
    let mut stats = Stats::read(tx).await?;
    let (snapshot, file_id) = insert_snapshot(tx, &stats.last_snapshot, 1).await?;
    let table = file.table;
    record_changes(
        tx,
        snapshot,
        &format!("inserted_into_table:{0},deleted_from_table:{0}", table.id),
        "compaction",
    )
    .await?;
    let new = NewRows::AlreadyCounted;
    register_table_files(tx, table, snapshot, &[(file_id, file)], new, &mut stats).await?;
    end_files(tx, old_file_ids, snapshot).await?;
    Ok(true)
}

/// Ends files at `snapshot`: they drop out of the table from then on (time travel before it still
/// sees them, until the snapshots before it expire). Table stats stay as they are, as DuckDB leaves them.
pub(crate) async fn end_files(
    tx: &mut impl CatalogTx,
    file_ids: &[i64],
    snapshot: i64,
) -> Result<()> {
    for id in file_ids {
        tx.write(
            "UPDATE ducklake_data_file SET end_snapshot = ?2 WHERE data_file_id = ?1 AND end_snapshot IS NULL",
            (*id, snapshot),
        )
        .await?;
    }
    Ok(())
}

async fn register_table_files(
    tx: &mut impl CatalogTx,
    table: &TableDef,
    snapshot: i64,
    files: &[(i64, &LakeFile)],
    new_rows: NewRows,
    stats: &mut Stats,
) -> Result<()> {
    let mut totals = stats.totals.remove(&table.id).unwrap_or_default();
    for (file_id, file) in files {
        tx.write(
            "INSERT INTO ducklake_data_file (data_file_id, table_id, begin_snapshot, end_snapshot, file_order, path,
                path_is_relative, file_format, record_count, file_size_bytes, footer_size, row_id_start,
                partition_id, encryption_key, mapping_id, partial_max)
             VALUES (?1, ?2, ?3, NULL, NULL, ?4, 1, 'parquet', ?5, ?6, NULL, ?7, NULL, NULL, NULL, NULL)",
            libsql::params![*file_id, table.id, snapshot, file.path.as_str(), file.record_count, file.size_bytes, totals.next_row_id],
        )
        .await?;
        // Every column's stats in one statement (a JSON array of rows): against a libSQL server each
        // statement is a round trip.
        let stats: Vec<_> = file
            .stats
            .iter()
            .zip(table.columns)
            .map(|(s, column)| {
                (
                    column.id,
                    s.value_count,
                    s.null_count,
                    &s.min,
                    &s.max,
                    s.contains_nan.map(i64::from),
                )
            })
            .collect();
        let stats = serde_json::to_string(&stats)
            .map_err(|e| LakeError::Catalog(format!("column stats: {e}")))?;
        tx.write(
            "INSERT INTO ducklake_file_column_stats
             SELECT ?1, ?2, json_extract(value, '$[0]'), NULL, json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), NULL
             FROM json_each(?3) ORDER BY key",
            libsql::params![*file_id, table.id, stats],
        )
        .await?;
        if new_rows == NewRows::Counted {
            totals.record_count += file.record_count;
        }
        totals.next_row_id += file.record_count;
        totals.file_size_bytes += file.size_bytes;
    }
    let sql = if totals.exists {
        "UPDATE ducklake_table_stats SET record_count = ?2, next_row_id = ?3, file_size_bytes = ?4 WHERE table_id = ?1"
    } else {
        "INSERT INTO ducklake_table_stats (table_id, record_count, next_row_id, file_size_bytes) VALUES (?1, ?2, ?3, ?4)"
    };
    tx.write(
        sql,
        (
            table.id,
            totals.record_count,
            totals.next_row_id,
            totals.file_size_bytes,
        ),
    )
    .await?;
    let bounds = stats.bounds.remove(&table.id).unwrap_or_default();
    widen_column_stats(tx, table, files, bounds).await
}

/// The table's bounds per column (`bounds`, as stored), widened by the new files; `contains_null`/
/// `contains_nan` only ever turn on.
async fn widen_column_stats(
    tx: &mut impl CatalogTx,
    table: &TableDef,
    files: &[(i64, &LakeFile)],
    mut bounds: BTreeMap<i64, Bound>,
) -> Result<()> {
    let mut widened = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        let column_id = column.id;
        let current = bounds.remove(&column_id);
        let (mut has_null, mut has_nan, mut min, mut max) =
            current.unwrap_or((false, None, None, None));
        for (_, file) in files {
            let Some(s) = file.stats.get(i) else { continue };
            has_null |= s.null_count > 0;
            if let Some(nan) = s.contains_nan {
                has_nan = Some(has_nan.unwrap_or(false) | nan);
            }
            min = pick(min, s.min.clone(), |a, b| {
                compare_stat(column.ty, a, b).is_lt()
            });
            max = pick(max, s.max.clone(), |a, b| {
                compare_stat(column.ty, a, b).is_gt()
            });
        }
        // A column without bounds in its files has none for the table (bounds from before would not
        // cover the new rows: DuckDB would fold `max()` or skip the table with them).
        if !has_bounds(column.ty) {
            (min, max) = (None, None);
        }
        widened.push((
            column_id,
            i64::from(has_null),
            has_nan.map(i64::from),
            min,
            max,
        ));
    }
    // Every column's new bounds in two statements (a JSON array of rows) rather than one per column:
    // against a libSQL server each statement is a round trip. Splat never sets extra_stats. Columns
    // the table no longer writes (an old text id, until retired) keep theirs.
    let widened = serde_json::to_string(&widened)
        .map_err(|e| LakeError::Catalog(format!("column bounds: {e}")))?;
    tx.write(
        "DELETE FROM ducklake_table_column_stats WHERE table_id = ?1
         AND column_id IN (SELECT json_extract(value, '$[0]') FROM json_each(?2))",
        libsql::params![table.id, widened.clone()],
    )
    .await?;
    tx.write(
        "INSERT INTO ducklake_table_column_stats (table_id, column_id, contains_null, contains_nan, min_value, max_value, extra_stats)
         SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
            json_extract(value, '$[3]'), json_extract(value, '$[4]'), NULL
         FROM json_each(?2) ORDER BY key",
        libsql::params![table.id, widened],
    )
    .await?;
    Ok(())
}

/// The better of two optional bounds.
fn pick(
    current: Option<String>,
    new: Option<String>,
    better: impl Fn(&str, &str) -> bool,
) -> Option<String> {
    match (current, new) {
        (Some(c), Some(n)) => Some(if better(&n, &c) { n } else { c }),
        (c, n) => c.or(n),
    }
}
