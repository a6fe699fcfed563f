//! The OLTP database (`splat.db`, libSQL): projects and keys, events, transactions, spans, item counts and
//! the processed-message ledger. Storage never renders anything and never parses the wire format.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::lake::maintenance::Deadline;
use crate::protocol::{ProjectId, PublicKey};

mod alert_budget;
mod alert_rules;
mod api_tokens;
mod artifacts;
mod batch;
mod bursts;
pub(crate) mod cached;
mod deletes;
mod dictionaries;
mod event_keys;
mod feedback;
mod issue_events;
mod issue_reads;
mod issue_search;
mod issue_text;
mod issues;
mod keys;
mod log_blocks;
mod logs;
mod migrations;
mod monitors;
mod perf_reads;
mod project_reads;
mod projects;
mod queue_batches;
mod release_marks;
mod remote;
#[cfg(feature = "remote-db")]
mod remote_connector;
mod retention;
mod rollups;
mod rows;
mod scrubbing;
mod segments;
mod settings;
mod slowest;
mod tag_breakdown;
mod trace_reads;
mod transaction_keys;

pub use alert_budget::{Digest, Verdict};
pub use alert_rules::AlertRule;
pub use api_tokens::{ApiScope, ApiToken};
pub use artifacts::{ArtifactFile, ArtifactKind, FoundArtifact, NewBundle};
pub use batch::BatchTx;
pub use bursts::Burst;
pub use dictionaries::{Packer, PayloadTable, MAX_PAYLOAD_BYTES};
pub use feedback::{FeedbackKind, FeedbackRow, StoredFeedback, FEEDBACK_PAGE};
pub use issue_reads::{
    EventListItem, Issue, IssueFilter, IssueSort, IssueStatus, IssueTotal, Release, StoredEvent,
};
pub use issue_search::{IssueQuery, ParseQueryError};
pub use issues::{IssueChange, Sighting};
pub use keys::{KeyInfo, Quota, QuotaRow, QuotaScope};
pub use logs::{LogCursor, LogQuery, LogRow, StoredLog, MAX_LOGS_PER_READ};
pub use monitors::{CheckInRow, Monitor, MonitorMark, Run};
pub use perf_reads::{
    EndpointCells, EndpointStats, HourStats, PerfOverview, PerfWindow, TransactionDetail,
    TransactionQuery, TransactionSort, TransactionSummary, DAILY_AFTER_US,
};
pub use project_reads::{HealthCounts, ProjectSummary, RecentEvent};
pub use projects::{Project, ProjectKey};
pub use queue_batches::QueueBatch;
pub use release_marks::{Deploy, NewDeploy, ReleaseMark};
pub use remote::RemoteDatabase;
pub use retention::{OltpReport, EXPIRED_PAYLOAD};
pub use rollups::Rollup;
pub use rows::{
    duration, span_key, transaction_key, EventRow, ItemCount, RowKey, SpanRow, TransactionRow,
    WriteBatch,
};
pub use segments::StoredSegment;
pub use settings::StorageFigures;
pub use tag_breakdown::{TagBreakdown, MAX_TAG_KEYS};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] libsql::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("lake: {0}")]
    Lake(#[from] crate::lake::LakeError),
    /// The database is missing or behind this code's schema, and this handle may not migrate it: a
    /// passing state (the processor migrates), shown as 503.
    #[error("database not ready: {0}")]
    NotReady(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The catalog's statements run in the store's transactions (see [`cached`]): their errors are the
/// store's own, and go back as what they were.
impl From<StoreError> for crate::lake::LakeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => Self::Db(e),
            StoreError::Lake(e) => e,
            other => Self::Catalog(other.to_string()),
        }
    }
}

/// A message's entry in the ledger of committed messages: when the queue took it (milliseconds; 0 when the
/// queue keeps no time) and its id, both the same on every redelivery. The time comes first so that entries
/// are written in the order they arrive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerKey {
    pub sent_ms: i64,
    pub message_id: String,
}

