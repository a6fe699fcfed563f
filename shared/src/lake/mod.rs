//! The lake: transactions, spans and error events as DuckLake (spec 1.0) tables, so that stock DuckDB can
//! `ATTACH 'ducklake:sqlite:data/splat.db'` and read every row Splat has.
//!
//! Per processor batch: the rows the database did not already have become parquet files, one per (table,
//! project, day) ([`LakeWriter::write`], uploaded through the blob store: S3 in AWS, the data folder
//! locally); then the files are registered in the catalog tables inside the batch's single commit
//! ([`catalog::register`]). A crash between the upload and the commit leaves only an unregistered file,
//! which maintenance deletes; a redelivered message is skipped by the ledger, so no row lands twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::blob::{BlobError, BlobStore};

pub mod catalog;
pub mod columns;
pub mod facts;
pub mod maintenance;
pub mod parquet;
pub mod read;
pub mod tables;

pub use columns::{Cell, ColumnStats, LakeRow};
pub use facts::{EventFact, LakeFacts, SpanFact, TransactionFact};
pub use read::{LakeFiles, LakeReadError, LakeReader};
pub use tables::TableDef;

/// Blob keys of lake files start here; the catalog's `data_path` points at the same place.
pub const KEY_PREFIX: &str = "lake/";

/// The catalog path (relative to the table folder) of a file, and where it is stored.
#[derive(Debug, Clone)]
pub struct LakeFile {
    pub table: &'static TableDef,
    /// `<project>/<yyyy-mm-dd>/<uuid>.parquet`, relative to `<data_path>main/<table>/`.
    pub path: String,
    /// The blob key: `lake/main/<table>/<path>`.
    pub key: String,
    pub record_count: i64,
    pub size_bytes: i64,
    /// Per column, in table order.
    pub stats: Vec<ColumnStats>,
}

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error(transparent)]
    Shape(#[from] columns::ShapeError),
    #[error(transparent)]
    Parquet(#[from] parquet::ParquetError),
    #[error("uploading a lake file: {0}")]
    Upload(#[from] BlobError),
}

/// Writes lake files through a blob store.
#[derive(Clone)]
pub struct LakeWriter {
    blobs: Arc<dyn BlobStore>,
}

const DAY_US: i64 = 86_400_000_000;

impl LakeWriter {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self { blobs }
    }

    /// Builds and uploads the files for these rows; the caller registers them in its commit.
    pub async fn write(&self, facts: &LakeFacts) -> Result<Vec<LakeFile>, LakeError> {
        let mut files = build(&facts.transactions)?;
        files.extend(build(&facts.spans)?);
        files.extend(build(&facts.events)?);
        let uploads = files
            .iter()
            .map(|(file, bytes)| self.blobs.put(&file.key, bytes.clone()));
        futures_util::future::try_join_all(uploads).await?;
        Ok(files.into_iter().map(|(file, _)| file).collect())
    }
}

/// One parquet file per (project, day) of the rows.
pub fn build<R: LakeRow>(rows: &[R]) -> Result<Vec<(LakeFile, Bytes)>, LakeError> {
    let mut groups: BTreeMap<(i64, i64), Vec<&R>> = BTreeMap::new();
    for row in rows {
        let day = row.timestamp_us().div_euclid(DAY_US);
        groups.entry((row.project_id(), day)).or_default().push(row);
    }
    let table = R::table();
    let mut files = Vec::with_capacity(groups.len());
    for ((project, day), rows) in groups {
        let columns = columns::columns(&rows)?;
        let bytes = parquet::write(table, &columns)?;
        let date = chrono::DateTime::from_timestamp(day * 86_400, 0)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| "1970-01-01".into());
        let path = format!("{project}/{date}/{}.parquet", uuid::Uuid::new_v4().simple());
        files.push((
            LakeFile {
                table,
                key: format!("{KEY_PREFIX}main/{}/{path}", table.name),
                path,
                record_count: rows.len() as i64,
                size_bytes: bytes.len() as i64,
                stats: columns.iter().map(|c| c.stats()).collect(),
            },
            Bytes::from(bytes),
        ));
    }
    Ok(files)
}
