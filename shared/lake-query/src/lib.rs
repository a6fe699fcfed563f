//! DuckDB over the lake: a view per lake table on `read_parquet` of the files the catalog lists as live,
//! so anyone can run SQL over Splat's analytics without attaching the catalog. DuckDB never opens
//! `splat.db` itself (its SQLite copy and libSQL must not share one WAL file in one process); the file
//! list comes from Splat's own store. Kept out of `splat-shared` so the ingest binary never links DuckDB.

use std::path::PathBuf;
use std::sync::Arc;

use splat::blob::BlobStore;
use splat::lake::tables::{ColumnType, TableDef, ALL};
use splat::store::Store;

/// Where lake files are read from: the local data folder, or a cache of S3 objects (immutable, so a file
/// once downloaded is kept by path).
pub enum LakeSource {
    Local(PathBuf),
    Cached {
        blobs: Arc<dyn BlobStore>,
        cache_dir: PathBuf,
    },
}

/// An in-memory DuckDB with the lake's tables as views.
pub struct LakeQuery {
    conn: duckdb::Connection,
}

/// A query's answer, every value rendered as text (NULL as `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

fn duckdb_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Int32 => "INTEGER",
        ColumnType::Int64 => "BIGINT",
        ColumnType::Float64 => "DOUBLE",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Varchar => "VARCHAR",
        ColumnType::Timestamp => "TIMESTAMP",
        // JSON text: the bundled DuckDB may lack the json extension; `attributes::JSON` where it has it.
        ColumnType::Json => "VARCHAR",
        ColumnType::Uuid => "UUID",
        ColumnType::SpanId => "UBIGINT",
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl LakeQuery {
    /// Builds the views over every live file of every lake table.
    pub async fn open(store: &Store, source: &LakeSource) -> anyhow::Result<Self> {
        let conn = duckdb::Connection::open_in_memory()?;
        for table in ALL {
            let (mut current, mut old) = (Vec::new(), Vec::new());
            for (key, is_old) in splat::lake::read::live_files_by_age(store, table).await? {
                let path = local_path(source, &key).await?;
                if is_old { &mut old } else { &mut current }.push(path);
            }
            conn.execute_batch(&view_sql(table, &current, &old))?;
        }
        Ok(Self { conn })
    }

    /// Runs one SQL statement over the views (`transactions`, `spans`, `events`, `logs`).
    pub fn query(&self, sql: &str) -> anyhow::Result<Answer> {
        let sql = sql.trim().trim_end_matches(';');
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})"))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut width = 0;
        while let Some(row) = rows.next()? {
            width = row.as_ref().column_count();
            out.push(
                (0..width)
                    .map(|i| row.get::<_, Option<String>>(i))
                    .collect::<Result<_, _>>()?,
            );
        }
        drop(rows);
        let columns = (0..stmt.column_count().max(width))
            .map(|i| {
                stmt.column_name(i)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Answer { columns, rows: out })
    }
}

/// `CREATE VIEW` over the files, or an empty table of the right shape when there are none yet. Files from
/// before migration 28 (`old`) hold ids as hex text: read as the current types.
fn view_sql(table: &TableDef, current: &[PathBuf], old: &[PathBuf]) -> String {
    if current.is_empty() && old.is_empty() {
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("\"{}\" {}", c.name, duckdb_type(c.ty)))
            .collect();
        return format!("CREATE TABLE \"{}\" ({});", table.name, columns.join(", "));
    }
    let read = |paths: &[PathBuf]| {
        let files: Vec<String> = paths
            .iter()
            .map(|p| quote(&p.display().to_string()))
            .collect();
        format!(
            "read_parquet([{}], hive_partitioning = false)",
            files.join(", ")
        )
    };
    let old_columns: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.ty {
            ColumnType::Uuid => format!("TRY_CAST(\"{0}\" AS UUID) AS \"{0}\"", c.name),
            ColumnType::SpanId => {
                format!("TRY_CAST('0x' || \"{0}\" AS UBIGINT) AS \"{0}\"", c.name)
            }
            _ => format!("\"{}\"", c.name),
        })
        .collect();
    let parts: Vec<String> = [
        (!current.is_empty()).then(|| format!("SELECT * FROM {}", read(current))),
        (!old.is_empty()).then(|| format!("SELECT {} FROM {}", old_columns.join(", "), read(old))),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "CREATE VIEW \"{}\" AS {};",
        table.name,
        parts.join(" UNION ALL BY NAME ")
    )
}

async fn local_path(source: &LakeSource, key: &str) -> anyhow::Result<PathBuf> {
    match source {
        LakeSource::Local(root) => Ok(root.join(key)),
        LakeSource::Cached { blobs, cache_dir } => {
            let path = cache_dir.join(key);
            if !path.exists() {
                let bytes = blobs.get(key).await?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                // Written whole, then renamed: a half-written file is never taken for a cached one.
                let partial = path.with_extension("partial");
                std::fs::write(&partial, &bytes)?;
                std::fs::rename(&partial, &path)?;
            }
            Ok(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_tables_have_the_lake_shape() {
        let conn = duckdb::Connection::open_in_memory().unwrap();
        for table in ALL {
            conn.execute_batch(&view_sql(table, &[], &[])).unwrap();
        }
        let q = LakeQuery { conn };
        let answer = q.query("SELECT count(*) AS n FROM spans").unwrap();
        assert_eq!(answer.columns, ["n"]);
        assert_eq!(answer.rows, [[Some("0".to_owned())]]);
        let described = q.query("DESCRIBE transactions").unwrap();
        assert_eq!(
            described.rows.len(),
            splat::lake::tables::TRANSACTIONS.columns.len()
        );
    }

    #[test]
    fn files_with_hex_ids_read_as_binary_ids_beside_new_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            dir.path().join("old.parquet"),
            dir.path().join("new.parquet"),
        );
        let conn = duckdb::Connection::open_in_memory().unwrap();
        // A spans file as written before migration 28 (ids as hex text), and one as written now.
        let row = |trace: &str, span: &str, to: &PathBuf| {
            format!(
                "COPY (SELECT 1::INTEGER AS project_id, TIMESTAMP '2026-01-01' AS timestamp, {trace} AS trace_id,
                    {span} AS transaction_id, {span} AS span_id, NULL AS parent_span_id, 'db' AS op,
                    'SELECT 1' AS description, 'h' AS group_hash, 'ok' AS status, 1.5 AS duration_ms,
                    0 AS depth, 0 AS sequence) TO '{}' (FORMAT parquet)",
                to.display()
            )
        };
        let hex_trace = "'0123456789abcdef0123456789abcdef'";
        conn.execute_batch(&row(hex_trace, "'a1b2c3d4e5f60718'", &old))
            .unwrap();
        let uuid = format!("{hex_trace}::UUID");
        conn.execute_batch(&row(&uuid, "'0xa1b2c3d4e5f60719'::UBIGINT", &new))
            .unwrap();
        let q = LakeQuery { conn };
        q.conn
            .execute_batch(&view_sql(&splat::lake::tables::SPANS, &[new], &[old]))
            .unwrap();
        let answer = q
            .query("SELECT printf('%016x', span_id) AS span, trace_id FROM spans ORDER BY span")
            .unwrap();
        let trace = Some("01234567-89ab-cdef-0123-456789abcdef".to_owned());
        assert_eq!(
            answer.rows,
            [
                [Some("a1b2c3d4e5f60718".to_owned()), trace.clone()],
                [Some("a1b2c3d4e5f60719".to_owned()), trace]
            ]
        );
    }
}