impl LedgerKey {
    /// `[[sent_ms, "id"], …]`, for the ledger's statements.
    pub(crate) fn json(keys: &[LedgerKey]) -> Result<String> {
        let pairs: Vec<(i64, &str)> = keys
            .iter()
            .map(|k| (k.sent_ms, k.message_id.as_str()))
            .collect();
        serde_json::to_string(&pairs).map_err(|e| StoreError::Invalid(format!("message ids: {e}")))
    }
}

/// A handle on `splat.db`. Cheap to clone; every clone shares one connection.
#[derive(Clone)]
pub struct Store {
    // Kept so the database outlives its connection.
    _db: std::sync::Arc<libsql::Database>,
    conn: libsql::Connection,
    /// On a libSQL server ([`RemoteDatabase`]): the file, its journal and its pages are the server's.
    remote: bool,
}

/// How the database file is journaled. WAL lets readers and the writer work at once, but needs shared
/// memory between processes on one host; on a network filesystem (EFS, NFS) SQLite needs the rollback
/// journal instead (`SPLAT_SQLITE_JOURNAL=delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Journal {
    #[default]
    Wal,
    Delete,
}

impl Journal {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "wal" => Some(Self::Wal),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }

    /// The journal a database was left in; `None` for a new, empty one. Asked of SQLite over a connection
    /// of its own, never by reading the file: closing any other descriptor of the file would drop every
    /// POSIX lock this process holds on it (the other connections' locks), and another process could then
    /// checkpoint and delete the WAL under them.
    async fn of_database(db: &libsql::Database) -> Result<Option<Self>> {
        let probe = db.connect()?;
        if first_integer(&probe, "PRAGMA page_count").await? == Some(0) {
            return Ok(None);
        }
        let mut rows = probe.query("PRAGMA journal_mode", ()).await?;
        let mode = match rows.next().await? {
            Some(row) => row.get::<String>(0)?,
            None => return Ok(None),
        };
        Ok(Self::parse(&mode))
    }

    fn pragma(self) -> &'static str {
        match self {
            Self::Wal => "PRAGMA journal_mode=WAL",
            Self::Delete => "PRAGMA journal_mode=DELETE",
        }
    }
}

/// Below this size a long migration takes seconds even on EFS (migration 36 rebuilt two indexes of a
/// 556 MB database in 2 s on local disk), so the processor applies it itself.
pub const SMALL_DATABASE_BYTES: i64 = 64 << 20;

/// How much of the pending schema a writer applies when it opens the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrate {
    /// Every pending migration: `splat serve` and the CLI.
    All,
    /// Every pending migration, a migration in parts stopping between two parts once the deadline has
    /// passed (the next run goes on): the migrate job (the retention function, with 15 minutes).
    AllBy(Deadline),
    /// Those before the first [long](migrations::Migration::long) one, unless the database is small
    /// ([`SMALL_DATABASE_BYTES`]): the processor function, whose 60 s would not see a long one through on
    /// a large database. It holds its batches until the migrate job has applied the rest (see
    /// `crate::lambda::MigrationGate`).
    UntilLong,
}

impl Store {
    /// Opens (creating if needed) the database file and brings its schema up to date: the writer's handle.
    pub async fn open(path: &Path) -> Result<Self> {
        Self::open_writer(path, Some(Journal::Wal), Migrate::All).await
    }

    /// The writer's handle with the given journal mode. `None`: an existing database keeps the journal it
    /// has, so a CLI run against the database on EFS never switches it to WAL; a new one gets WAL.
    pub async fn open_writer(
        path: &Path,
        journal: Option<Journal>,
        migrate: Migrate,
    ) -> Result<Self> {
        crate::private_files::create_database_file(path)
            .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", path.display())))?;
        let db = libsql::Builder::new_local(path).build().await?;
        let journal = match journal {
            Some(journal) => journal,
            None => Journal::of_database(&db).await?.unwrap_or_default(),
        };
        let store = Self::connect(db, Some(journal)).await?;
        store.migrate(migrate).await?;
        Ok(store)
    }

