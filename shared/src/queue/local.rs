//! The local queue: a table in its own SQLite file (`<data-dir>/queue.db`).
//!
//! Its own file, not a table in `splat.db`, because the processor holds `splat.db`'s write lock for a whole
//! batch and ingest must not wait behind it. Sends from concurrent requests are committed together (group
//! commit): one fsync acknowledges many envelopes, which is what lets a durable local queue keep up with
//! the HTTP front. Visibility timeouts, receive counts and a dead-letter table mirror SQS.
//!
//! When the disk is full (or the file reaches its cap, `SPLAT_QUEUE_MAX_BYTES`, as Relay caps its spool)
//! a send fails with [`QueueError::Full`] and ingest answers 503; space the processor frees by deleting
//! messages is reused, so sends succeed again without a restart. SQLite never hands freed space back to
//! the disk, so once a backlog has drained the file is rewritten small (`LocalQueue::shrink_when_drained`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Notify};

use super::dead_letters::{DeadLetter, HEAD_BYTES};
use super::{Delivery, Queue, QueueError, EMPTY_POLL_BACKOFF};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          BLOB    NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at, id);
-- Finds the few messages out of receives among a large backlog: without it every receive scanned the
-- whole backlog (267 ms per receive at 180k waiting, inside the write transaction ingest waits on).
CREATE INDEX IF NOT EXISTS messages_receives ON messages (receive_count, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id            INTEGER PRIMARY KEY,
    body          BLOB    NOT NULL,
    enqueued_at   INTEGER NOT NULL,
    receive_count INTEGER NOT NULL,
    died_at       INTEGER NOT NULL
);
";

/// Columns added after the first release, for files created before them: why a message's last delivery
/// failed (`messages.last_error`), kept as the dead letter's `reason`.
const ADDED_COLUMNS: [(&str, &str); 2] = [("messages", "last_error"), ("dead_letters", "reason")];

/// Sends waiting for the next group commit are capped so one commit never holds too much memory.
const MAX_GROUP: usize = 512;

/// Message bytes the writer commits before it asks the checkpointer to copy the log into the file: about
/// SQLite's own automatic checkpoint (1,000 pages of 4 KiB), which ran inside the commit that crossed it.
const CHECKPOINT_EVERY_BYTES: usize = 4 << 20;

type Pending = (Vec<u8>, oneshot::Sender<Result<(), QueueError>>);

/// How often an empty receive looks whether the file should shrink.
const SHRINK_CHECK_EVERY_MS: i64 = 60_000;
/// The free space that makes a drained file worth rewriting: below it, the disk barely notices.
const SHRINK_FREE_BYTES: u64 = 32 << 20;
/// The most a rewrite copies (what the file still holds): a send waits for the rewrite, so it must take
/// milliseconds, never the busy timeout.
const SHRINK_LIVE_BYTES: u64 = 4 << 20;

