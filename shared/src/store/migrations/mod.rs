//! Versioned migrations of `splat.db`, one SQL file each (`NNNN_name.sql` beside this file, its why in its
//! header comment). Each runs once, in numeric order, inside a transaction of its own, followed there by
//! its code step if it has one; the applied versions are recorded in `schema_migrations`. Never edit a
//! released migration: add the next file, and its line at the end of [`MIGRATIONS`].
//!
//! A migration that rewrites a big table may run in parts ([`Migration::part`]): its SQL once, in the
//! first part's transaction (recorded in `schema_migrations_started`), then its part, a bounded piece of
//! the work committed on its own, as often as the part says more remains, then its step, which finishes
//! it in the last part's transaction. A run that stops between parts (the migrate job at its deadline, a
//! killed process) leaves only committed parts; the next run goes on from there.

use futures_util::future::BoxFuture;

use super::{rollups, Result};

/// The record of the versions applied.
pub const APPLIED_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)";

/// The migrations in parts begun and not yet finished.
pub const STARTED_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS schema_migrations_started (version INTEGER PRIMARY KEY)";

/// One migration: its number and name (from its file name), its SQL, and the Rust to run after it.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
    /// What SQL cannot do, run after the SQL in the same transaction (e.g. filling a new table by merging
    /// sketches).
    pub step: Option<Step>,
    /// Whether it may outlast a short invocation on a large database (it rewrites a big table): the
    /// processor function (60 s) leaves it, and everything after it, to the migrate job (see
    /// [`crate::store::Migrate`]).
    pub long: bool,
    /// Its work in parts, for a migration longer than any one invocation (see the module's comment).
    pub part: Option<Part>,
}

/// A migration's code step: a function given the connection of the migration's transaction.
pub type Step = for<'c> fn(&'c libsql::Connection) -> BoxFuture<'c, Result<()>>;

/// One part of a migration's work: at most about the given number of rows, in the transaction of the
/// connection given; whether more remains.
pub type Part = for<'c> fn(&'c libsql::Connection, i64) -> BoxFuture<'c, Result<bool>>;

/// The rows a part of a migration moves: about half a second of copying on a local disk, so that the
/// migrate job stops close to its deadline and a part rolled back costs little.
pub const PART_ROWS: i64 = 50_000;

/// `migration!("0001_ground_floor")` includes that file, numbered by its name; a second argument names
/// its code step, and a third, `long`, marks it [`Migration::long`], or `in_parts(part)` marks it long and
/// gives its [`Migration::part`].
macro_rules! migration {
    ($file:literal) => {
        migration!($file, None)
    };
    ($file:literal, $step:expr) => {
        migration!(@ $file, $step, false, None)
    };
    ($file:literal, $step:expr, long) => {
        migration!(@ $file, $step, true, None)
    };
    ($file:literal, $step:expr, in_parts($part:expr)) => {
        migration!(@ $file, $step, true, Some($part))
    };
    (@ $file:literal, $step:expr, $long:expr, $part:expr) => {{
        let (version, name) = split_file_name($file);
        Migration {
            version,
            name,
            sql: include_str!(concat!($file, ".sql")),
            step: $step,
            long: $long,
            part: $part,
        }
    }};
}

/// Every migration, in the order they run: strictly increasing versions (checked below, at compile time).
/// There is no version 11.
pub const MIGRATIONS: &[Migration] = &[
    migration!("0001_ground_floor"),
    migration!("0002_issues"),
    migration!("0003_issue_list_speed"),
    migration!("0004_tag_filters"),
    migration!("0005_lake_catalog"),
    migration!("0006_transaction_rollups"),
    migration!("0007_notifications_sent"),
    migration!("0008_transaction_figures"),
    migration!("0009_retention"),
    migration!("0010_monitors"),
    migration!("0012_settings"),
    migration!("0013_events_by_trace"),
    migration!("0014_daily_rollups", Some(backfill_daily_rollups)),
    migration!("0015_quotas_and_alert_budget"),
    migration!("0016_feedback"),
    migration!("0017_key_changes_and_queue_batches"),
    migration!("0018_ledger_in_time_order"),
    migration!("0019_event_keys_by_hour"),
    migration!("0020_logs"),
    migration!("0021_api_tokens_and_artifacts"),
    migration!("0023_alert_rules"),
    migration!("0024_deletions"),
    migration!("0025_log_text_index"),
    migration!("0026_regressed_issues"),
    migration!("0028_lake_binary_ids"),
    migration!("0029_transactions_endpoint_duration"),
    migration!("0030_spans_until_settled"),
    migration!("0031_payload_dictionaries"),
    migration!(
        "0032_log_blocks",
        Some(super::logs::move_records_into_blocks)
    ),
    migration!("0033_issue_tag_breakdown"),
    migration!("0034_issue_terms"),
    migration!("0035_rollup_environments"),
    migration!("0036_transaction_durations_by_hour", None, long),
    migration!(
        "0037_transaction_keys_by_hour",
        Some(super::transaction_keys::finish_keys_by_hour),
        in_parts(super::transaction_keys::copy_keys_by_hour)
    ),
    migration!("0038_project_rollups", Some(backfill_project_rollups), long),
];

