//! Reading the lake back: which files hold a table's rows for a project and time window (pruned by the
//! per-file statistics in the catalog, as DuckDB prunes), and one transaction's spans from those files.

use std::sync::Arc;

use arrow_array::{
    Array, FixedSizeBinaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use async_trait::async_trait;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::blob::{BlobError, BlobStore};

use super::catalog::CatalogDb;
use super::columns::format_timestamp;
use super::ids;
use super::tables::{TableDef, SPANS};
use super::{SpanFact, KEY_PREFIX};

#[derive(Debug, thiserror::Error)]
pub enum LakeReadError {
    #[error(transparent)]
    Db(#[from] libsql::Error),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error("lake file {0}: {1}")]
    File(String, String),
}

/// What pages and tools read from the lake.
#[async_trait]
pub trait LakeReader: Send + Sync {
    /// One transaction's spans (its root included), in `sequence` order; `start_us..=end_us` is when the
    /// transaction ran, which narrows the files read to those whose rows start in that time.
    async fn transaction_spans(
        &self,
        project_id: i64,
        transaction_id: &str,
        start_us: i64,
        end_us: i64,
    ) -> Result<Vec<SpanFact>, LakeReadError>;
}

/// The blob keys of every live file of a table.
pub async fn live_files(
    db: &dyn CatalogDb,
    table: &TableDef,
) -> Result<Vec<String>, LakeReadError> {
    Ok(live_files_by_age(db, table)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .collect())
}

/// The blob keys of every live file of a table, each with whether it is from before migration 28 (ids as
/// hex text, until compaction rewrites it).
pub async fn live_files_by_age(
    db: &dyn CatalogDb,
    table: &TableDef,
) -> Result<Vec<(String, bool)>, LakeReadError> {
    let old = files_with_old_columns(db, table).await?;
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT data_file_id, path FROM ducklake_data_file WHERE table_id = ?1 AND end_snapshot IS NULL ORDER BY data_file_id",
            [table.id],
        )
        .await?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next().await? {
        let path: String = row.get(1)?;
        let key = format!("{KEY_PREFIX}main/{}/{path}", table.name);
        keys.push((key, old.contains(&row.get::<i64>(0)?)));
    }
    Ok(keys)
}

/// The ids of `table`'s columns, as JSON for a statement.
pub(crate) fn column_ids(table: &TableDef) -> String {
    let ids: Vec<i64> = table.columns.iter().map(|c| c.id).collect();
    serde_json::Value::from(ids).to_string()
}

/// The ids of `table`'s files (live or not) whose catalog stats name a column it no longer writes: files
/// from before migration 28, with ids as hex text. One scan of the stats.
pub async fn files_with_old_columns(
    db: &dyn CatalogDb,
    table: &TableDef,
) -> Result<std::collections::HashSet<i64>, libsql::Error> {
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT DISTINCT data_file_id FROM ducklake_file_column_stats
             WHERE table_id = ?1 AND column_id NOT IN (SELECT value FROM json_each(?2))",
            libsql::params![table.id, column_ids(table)],
        )
        .await?;
    let mut ids = std::collections::HashSet::new();
    while let Some(row) = rows.next().await? {
        ids.insert(row.get::<i64>(0)?);
    }
    Ok(ids)
}

/// The blob keys of a table's live files that may hold rows of `project_id` starting in `from_us..=to_us`.
pub async fn files_for(
    db: &dyn CatalogDb,
    table: &TableDef,
    project_id: i64,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<String>, LakeReadError> {
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT f.path FROM ducklake_data_file f
             JOIN ducklake_file_column_stats p ON p.data_file_id = f.data_file_id AND p.column_id = 1
             JOIN ducklake_file_column_stats t ON t.data_file_id = f.data_file_id AND t.column_id = 2
             WHERE f.table_id = ?1 AND f.end_snapshot IS NULL
               AND CAST(p.min_value AS INTEGER) <= ?2 AND CAST(p.max_value AS INTEGER) >= ?2
               AND t.min_value <= ?4 AND t.max_value >= ?3
             ORDER BY f.data_file_id",
            libsql::params![
                table.id,
                project_id,
                format_timestamp(from_us),
                format_timestamp(to_us)
            ],
        )
        .await?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next().await? {
        let path: String = row.get(0)?;
        keys.push(format!("{KEY_PREFIX}main/{}/{path}", table.name));
    }
    Ok(keys)
}

/// Reads lake files through the blob store with the parquet crate: enough for point lookups such as one
/// transaction's spans, which need no query engine.
#[derive(Clone)]
pub struct LakeFiles {
    db: Arc<dyn CatalogDb>,
    blobs: Arc<dyn BlobStore>,
}