#[derive(Clone)]
pub struct LocalQueue {
    /// The processor's side: receives, deletes, releases and redrives, one at a time (the runner's loop).
    conn: libsql::Connection,
    /// Counts and listings, on a connection of their own. A read still open on the processor's connection
    /// pins an old snapshot, and the processor's next write there, once ingest has committed since, fails
    /// at once with `database is locked` (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out): the
    /// health check reads the depth every second.
    reader: libsql::Connection,
    sender: mpsc::Sender<Pending>,
    arrived: Arc<Notify>,
    visibility: Duration,
    max_receives: u32,
    /// When an empty receive last looked whether the file should shrink (ms since the epoch).
    shrink_checked_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl LocalQueue {
    /// Opens (creating if needed) the queue file. `visibility` is how long a received message stays hidden;
    /// after `max_receives` deliveries without a delete it moves to `dead_letters`.
    pub async fn open(
        path: &Path,
        visibility: Duration,
        max_receives: u32,
    ) -> Result<Self, QueueError> {
        Self::open_capped(path, visibility, max_receives, None).await
    }

    /// As [`LocalQueue::open`], and sends fail as [`QueueError::Full`] once the file holds `max_bytes`.
    pub async fn open_capped(
        path: &Path,
        visibility: Duration,
        max_receives: u32,
        max_bytes: Option<u64>,
    ) -> Result<Self, QueueError> {
        crate::private_files::create_database_file(path).map_err(QueueError::new)?;
        let db = libsql::Builder::new_local(path)
            .build()
            .await
            .map_err(QueueError::new)?;
        let conn = open_conn(&db).await?;
        conn.execute_batch(SCHEMA).await.map_err(QueueError::new)?;
        add_columns(&conn).await?;
        let reader = open_conn(&db).await?;
        let writer = open_conn(&db).await?;
        if let Some(max_bytes) = max_bytes {
            // Only the sending connection is capped: the processor's side must always be able to move a
            // message to the dead letters, or a full queue could never drain.
            let page_size = count(&writer, "PRAGMA page_size").await?.max(512);
            let pages = (max_bytes / page_size).max(2);
            count(&writer, &format!("PRAGMA max_page_count = {pages}")).await?;
        }
        // Checkpoints (copying the log into the file, with its own fsync) run on a thread of their own: inside
        // a commit they held up every send waiting for the next one (a quarter of the writer's time at 20,000
        // envelopes/s). A passive checkpoint lets the writer go on committing while it copies.
        count(&writer, "PRAGMA wal_autocheckpoint = 0").await?;
        let checkpointer = Checkpointer::start(open_conn(&db).await?)?;
        let arrived = Arc::new(Notify::new());
        let (sender, receiver) = mpsc::channel(MAX_GROUP * 4);
        // The writer gets a thread of its own: SQLite's commit and fsync block, and must not stall the
        // runtime that serves HTTP while the disk works.
        let notify = arrived.clone();
        let commits = group_commit(db, writer, receiver, notify, checkpointer);
        spawn_thread("splat-queue-writer", commits)?;
        Ok(Self {
            conn,
            reader,
            sender,
            arrived,
            visibility,
            max_receives,
            shrink_checked_ms: Arc::default(),
        })
    }

    /// Rewrites the file small once a backlog has drained: at most once a minute, when an empty receive
    /// finds at least [`SHRINK_FREE_BYTES`] free and at most [`SHRINK_LIVE_BYTES`] still held (messages
    /// in flight and dead letters, which the rewrite keeps). Returns the bytes handed back.
    async fn shrink_when_drained(&self) -> Result<u64, QueueError> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        if now - self.shrink_checked_ms.load(Relaxed) < SHRINK_CHECK_EVERY_MS {
            return Ok(0);
        }
        self.shrink_checked_ms.store(now, Relaxed);
        let bytes =
            |pages| format!("SELECT {pages} * page_size FROM pragma_{pages}(), pragma_page_size()");
        let total = count(&self.conn, &bytes("page_count")).await?;
        let free = count(&self.conn, &bytes("freelist_count")).await?;
        if free < SHRINK_FREE_BYTES || total.saturating_sub(free) > SHRINK_LIVE_BYTES {
            return Ok(0);
        }
        self.conn
            .execute("VACUUM", ())
            .await
            .map_err(QueueError::new)?;
        // In WAL mode the file takes its new size when the log is copied back into it.
        let mut rows = self
            .conn
            .query("PRAGMA wal_checkpoint(TRUNCATE)", ())
            .await
            .map_err(QueueError::new)?;
        while rows.next().await.map_err(QueueError::new)?.is_some() {}
        tracing::info!(
            freed_bytes = free,
            "queue file rewritten small after its backlog drained"
        );
        Ok(free)
    }

    /// Messages moved to the dead-letter table.
    pub async fn dead_letter_count(&self) -> Result<u64, QueueError> {
        count(&self.reader, "SELECT count(*) FROM dead_letters").await
    }

