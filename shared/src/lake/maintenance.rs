//! Keeping the lake within its horizons, as `reference/ducklake-foreign-writer.md` §2.5 does it and as
//! DuckDB's own maintenance calls would: whole files past a table's horizon end in a new snapshot (table
//! stats untouched, `record_count` never lowered); snapshots older than the time-travel window expire; files
//! no snapshot can see any more are scheduled for deletion, deleted, and unscheduled; files no catalog row
//! knows (left by a batch that crashed between upload and commit) are deleted once an hour old; and each
//! past day's small files are compacted into one file per (table, project, day). Files from before migration 28 (ids as hex
//! text) are rewritten with binary ids whatever their day, and the old text columns retired once no live
//! file holds them.
//!
//! Every step is a short write transaction of its own, so it serialises with the processor through
//! SQLite's write lock and can be interrupted and rerun at any point.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt64Array,
};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::catalog::{self, CatalogDb};
use super::columns::{format_timestamp, Column, ColumnStats};
use super::ids;
use super::tables::{ColumnType, TableDef};
use super::{LakeFile, KEY_PREFIX};
use crate::blob::BlobStore;

/// At most this many rows go into one compacted file, so compaction's memory stays bounded.
const MAX_COMPACTED_ROWS: i64 = 1_000_000;

/// At most this many files are merged at once: each file read costs memory of its own beyond its rows
/// (its arrays and buffers), and a day of small batches leaves hundreds of thousands of files of a few
/// rows (a 10-minute soak at 1,000 events/s: 253,000 files, merged at once in 2 GB).
const MAX_COMPACTED_FILES: usize = 1_000;

/// When a run stops starting new work: a Lambda's remaining time less a margin, or a configured budget.
/// Every step commits on its own, so a run that stops (or is killed) leaves nothing half-done that the
/// next run does not finish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<std::time::Instant>);

impl Deadline {
    /// No deadline: the run goes on until everything is done.
    pub const NONE: Self = Self(None);

    pub fn at(when: std::time::Instant) -> Self {
        Self(Some(when))
    }

