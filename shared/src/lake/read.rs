//! Reading the lake back: which files hold a table's rows for a project and time window (pruned by the
//! per-file statistics in the catalog, as DuckDB prunes), and one transaction's spans from those files.

use std::sync::Arc;

use arrow_array::{
    Array, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use async_trait::async_trait;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::blob::{BlobError, BlobStore};

use super::catalog::CatalogDb;
use super::columns::format_timestamp;
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
    let mut rows = db
        .catalog_connection()
        .query(
            "SELECT path FROM ducklake_data_file WHERE table_id = ?1 AND end_snapshot IS NULL ORDER BY data_file_id",
            [table.id],
        )
        .await?;
    let mut keys = Vec::new();
    while let Some(row) = rows.next().await? {
        let path: String = row.get(0)?;
        keys.push(format!("{KEY_PREFIX}main/{}/{path}", table.name));
    }
    Ok(keys)
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
                spans.extend(span_facts(&batch).into_iter().filter(|s| {
                    s.project_id == project_id
                        && s.transaction_id.as_deref() == Some(transaction_id)
                }));
            }
        }
        spans.sort_by_key(|s| (s.sequence.unwrap_or(i32::MAX), s.start_us));
        Ok(spans)
    }
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Option<&'a T> {
    batch.column_by_name(name)?.as_any().downcast_ref::<T>()
}

/// The rows of a spans file; a file whose columns are not the spans table's yields nothing.
fn span_facts(batch: &RecordBatch) -> Vec<SpanFact> {
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
    let (
        Some(trace),
        Some(tx),
        Some(id),
        Some(parent),
        Some(op),
        Some(description),
        Some(group),
        Some(status),
    ) = (
        text("trace_id"),
        text("transaction_id"),
        text("span_id"),
        text("parent_span_id"),
        text("op"),
        text("description"),
        text("group_hash"),
        text("status"),
    )
    else {
        return Vec::new();
    };
    let s = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_owned());
    (0..batch.num_rows())
        .map(|i| SpanFact {
            project_id: i64::from(project.value(i)),
            start_us: start.value(i),
            trace_id: s(trace, i).unwrap_or_default(),
            transaction_id: s(tx, i),
            span_id: s(id, i).unwrap_or_default(),
            parent_span_id: s(parent, i),
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