    /// The dead letters, oldest death first, each with the head of its body (enough for its header).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.read_dead_letters(
            "SELECT id, enqueued_at, died_at, receive_count, reason, length(body), substr(body, 1, ?1)
             FROM dead_letters ORDER BY died_at, id",
            [HEAD_BYTES],
        )
        .await
    }

    /// One dead letter with its whole body.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, QueueError> {
        Ok(self
            .read_dead_letters(
                "SELECT id, enqueued_at, died_at, receive_count, reason, length(body), body
                 FROM dead_letters WHERE id = ?1",
                [id],
            )
            .await?
            .pop())
    }

    async fn read_dead_letters(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        let mut rows = self
            .reader
            .query(sql, params)
            .await
            .map_err(QueueError::new)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.map_err(QueueError::new)? {
            let get = |i| row.get_value(i).map_err(QueueError::new);
            let int = |i| match get(i)? {
                libsql::Value::Integer(n) => Ok(n),
                other => Err(QueueError::Failed(format!("unexpected {other:?}"))),
            };
            out.push(DeadLetter {
                id: int(0)?,
                enqueued_at_ms: int(1)?,
                died_at_ms: int(2)?,
                receive_count: int(3)? as u32,
                reason: match get(4)? {
                    libsql::Value::Text(t) => Some(t),
                    _ => None,
                },
                size: int(5)? as u64,
                body: match get(6)? {
                    libsql::Value::Blob(b) => b,
                    libsql::Value::Text(t) => t.into_bytes(),
                    _ => Vec::new(),
                },
            });
        }
        Ok(out)
    }

    /// Moves a dead letter (or, with `None`, every one) back to the queue, visible now, with its receive
    /// count reset and its message id kept: the processor's ledger still recognises it, so a message
    /// whose rows were committed after all is not stored twice. Returns how many moved.
    pub async fn redrive(&self, id: Option<i64>) -> Result<u64, QueueError> {
        let tx = self.conn.transaction().await.map_err(QueueError::new)?;
        let moved = tx
            .execute(
                "INSERT INTO messages (id, body, enqueued_at, visible_at, receive_count)
                 SELECT id, body, enqueued_at, ?2, 0 FROM dead_letters WHERE ?1 IS NULL OR id = ?1",
                (id, now_ms()),
            )
            .await
            .map_err(QueueError::new)?;
        tx.execute("DELETE FROM dead_letters WHERE ?1 IS NULL OR id = ?1", [id])
            .await
            .map_err(QueueError::new)?;
        tx.commit().await.map_err(QueueError::new)?;
        self.arrived.notify_waiters();
        Ok(moved)
    }

    async fn receive_now(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let now = now_ms();
        let tx = self.conn.transaction().await.map_err(QueueError::new)?;
        tx.execute(
            "INSERT INTO dead_letters (id, body, enqueued_at, receive_count, died_at, reason)
             SELECT id, body, enqueued_at, receive_count, ?1, last_error FROM messages INDEXED BY messages_receives
             WHERE visible_at <= ?1 AND receive_count >= ?2",
            (now, self.max_receives),
        )
        .await
        .map_err(QueueError::new)?;
        tx.execute(
            "DELETE FROM messages INDEXED BY messages_receives WHERE visible_at <= ?1 AND receive_count >= ?2",
            (now, self.max_receives),
        )
        .await
        .map_err(QueueError::new)?;
        let mut rows = tx
            .query(
                "UPDATE messages SET visible_at = ?1, receive_count = receive_count + 1
                 WHERE id IN (SELECT id FROM messages WHERE visible_at <= ?2 ORDER BY id LIMIT ?3)
                 RETURNING id, receive_count, body",
                (now + self.visibility.as_millis() as i64, now, max as i64),
            )
            .await
            .map_err(QueueError::new)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await.map_err(QueueError::new)? {
            let id: i64 = row.get(0).map_err(QueueError::new)?;
            let receive_count: u32 = row.get(1).map_err(QueueError::new)?;
            let body: Vec<u8> = row.get(2).map_err(QueueError::new)?;
            out.push(Delivery {
                message_id: id.to_string(),
                receipt: format!("{id}:{receive_count}"),
                receive_count,
                body,
                sent_at_ms: None,
            });
        }
        drop(rows);
        tx.commit().await.map_err(QueueError::new)?;
        out.sort_by_key(|d| d.message_id.parse::<i64>().unwrap_or_default());
        Ok(out)
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn send(&self, body: Vec<u8>) -> Result<(), QueueError> {
        let (done, wait) = oneshot::channel();
        self.sender
            .send((body, done))
            .await
            .map_err(|_| QueueError::Failed("local queue writer stopped".into()))?;
        wait.await
            .map_err(|_| QueueError::Failed("local queue writer stopped".into()))?
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            let batch = self.receive_now(max).await?;
            if batch.is_empty() {
                if let Err(e) = self.shrink_when_drained().await {
                    tracing::warn!(error = %e, "could not shrink the queue file; it keeps its size");
                }
            }
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(batch);
            }
            // Wake on a new send, or poll again soon: in-flight messages become visible again by the clock.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + EMPTY_POLL_BACKOFF * 20),
                notified,
            )
            .await;
        }
    }

    async fn delete(&self, receipts: &[String]) -> Result<(), QueueError> {
        let tx = self.conn.transaction().await.map_err(QueueError::new)?;
        {
            let stmt = tx
                .prepare("DELETE FROM messages WHERE id = ?1 AND receive_count = ?2")
                .await
                .map_err(QueueError::new)?;
            for receipt in receipts {
                let (id, count) = parse_receipt(receipt)?;
                // A stale receipt (the message was delivered again since) deletes nothing, as in SQS.
                stmt.execute((id, count)).await.map_err(QueueError::new)?;
                stmt.reset();
            }
        }
        tx.commit().await.map_err(QueueError::new)
    }

    async fn release(&self, receipts: &[String]) -> Result<(), QueueError> {
        let tx = self.conn.transaction().await.map_err(QueueError::new)?;
        {
            let stmt = tx
                .prepare(
                    "UPDATE messages SET visible_at = ?3, receive_count = receive_count - 1
                     WHERE id = ?1 AND receive_count = ?2",
                )
                .await
                .map_err(QueueError::new)?;
            for receipt in receipts {
                let (id, count) = parse_receipt(receipt)?;
                stmt.execute((id, count, now_ms()))
                    .await
                    .map_err(QueueError::new)?;
                stmt.reset();
            }
        }
        tx.commit().await.map_err(QueueError::new)
    }

    async fn note_failure(&self, receipt: &str, reason: &str) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(receipt)?;
        self.conn
            .execute(
                "UPDATE messages SET last_error = ?3 WHERE id = ?1 AND receive_count = ?2",
                (id, count, crate::model::clip(reason, 2000)),
            )
            .await
            .map_err(QueueError::new)?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64, QueueError> {
        count(&self.reader, "SELECT count(*) FROM messages").await
    }

    fn max_message_bytes(&self) -> usize {
        usize::MAX
    }
}

