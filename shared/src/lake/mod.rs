//! The lake: transactions, spans, error events and log records as DuckLake (spec 1.0) tables, so that stock DuckDB can
//! `ATTACH 'ducklake:sqlite:data/splat.db'` and read every row Splat has.
//!
//! Per processor batch: the rows the database did not already have become parquet files, one per (table,
//! project, day) and at most [`MAX_FILES_PER_BATCH`] per (table, project) ([`LakeWriter::write`], uploaded through the blob store: S3 in AWS, the data folder
//! locally); then the files are registered in the catalog tables inside the batch's single commit
//! ([`catalog::register`]). A crash between the upload and the commit leaves only an unregistered file,
//! which maintenance deletes; a redelivered message is skipped by the ledger, so no row lands twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::blob::{BlobError, BlobStore};

pub mod catalog;
pub mod columns;
pub mod export;
pub mod facts;
pub mod ids;
pub mod maintenance;
pub mod parquet;
pub mod read;
pub mod tables;

pub use catalog::{CatalogDb, CatalogTx};
pub use columns::{Cell, ColumnStats, LakeRow};
pub use facts::{EventFact, LakeFacts, LogFact, SpanFact, TransactionFact};
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
    #[error("lake catalog: {0}")]
    Db(#[from] libsql::Error),
    #[error("lake catalog: {0}")]
    Catalog(String),
}

/// Writes lake files through a blob store.
#[derive(Clone)]
pub struct LakeWriter {
    blobs: Arc<dyn BlobStore>,
}

use crate::model::time::DAY_US;

impl LakeWriter {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self { blobs }
    }

    /// Builds and uploads the files for these rows; the caller registers them in its commit.
    pub async fn write(&self, facts: &LakeFacts) -> Result<Vec<LakeFile>, LakeError> {
        let mut files = build(&facts.transactions)?;
        files.extend(build(&facts.spans)?);
        files.extend(build(&facts.events)?);
        files.extend(build(&facts.logs)?);
        let uploads = files
            .iter()
            .map(|(file, bytes)| self.blobs.put(&file.key, bytes.clone()));
        futures_util::future::try_join_all(uploads).await?;
        Ok(files.into_iter().map(|(file, _)| file).collect())
    }
}

/// At most this many files per (table, project) come out of one batch, whatever its rows' timestamps.
/// The processor keeps timestamps within the retention horizon, but a batch may still touch a day per
/// row (an SDK sending a backlog it buffered offline for weeks), and every file costs an upload, catalog
/// rows and a read for every query over its days.
pub const MAX_FILES_PER_BATCH: usize = 4;

/// One parquet file per (project, day) of the rows, for the newest days; the rows of any older days
/// share one file, filed under the newest of those days (compaction merges it there; retention ends it
/// once its newest row is past the horizon, as it reads each file's max timestamp, not its folder).
pub fn build<R: LakeRow>(rows: &[R]) -> Result<Vec<(LakeFile, Bytes)>, LakeError> {
    let groups = day_groups(rows);
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
                stats: columns::file_stats(table, &columns),
            },
            Bytes::from(bytes),
        ));
    }
    Ok(files)
}

/// The rows by (project, day), at most [`MAX_FILES_PER_BATCH`] groups per project.
fn day_groups<R: LakeRow>(rows: &[R]) -> BTreeMap<(i64, i64), Vec<&R>> {
    let mut by_day: BTreeMap<(i64, i64), Vec<&R>> = BTreeMap::new();
    for row in rows {
        let day = row.timestamp_us().div_euclid(DAY_US);
        by_day.entry((row.project_id(), day)).or_default().push(row);
    }
    let mut groups: BTreeMap<(i64, i64), Vec<&R>> = BTreeMap::new();
    // Newest first within each project: (project, number of groups so far, the shared group's key).
    let mut current: Option<(i64, usize, (i64, i64))> = None;
    for (key, rows) in by_day.into_iter().rev() {
        let (seen, shared) = match current {
            Some((project, seen, shared)) if project == key.0 => (
                seen + 1,
                if seen >= MAX_FILES_PER_BATCH {
                    shared
                } else {
                    key
                },
            ),
            _ => (1, key),
        };
        groups.entry(shared).or_default().extend(rows);
        current = Some((key.0, seen, shared));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(project: i64, day: i64) -> SpanFact {
        SpanFact {
            project_id: project,
            start_us: day * DAY_US + crate::model::time::HOUR_US,
            span_id: format!("{project}-{day}"),
            ..SpanFact::default()
        }
    }

    #[test]
    fn a_batch_over_a_thousand_days_writes_a_bounded_number_of_files() {
        let rows: Vec<SpanFact> = (1..=2)
            .flat_map(|p| (0..1_000).map(move |d| span(p, d)))
            .collect();
        let groups = day_groups(&rows);
        for project in 1..=2 {
            let days: Vec<i64> = groups
                .keys()
                .filter(|(p, _)| *p == project)
                .map(|(_, d)| *d)
                .collect();
            // The three newest days alone, every older day in the fourth (filed under day 996).
            assert_eq!(days, [996, 997, 998, 999]);
            assert_eq!(groups[&(project, 996)].len(), 997);
        }
        assert_eq!(groups.values().map(Vec::len).sum::<usize>(), rows.len());
        // A batch within a few days is cut per day as before.
        let recent: Vec<SpanFact> = (0..3).map(|d| span(1, d)).collect();
        assert_eq!(day_groups(&recent).len(), 3);
        let files = build(&rows).unwrap();
        assert_eq!(files.len(), 2 * MAX_FILES_PER_BATCH);
        assert_eq!(
            files.iter().map(|(f, _)| f.record_count).sum::<i64>(),
            2_000
        );
    }
}