    /// A read-only handle that never migrates (ingest: it only looks up keys, and must not take the
    /// writer's lock). The writer creates and migrates the file first.
    pub async fn open_reader(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::Invalid(format!(
                "database {} does not exist yet: the processor or `splat serve` creates it",
                path.display()
            )));
        }
        let db = libsql::Builder::new_local(path)
            .flags(libsql::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .build()
            .await?;
        Self::connect(db, None).await
    }

    /// A read-write handle on a database that must already exist, which never creates, migrates or changes
    /// its journal: for the Lambda functions other than the processor, which is the one that migrates.
    /// Follow it with [`Store::ensure_migrated`].
    pub async fn open_existing(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(StoreError::NotReady(format!(
                "{} does not exist yet: the processor creates it",
                path.display()
            )));
        }
        Self::connect(libsql::Builder::new_local(path).build().await?, None).await
    }

    /// The database on a libSQL server. A writer (`migrate` given) brings the schema up to date; ingest's
    /// reader does not. Nothing is sent until the first statement, so a wrong token shows there.
    pub async fn open_remote(remote: &RemoteDatabase, migrate: Option<Migrate>) -> Result<Self> {
        let db = remote.database().await?;
        let conn = db.connect()?;
        let store = Self {
            _db: std::sync::Arc::new(db),
            conn,
            remote: true,
        };
        // No PRAGMA here: each autocommit statement is its own Hrana stream (a server-side connection), so
        // a connection setting would not outlive it. The journal, synchronous and auto-vacuum are the
        // server's; foreign keys are on in sqld's connections by default (see the test in remote.rs).
        if let Some(migrate) = migrate {
            store.migrate(migrate).await?;
        }
        Ok(store)
    }

    /// Whether the database is on a libSQL server rather than a local file.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// A private in-memory database, for tests.
    pub async fn open_in_memory() -> Result<Self> {
        let store = Self::connect(
            libsql::Builder::new_local(":memory:").build().await?,
            Some(Journal::Wal),
        )
        .await?;
        store.migrate(Migrate::All).await?;
        Ok(store)
    }

    /// A connection with the house settings; `journal` is set only by writers (a reader cannot change it).
    async fn connect(db: libsql::Database, journal: Option<Journal>) -> Result<Self> {
        let conn = db.connect()?;
        conn.busy_timeout(Duration::from_secs(30))?;
        if let Some(journal) = journal {
            // Takes effect only in a new, empty database (before its first table): retention can then
            // hand freed pages back to the file system. Older files reuse freed pages instead.
            conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL;")
                .await?;
            let mut rows = conn.query(journal.pragma(), ()).await?;
            while rows.next().await?.is_some() {}
            conn.execute_batch("PRAGMA synchronous=NORMAL;").await?;
        }
        conn.execute_batch("PRAGMA foreign_keys=ON;").await?;
        Ok(Self {
            _db: std::sync::Arc::new(db),
            conn,
            remote: false,
        })
    }

    /// Every migration this code knows that the database lacks, whatever its number: migrations written
    /// side by side may land in any order, so a database at version 12 may still lack 10.
    async fn missing_migrations(&self) -> Result<Vec<&'static migrations::Migration>> {
        self.missing_of(migrations::MIGRATIONS).await
    }

    async fn missing_of(
        &self,
        known: &'static [migrations::Migration],
    ) -> Result<Vec<&'static migrations::Migration>> {
        let mut applied = HashSet::new();
        let mut rows = self
            .conn()
            .query("SELECT version FROM schema_migrations", ())
            .await?;
        while let Some(row) = rows.next().await? {
            applied.insert(row.get::<i64>(0)?);
        }
        Ok(known
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .collect())
    }

    /// How many migrations this code knows the database still lacks (those a writer opened with
    /// [`Migrate::UntilLong`] left to the migrate job).
    pub async fn pending_migrations(&self) -> Result<usize> {
        Ok(self.missing_migrations().await?.len())
    }

    /// [`StoreError::NotReady`] unless every migration this code knows has been applied: what a handle that
    /// may not migrate checks before serving (during a deploy, new code can start before the processor has
    /// migrated).
    pub async fn ensure_migrated(&self) -> Result<()> {
        let missing = match self.missing_migrations().await {
            Ok(missing) => missing,
            // No schema_migrations table: a database nothing has migrated yet.
            Err(StoreError::Db(_)) => migrations::MIGRATIONS.iter().collect(),
            Err(e) => return Err(e),
        };
        match missing.first() {
            None => Ok(()),
            Some(migrations::Migration { version: first, .. }) => Err(StoreError::NotReady(format!(
                "{} migration(s) from version {first} not applied yet: the processor applies them when it starts",
                missing.len()
            ))),
        }
    }

    async fn migrate(&self, scope: Migrate) -> Result<()> {
        let long_ones = self.may_run_long_migrations(scope).await?;
        let deadline = match scope {
            Migrate::AllBy(deadline) => deadline,
            Migrate::All | Migrate::UntilLong => Deadline::NONE,
        };
        self.apply_migrations(
            migrations::MIGRATIONS,
            long_ones,
            deadline,
            migrations::PART_ROWS,
        )
        .await
    }

    /// Whether an open with `scope` applies long migrations: always with [`Migrate::All`] and
    /// [`Migrate::AllBy`]; with
    /// [`Migrate::UntilLong`] only on a database under [`SMALL_DATABASE_BYTES`], where they take no
    /// longer than short ones (a new stack's empty database among them).
    async fn may_run_long_migrations(&self, scope: Migrate) -> Result<bool> {
        if scope != Migrate::UntilLong {
            return Ok(true);
        }
        let bytes: i64 = self
            .scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                (),
            )
            .await?;
        Ok(bytes < SMALL_DATABASE_BYTES)
    }

    /// Applies the migrations of `known` the database lacks, in order, each in its own transaction (a
    /// migration in parts in one per part of `part_rows` rows); without `long_ones` it stops before the
    /// first long one (the ones after it may need it), and once `deadline` has passed, after the part in
    /// hand.
    async fn apply_migrations(
        &self,
        known: &'static [migrations::Migration],
        long_ones: bool,
        deadline: Deadline,
        part_rows: i64,
    ) -> Result<()> {
        self.conn().execute(migrations::APPLIED_TABLE, ()).await?;
        for migration in self.missing_of(known).await? {
            if migration.long && !long_ones {
                tracing::warn!(
                    version = migration.version,
                    name = migration.name,
                    "a long migration is pending: left, with those after it, to the migrate job"
                );
                break;
            }
            while !self.apply_part(migration, part_rows).await? {
                if deadline.passed() {
                    tracing::warn!(
                        version = migration.version,
                        name = migration.name,
                        "a migration in parts goes on at the next run"
                    );
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The next part of `migration` in a transaction of its own (the whole of it, unless it is in
    /// parts), recording its version once it is done; whether it is.
    async fn apply_part(&self, migration: &migrations::Migration, rows: i64) -> Result<bool> {
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        // Another process may have migrated while we waited for the lock.
        let mut applied = tx
            .query(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [migration.version],
            )
            .await?;
        if applied.next().await?.is_some() {
            return Ok(true);
        }
        drop(applied);
        let done = migration.apply_part(&tx, rows).await?;
        if done {
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                (migration.version, now_us()),
            )
            .await?;
        }
        tx.commit().await?;
        if done {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied database migration"
            );
        }
        Ok(done)
    }

    /// Tells the lake catalog where its files live (see [`crate::lake::catalog::set_data_path`]).
    pub async fn set_lake_data_path(&self, data_path: &str) -> Result<()> {
        Ok(crate::lake::catalog::set_data_path(&self.conn(), data_path).await?)
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64> {
        self.scalar(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            (),
        )
        .await
    }

    /// Of these messages, the ids of those whose rows are already committed.
    pub async fn processed(&self, messages: &[LedgerKey]) -> Result<HashSet<String>> {
        // One statement for the whole batch (the keys as a JSON array): on a libSQL server each statement
        // is a network round trip. Entries from before the ledger had times are under 0.
        let keys = LedgerKey::json(messages)?;
        let mut rows = self
            .conn()
            .query(
                "SELECT message_id FROM processed_messages
                 WHERE (sent_ms, message_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1))
                    OR (sent_ms = 0 AND message_id IN (SELECT value ->> 1 FROM json_each(?1)))",
                [keys],
            )
            .await?;
        let mut done = HashSet::new();
        while let Some(row) = rows.next().await? {
            done.insert(row.get::<String>(0)?);
        }
        Ok(done)
    }

    /// The ids of every project, so the processor can drop messages for deleted ones.
    pub async fn project_ids(&self) -> Result<HashSet<i64>> {
        let mut rows = self.conn().query("SELECT id FROM projects", ()).await?;
        let mut ids = HashSet::new();
        while let Some(row) = rows.next().await? {
            ids.insert(row.get(0)?);
        }
        Ok(ids)
    }

    /// Row counts per table, for tests, health and the CLI.
    pub async fn count(&self, table: &str) -> Result<i64> {
        let table = match table {
            "projects"
            | "project_keys"
            | "events"
            | "transactions"
            | "spans"
            | "processed_messages"
            | "issues"
            | "releases"
            | "transaction_rollups" => table,
            other => return Err(StoreError::Invalid(format!("no table {other:?}"))),
        };
        self.scalar(&format!("SELECT count(*) FROM {table}"), ())
            .await
    }

    /// Accepted items of `item_type` for a project, over all hours.
    pub async fn item_count(&self, project: ProjectId, item_type: &str) -> Result<i64> {
        self.scalar(
            "SELECT coalesce(sum(count), 0) FROM item_counts WHERE project_id = ?1 AND item_type = ?2",
            (project.value(), item_type),
        )
        .await
    }

    async fn scalar(&self, sql: &str, params: impl libsql::params::IntoParams) -> Result<i64> {
        let mut rows = self.conn().query(sql, params).await?;
        let row = rows
            .next()
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("no row from {sql}")))?;
        Ok(row.get::<i64>(0)?)
    }

    /// The connection to run statements on. On a server, a new one per call: libsql keeps one Hrana stream
    /// per connection, which concurrent callers (UI requests, health) would share, each advancing its
    /// baton under the others, and which the server expires after a few idle seconds. Transactions open a
    /// stream of their own either way; a new connection costs no request until it is used.
    fn conn(&self) -> libsql::Connection {
        if self.remote {
            if let Ok(conn) = self._db.connect() {
                return conn;
            }
        }
        self.conn.clone()
    }
}