/// `<id>:<receive count>`, as `receive_now` makes them.
fn parse_receipt(receipt: &str) -> Result<(i64, i64), QueueError> {
    let bad = || QueueError::Failed(format!("bad receipt {receipt:?}"));
    let (id, count) = receipt.split_once(':').ok_or_else(bad)?;
    Ok((
        id.parse().map_err(|_| bad())?,
        count.parse().map_err(|_| bad())?,
    ))
}

async fn open_conn(db: &libsql::Database) -> Result<libsql::Connection, QueueError> {
    let conn = db.connect().map_err(QueueError::new)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(QueueError::new)?;
    // WAL lets the processor read while ingest appends; FULL sync because a 200 promises the data survives.
    let mut rows = conn
        .query("PRAGMA journal_mode=WAL", ())
        .await
        .map_err(QueueError::new)?;
    while rows.next().await.map_err(QueueError::new)?.is_some() {}
    conn.execute("PRAGMA synchronous=FULL", ())
        .await
        .map_err(QueueError::new)?;
    Ok(conn)
}

/// Adds the [`ADDED_COLUMNS`] a file made by an older Splat lacks.
async fn add_columns(conn: &libsql::Connection) -> Result<(), QueueError> {
    for (table, column) in ADDED_COLUMNS {
        let present = count(
            conn,
            &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = '{column}'"),
        )
        .await?;
        if present == 0 {
            conn.execute(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"), ())
                .await
                .map_err(QueueError::new)?;
        }
    }
    Ok(())
}

async fn count(conn: &libsql::Connection, sql: &str) -> Result<u64, QueueError> {
    let mut rows = conn.query(sql, ()).await.map_err(QueueError::new)?;
    let row = rows
        .next()
        .await
        .map_err(QueueError::new)?
        .ok_or_else(|| QueueError::Failed("count returned nothing".into()))?;
    row.get::<i64>(0).map(|n| n as u64).map_err(QueueError::new)
}

/// Runs `task` to its end on a thread of its own, with a runtime of its own.
fn spawn_thread(
    name: &str,
    task: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime");
            rt.block_on(task);
        })
        .map(drop)
        .map_err(QueueError::new)
}