    pub fn passed(&self) -> bool {
        self.0.is_some_and(|d| std::time::Instant::now() >= d)
    }
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LakeReport {
    /// Files (and their rows) that ended because they were past their table's horizon.
    pub files_ended: u64,
    pub rows_ended: u64,
    pub snapshots_expired: u64,
    /// Files deleted from storage: no longer visible to any snapshot, or never registered.
    pub files_deleted: u64,
    pub orphans_deleted: u64,
    /// Temporary files of writes and merges a killed process never finished, deleted.
    pub scratch_deleted: u64,
    /// Files merged into `files_compacted_into` files (over all passes: a merged file may merge again).
    pub files_compacted: u64,
    pub files_compacted_into: u64,
    /// Old text id columns dropped once every file holding them was rewritten.
    pub columns_retired: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error(transparent)]
    Db(#[from] libsql::Error),
    #[error(transparent)]
    Lake(#[from] super::LakeError),
    #[error(transparent)]
    Blob(#[from] crate::blob::BlobError),
    #[error("lake file {0}: {1}")]
    File(String, String),
}

type Result<T> = std::result::Result<T, MaintenanceError>;

/// The blob key of a file the catalog lists with a table-relative path.
fn key_of(table: &TableDef, path: &str) -> String {
    format!("{KEY_PREFIX}main/{}/{path}", table.name)
}

async fn immediate(db: &dyn CatalogDb) -> Result<libsql::Transaction> {
    Ok(db
        .catalog_connection()
        .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
        .await?)
}

/// Ends every live file of `table` whose newest row is older than `cutoff_us`, in one new snapshot.
/// Files hold one (project, day) each (a batch's older days share one, which ends with its newest row), so
/// a table loses whole days.
pub async fn end_files_before(
    db: &dyn CatalogDb,
    table: &TableDef,
    cutoff_us: i64,
) -> Result<(u64, u64)> {
    let tx = immediate(db).await?;
    let mut rows = tx
        .query(
            "SELECT f.data_file_id, f.record_count FROM ducklake_data_file f
             JOIN ducklake_file_column_stats t ON t.data_file_id = f.data_file_id AND t.column_id = 2
             WHERE f.table_id = ?1 AND f.end_snapshot IS NULL AND t.max_value < ?2",
            (table.id, format_timestamp(cutoff_us)),
        )
        .await?;
    let (mut ids, mut ended_rows) = (Vec::new(), 0u64);
    while let Some(row) = rows.next().await? {
        ids.push(row.get::<i64>(0)?);
        ended_rows += row.get::<i64>(1)?.max(0) as u64;
    }
    drop(rows);
    if ids.is_empty() {
        return Ok((0, 0));
    }
    let mut tx = tx;
    let (snapshot, _) = catalog::new_snapshot(&mut tx, 0).await?;
    let change = format!("deleted_from_table:{}", table.id);
    catalog::record_changes(&mut tx, snapshot, &change, "retention").await?;
    catalog::end_files(&mut tx, &ids, snapshot).await?;
    tx.commit().await?;
    Ok((ids.len() as u64, ended_rows))
}

/// Deletes the snapshots taken before `cutoff` (a catalog time string, `YYYY-MM-DD HH:MM:SS`), always
/// keeping the newest, and schedules for deletion the files no remaining snapshot can see. Returns how
/// many snapshots went.
pub async fn expire_snapshots(db: &dyn CatalogDb, cutoff: &str) -> Result<u64> {
    let tx = immediate(db).await?;
    // The oldest snapshot kept: the first one taken at or after the cutoff, or else the newest.
    let mut rows = tx
        .query(
            "SELECT coalesce(
                 (SELECT min(snapshot_id) FROM ducklake_snapshot WHERE snapshot_time >= ?1),
                 (SELECT max(snapshot_id) FROM ducklake_snapshot))",
            [cutoff],
        )
        .await?;
    let oldest_kept: Option<i64> = match rows.next().await? {
        Some(row) => row.get(0)?,
        None => None,
    };
    drop(rows);
    let Some(oldest_kept) = oldest_kept else {
        return Ok(0);
    };
    let expired = tx
        .execute(
            "DELETE FROM ducklake_snapshot WHERE snapshot_id < ?1",
            [oldest_kept],
        )
        .await?;
    tx.execute(
        "DELETE FROM ducklake_snapshot_changes WHERE snapshot_id < ?1",
        [oldest_kept],
    )
    .await?;
    // A file is visible to snapshots begin..end; once every snapshot left is at or past its end, none
    // can see it. Its path in the schedule is relative to the data path, as DuckDB writes it.
    tx.execute(
        "INSERT INTO ducklake_files_scheduled_for_deletion (data_file_id, path, path_is_relative, schedule_start)
         SELECT f.data_file_id, s.path || t.path || f.path, 1, strftime('%Y-%m-%d %H:%M:%f+00', 'now')
         FROM ducklake_data_file f
         JOIN ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL
         JOIN ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL
         WHERE f.end_snapshot IS NOT NULL AND f.end_snapshot <= ?1",
        [oldest_kept],
    )
    .await?;
    for table in [
        "ducklake_file_column_stats",
        "ducklake_file_partition_value",
        "ducklake_data_file",
    ] {
        tx.execute(
            &format!(
                "DELETE FROM {table} WHERE data_file_id IN (
                     SELECT data_file_id FROM ducklake_data_file
                     WHERE end_snapshot IS NOT NULL AND end_snapshot <= ?1)"
            ),
            [oldest_kept],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(expired)
}

/// Scheduled files deleted per round: a round reads this many schedule rows, deletes their objects and
/// then the rows in one statement, so memory and the number of commits stay small at any backlog.
const DELETE_ROUND: i64 = 1_000;

/// Deletes the files scheduled for deletion from storage, then their schedule rows, a round at a time
/// until none are left or `deadline` passes. Safe to repeat: a missing object is not an error.
pub async fn delete_scheduled(
    db: &dyn CatalogDb,
    blobs: &dyn BlobStore,
    deadline: Deadline,
) -> Result<u64> {
    let mut deleted = 0;
    while !deadline.passed() {
        let mut rows = db
            .catalog_connection()
            .query(
                "SELECT data_file_id, path FROM ducklake_files_scheduled_for_deletion
                 WHERE path_is_relative = 1 LIMIT ?1",
                [DELETE_ROUND],
            )
            .await?;
        let mut round = Vec::new();
        while let Some(row) = rows.next().await? {
            round.push((row.get::<i64>(0)?, row.get::<String>(1)?));
        }
        drop(rows);
        if round.is_empty() {
            break;
        }
        let keys: Vec<String> = round
            .iter()
            .map(|(_, p)| format!("{KEY_PREFIX}{p}"))
            .collect();
        for keys in keys.chunks(FILES_AHEAD) {
            futures_util::future::try_join_all(keys.iter().map(|k| blobs.delete(k))).await?;
        }
        let ids: Vec<i64> = round.iter().map(|(id, _)| *id).collect();
        db.catalog_connection()
            .execute(
                "DELETE FROM ducklake_files_scheduled_for_deletion
                 WHERE data_file_id IN (SELECT value FROM json_each(?1))",
                [serde_json::Value::from(ids).to_string()],
            )
            .await?;
        deleted += round.len() as u64;
    }
    Ok(deleted)
}

/// How old an object the catalog does not name must be before it is deleted as an orphan: a processor
/// batch or a merge uploads its file before the commit that registers it (on a libSQL server without
/// holding the write lock meanwhile), and neither takes anywhere near this long, even in a Lambda.
pub const ORPHAN_MIN_AGE_US: i64 = 3_600 * 1_000_000;

/// Deletes lake objects that no catalog row names and that were written before `written_before_us`
/// (now less [`ORPHAN_MIN_AGE_US`]: a file on its way to being registered is younger), a folder at a
/// time: the listing comes a page at a time in key order, and each folder's keys are checked against that
/// folder's catalog paths alone, so memory holds one page and one folder's paths, whatever the lake's
/// size. Starts no page once `deadline` has passed.
pub async fn delete_orphans(
    db: &dyn CatalogDb,
    blobs: &dyn BlobStore,
    written_before_us: i64,
    deadline: Deadline,
) -> Result<u64> {
    let (mut deleted, mut after) = (0, None);
    let mut folder = KnownFolder::default();
    while !deadline.passed() {
        let page = blobs
            .list_page(
                &format!("{KEY_PREFIX}main/"),
                after.as_deref(),
                written_before_us,
            )
            .await?;
        for key in page.keys.iter().filter(|k| k.ends_with(".parquet")) {
            let dir = key.rsplit_once('/').map_or("", |(dir, _)| dir);
            if folder.dir != dir {
                folder = KnownFolder::load(db, dir).await?;
            }
            if !folder.keys.contains(&hash(key)) {
                blobs.delete(key).await?;
                deleted += 1;
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(deleted)
}

/// The keys the catalog names in one folder of the lake (`lake/main/<table>/<project>/<day>`): its
/// table's data files there, live or ended, and the files scheduled for deletion there. Held as 64-bit
/// hashes (a day of tiny batches names 125,000 files in one folder): a collision could only make an
/// orphan look named and spare it, never delete a file the catalog names.
#[derive(Default)]
struct KnownFolder {
    dir: String,
    keys: HashSet<u64>,
}

impl KnownFolder {
    async fn load(db: &dyn CatalogDb, dir: &str) -> Result<Self> {
        // `dir` less `lake/` is the folder as the deletion schedule writes it, `main/<table>/<folder>`.
        let scheduled = dir.strip_prefix(KEY_PREFIX).unwrap_or(dir);
        let (table, folder) = scheduled
            .strip_prefix("main/")
            .map(|rest| rest.split_once('/').unwrap_or((rest, "")))
            .unwrap_or_default();
        // A table Splat does not write has no data files: only the schedule can name its objects.
        let table = super::tables::ALL.iter().find(|t| t.name == table);
        let (files_from, files_to) = path_range(folder);
        let (scheduled_from, scheduled_to) = path_range(scheduled);
        // One statement, so a file that expiry moves from one table to the other is seen in either.
        let mut rows = db
            .catalog_connection()
            .query(
                "SELECT 0, path FROM ducklake_data_file
                 WHERE table_id = ?1 AND path >= ?2 AND (?3 IS NULL OR path < ?3)
                 UNION ALL
                 SELECT 1, path FROM ducklake_files_scheduled_for_deletion
                 WHERE path_is_relative = 1 AND path >= ?4 AND (?5 IS NULL OR path < ?5)",
                libsql::params![
                    table.map(|t| t.id),
                    files_from,
                    files_to,
                    scheduled_from,
                    scheduled_to
                ],
            )
            .await?;
        let mut keys = HashSet::new();
        while let Some(row) = rows.next().await? {
            let path: String = row.get(1)?;
            keys.insert(hash(&match (row.get::<i64>(0)?, table) {
                (0, Some(table)) => key_of(table, &path),
                _ => format!("{KEY_PREFIX}{path}"),
            }));
        }
        Ok(Self {
            dir: dir.to_owned(),
            keys,
        })
    }
}

fn hash(key: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// The range of catalog paths under `folder` (`a/b` → `a/b/` up to `a/b0`, `/` being one before `0`);
/// the root folder's is unbounded.
fn path_range(folder: &str) -> (String, Option<String>) {
    if folder.is_empty() {
        (String::new(), None)
    } else {
        (format!("{folder}/"), Some(format!("{folder}0")))
    }
}

/// Drops the columns of `table` that it no longer writes (ids as hex text, from before migration 28) once
/// no live file holds them, as DuckDB's `DROP COLUMN` would: time travel to before still sees them.
/// Returns how many went.
pub async fn retire_columns(db: &dyn CatalogDb, table: &TableDef) -> Result<u64> {
    let mut tx = immediate(db).await?;
    let mut rows = tx
        .query(
            "SELECT column_id FROM ducklake_column c
             WHERE table_id = ?1 AND end_snapshot IS NULL AND parent_column IS NULL
               AND column_id NOT IN (SELECT value FROM json_each(?2))
               AND NOT EXISTS (SELECT 1 FROM ducklake_file_column_stats s
                   JOIN ducklake_data_file f ON f.data_file_id = s.data_file_id AND f.end_snapshot IS NULL
                   WHERE s.table_id = c.table_id AND s.column_id = c.column_id)",
            libsql::params![table.id, super::read::column_ids(table)],
        )
        .await?;
    let mut retired = Vec::new();
    while let Some(row) = rows.next().await? {
        retired.push(row.get::<i64>(0)?);
    }
    drop(rows);
    if retired.is_empty() {
        return Ok(0);
    }
    catalog::end_columns(&mut tx, table, &retired).await?;
    tx.commit().await?;
    Ok(retired.len() as u64)
}

/// A live file as the catalog lists it.
struct LiveFile {
    id: i64,
    path: String,
    record_count: i64,
    /// It holds columns the table no longer writes (ids as hex text, from before migration 28).
    old_columns: bool,
}

/// Merges, per (project, day) before `today_us`'s day, a table's live files into as few files as
/// `MAX_COMPACTED_ROWS` allows, and rewrites files with old columns of any day (alone if need be).
/// Plans a merge at a time: a folder's files come from the catalog one merge's worth at a time, so memory
/// holds one merge's list, not the table's (a day of tiny batches: hundreds of thousands of files).
/// Starts no merge once `deadline` has passed. Returns (files merged, files written).
pub async fn compact(
    db: &dyn CatalogDb,
    blobs: &Arc<dyn BlobStore>,
    table: &'static TableDef,
    today_us: i64,
    deadline: Deadline,
) -> Result<(u64, u64)> {
    let today = chrono::DateTime::from_timestamp_micros(today_us)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let old = super::read::files_with_old_columns(db, table).await?;
    // Files this pass writes come after it: the next pass merges them further.
    let newest = newest_file_id(db).await?;
    let (mut merged, mut written) = (0, 0);
    for folder in live_folders(db, table).await? {
        // `<project>/<yyyy-mm-dd>`: a past day's files all merge; today's only to shed old columns.
        let is_past_day = folder
            .split_once('/')
            .is_some_and(|(_, day)| day < today.as_str());
        if !is_past_day && old.is_empty() {
            continue;
        }
        let mut after = i64::MIN;
        loop {
            let mut files = live_files_after(db, table, &folder, after, newest).await?;
            let Some(last_read) = files.last().map(|f| f.id) else {
                break;
            };
            files.retain_mut(|f| {
                f.old_columns = old.contains(&f.id);
                is_past_day || f.old_columns
            });
            // The first merge's worth; what follows it is read again by the next query.
            let chunk = chunks(files).swap_remove(0);
            after = chunk.last().map_or(last_read, |f| f.id);
            if chunk.len() < 2 && !chunk.iter().any(|f| f.old_columns) {
                continue;
            }
            if deadline.passed() {
                return Ok((merged, written));
            }
            if merge(db, blobs, table, &folder, &chunk).await? {
                merged += chunk.len() as u64;
                written += 1;
            }
        }
    }
    Ok((merged, written))
}

async fn newest_file_id(db: &dyn CatalogDb) -> Result<i64> {
    let mut rows = db
        .catalog_connection()
        .query("SELECT max(data_file_id) FROM ducklake_data_file", ())
        .await?;
    Ok(match rows.next().await? {
        Some(row) => row.get::<Option<i64>>(0)?.unwrap_or(0),
        None => 0,
    })
}

/// The folders (`<project>/<yyyy-mm-dd>`) holding live files of `table`, sorted.
async fn live_folders(db: &dyn CatalogDb, table: &TableDef) -> Result<Vec<String>> {
    // A path less its last segment: rtrim strips the trailing characters that are not '/'.
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT DISTINCT rtrim(path, replace(path, '/', '')) AS folder FROM ducklake_data_file
             WHERE table_id = ?1 AND end_snapshot IS NULL ORDER BY folder",
            [table.id],
        )
        .await?;
    let mut folders = Vec::new();
    while let Some(row) = rows.next().await? {
        if let Some(folder) = row.get::<String>(0)?.strip_suffix('/') {
            folders.push(folder.to_owned());
        }
    }
    Ok(folders)
}

/// Up to a merge's worth (`MAX_COMPACTED_FILES`) of the live files directly in `folder`, in the order
/// they were written, after file `after` and up to file `newest`.
async fn live_files_after(
    db: &dyn CatalogDb,
    table: &TableDef,
    folder: &str,
    after: i64,
    newest: i64,
) -> Result<Vec<LiveFile>> {
    let (from, to) = path_range(folder);
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT data_file_id, path, record_count FROM ducklake_data_file
             WHERE data_file_id > ?1 AND data_file_id <= ?2 AND table_id = ?3 AND end_snapshot IS NULL
               AND path >= ?4 AND path < ?5 AND instr(substr(path, length(?4) + 1), '/') = 0
             ORDER BY data_file_id LIMIT ?6",
            libsql::params![after, newest, table.id, from, to, MAX_COMPACTED_FILES as i64],
        )
        .await?;
    let mut files = Vec::new();
    while let Some(row) = rows.next().await? {
        files.push(LiveFile {
            id: row.get(0)?,
            path: row.get(1)?,
            record_count: row.get(2)?,
            old_columns: false,
        });
    }
    Ok(files)
}

/// Consecutive runs of at most `MAX_COMPACTED_FILES` files and `MAX_COMPACTED_ROWS` rows together (a
/// larger file stays alone). What one run leaves as several files, a later run merges further.
fn chunks(files: Vec<LiveFile>) -> Vec<Vec<LiveFile>> {
    let mut out: Vec<Vec<LiveFile>> = vec![Vec::new()];
    let mut rows = 0;
    for file in files {
        let current = out.last().expect("never empty");
        let full =
            rows + file.record_count > MAX_COMPACTED_ROWS || current.len() == MAX_COMPACTED_FILES;
        if full && !current.is_empty() {
            out.push(Vec::new());
            rows = 0;
        }
        rows += file.record_count;
        out.last_mut().expect("never empty").push(file);
    }
    out
}

/// How many files a merge fetches (and a deletion round deletes) at once: object storage answers each
/// request in tens of milliseconds, and a merge's files hold at most `MAX_COMPACTED_ROWS` rows together.
const FILES_AHEAD: usize = 8;

/// Rows per batch read from an input file: the merge holds one batch's values at a time.
const MERGE_BATCH_ROWS: usize = 8_192;

/// Writes the files' rows as one file and swaps it in. Rows stream through a batch at a time and the output
/// to disk a row group at a time, so memory holds one row group being encoded, `FILES_AHEAD` fetched files
/// and one batch, whatever the day's size. Returns false (deleting the new object) when another
/// run changed the files meanwhile.
async fn merge(
    db: &dyn CatalogDb,
    blobs: &Arc<dyn BlobStore>,
    table: &'static TableDef,
    folder: &str,
    files: &[LiveFile],
) -> Result<bool> {
    let fail = |e: &dyn std::fmt::Display| MaintenanceError::File(folder.to_owned(), e.to_string());
    // The output goes to a scratch file, a row group at a time, and is stored from there: held in memory
    // whole it cost as much again as it weighs, twice over while its buffer grew by doubling.
    let scratch = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(blobs.scratch_dir())
        .map_err(|e| fail(&e))?;
    let sink = std::io::BufWriter::new(scratch.as_file());
    let mut out = super::parquet::FileWriter::new(table, sink).map_err(super::LakeError::from)?;
    let mut stats: Option<Vec<ColumnStats>> = None;
    let keys: Vec<String> = files.iter().map(|f| key_of(table, &f.path)).collect();
    for keys in keys.chunks(FILES_AHEAD) {
        let fetched = futures_util::future::try_join_all(keys.iter().map(|k| blobs.get(k))).await?;
        for (key, bytes) in keys.iter().zip(fetched) {
            for batch in read_batches(key, bytes)? {
                let batch = [batch?];
                let columns = columns_of(table, &batch).map_err(|e| fail(&e))?;
                out.write(&columns).map_err(super::LakeError::from)?;
                let batch_stats = super::columns::file_stats(table, &columns);
                match &mut stats {
                    None => stats = Some(batch_stats),
                    Some(all) => {
                        for ((all, batch), def) in
                            all.iter_mut().zip(batch_stats).zip(table.columns)
                        {
                            all.widen(batch, def.ty);
                        }
                    }
                }
            }
        }
    }
    let sink = out.finish().map_err(super::LakeError::from)?;
    sink.into_inner().map_err(|e| fail(&e.into_error()))?;
    let size_bytes = scratch.as_file().metadata().map_err(|e| fail(&e))?.len();
    let path = format!("{folder}/{}.parquet", uuid::Uuid::new_v4().simple());
    let merged = LakeFile {
        table,
        key: key_of(table, &path),
        path,
        record_count: files.iter().map(|f| f.record_count).sum(),
        size_bytes: size_bytes as i64,
        stats: stats.unwrap_or_else(|| super::columns::file_stats(table, &[])),
    };
    // Dropping `scratch` afterwards deletes the file if the store copied rather than moved it.
    blobs.put_file(&merged.key, scratch.path()).await?;
    let mut tx = immediate(db).await?;
    let ids: Vec<i64> = files.iter().map(|f| f.id).collect();
    if catalog::replace_files(&mut tx, &ids, &merged).await? {
        tx.commit().await?;
        Ok(true)
    } else {
        drop(tx);
        blobs.delete(&merged.key).await?;
        Ok(false)
    }
}

/// A file's rows, a batch at a time.
fn read_batches(
    key: &str,
    bytes: Bytes,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + use<>> {
    let owned = key.to_owned();
    let fail =
        move |e: &dyn std::fmt::Display| MaintenanceError::File(owned.clone(), e.to_string());
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| fail(&e))?
        .with_batch_size(MERGE_BATCH_ROWS)
        .build()
        .map_err(|e| fail(&e))?;
    Ok(reader.map(move |batch| batch.map_err(|e| fail(&e))))
}

/// The batches' values as the table's typed columns, matched by column name and checked by type.
fn columns_of<'a>(
    table: &TableDef,
    batches: &'a [RecordBatch],
) -> std::result::Result<Vec<Column<'a>>, String> {
    table
        .columns
        .iter()
        .map(|def| {
            let arrays = batches
                .iter()
                .map(|b| {
                    b.column_by_name(def.name)
                        .ok_or_else(|| format!("no column {}", def.name))
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            column_of(def.ty, &arrays)
                .ok_or_else(|| format!("column {} has another type", def.name))
        })
        .collect()
}

fn column_of<'a>(ty: ColumnType, arrays: &[&'a arrow_array::ArrayRef]) -> Option<Column<'a>> {
    fn values<'a, A: Array + 'static, T>(
        arrays: &[&'a arrow_array::ArrayRef],
        get: impl Fn(&'a A, usize) -> T,
    ) -> Option<Vec<Option<T>>> {
        let mut out = Vec::new();
        for &array in arrays {
            let typed = array.as_any().downcast_ref::<A>()?;
            out.extend((0..typed.len()).map(|i| typed.is_valid(i).then(|| get(typed, i))));
        }
        Some(out)
    }
    Some(match ty {
        ColumnType::Int32 => Column::I32(values::<Int32Array, _>(arrays, |a, i| a.value(i))?),
        ColumnType::Int64 => Column::I64(values::<Int64Array, _>(arrays, |a, i| a.value(i))?),
        ColumnType::Float64 => Column::F64(values::<Float64Array, _>(arrays, |a, i| a.value(i))?),
        ColumnType::Boolean => Column::Bool(values::<BooleanArray, _>(arrays, |a, i| a.value(i))?),
        ColumnType::Varchar | ColumnType::Json => {
            Column::Str(values::<StringArray, _>(arrays, |a, i| a.value(i))?)
        }
        ColumnType::Timestamp => {
            Column::Ts(values::<TimestampMicrosecondArray, _>(arrays, |a, i| {
                a.value(i)
            })?)
        }
        // Ids as written since migration 28, or as hex text before it (rewritten here).
        ColumnType::Uuid => Column::Uuid(ids(
            arrays,
            |a: &FixedSizeBinaryArray, i| a.value(i).try_into().ok(),
            ids::uuid,
        )?),
        ColumnType::SpanId => Column::U64(ids(
            arrays,
            |a: &UInt64Array, i| Some(a.value(i)),
            ids::span_id,
        )?),
    })
}

/// An id column's values from arrays of its binary type `A` or of hex text, array by array.
fn ids<A: Array + 'static, T>(
    arrays: &[&arrow_array::ArrayRef],
    binary: impl Fn(&A, usize) -> Option<T>,
    text: impl Fn(&str) -> Option<T>,
) -> Option<Vec<Option<T>>> {
    let mut out = Vec::new();
    for array in arrays {
        let valid = |i| array.is_valid(i);
        if let Some(a) = array.as_any().downcast_ref::<A>() {
            out.extend((0..a.len()).map(|i| valid(i).then(|| binary(a, i)).flatten()));
        } else {
            let a = array.as_any().downcast_ref::<StringArray>()?;
            out.extend((0..a.len()).map(|i| valid(i).then(|| text(a.value(i))).flatten()));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(counts: &[i64]) -> Vec<LiveFile> {
        let file = |(id, &record_count): (usize, &i64)| LiveFile {
            id: id as i64,
            path: format!("1/2026-01-01/{id}.parquet"),
            record_count,
            old_columns: false,
        };
        counts.iter().enumerate().map(file).collect()
    }

    fn sizes(chunks: &[Vec<LiveFile>]) -> Vec<usize> {
        chunks.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_merge_takes_a_bounded_number_of_files_and_rows() {
        // A day of tiny batches: merged a thousand files at a time.
        assert_eq!(sizes(&chunks(files(&[3; 2_500]))), [1_000, 1_000, 500]);
        // Rows bound it too, and a file past the bound stays alone.
        let big = [400_000, 400_000, 400_000, 2_000_000, 10];
        assert_eq!(sizes(&chunks(files(&big))), [2, 1, 1, 1]);
    }
}