/// The lake's catalog tables live in this database; the lake runs its statements on them and no others.
impl crate::lake::CatalogDb for Store {
    fn catalog_connection(&self) -> libsql::Connection {
        self.conn()
    }
}

pub(crate) fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Checks a key exists and is usable; re-exported for callers that only hold a string.
pub fn parse_key(s: &str) -> Result<PublicKey> {
    s.parse()
        .map_err(|e: &str| StoreError::Invalid(e.to_owned()))
}

async fn first_integer(conn: &libsql::Connection, sql: &str) -> Result<Option<i64>> {
    let mut rows = conn.query(sql, ()).await?;
    Ok(match rows.next().await? {
        Some(row) => Some(row.get::<i64>(0)?),
        None => None,
    })
}

/// For the tests that check a statement keeps to its indexes: its plan, a line per step.
#[cfg(test)]
impl Store {
    pub(crate) async fn query_plan(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
    ) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut rows = self.conn().query(&explain, params).await.unwrap();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            plan.push(row.get::<String>(3).unwrap());
        }
        plan
    }

    /// A statement run as it is, for a test to change what the store holds behind its API's back.
    pub(crate) async fn execute_raw(&self, sql: &str) {
        self.conn().execute(sql, ()).await.unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three migrations the database lacks, the second long: the processor's open applies the first and
    /// stops there (the third may need the second); the migrate job's applies the rest.
    #[tokio::test]
    async fn a_long_migration_and_those_after_it_wait_for_a_writer_that_may_run_them() {
        const NO_DEADLINE: Deadline = Deadline::NONE;
        const AROUND_A_LONG_ONE: &[migrations::Migration] = &[
            migrations::Migration {
                version: 9001,
                name: "before",
                sql: "CREATE TABLE before_long (x);",
                step: None,
                long: false,
                part: None,
            },
            migrations::Migration {
                version: 9002,
                name: "long",
                sql: "CREATE TABLE long_one (x);",
                step: None,
                long: true,
                part: None,
            },
            migrations::Migration {
                version: 9003,
                name: "after",
                sql: "CREATE TABLE after_long (x);",
                step: None,
                long: false,
                part: None,
            },
        ];
        let store = Store::open_in_memory().await.unwrap();
        let pending = |store: &Store| {
            let store = store.clone();
            async move {
                let missing = store.missing_of(AROUND_A_LONG_ONE).await.unwrap();
                missing.iter().map(|m| m.version).collect::<Vec<_>>()
            }
        };
        store
            .apply_migrations(AROUND_A_LONG_ONE, false, NO_DEADLINE, 1)
            .await
            .unwrap();
        assert_eq!(pending(&store).await, [9002, 9003]);
        store
            .apply_migrations(AROUND_A_LONG_ONE, false, NO_DEADLINE, 1)
            .await
            .unwrap();
        assert_eq!(
            pending(&store).await,
            [9002, 9003],
            "the processor never runs it"
        );
        store
            .apply_migrations(AROUND_A_LONG_ONE, true, NO_DEADLINE, 1)
            .await
            .unwrap();
        assert!(pending(&store).await.is_empty());
        // The processor leaves them to the job only on a database large enough for them to take long.
        assert!(store
            .may_run_long_migrations(Migrate::UntilLong)
            .await
            .unwrap());
        store
            .execute_raw(
                "CREATE TABLE filler AS WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64)
                 SELECT zeroblob(1 << 20) AS b FROM n",
            )
            .await;
        assert!(!store
            .may_run_long_migrations(Migrate::UntilLong)
            .await
            .unwrap());
        assert!(store.may_run_long_migrations(Migrate::All).await.unwrap());
        for table in ["before_long", "long_one", "after_long"] {
            store
                .conn()
                .execute(&format!("INSERT INTO {table} VALUES (1)"), ())
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn readers_never_write_and_journal_modes_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("splat.db");
        assert!(
            Store::open_reader(&path).await.is_err(),
            "a reader does not create the file"
        );
        let writer = Store::open_writer(&path, Some(Journal::Delete), Migrate::All)
            .await
            .unwrap();
        let mut rows = writer.conn.query("PRAGMA journal_mode", ()).await.unwrap();
        assert_eq!(
            rows.next()
                .await
                .unwrap()
                .unwrap()
                .get::<String>(0)
                .unwrap(),
            "delete"
        );
        drop(rows);
        writer.create_project("p").await.unwrap();
        let reader = Store::open_reader(&path).await.unwrap();
        assert_eq!(reader.list_projects().await.unwrap().len(), 1);
        assert!(reader.create_project("q").await.is_err(), "read-only");
        assert_eq!(Journal::parse("WAL"), Some(Journal::Wal));
        assert_eq!(Journal::parse("memory"), None);
    }

    /// A writer told nothing keeps the database's journal: `splat project create` run against the database
    /// on EFS must not switch it to WAL. And asking must not cost the process its locks: a second writer in
    /// the same process (`splat serve` opens several) leaves the first one's WAL in place while another
    /// process opens and closes the database (`splat key add` beside `splat serve`).
    #[tokio::test]
    async fn a_writer_told_nothing_keeps_the_journal_the_database_has() {
        let dir = tempfile::tempdir().unwrap();
        let (rollback, wal) = (dir.path().join("a.db"), dir.path().join("b.db"));
        drop(
            Store::open_writer(&rollback, Some(Journal::Delete), Migrate::All)
                .await
                .unwrap(),
        );
        let kept = Store::open_writer(&rollback, None, Migrate::All)
            .await
            .unwrap();
        assert_eq!(journal_mode(&kept).await, "delete");
        let first = Store::open_writer(&wal, None, Migrate::All).await.unwrap();
        assert_eq!(journal_mode(&first).await, "wal", "a new database gets WAL");
        first.create_project("p").await.unwrap();
        let second = Store::open_writer(&wal, None, Migrate::All).await.unwrap();
        assert_eq!(journal_mode(&second).await, "wal");
        // Another process opens and closes the database; it must find this process's locks and leave the
        // WAL alone.
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::open_and_close_in_another_process",
                "--ignored",
            ])
            .env("SPLAT_TEST_DATABASE_FILE", &wal)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            dir.path().join("b.db-wal").exists(),
            "this process's WAL stays"
        );
        first.create_project("q").await.unwrap();
        assert_eq!(second.list_projects().await.unwrap().len(), 2);
    }

    /// The other process of the test above (run only by it).
    #[tokio::test]
    #[ignore = "run by a_writer_told_nothing_keeps_the_journal_the_database_has"]
    async fn open_and_close_in_another_process() {
        let Some(path) = std::env::var_os("SPLAT_TEST_DATABASE_FILE") else {
            return;
        };
        let other = Store::open_writer(Path::new(&path), None, Migrate::All)
            .await
            .unwrap();
        assert_eq!(other.list_projects().await.unwrap().len(), 1);
    }

    async fn journal_mode(store: &Store) -> String {
        let mut rows = store.conn.query("PRAGMA journal_mode", ()).await.unwrap();
        rows.next()
            .await
            .unwrap()
            .unwrap()
            .get::<String>(0)
            .unwrap()
    }

    /// The ledger finds a message by its time and id, and by its id alone among the entries from before it
    /// had times (the migration put them under 0).
    #[tokio::test]
    async fn the_ledger_is_keyed_by_time_and_finds_older_entries_by_id() {
        let store = Store::open_in_memory().await.unwrap();
        let key = |sent_ms: i64, id: &str| LedgerKey {
            sent_ms,
            message_id: id.into(),
        };
        store
            .conn()
            .execute(
                "INSERT INTO processed_messages (sent_ms, message_id, processed_at) VALUES (0, 'legacy', 1)",
                (),
            )
            .await
            .unwrap();
        let committed: Vec<LedgerKey> = (0..20)
            .map(|i| key(1_700_000_000_000 + i, &format!("message-{i}")))
            .collect();
        let batch = WriteBatch {
            message_ids: committed.clone(),
            ..WriteBatch::default()
        };
        crate::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
        let asked = [
            committed[7].clone(),
            key(1_800_000_000_000, "legacy"),
            key(committed[9].sent_ms + 1, &committed[9].message_id),
            key(1, "never"),
        ];
        let found = store.processed(&asked).await.unwrap();
        let expected: HashSet<String> = [committed[7].message_id.clone(), "legacy".into()].into();
        assert_eq!(found, expected);
    }

    /// Only the processor migrates in Lambda; the other functions open what exists and wait until it is
    /// migrated.
    #[tokio::test]
    async fn handles_that_may_not_migrate_wait_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("splat.db");
        let missing = Store::open_existing(&path).await.err().unwrap();
        assert!(matches!(missing, StoreError::NotReady(_)), "{missing}");
        assert!(!path.exists(), "never created");
        // A file nothing has migrated, then one a migration behind.
        crate::private_files::create_database_file(&path).unwrap();
        let early = Store::open_existing(&path).await.unwrap();
        assert!(matches!(
            early.ensure_migrated().await,
            Err(StoreError::NotReady(_))
        ));
        let writer = Store::open_writer(&path, Some(Journal::Delete), Migrate::All)
            .await
            .unwrap();
        early.ensure_migrated().await.unwrap();
        let last = migrations::MIGRATIONS.last().unwrap().version;
        writer
            .conn()
            .execute("DELETE FROM schema_migrations WHERE version = ?1", [last])
            .await
            .unwrap();
        let behind = early.ensure_migrated().await.unwrap_err().to_string();
        assert!(behind.contains(&format!("from version {last}")), "{behind}");
    }
}