const _: () = assert!(
    strictly_increasing(MIGRATIONS),
    "migration versions must increase"
);

impl Migration {
    /// The SQL, then the code step, on `conn` (the caller's transaction, which records the version); for a
    /// migration in parts, every part in that one transaction. (Tests build old schemas with it; a store
    /// applies migrations part by part, see `Store::apply_migrations`.)
    #[cfg(test)]
    pub async fn apply(&self, conn: &libsql::Connection) -> Result<()> {
        while !self.apply_part(conn, PART_ROWS).await? {}
        Ok(())
    }

    /// The next part of the migration on `conn` (the caller's transaction, committed after it): the SQL
    /// if it has not run yet, then the part of at most about `rows` rows if it has parts, then the code
    /// step once no part remains. Whether the migration is done (the caller then records its version).
    pub async fn apply_part(&self, conn: &libsql::Connection, rows: i64) -> Result<bool> {
        let Some(part) = self.part else {
            conn.execute_batch(self.sql).await?;
            self.finish(conn).await?;
            return Ok(true);
        };
        conn.execute(STARTED_TABLE, ()).await?;
        let started = "INSERT OR IGNORE INTO schema_migrations_started (version) VALUES (?1)";
        if conn.execute(started, [self.version]).await? == 1 {
            conn.execute_batch(self.sql).await?;
        }
        if part(conn, rows).await? {
            return Ok(false);
        }
        self.finish(conn).await?;
        conn.execute(
            "DELETE FROM schema_migrations_started WHERE version = ?1",
            [self.version],
        )
        .await?;
        Ok(true)
    }

    async fn finish(&self, conn: &libsql::Connection) -> Result<()> {
        if let Some(step) = self.step {
            step(conn).await?;
        }
        Ok(())
    }
}

/// 14's step: the daily rollups from the hourly ones already stored.
fn backfill_daily_rollups(conn: &libsql::Connection) -> BoxFuture<'_, Result<()>> {
    Box::pin(rollups::backfill_daily(conn))
}

fn backfill_project_rollups(conn: &libsql::Connection) -> BoxFuture<'_, Result<()>> {
    Box::pin(rollups::backfill_project(conn))
}

/// `"0014_daily_rollups"` → `(14, "daily_rollups")`; anything else fails the build.
const fn split_file_name(file: &'static str) -> (i64, &'static str) {
    let bytes = file.as_bytes();
    let mut version = 0;
    let mut i = 0;
    while i < 4 {
        assert!(
            bytes[i].is_ascii_digit(),
            "a migration file starts with four digits"
        );
        version = version * 10 + (bytes[i] - b'0') as i64;
        i += 1;
    }
    assert!(bytes[4] == b'_' && bytes.len() > 5, "then `_name`");
    let (_, name) = bytes.split_at(5);
    match std::str::from_utf8(name) {
        Ok(name) => (version, name),
        Err(_) => panic!("a migration name is UTF-8"),
    }
}

