//! A copy of the DuckLake catalog in a SQLite file of its own, for stock DuckDB: with the database on a
//! libSQL server there is no `splat.db` to `ATTACH 'ducklake:sqlite:…'`, and a copy also lets a reader
//! work without touching the live database. `splat lake export-catalog OUT` writes it.

use std::path::Path;

use super::catalog::CatalogDb;
use super::LakeError;

/// The tables copied and their rows, for the command to print.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub tables: usize,
    pub rows: u64,
}

/// Copies every `ducklake_*` table, as one consistent snapshot, into a new SQLite file at `out` (written
/// beside it and renamed into place, so a reader never sees half a catalog). `data_path`, when given,
/// replaces where the copy says the parquet files are (for example the folder they were copied to).
pub async fn export_catalog(
    db: &dyn CatalogDb,
    out: &Path,
    data_path: Option<&str>,
) -> Result<Exported, LakeError> {
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let target = libsql::Builder::new_local(&partial).build().await?;
    let copy = target.connect()?;
    // One read transaction: the tables agree with each other even while the processor commits.
    let source = db.catalog_connection().transaction().await?;
    let mut tables = Vec::new();
    let mut rows = source
        .query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'ducklake\\_%' ESCAPE '\\' ORDER BY name",
            (),
        )
        .await?;
    while let Some(row) = rows.next().await? {
        tables.push((row.get::<String>(0)?, row.get::<String>(1)?));
    }
    drop(rows);
    let mut exported = Exported::default();
    copy.execute("BEGIN", ()).await?;
    for (name, create) in &tables {
        copy.execute(create, ()).await?;
        exported.rows += copy_rows(&source, &copy, name).await?;
        exported.tables += 1;
    }
    copy.execute("COMMIT", ()).await?;
    source.rollback().await?;
    if let Some(data_path) = data_path {
        crate::lake::catalog::set_data_path(&copy, data_path).await?;
    }
    drop(copy);
    drop(target);
    std::fs::rename(&partial, out)
        .map_err(|e| LakeError::Catalog(format!("cannot write {}: {e}", out.display())))?;
    Ok(exported)
}

/// Copies one table's rows as they are (values keep their SQLite types).
async fn copy_rows(
    source: &libsql::Connection,
    copy: &libsql::Connection,
    table: &str,
) -> Result<u64, LakeError> {
    // `table` comes from sqlite_master and matched `ducklake_%`; quoted all the same.
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let mut rows = source.query(&format!("SELECT * FROM {quoted}"), ()).await?;
    let columns = usize::try_from(rows.column_count()).unwrap_or_default();
    let placeholders = vec!["?"; columns].join(", ");
    let insert = copy
        .prepare(&format!("INSERT INTO {quoted} VALUES ({placeholders})"))
        .await?;
    let mut copied = 0;
    while let Some(row) = rows.next().await? {
        let values = (0..columns as i32)
            .map(|i| row.get_value(i))
            .collect::<Result<Vec<_>, _>>()?;
        insert.execute(values).await?;
        insert.reset();
        copied += 1;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use libsql::Value;

    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn the_copy_holds_every_catalog_table_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("splat.db")).await.unwrap();
        store.set_lake_data_path("data/lake/").await.unwrap();
        let out = dir.path().join("catalog.sqlite");
        let exported = export_catalog(&store, &out, Some("/srv/lake/"))
            .await
            .unwrap();
        assert!(exported.tables >= 20, "{exported:?}");
        assert!(!out.with_extension("partial").exists());
        let copy = Store::open_reader(&out).await.unwrap();
        let data_path = "SELECT value FROM ducklake_metadata WHERE key = 'data_path'";
        assert_eq!(
            first(&copy, data_path).await,
            Value::Text("/srv/lake/".into())
        );
        let events = "SELECT count(*) FROM sqlite_master WHERE name = 'events'";
        let only_the_catalog = first(&copy, events).await;
        assert_eq!(
            only_the_catalog,
            Value::Integer(0),
            "only the catalog is copied"
        );
        // The source still has its own data path.
        assert_eq!(
            first(&store, data_path).await,
            Value::Text("data/lake/".into())
        );
    }

    /// The first column of the first row `sql` returns.
    async fn first(store: &Store, sql: &str) -> Value {
        let mut rows = store.catalog_connection().query(sql, ()).await.unwrap();
        let row = rows.next().await.unwrap().unwrap();
        row.get_value(0).unwrap()
    }
}
