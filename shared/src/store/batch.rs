//! The write transaction a batch of rows ([`super::WriteBatch`]) is committed in, together with the ids
//! of the messages it consumed ([`BatchTx`]). The processor composes the batch (which rows are new, the
//! streamed transactions' figures, the lake files: `crate::process::batch`); this is where its rows are
//! written, by typed writers.

use std::collections::{BTreeMap, HashSet};

use super::cached::Cached;
use super::feedback::{self, FeedbackRow};
use super::issues::{IssueChange, IssueWriter, Sighting};
use super::monitors::{self, CheckInRow, MonitorMark};
use super::rollups::RollupWriter;
use super::rows::{
    duration, transaction_key, EventRow, ItemCount, RowKey, SpanRow, TransactionRow,
};
use super::{now_us, LedgerKey, Result, Store};

/// A batch's write transaction (immediate: it holds the write lock until it commits or is dropped). Rows
/// that already exist (same event id, same span) are kept as they were, so replaying a batch changes
/// nothing. Issues and rollups are gathered per row and written by [`BatchTx::flush_issues_and_rollups`].
pub struct BatchTx {
    // Before `tx`: its prepared statements go before the transaction ends.
    pub(super) cached: Cached,
    /// On a local file; on a libSQL server `cached` holds the transaction on its connection's stream.
    tx: Option<libsql::Transaction>,
    issues: IssueWriter,
    pub(super) rollups: RollupWriter,
}

impl Store {
    /// Opens a batch's write transaction. On a libSQL server nothing is sent yet: BEGIN, then the writes,
    /// wait and leave together with the next read (see [`Cached`]).
    pub async fn begin_batch(&self) -> Result<BatchTx> {
        let (cached, tx) = if self.remote {
            // A connection of its own (`conn` gives a new one on a server): its stream is the transaction's.
            (Cached::begin_on_server(&self.conn()), None)
        } else {
            let tx = self
                .conn()
                .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
                .await?;
            (Cached::new(&tx), Some(tx))
        };
        Ok(BatchTx {
            cached,
            tx,
            issues: IssueWriter::default(),
            rollups: RollupWriter::default(),
        })
    }
}

impl BatchTx {
    /// Reads ahead everything `batch` will read before its first write (stored events, issues and the next
    /// issue id, stored transaction and span keys, the children of its streamed transactions, its rollup
    /// cells, the streamed segments settled and, when it writes `lake` files, the catalog's state): on a
    /// libSQL server, one request with BEGIN. The later reads are then answered without a request. Nothing
    /// on a local file.
    pub async fn read_ahead(&mut self, batch: &super::WriteBatch, lake: bool) -> Result<()> {
        let mut reads = IssueWriter::stored_reads(&batch.events)?;
        reads.extend(stored_key_reads(&batch.transactions, &batch.spans)?);
        let streamed = batch.transactions.iter().filter(|t| t.source == "span");
        reads.extend(super::segments::children_reads(streamed.map(|t| {
            let root = &t.record.root;
            (
                t.project_id.value(),
                root.trace_id.clone(),
                root.span_id.clone(),
            )
        })));
        reads.extend(RollupWriter::cell_reads_of(&batch.transactions));
        reads.extend(
            batch
                .spans_settled_before
                .map(super::segments::settled_read),
        );
        if lake {
            reads.extend(crate::lake::catalog::state_reads());
        }
        self.cached.read_ahead(reads).await
    }

    /// Reads which of `events` are stored and the issues their hashes belong to, before any is recorded.
    pub async fn load_issues(&mut self, events: &[EventRow]) -> Result<()> {
        self.issues.load_stored(&mut self.cached, events).await
    }

    /// Stores one event with its issue. `None` when the event is already stored; else its issue and
    /// whether that issue is new or came back.
    pub async fn record_event(
        &mut self,
        event: &EventRow,
    ) -> Result<Option<(i64, Option<IssueChange>)>> {
        self.issues.record_event(&mut self.cached, event).await
    }

    /// The keys of these transactions and spans that are already stored, in one statement each (the keys
    /// as a JSON array), sent together: which rows a batch adds is then known without a read per row.
    pub async fn stored_keys(
        &mut self,
        transactions: &[TransactionRow],
        spans: &[SpanRow],
    ) -> Result<(HashSet<RowKey>, HashSet<RowKey>)> {
        stored_keys(&mut self.cached, transactions, spans).await
    }

