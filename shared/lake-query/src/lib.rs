//! DuckDB over the lake's parquet files.

/// The DuckDB library version this reader runs, e.g. `v1.5.5`.
pub fn duckdb_version() -> anyhow::Result<String> {
    let conn = duckdb::Connection::open_in_memory()?;
    Ok(conn.query_row("SELECT version()", [], |row| row.get(0))?)
}
