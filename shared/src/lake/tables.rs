//! The lake's tables as DuckLake sees them. A column's DuckLake `column_id` is fixed for good and is written
//! as the parquet field id, so readers map columns by id, never by name or order.
//!
//! These definitions must match the live catalog rows the migrations wrote (`store/migrations/0005_lake_catalog.sql`,
//! `0020_logs.sql`, `0028_lake_binary_ids.sql`); a test reads the catalog back and compares. Changing a column
//! means a new migration that changes its `ducklake_column` rows in a new snapshot, never an edit here alone.
//!
//! Ids are binary: trace, event and log ids (16 bytes) as `UUID`, span ids (8 bytes) as `UBIGINT`, as
//! Sentry's own span store keeps them. Lakes written before migration 28 hold them as hex text: the UUID
//! columns changed type in place (DuckDB casts the old files' text on read), while each span-id column got a
//! new column id beside its old text column, renamed `<name>_hex`, which compaction empties by rewriting the
//! old files and [`crate::lake::maintenance::retire_columns`] then drops.

/// The DuckLake column types Splat writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int32,
    Int64,
    Float64,
    Boolean,
    Varchar,
    /// Microseconds since the epoch, UTC, without a zone (`TIMESTAMP`: the bundled DuckDB has no ICU, so
    /// zone-aware types would limit what readers can do).
    Timestamp,
    /// JSON text (DuckDB's `json`): written as a parquet string, read back as JSON; no bounds in the
    /// catalog (a JSON document's min and max prune nothing and can be large).
    Json,
    /// A 16-byte id (trace, event, log): parquet's 16-byte fixed binary with the UUID logical type.
    Uuid,
    /// An 8-byte span id, its 16 hex digits read as a big-endian unsigned integer.
    SpanId,
}

impl ColumnType {
    /// The name in `ducklake_column.column_type`.
    pub fn ducklake_name(self) -> &'static str {
        match self {
            Self::Int32 => "int32",
            Self::Int64 => "int64",
            Self::Float64 => "float64",
            Self::Boolean => "boolean",
            Self::Varchar => "varchar",
            Self::Timestamp => "timestamp",
            Self::Json => "json",
            Self::Uuid => "uuid",
            Self::SpanId => "uint64",
        }
    }

    /// An id: random bits whose min and max prune nothing, so neither parquet nor the catalog keeps them.
    pub fn is_id(self) -> bool {
        matches!(self, Self::Uuid | Self::SpanId)
    }
}

#[derive(Debug)]
pub struct ColumnDef {
    /// `ducklake_column.column_id`, the parquet field id.
    pub id: i64,
    pub name: &'static str,
    pub ty: ColumnType,
    /// A random identifier, different in (nearly) every row: stored plain, without the dictionary that
    /// helps every other column (it can never pay off here).
    pub random_id: bool,
}

/// A lake table. By convention column 1 is `project_id` and column 2 the row's `timestamp`: files are cut
/// per (project, day) of those two.
#[derive(Debug)]
pub struct TableDef {
    /// `ducklake_table.table_id`.
    pub id: i64,
    pub name: &'static str,
    pub columns: &'static [ColumnDef],
}

use ColumnType::*;

const fn col(id: i64, name: &'static str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        id,
        name,
        ty,
        random_id: false,
    }
}

/// A random identifier, new in every row.
const fn unique(id: i64, name: &'static str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        random_id: true,
        ..col(id, name, ty)
    }
}

/// One row per transaction, classic or streamed.
pub static TRANSACTIONS: TableDef = TableDef {
    id: 1,
    name: "transactions",
    columns: &[
        col(1, "project_id", Int32),
        // When it ended, as Sentry's `timestamp`.
        col(2, "timestamp", Timestamp),
        col(3, "start_timestamp", Timestamp),
        // Column 4 was the classic item's event id, dropped by migration 28: the database has it, and the
        // trace and span ids identify a transaction of either kind.
        unique(5, "trace_id", Uuid),
        // Column 6 until migration 28, as hex text.
        unique(27, "span_id", SpanId),
        col(7, "name", Varchar),
        col(8, "op", Varchar),
        col(9, "status", Varchar),
        col(10, "duration_ms", Float64),
        col(11, "environment", Varchar),
        col(12, "release", Varchar),
        col(13, "server_name", Varchar),
        col(14, "platform", Varchar),
        col(15, "sdk_name", Varchar),
        col(16, "http_method", Varchar),
        // Path only: query strings carry tokens and personal data.
        col(17, "http_url", Varchar),
        col(18, "http_status", Int32),
        col(19, "db_time_ms", Float64),
        col(20, "view_time_ms", Float64),
        col(21, "query_count", Int32),
        col(22, "has_n_plus_one", Boolean),
        col(23, "n_plus_one_wasted_ms", Float64),
        col(24, "span_count", Int32),
        col(25, "spans_truncated", Boolean),
        // `transaction` (a classic item) or `span` (a streamed segment).
        col(26, "source", Varchar),
    ],
};