    /// Writes a transaction (unless one with its key is stored).
    pub async fn insert_transaction(&mut self, t: &TransactionRow) -> Result<()> {
        let (r, root) = (&t.record, &t.record.root);
        self.cached
            .write(
                "INSERT OR IGNORE INTO transactions (project_id, event_id, trace_id, span_id, parent_span_id, name, op, status,
                        start_time, end_time, duration_us, environment, release, platform, sdk_name, source, received_at, payload,
                        server_name, http_method, http_url, http_status, db_time_ms, view_time_ms, query_count, has_n_plus_one,
                        n_plus_one_wasted_ms, span_count, spans_truncated, query_patterns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                        ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
                libsql::params![
                        t.project_id.value(),
                        t.event_id.clone(),
                        root.trace_id.as_str(),
                        root.span_id.as_str(),
                        root.parent_span_id.clone(),
                        r.name.as_str(),
                        root.op.clone(),
                        root.status.clone(),
                        root.start_us,
                        t.end_us,
                        duration(root.start_us, root.end_us),
                        r.environment.clone(),
                        r.release.clone(),
                        r.platform.clone(),
                        r.sdk_name.clone(),
                        t.source,
                        t.received_at_us,
                        t.payload.clone(),
                        r.server_name.clone(),
                        r.http.method.clone(),
                        r.http.url.clone(),
                        r.http.status,
                        t.perf.db_time_ms,
                        t.perf.view_time_ms,
                        t.perf.query_count,
                        t.perf.has_n_plus_one.map(i64::from),
                        t.perf.n_plus_one_wasted_ms,
                        t.perf.span_count,
                        t.perf.spans_truncated.map(i64::from),
                    t.perf.patterns_json(),
                ],
            )
            .await
    }

    /// Counts a transaction stored for the first time in its hourly and daily rollups.
    pub fn count_in_rollups(&mut self, t: &TransactionRow) {
        self.rollups.add(t);
    }

    /// Counts a release as seen (by an event or a transaction) at `at_us`.
    pub fn sight_release(&mut self, project: i64, release: &str, at_us: i64, what: Sighting) {
        self.issues.sight_release(project, release, at_us, what);
    }

    /// Writes a streamed span (unless one with its key is stored), to wait for the rest of its segment
    /// ([`super::segments`]). Its attributes are left out: a late child's correction needs only its
    /// transaction's name and environment, which the transaction row has, and pages read spans from the
    /// lake (a child's attributes were two thirds of its bytes, a segment's most of its row).
    pub async fn insert_span(&mut self, row: &SpanRow) -> Result<()> {
        let s = &row.span;
        self.cached.write(
            "INSERT OR IGNORE INTO spans (project_id, trace_id, segment_id, span_id, parent_span_id, is_segment, name, op,
                status, start_time, end_time, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            libsql::params![
                row.project_id.value(),
                s.trace_id.as_str(),
                super::segments::segment_of(s),
                s.span_id.as_str(),
                s.parent_span_id.clone(),
                s.is_segment as i64,
                row.description.clone(),
                s.op.clone(),
                s.status.clone(),
                s.start_us,
                s.end_us,
                super::now_us(),
            ],
        )
        .await
    }

    /// Adds the batch's item counts to the hourly counters.
    pub async fn write_item_counts(&mut self, counts: &BTreeMap<ItemCount, i64>) -> Result<()> {
        for (key, n) in counts {
            self.cached.write(
                "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, item_type, hour) DO UPDATE SET count = count + excluded.count",
                (key.project_id.value(), key.item_type.as_str(), key.hour, *n),
            )
            .await?;
        }
        Ok(())
    }

    /// Enters the batch's messages in the ledger, in one statement (the keys as a JSON array): one round
    /// trip to a libSQL server.
    pub async fn write_ledger(&mut self, messages: &[LedgerKey]) -> Result<()> {
        let keys = LedgerKey::json(messages)?;
        self.cached.write("INSERT OR IGNORE INTO processed_messages (sent_ms, message_id, processed_at) SELECT value ->> 0, value ->> 1, ?2 FROM json_each(?1)", (keys, now_us())).await
    }

    /// Writes the log records not stored yet; returns the indexes and ids of those written now.
    pub async fn write_logs(&mut self, rows: &[super::LogRow]) -> Result<Vec<(usize, String)>> {
        super::logs::insert(&mut self.cached, rows).await
    }