impl LakeFiles {
    pub fn new(db: impl CatalogDb + 'static, blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            db: Arc::new(db),
            blobs,
        }
    }

    async fn batches(&self, key: &str) -> Result<Vec<RecordBatch>, LakeReadError> {
        let bytes = self.blobs.get(key).await?;
        let fail = |e: &dyn std::fmt::Display| LakeReadError::File(key.to_owned(), e.to_string());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| fail(&e))?
            .build()
            .map_err(|e| fail(&e))?;
        reader.map(|batch| batch.map_err(|e| fail(&e))).collect()
    }
}

#[async_trait]
impl LakeReader for LakeFiles {
    async fn transaction_spans(
        &self,
        project_id: i64,
        transaction_id: &str,
        start_us: i64,
        end_us: i64,
    ) -> Result<Vec<SpanFact>, LakeReadError> {
        // A child may start a moment before its root on another clock; a minute of slack costs nothing.
        let slack = crate::model::time::MINUTE_US;
        let keys = files_for(
            self.db.as_ref(),
            &SPANS,
            project_id,
            start_us - slack,
            end_us + slack,
        )
        .await?;
        let mut spans = Vec::new();
        for key in keys {
            for batch in self.batches(&key).await? {
                spans.extend(span_facts(&batch, project_id, transaction_id));
            }
        }
        spans.sort_by_key(|s| (s.sequence.unwrap_or(i32::MAX), s.start_us));
        Ok(spans)
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Option<&'a T> {
    batch.column_by_name(name)?.as_any().downcast_ref::<T>()
}

/// An id column as its file has it: binary since migration 28, hex text before.
enum Ids<'a> {
    Text(&'a StringArray),
    Uuid(&'a FixedSizeBinaryArray),
    Span(&'a UInt64Array),
}

impl<'a> Ids<'a> {
    fn of(batch: &'a RecordBatch, name: &str) -> Option<Self> {
        let array = batch.column_by_name(name)?.as_any();
        (array.downcast_ref().map(Self::Text))
            .or_else(|| array.downcast_ref().map(Self::Uuid))
            .or_else(|| array.downcast_ref().map(Self::Span))
    }

    /// Row `i`'s id as lowercase hex text (text from before migration 28 as it was written).
    fn hex(&self, i: usize) -> Option<String> {
        match self {
            Self::Text(a) => a.is_valid(i).then(|| a.value(i).to_owned()),
            Self::Uuid(a) => a.is_valid(i).then(|| ids::uuid_hex(a.value(i))),
            Self::Span(a) => a.is_valid(i).then(|| ids::span_hex(a.value(i))),
        }
    }

    /// Whether row `i` holds the span id `hex`.
    fn is_span(&self, i: usize, hex: &str) -> bool {
        match self {
            Self::Text(a) => a.is_valid(i) && a.value(i) == hex,
            Self::Span(a) => a.is_valid(i) && ids::span_id(hex) == Some(a.value(i)),
            Self::Uuid(_) => false,
        }
    }
}

/// The rows of a spans file that belong to one transaction; a file whose columns are not the spans
/// table's yields nothing.
fn span_facts(batch: &RecordBatch, project_id: i64, transaction_id: &str) -> Vec<SpanFact> {
    let text = |name: &str| column::<StringArray>(batch, name);
    let (Some(project), Some(start), Some(duration), Some(depth), Some(sequence)) = (
        column::<Int32Array>(batch, "project_id"),
        column::<TimestampMicrosecondArray>(batch, "timestamp"),
        column::<Float64Array>(batch, "duration_ms"),
        column::<Int32Array>(batch, "depth"),
        column::<Int32Array>(batch, "sequence"),
    ) else {
        return Vec::new();
    };
    let (Some(trace), Some(tx), Some(id), Some(parent)) = (
        Ids::of(batch, "trace_id"),
        Ids::of(batch, "transaction_id"),
        Ids::of(batch, "span_id"),
        Ids::of(batch, "parent_span_id"),
    ) else {
        return Vec::new();
    };
    let (Some(op), Some(description), Some(group), Some(status)) = (
        text("op"),
        text("description"),
        text("group_hash"),
        text("status"),
    ) else {
        return Vec::new();
    };
    let s = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    (0..batch.num_rows())
        .filter(|&i| i64::from(project.value(i)) == project_id && tx.is_span(i, transaction_id))
        .map(|i| SpanFact {
            project_id,
            start_us: start.value(i),
            trace_id: trace.hex(i).unwrap_or_default(),
            transaction_id: tx.hex(i),
            span_id: id.hex(i).unwrap_or_default(),
            parent_span_id: parent.hex(i),
            op: s(op, i),
            description: s(description, i),
            group_hash: s(group, i),
            status: s(status, i),
            duration_ms: duration.is_valid(i).then(|| duration.value(i)),
            depth: depth.is_valid(i).then(|| depth.value(i)),
            sequence: sequence.is_valid(i).then(|| sequence.value(i)),
        })
        .collect()
}
