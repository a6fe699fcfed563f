//! The lake's tables as DuckLake sees them. A column's DuckLake `column_id` is its position plus one, and
//! is written as the parquet field id, so readers map columns by id, never by name or order.
//!
//! These definitions must match the catalog rows the migrations wrote (`store/migrations/0005_lake_catalog.sql`);
//! a test reads the catalog back and compares. Adding a column means a new migration that adds its
//! `ducklake_column` row in a new snapshot, never an edit here alone.

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
        }
    }
}

#[derive(Debug)]
pub struct ColumnDef {
    pub name: &'static str,
    pub ty: ColumnType,
    /// A random identifier, different in (nearly) every row: stored as plain text, without the
    /// dictionary and the min/max that help every other column (neither can ever pay off here).
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

impl TableDef {
    pub fn column_id(index: usize) -> i64 {
        index as i64 + 1
    }
}

use ColumnType::*;

const fn col(name: &'static str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name,
        ty,
        random_id: false,
    }
}

/// A random identifier (event, trace or span id as hex text).
const fn id(name: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        ty: Varchar,
        random_id: true,
    }
}

/// One row per transaction, classic or streamed.
pub static TRANSACTIONS: TableDef = TableDef {
    id: 1,
    name: "transactions",
    columns: &[
        col("project_id", Int32),
        // When it ended, as Sentry's `timestamp`.
        col("timestamp", Timestamp),
        col("start_timestamp", Timestamp),
        id("event_id"),
        id("trace_id"),
        id("span_id"),
        col("name", Varchar),
        col("op", Varchar),
        col("status", Varchar),
        col("duration_ms", Float64),
        col("environment", Varchar),
        col("release", Varchar),
        col("server_name", Varchar),
        col("platform", Varchar),
        col("sdk_name", Varchar),
        col("http_method", Varchar),
        // Path only: query strings carry tokens and personal data.
        col("http_url", Varchar),
        col("http_status", Int32),
        col("db_time_ms", Float64),
        col("view_time_ms", Float64),
        col("query_count", Int32),
        col("has_n_plus_one", Boolean),
        col("n_plus_one_wasted_ms", Float64),
        col("span_count", Int32),
        col("spans_truncated", Boolean),
        // `transaction` (a classic item) or `span` (a streamed segment).
        col("source", Varchar),
    ],
};

/// One row per span, the transaction's root included.
pub static SPANS: TableDef = TableDef {
    id: 2,
    name: "spans",
    columns: &[
        col("project_id", Int32),
        // When it started.
        col("timestamp", Timestamp),
        col("trace_id", Varchar),
        // The span id of its transaction's root (the segment).
        col("transaction_id", Varchar),
        id("span_id"),
        col("parent_span_id", Varchar),
        col("op", Varchar),
        // Normalized: no SQL literal, no query string, no id in a path.
        col("description", Varchar),
        // A hash of op and description: spans doing the same thing share it.
        col("group_hash", Varchar),
        col("status", Varchar),
        col("duration_ms", Float64),
        col("depth", Int32),
        col("sequence", Int32),
    ],
};

/// One row per error event: the analytics columns; the payload stays in the database.
pub static EVENTS: TableDef = TableDef {
    id: 3,
    name: "events",
    columns: &[
        col("project_id", Int32),
        col("timestamp", Timestamp),
        id("event_id"),
        col("issue_id", Int64),
        col("level", Varchar),
        col("environment", Varchar),
        col("release", Varchar),
        col("platform", Varchar),
        col("exception_type", Varchar),
        col("transaction", Varchar),
        id("trace_id"),
        col("server_name", Varchar),
        col("sdk_name", Varchar),
    ],
};

/// One row per log record (Sentry logs and OpenTelemetry logs).
pub static LOGS: TableDef = TableDef {
    id: 4,
    name: "logs",
    columns: &[
        col("project_id", Int32),
        col("timestamp", Timestamp),
        id("log_id"),
        id("trace_id"),
        id("span_id"),
        // trace, debug, info, warn, error or fatal.
        col("level", Varchar),
        col("severity_number", Int32),
        col("body", Varchar),
        col("environment", Varchar),
        col("release", Varchar),
        col("sdk_name", Varchar),
        // Every attribute as sent, typed: `{"user.id": {"type": "integer", "value": 42}, …}`.
        col("attributes", Json),
    ],
};

pub static ALL: [&TableDef; 4] = [&TRANSACTIONS, &SPANS, &EVENTS, &LOGS];
