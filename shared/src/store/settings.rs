//! Instance-wide settings saved from the settings page (retention horizons, keyed by the environment
//! variable they override), and the storage figures that page shows.

use super::{now_us, Result, Store};

/// Rows of the tables that grow with traffic, and the lake's live files per table.
#[derive(Debug, Clone, Default)]
pub struct StorageFigures {
    /// The database file: pages in use and free pages, in bytes.
    pub database_bytes: i64,
    pub free_bytes: i64,
    pub rows: Vec<(&'static str, i64)>,
    /// Per lake table: (name, live files, their bytes, their rows).
    pub lake: Vec<(&'static str, i64, i64, i64)>,
}

impl Store {
    /// Saved settings whose keys start with `prefix`: (key, value).
    pub async fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT key, value FROM settings WHERE key >= ?1 AND key < ?1 || x'ff' ORDER BY key",
                [prefix],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?));
        }
        Ok(out)
    }

    /// Saves a setting, or forgets it (`None`), so that the environment or the default applies again.
    pub async fn set_setting(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(value) => {
                self.conn()
                    .execute(
                        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        (key, value, now_us()),
                    )
                    .await?
            }
            None => {
                self.conn()
                    .execute("DELETE FROM settings WHERE key = ?1", [key])
                    .await?
            }
        };
        Ok(())
    }

    pub async fn storage_figures(&self) -> Result<StorageFigures> {
        let page_size = self.scalar("PRAGMA page_size", ()).await?;
        let pages = self.scalar("PRAGMA page_count", ()).await?;
        let free = self.scalar("PRAGMA freelist_count", ()).await?;
        let mut rows = Vec::new();
        for table in [
            "events",
            "issues",
            "transactions",
            "spans",
            "transaction_rollups",
            "processed_messages",
        ] {
            rows.push((table, self.count(table).await?));
        }
        let mut lake = Vec::new();
        for table in crate::lake::tables::ALL {
            let mut r = self
                .conn()
                .query(
                    "SELECT count(*), coalesce(sum(file_size_bytes), 0), coalesce(sum(record_count), 0)
                     FROM ducklake_data_file WHERE table_id = ?1 AND end_snapshot IS NULL",
                    [table.id],
                )
                .await?;
            if let Some(row) = r.next().await? {
                lake.push((table.name, row.get(0)?, row.get(1)?, row.get(2)?));
            }
        }
        Ok(StorageFigures {
            database_bytes: pages * page_size,
            free_bytes: free * page_size,
            rows,
            lake,
        })
    }
}