/// Whether each version is above the one before, so the table's order is the numeric order.
const fn strictly_increasing(migrations: &[Migration]) -> bool {
    let mut i = 1;
    while i < migrations.len() {
        if migrations[i].version <= migrations[i - 1].version {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Journal, Store};

    /// The order the table had before it was numbered: 8 ran before 7, and 10 after 14.
    const OLD_ORDER: [i64; 18] = [
        1, 2, 3, 4, 5, 6, 8, 7, 9, 12, 13, 14, 10, 15, 16, 17, 18, 19,
    ];

    #[test]
    fn every_sql_file_is_in_the_table_under_its_number() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
            .collect();
        files.sort();
        let table: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{:04}_{}", m.version, m.name))
            .collect();
        assert_eq!(table, files, "the table, in numeric order, is the folder");
    }

    /// A database migrated in the old order is complete for this code, and has the schema a new one gets.
    #[tokio::test]
    async fn the_old_order_and_the_numeric_order_build_the_same_schema() {
        let fresh = Store::open_in_memory().await.unwrap();
        // Then every migration numbered after the old order's last, as `migrate` applies them.
        let later = MIGRATIONS.iter().map(|m| m.version).filter(|v| *v > 19);
        let order: Vec<i64> = OLD_ORDER.into_iter().chain(later).collect();
        let old = database_migrated_in(&order).await;
        assert!(old.missing_migrations().await.unwrap().is_empty());
        assert_eq!(schema(&old).await, schema(&fresh).await);
    }

    /// Wherever a database stopped in the old order, migrating it now brings it to the new one's schema.
    #[tokio::test]
    async fn a_database_stopped_anywhere_in_the_old_order_catches_up() {
        let fresh = schema(&Store::open_in_memory().await.unwrap()).await;
        for applied in 0..OLD_ORDER.len() {
            let store = database_migrated_in(&OLD_ORDER[..applied]).await;
            store.migrate(crate::store::Migrate::All).await.unwrap();
            assert_eq!(
                schema(&store).await,
                fresh,
                "after {:?}",
                &OLD_ORDER[..applied]
            );
            assert!(store.missing_migrations().await.unwrap().is_empty());
        }
    }

    /// An in-memory database with these migrations applied and recorded, in this order, each in its
    /// transaction as `Store::migrate` did it.
    async fn database_migrated_in(order: &[i64]) -> Store {
        let db = libsql::Builder::new_local(":memory:")
            .build()
            .await
            .unwrap();
        let store = Store::connect(db, Some(Journal::Wal)).await.unwrap();
        let conn = store.conn();
        conn.execute(APPLIED_TABLE, ()).await.unwrap();
        for version in order {
            let migration = MIGRATIONS.iter().find(|m| m.version == *version).unwrap();
            let tx = conn.transaction().await.unwrap();
            migration.apply(&tx).await.unwrap();
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [*version],
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        store
    }

    /// 25 gives the records stored before it time keys (arrival order within a millisecond) and indexes
    /// their text.
    #[tokio::test]
    async fn log_records_stored_before_25_are_put_in_time_order_and_indexed() {
        let before: Vec<i64> = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| *v < 25)
            .collect();
        let store = database_migrated_in(&before).await;
        let conn = store.conn();
        conn.execute_batch(
            "INSERT INTO projects (id, name, slug, created_at) VALUES (1, 'p', 'p', 0);
             INSERT INTO logs (id, project_id, log_id, timestamp, received_at, level, body, attributes) VALUES
                 (1, 1, 'a', 5000999, 0, 'info', 'later', '{\"k\": {\"type\": \"string\", \"value\": \"kiwi\"}}'),
                 (2, 1, 'b', 5000001, 0, 'info', 'same millisecond, after', '{}'),
                 (3, 1, 'c', 4000000, 0, 'info', 'earliest', '{}');",
        )
        .await
        .unwrap();
        let tx = conn.transaction().await.unwrap();
        MIGRATIONS
            .iter()
            .find(|m| m.version == 25)
            .unwrap()
            .apply(&tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut rows = conn
            .query(
                "SELECT log_id, time_key - (timestamp / 1000) * 1048576 FROM logs ORDER BY time_key",
                (),
            )
            .await
            .unwrap();
        let mut order = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            order.push((row.get::<String>(0).unwrap(), row.get::<i64>(1).unwrap()));
        }
        let expected = [("c", 0), ("a", 0), ("b", 1)].map(|(id, n)| (id.to_owned(), n));
        assert_eq!(order, expected);
        let mut found = conn
            .query(
                "SELECT l.log_id FROM logs_text('\"iwi\"') t JOIN logs l ON l.time_key = t.rowid",
                (),
            )
            .await
            .unwrap();
        let row = found.next().await.unwrap().unwrap();
        assert_eq!(row.get::<String>(0).unwrap(), "a");
    }

    async fn schema(store: &Store) -> Vec<[Option<String>; 4]> {
        let mut rows = store
            .conn()
            .query(
                "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name",
                (),
            )
            .await
            .unwrap();
        let mut schema = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            schema.push([0, 1, 2, 3].map(|i| row.get::<Option<String>>(i).unwrap()));
        }
        schema
    }
}