/// The writer's side of the checkpointing thread.
///
/// The log can only start over from its beginning when a transaction starts with every frame in it copied, which
/// a checkpoint running beside a busy writer never sees: the writer appended more meanwhile. So once the thread
/// has copied the bulk, the writer copies the little it appended since, between two commits, and the log
/// starts over.
struct Checkpointer {
    due: mpsc::Sender<()>,
    caught_up: Arc<std::sync::atomic::AtomicBool>,
    since: usize,
}

impl Checkpointer {
    fn start(conn: libsql::Connection) -> Result<Self, QueueError> {
        let (due, mut requests) = mpsc::channel::<()>(1);
        let caught_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = caught_up.clone();
        // Ends with the writer, which holds the sender.
        spawn_thread("splat-queue-checkpoint", async move {
            while requests.recv().await.is_some() {
                if checkpoint(&conn).await {
                    done.store(true, std::sync::atomic::Ordering::Release);
                }
            }
        })?;
        Ok(Self {
            due,
            caught_up,
            since: 0,
        })
    }

    /// After each commit of `bytes`: finishes a checkpoint the thread made, or asks for one when the log grew.
    async fn committed(&mut self, conn: &libsql::Connection, bytes: usize) {
        if self
            .caught_up
            .swap(false, std::sync::atomic::Ordering::Acquire)
        {
            checkpoint(conn).await;
        }
        self.since += bytes;
        if self.since >= CHECKPOINT_EVERY_BYTES {
            // Full means one is already due: it will copy these too.
            let _ = self.due.try_send(());
            self.since = 0;
        }
    }
}

/// A passive checkpoint: copies what no reader still needs and waits for no lock. `false` if it failed.
async fn checkpoint(conn: &libsql::Connection) -> bool {
    let result = count(conn, "PRAGMA wal_checkpoint(PASSIVE)").await;
    if let Err(e) = &result {
        tracing::warn!(error = %e, "checkpointing the queue's log failed");
    }
    result.is_ok()
}

/// Drains whatever sends are waiting, writes them in one transaction, then answers each.
async fn group_commit(
    _db: libsql::Database,
    conn: libsql::Connection,
    mut receiver: mpsc::Receiver<Pending>,
    arrived: Arc<Notify>,
    mut checkpointer: Checkpointer,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let result = insert_group(&conn, &group).await.map_err(|e| {
            if is_full(&e) {
                QueueError::Full(e.to_string())
            } else {
                QueueError::new(e)
            }
        });
        let bytes = group.iter().map(|(body, _)| body.len()).sum();
        for (_, done) in group.drain(..) {
            let _ = done.send(result.clone());
        }
        arrived.notify_waiters();
        // After the answers: a checkpoint delays the next group, never this one.
        checkpointer.committed(&conn, bytes).await;
    }
}

async fn insert_group(conn: &libsql::Connection, group: &[Pending]) -> Result<(), libsql::Error> {
    let now = now_ms();
    let tx = conn.transaction().await?;
    {
        let stmt = tx
            .prepare("INSERT INTO messages (body, enqueued_at, visible_at) VALUES (?1, ?2, ?2)")
            .await?;
        for (body, _) in group {
            stmt.execute((body.as_slice(), now)).await?;
            stmt.reset();
        }
    }
    tx.commit().await
}