    pub async fn write_feedback(&mut self, rows: &[FeedbackRow]) -> Result<()> {
        feedback::insert(&mut self.cached, rows).await
    }

    /// Writes what the events did to their issues (counts, tags, hours, releases) and the transactions'
    /// rollups, each merged once per batch.
    pub async fn flush_issues_and_rollups(&mut self) -> Result<()> {
        std::mem::take(&mut self.issues)
            .flush(&mut self.cached)
            .await?;
        std::mem::take(&mut self.rollups)
            .flush(&mut self.cached)
            .await
    }

    /// Writes check-ins and the evaluation's marks. After the issues: a monitor that recovers in this
    /// batch resolves the issues its events opened.
    pub async fn write_monitors(
        &mut self,
        check_ins: &[CheckInRow],
        marks: &[MonitorMark],
    ) -> Result<()> {
        monitors::apply(&mut self.cached, check_ins, marks).await
    }

    /// Registers lake files in the catalog, by this transaction's commit.
    pub async fn register_lake_files(&mut self, files: &[crate::lake::LakeFile]) -> Result<()> {
        crate::lake::catalog::register(&mut self.cached, files).await?;
        Ok(())
    }

    /// Commits. On a server the last writes go with COMMIT; `commit()` then has nothing left to send.
    pub async fn commit(self) -> Result<()> {
        self.cached.send_with_commit().await?;
        if let Some(tx) = self.tx {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// The keys of the batch's transactions and spans that are already stored, in one statement each (the
/// keys as a JSON array), sent together: which rows the batch adds is then known without a read per row.
async fn stored_keys(
    cached: &mut Cached,
    transactions: &[TransactionRow],
    spans: &[SpanRow],
) -> Result<(HashSet<RowKey>, HashSet<RowKey>)> {
    let mut found = cached
        .reads(stored_key_reads(transactions, spans)?)
        .await?
        .into_iter();
    let wanted = [!transactions.is_empty(), !spans.is_empty()];
    let [transactions, spans] = wanted.map(|wanted| {
        let rows = match wanted {
            false => Vec::new(),
            true => found.next().unwrap_or_default(),
        };
        let key = |row: Vec<libsql::Value>| match &row[..] {
            [libsql::Value::Integer(p), libsql::Value::Text(t), libsql::Value::Text(s)] => {
                Some((*p, t.clone(), s.clone()))
            }
            _ => None,
        };
        rows.into_iter().filter_map(key).collect()
    });
    Ok((transactions, spans))
}

/// The reads of [`stored_keys`]: one for the transactions and one for the spans, each if there are any.
fn stored_key_reads(
    transactions: &[TransactionRow],
    spans: &[SpanRow],
) -> Result<Vec<(&'static str, Vec<libsql::Value>)>> {
    // A transaction is looked up along the table's key, the hour it ended included.
    let transactions: Vec<_> = transactions
        .iter()
        .map(|t| {
            let (project, trace, span) = transaction_key(t);
            (project, super::event_keys::hour(t.end_us), trace, span)
        })
        .collect();
    // A span is looked up along the table's key, its segment included.
    let spans: Vec<_> = spans
        .iter()
        .map(|r| {
            let s = &r.span;
            let segment = super::segments::segment_of(s);
            (r.project_id.value(), &s.trace_id, segment, &s.span_id)
        })
        .collect();
    let json = |keys: serde_json::Result<String>| {
        keys.map(|json| vec![libsql::Value::Text(json)])
            .map_err(|e| super::StoreError::Invalid(format!("row keys: {e}")))
    };
    let mut reads = Vec::new();
    if !transactions.is_empty() {
        reads.push((
            super::transaction_keys::STORED_TRANSACTIONS,
            json(serde_json::to_string(&transactions))?,
        ));
    }
    if !spans.is_empty() {
        reads.push((STORED_SPANS, json(serde_json::to_string(&spans))?));
    }
    Ok(reads)
}

const STORED_SPANS: &str = "SELECT s.project_id, s.trace_id, s.span_id FROM json_each(?1) j JOIN spans s
    ON s.project_id = json_extract(j.value, '$[0]') AND s.trace_id = json_extract(j.value, '$[1]')
        AND s.segment_id = json_extract(j.value, '$[2]') AND s.span_id = json_extract(j.value, '$[3]')";
