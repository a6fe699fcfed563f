//! The DuckLake catalog inside `splat.db`: the tables DuckDB's ducklake extension reads (spec 1.0), created
//! by a migration, and the rows that register each batch's files. This is the recipe proven in
//! `reference/ducklake-foreign-writer.md` §2.1; every step it calls required is here, because leaving one
//! out gives silently wrong query results (table column stats drive DuckDB's pruning and min/max folding;
//! `next_file_id` hands out file ids; `record_count` answers `count(*)` and is never lowered).

use std::collections::BTreeMap;
use std::future::Future;

use libsql::params::IntoParams;

use super::columns::compare_stat;
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

/// Migration 5: the catalog tables exactly as DuckDB 1.5.5 creates them in a SQLite catalog, the `main`
/// schema (snapshot 0) and Splat's three tables (snapshot 1). No inlined-data tables: every row Splat
/// commits lives in a parquet file. `data_path` is written by the writer when it opens, since it depends on
/// where the lake lives (a local folder or an S3 bucket).
pub const V5_LAKE_CATALOG: &str = r#"
CREATE TABLE ducklake_metadata("key" VARCHAR NOT NULL, "value" VARCHAR NOT NULL, "scope" VARCHAR, scope_id BIGINT);
CREATE TABLE ducklake_snapshot(snapshot_id BIGINT PRIMARY KEY, snapshot_time VARCHAR, schema_version BIGINT, next_catalog_id BIGINT, next_file_id BIGINT);
CREATE TABLE ducklake_snapshot_changes(snapshot_id BIGINT PRIMARY KEY, changes_made VARCHAR, author VARCHAR, commit_message VARCHAR, commit_extra_info VARCHAR);
CREATE TABLE ducklake_schema(schema_id BIGINT PRIMARY KEY, schema_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_table(table_id BIGINT, table_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, table_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_view(view_id BIGINT, view_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, view_name VARCHAR, dialect VARCHAR, "sql" VARCHAR, column_aliases VARCHAR);
CREATE TABLE ducklake_tag(object_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_column_tag(table_id BIGINT, column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_data_file(data_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, file_order BIGINT, path VARCHAR, path_is_relative BIGINT, file_format VARCHAR, record_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, row_id_start BIGINT, partition_id BIGINT, encryption_key VARCHAR, mapping_id BIGINT, partial_max BIGINT);
CREATE TABLE ducklake_file_column_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_file_variant_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, variant_path VARCHAR, shredded_type VARCHAR, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_delete_file(delete_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, format VARCHAR, delete_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, encryption_key VARCHAR, partial_max BIGINT);
CREATE TABLE ducklake_column(column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, table_id BIGINT, column_order BIGINT, column_name VARCHAR, column_type VARCHAR, initial_default VARCHAR, default_value VARCHAR, nulls_allowed BIGINT, parent_column BIGINT, default_value_type VARCHAR, default_value_dialect VARCHAR);
CREATE TABLE ducklake_table_stats(table_id BIGINT, record_count BIGINT, next_row_id BIGINT, file_size_bytes BIGINT);
CREATE TABLE ducklake_table_column_stats(table_id BIGINT, column_id BIGINT, contains_null BIGINT, contains_nan BIGINT, min_value VARCHAR, max_value VARCHAR, extra_stats VARCHAR);
CREATE TABLE ducklake_partition_info(partition_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_partition_column(partition_id BIGINT, table_id BIGINT, partition_key_index BIGINT, column_id BIGINT, "transform" VARCHAR);
CREATE TABLE ducklake_file_partition_value(data_file_id BIGINT, table_id BIGINT, partition_key_index BIGINT, partition_value VARCHAR);
CREATE TABLE ducklake_files_scheduled_for_deletion(data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, schedule_start VARCHAR);
CREATE TABLE ducklake_inlined_data_tables(table_id BIGINT, table_name VARCHAR, schema_version BIGINT);
CREATE TABLE ducklake_column_mapping(mapping_id BIGINT, table_id BIGINT, "type" VARCHAR);
CREATE TABLE ducklake_name_mapping(mapping_id BIGINT, column_id BIGINT, source_name VARCHAR, target_field_id BIGINT, parent_column BIGINT, is_partition BIGINT);
CREATE TABLE ducklake_schema_versions(begin_snapshot BIGINT, schema_version BIGINT, table_id BIGINT);
CREATE TABLE ducklake_macro(schema_id BIGINT, macro_id BIGINT, macro_name VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_macro_impl(macro_id BIGINT, impl_id BIGINT, dialect VARCHAR, "sql" VARCHAR, "type" VARCHAR);
CREATE TABLE ducklake_macro_parameters(macro_id BIGINT, impl_id BIGINT, column_id BIGINT, parameter_name VARCHAR, parameter_type VARCHAR, default_value VARCHAR, default_value_type VARCHAR);
CREATE TABLE ducklake_sort_info(sort_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_sort_expression(sort_id BIGINT, table_id BIGINT, sort_key_index BIGINT, expression VARCHAR, dialect VARCHAR, sort_direction VARCHAR, null_order VARCHAR);

INSERT INTO ducklake_metadata VALUES ('version', '1.0', NULL, NULL), ('created_by', 'Splat', NULL, NULL), ('encrypted', 'false', NULL, NULL);
INSERT INTO ducklake_snapshot VALUES (0, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), 0, 1, 0);
INSERT INTO ducklake_snapshot_changes VALUES (0, 'created_schema:"main"', NULL, NULL, NULL);
INSERT INTO ducklake_schema VALUES (0, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a80', 0, NULL, 'main', 'main/', 1);
INSERT INTO ducklake_snapshot VALUES (1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), 1, 4, 0);
INSERT INTO ducklake_table VALUES
    (1, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a81', 1, NULL, 0, 'transactions', 'transactions/', 1),
    (2, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a82', 1, NULL, 0, 'spans', 'spans/', 1),
    (3, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a83', 1, NULL, 0, 'events', 'events/', 1);
INSERT INTO ducklake_schema_versions VALUES (1, 1, 1), (1, 1, 2), (1, 1, 3);
INSERT INTO ducklake_column VALUES
    (1, 1, NULL, 1, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 1, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 1, 3, 'start_timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 1, 4, 'event_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 1, 5, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 1, 6, 'span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 1, 7, 'name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 1, 8, 'op', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 1, 9, 'status', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 1, 10, 'duration_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 1, 11, 'environment', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 1, 12, 'release', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 1, 13, 'server_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (14, 1, NULL, 1, 14, 'platform', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (15, 1, NULL, 1, 15, 'sdk_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (16, 1, NULL, 1, 16, 'http_method', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (17, 1, NULL, 1, 17, 'http_url', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (18, 1, NULL, 1, 18, 'http_status', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (19, 1, NULL, 1, 19, 'db_time_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (20, 1, NULL, 1, 20, 'view_time_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (21, 1, NULL, 1, 21, 'query_count', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (22, 1, NULL, 1, 22, 'has_n_plus_one', 'boolean', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (23, 1, NULL, 1, 23, 'n_plus_one_wasted_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (24, 1, NULL, 1, 24, 'span_count', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (25, 1, NULL, 1, 25, 'spans_truncated', 'boolean', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (26, 1, NULL, 1, 26, 'source', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (1, 1, NULL, 2, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 2, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 2, 3, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 2, 4, 'transaction_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 2, 5, 'span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 2, 6, 'parent_span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 2, 7, 'op', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 2, 8, 'description', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 2, 9, 'group_hash', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 2, 10, 'status', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 2, 11, 'duration_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 2, 12, 'depth', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 2, 13, 'sequence', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (1, 1, NULL, 3, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 3, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 3, 3, 'event_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 3, 4, 'issue_id', 'int64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 3, 5, 'level', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 3, 6, 'environment', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 3, 7, 'release', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 3, 8, 'platform', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 3, 9, 'exception_type', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 3, 10, 'transaction', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 3, 11, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 3, 12, 'server_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 3, 13, 'sdk_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb');
INSERT INTO ducklake_snapshot_changes VALUES (1, 'created_table:"main"."transactions",created_table:"main"."spans",created_table:"main"."events"', 'splat', 'create the lake tables', NULL);
"#;

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

impl Stats {
    async fn read(tx: &mut impl CatalogTx) -> Result<Self> {
        let mut found = tx
            .reads(vec![
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
            ])
            .await?
            .into_iter();
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
pub(crate) async fn register(tx: &mut impl CatalogTx, files: &[LakeFile]) -> Result<Option<i64>> {
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
/// The schema version and catalog ids carry over: Splat never changes the tables' shape.
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
            .enumerate()
            .map(|(i, s)| {
                (
                    TableDef::column_id(i),
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
        let column_id = TableDef::column_id(i);
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
        widened.push((
            column_id,
            i64::from(has_null),
            has_nan.map(i64::from),
            min,
            max,
        ));
    }
    // Every column's new bounds in two statements (a JSON array of rows) rather than one per column:
    // against a libSQL server each statement is a round trip. Splat never sets extra_stats.
    let widened = serde_json::to_string(&widened)
        .map_err(|e| LakeError::Catalog(format!("column bounds: {e}")))?;
    tx.write(
        "DELETE FROM ducklake_table_column_stats WHERE table_id = ?1",
        [table.id],
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