/// SQLITE_FULL: the disk is full, or the file reached `max_page_count`.
fn is_full(e: &libsql::Error) -> bool {
    const SQLITE_FULL: i32 = 13;
    matches!(e, libsql::Error::SqliteFailure(code, _) if code & 0xff == SQLITE_FULL)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn queue(dir: &tempfile::TempDir, visibility_ms: u64, max_receives: u32) -> LocalQueue {
        LocalQueue::open(
            &dir.path().join("q.db"),
            Duration::from_millis(visibility_ms),
            max_receives,
        )
        .await
        .unwrap()
    }

    /// After a backlog has drained, the file is rewritten small at the next empty receive (once a
    /// minute at most); what it still holds (here a message in flight) survives the rewrite.
    #[tokio::test]
    async fn a_drained_backlog_gives_its_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 5).await;
        // The file and its log together: the log holds what is not yet copied into the file.
        let on_disk = || {
            ["q.db", "q.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
                .map(|m| m.len())
                .sum::<u64>()
        };
        q.send(b"in flight".to_vec()).await.unwrap();
        let in_flight = q.receive(1, Duration::ZERO).await.unwrap();
        let backlog = 40;
        for _ in 0..backlog {
            q.send(vec![7; 1 << 20]).await.unwrap();
        }
        let mut received = Vec::new();
        while received.len() < backlog {
            received.extend(q.receive(10, Duration::ZERO).await.unwrap());
        }
        let receipts: Vec<String> = received.iter().map(|d| d.receipt.clone()).collect();
        q.delete(&receipts).await.unwrap();
        assert!(on_disk() > 40 << 20, "{}", on_disk());

        q.shrink_checked_ms
            .store(0, std::sync::atomic::Ordering::Relaxed);
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        assert!(on_disk() < 1 << 20, "{}", on_disk());
        assert_eq!(q.depth().await.unwrap(), 1);
        assert_eq!(q.shrink_when_drained().await.unwrap(), 0, "once a minute");
        q.delete(&[in_flight[0].receipt.clone()]).await.unwrap();
        q.send(b"after".to_vec()).await.unwrap();
        let after = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(after[0].body, b"after");
    }

    #[tokio::test]
    async fn send_receive_delete_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 5).await;
        for i in 0..5u8 {
            q.send(vec![i]).await.unwrap();
        }
        assert_eq!(q.depth().await.unwrap(), 5);
        let got = q.receive(3, Duration::ZERO).await.unwrap();
        assert_eq!(
            got.iter().map(|d| d.body[0]).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        // In flight: invisible to the next receive.
        let rest = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            rest.iter().map(|d| d.body[0]).collect::<Vec<_>>(),
            vec![3, 4]
        );
        q.delete(
            &got.iter()
                .chain(&rest)
                .map(|d| d.receipt.clone())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        assert_eq!(q.depth().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn unacknowledged_messages_come_back_then_die() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 1, 2).await;
        q.send(b"poison".to_vec()).await.unwrap();
        let first = q.receive(1, Duration::ZERO).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = q.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(
            (first[0].message_id.clone(), second[0].receive_count),
            (second[0].message_id.clone(), 2)
        );
        // The first receipt is stale now and must not delete the redelivered message.
        q.delete(&[first[0].receipt.clone()]).await.unwrap();
        assert_eq!(q.depth().await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(
            (
                q.depth().await.unwrap(),
                q.dead_letter_count().await.unwrap()
            ),
            (0, 1)
        );
    }

    #[tokio::test]
    async fn released_messages_come_back_at_once_and_uncounted() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 2).await;
        q.send(b"good".to_vec()).await.unwrap();
        for _ in 0..5 {
            let got = q.receive(1, Duration::ZERO).await.unwrap();
            assert_eq!(got[0].receive_count, 1);
            q.release(&[got[0].receipt.clone()]).await.unwrap();
        }
        assert_eq!(q.dead_letter_count().await.unwrap(), 0);
        // A stale receipt releases nothing: the message stays in flight.
        let got = q.receive(1, Duration::ZERO).await.unwrap();
        q.release(&["1:7".to_owned()]).await.unwrap();
        assert!(q.receive(1, Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(got[0].receive_count, 1);
    }

    #[tokio::test]
    async fn receive_waits_for_a_send() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 5).await;
        let sender = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            sender.send(b"late".to_vec()).await.unwrap();
        });
        let got = q.receive(10, Duration::from_secs(10)).await.unwrap();
        assert_eq!(got[0].body, b"late");
    }

    #[tokio::test]
    async fn messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        queue(&dir, 60_000, 5)
            .await
            .send(b"kept".to_vec())
            .await
            .unwrap();
        let q = queue(&dir, 60_000, 5).await;
        assert_eq!(q.receive(1, Duration::ZERO).await.unwrap()[0].body, b"kept");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_sends_until_the_processor_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let q = LocalQueue::open_capped(
            &dir.path().join("q.db"),
            Duration::from_secs(60),
            5,
            Some(64 * 1024),
        )
        .await
        .unwrap();
        let mut sent = 0;
        let full = loop {
            match q.send(vec![7; 4000]).await {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 100, "the cap never applied");
        };
        assert!(matches!(full, QueueError::Full(_)), "{full}");
        assert_eq!(q.depth().await.unwrap(), sent);
        let got = q.receive(100, Duration::ZERO).await.unwrap();
        let receipts: Vec<String> = got.iter().map(|d| d.receipt.clone()).collect();
        q.delete(&receipts).await.unwrap();
        q.send(vec![7; 4000]).await.unwrap();
        assert_eq!(q.depth().await.unwrap(), 1);
    }

    /// The writer never checkpoints inside a commit; the checkpointer copies the log into the file, so the
    /// file holds the messages and the log does not grow without end.
    #[tokio::test]
    async fn the_log_is_checkpointed_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let q = LocalQueue::open(&path, Duration::from_secs(60), 5)
            .await
            .unwrap();
        let file_bytes = || std::fs::metadata(&path).unwrap().len();
        let before = file_bytes();
        let body = vec![7u8; 64 << 10];
        for _ in 0..(3 * CHECKPOINT_EVERY_BYTES / body.len()) {
            q.send(body.clone()).await.unwrap();
        }
        // The checkpoint runs after the commit that asked for it: wait for it, boundedly.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file_bytes() < before + CHECKPOINT_EVERY_BYTES as u64 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wal = std::fs::metadata(dir.path().join("q.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < 3 * CHECKPOINT_EVERY_BYTES as u64,
            "log of {wal} bytes"
        );
        assert_eq!(q.depth().await.unwrap(), 192);
    }

    #[tokio::test]
    async fn concurrent_sends_are_all_stored() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 5).await;
        let sends = (0..200u32).map(|i| {
            let q = q.clone();
            tokio::spawn(async move { q.send(i.to_le_bytes().to_vec()).await })
        });
        for s in sends {
            s.await.unwrap().unwrap();
        }
        assert_eq!(q.depth().await.unwrap(), 200);
    }

    /// What `splat serve` does at once: ingest sends, the processor receives and deletes, and the health
    /// check counts the queue. Counting on the processor's connection failed its receives now and then
    /// with `database is locked`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn counting_the_queue_never_fails_the_processor() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 60_000, 5).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counter = {
            let (q, stop) = (q.clone(), stop.clone());
            tokio::spawn(async move {
                let mut counts = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    q.depth().await.unwrap();
                    q.dead_letter_count().await.unwrap();
                    counts += 1;
                    tokio::task::yield_now().await;
                }
                counts
            })
        };
        for round in 0..300u32 {
            for i in 0..4u32 {
                q.send((round * 4 + i).to_le_bytes().to_vec())
                    .await
                    .unwrap();
            }
            let got = q.receive(4, Duration::ZERO).await.unwrap_or_else(|e| {
                panic!("receive {round} failed: {e}");
            });
            let receipts: Vec<String> = got.iter().map(|d| d.receipt.clone()).collect();
            q.delete(&receipts).await.unwrap_or_else(|e| {
                panic!("delete {round} failed: {e}");
            });
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(counter.await.unwrap() > 0);
        assert_eq!(q.depth().await.unwrap(), 0);
    }

    /// A queue message as ingest writes it, around a small envelope.
    fn message(project: i64, envelope: &str) -> Vec<u8> {
        crate::queue::QueueMessage {
            project_id: crate::protocol::ProjectId::new(project),
            event_id: None,
            received_at_us: 1_767_225_600_000_000, // 2026-01-01T00:00:00Z
            envelope: crate::queue::EnvelopeRef::Inline(bytes::Bytes::from(envelope.to_owned())),
        }
        .encode()
    }

    /// Receives until every message has died (visibility 1 ms, two receives each).
    async fn kill_all(q: &LocalQueue, reason: &str) {
        for _ in 0..3 {
            for d in q.receive(10, Duration::ZERO).await.unwrap() {
                q.note_failure(&d.receipt, reason).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(q.depth().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dead_letters_are_listed_shown_and_redriven() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(&dir, 1, 2).await;
        // Random text: it does not compress, so the message stays larger than the part the list reads.
        let big: String = (0..3_000_000)
            .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
            .collect();
        q.send(message(7, &format!("{{\"event_id\":\"0123456789abcdef0123456789abcdef\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{big}\n{{\"type\":\"attachment\"}}\nab\n", big.len())))
            .await
            .unwrap();
        q.send(message(8, "{}\n")).await.unwrap();
        q.send(b"not a queue message".to_vec()).await.unwrap();
        kill_all(&q, "the processor panicked: boom").await;

        let letters = q.dead_letters().await.unwrap();
        assert_eq!(letters.len(), 3);
        assert!(letters[0].size > 1_000_000 && letters[0].body.len() <= 4096);
        assert_eq!(letters[0].receive_count, 2);
        assert_eq!(
            letters[0].reason.as_deref(),
            Some("the processor panicked: boom")
        );
        let list = super::super::dead_letters::list_text(&letters);
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 4, "{list}");
        assert!(
            lines[1].starts_with("1 ") && lines[1].contains(" 7 "),
            "{list}"
        );
        assert!(
            lines[1].contains("2026-01-01 00:00:00 UTC") && lines[1].contains("boom"),
            "{list}"
        );
        assert!(
            lines[3].contains(" ? "),
            "an unreadable body still lists: {list}"
        );

        let blobs = crate::blob::LocalBlobStore::new(dir.path());
        let one = q.dead_letter(1).await.unwrap().unwrap();
        let shown = super::super::dead_letters::show_text(&one, &blobs).await;
        assert!(
            shown.contains("item 0: type=event bytes=3000000"),
            "{shown}"
        );
        assert!(shown.contains("item 1: type=attachment bytes=2"), "{shown}");
        assert!(
            shown.contains("0123456789abcdef0123456789abcdef"),
            "{shown}"
        );
        assert!(shown.len() < 4096, "no payload is printed");
        assert!(q.dead_letter(99).await.unwrap().is_none());

        // One, then the rest: back on the queue under the same id, visible now, counted from zero.
        assert_eq!(q.redrive(Some(2)).await.unwrap(), 1);
        assert_eq!(q.redrive(Some(2)).await.unwrap(), 0);
        let back = q.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(
            back.iter()
                .map(|d| (d.message_id.as_str(), d.receive_count))
                .collect::<Vec<_>>(),
            vec![("2", 1)]
        );
        assert_eq!(q.redrive(None).await.unwrap(), 2);
        assert_eq!(q.dead_letter_count().await.unwrap(), 0);
        assert_eq!(q.depth().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_queue_file_from_before_the_reason_column_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let db = libsql::Builder::new_local(&path).build().await.unwrap();
        let conn = db.connect().unwrap();
        conn.execute_batch(&SCHEMA.replace("IF NOT EXISTS ", ""))
            .await
            .unwrap();
        conn.execute(
            "INSERT INTO dead_letters (id, body, enqueued_at, receive_count, died_at) VALUES (5, x'00', 0, 5, 0)",
            (),
        )
        .await
        .unwrap();
        drop((conn, db));
        let q = LocalQueue::open(&path, Duration::from_secs(60), 5)
            .await
            .unwrap();
        assert_eq!(q.dead_letters().await.unwrap()[0].reason, None);
        q.send(b"m".to_vec()).await.unwrap();
        let d = q.receive(1, Duration::ZERO).await.unwrap();
        q.note_failure(&d[0].receipt, "why").await.unwrap();
    }
}