/// One row per span, the transaction's root included.
pub static SPANS: TableDef = TableDef {
    id: 2,
    name: "spans",
    columns: &[
        col(1, "project_id", Int32),
        // When it started.
        col(2, "timestamp", Timestamp),
        col(3, "trace_id", Uuid),
        // The span id of its transaction's root (the segment). The span ids were columns 4 to 6 until
        // migration 28, as hex text.
        col(14, "transaction_id", SpanId),
        unique(15, "span_id", SpanId),
        col(16, "parent_span_id", SpanId),
        col(7, "op", Varchar),
        // Normalized: no SQL literal, no query string, no id in a path.
        col(8, "description", Varchar),
        // A hash of op and description: spans doing the same thing share it.
        col(9, "group_hash", Varchar),
        col(10, "status", Varchar),
        col(11, "duration_ms", Float64),
        col(12, "depth", Int32),
        col(13, "sequence", Int32),
    ],
};

/// One row per error event: the analytics columns; the payload stays in the database.
pub static EVENTS: TableDef = TableDef {
    id: 3,
    name: "events",
    columns: &[
        col(1, "project_id", Int32),
        col(2, "timestamp", Timestamp),
        unique(3, "event_id", Uuid),
        col(4, "issue_id", Int64),
        col(5, "level", Varchar),
        col(6, "environment", Varchar),
        col(7, "release", Varchar),
        col(8, "platform", Varchar),
        col(9, "exception_type", Varchar),
        col(10, "transaction", Varchar),
        unique(11, "trace_id", Uuid),
        col(12, "server_name", Varchar),
        col(13, "sdk_name", Varchar),
    ],
};

/// One row per log record (Sentry logs and OpenTelemetry logs).
pub static LOGS: TableDef = TableDef {
    id: 4,
    name: "logs",
    columns: &[
        col(1, "project_id", Int32),
        col(2, "timestamp", Timestamp),
        unique(3, "log_id", Uuid),
        unique(4, "trace_id", Uuid),
        // Column 5 until migration 28, as hex text.
        unique(13, "span_id", SpanId),
        // trace, debug, info, warn, error or fatal.
        col(6, "level", Varchar),
        col(7, "severity_number", Int32),
        col(8, "body", Varchar),
        col(9, "environment", Varchar),
        col(10, "release", Varchar),
        col(11, "sdk_name", Varchar),
        // Every attribute as sent, typed: `{"user.id": {"type": "integer", "value": 42}, …}`.
        col(12, "attributes", Json),
    ],
};

pub static ALL: [&TableDef; 4] = [&TRANSACTIONS, &SPANS, &EVENTS, &LOGS];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::CatalogDb;

    #[tokio::test]
    async fn the_catalog_the_migrations_write_has_exactly_these_columns() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("splat.db"))
            .await
            .unwrap();
        for table in ALL {
            let mut rows = store
                .catalog_connection()
                .query(
                    "SELECT column_id, column_name, column_type FROM ducklake_column
                     WHERE table_id = ?1 AND end_snapshot IS NULL ORDER BY column_order",
                    [table.id],
                )
                .await
                .unwrap();
            let mut live = Vec::new();
            while let Some(row) = rows.next().await.unwrap() {
                live.push((
                    row.get::<i64>(0).unwrap(),
                    row.get::<String>(1).unwrap(),
                    row.get::<String>(2).unwrap(),
                ));
            }
            let defined: Vec<_> = table
                .columns
                .iter()
                .map(|c| (c.id, c.name.to_owned(), c.ty.ducklake_name().to_owned()))
                .collect();
            assert_eq!(live, defined, "{}", table.name);
        }
    }
}
