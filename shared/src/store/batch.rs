//! The processor's unit of work: every row from one batch of queue messages, committed in one
//! transaction together with the ids of the messages it consumed.

use std::collections::{BTreeMap, HashSet};

use crate::grouping::Grouping;
use crate::model::{EventSummary, SpanRecord, TransactionRecord};
use crate::perf::transaction::TransactionPerf;
use crate::protocol::ProjectId;

use crate::lake::{catalog, EventFact, LakeFacts, LakeWriter, SpanFact, TransactionFact};

use super::cached::Cached;
use super::feedback::{self, FeedbackRow};
use super::issues::{IssueChange, IssueWriter, Sighting};
use super::monitors::{self, CheckInRow, MonitorMark};
use super::rollups::RollupWriter;
use super::segments;
use super::{now_us, Result, Store};

#[derive(Debug, Clone)]
pub struct EventRow {
    pub project_id: ProjectId,
    pub event_id: String,
    pub timestamp_us: i64,
    pub received_at_us: i64,
    pub summary: EventSummary,
    pub grouping: Grouping,
    /// Tags as sent, plus environment and release; counted per issue.
    pub tags: Vec<(String, String)>,
    /// Who was affected (id, email, username or IP), for the users-affected count.
    pub user_key: Option<String>,
    /// Exception types and values, messages, frame functions and files: what full-text search matches.
    pub search_text: String,
    /// zstd-compressed JSON.
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct TransactionRow {
    pub project_id: ProjectId,
    pub event_id: Option<String>,
    pub record: TransactionRecord,
    pub end_us: i64,
    pub received_at_us: i64,
    /// `transaction` or `span`.
    pub source: &'static str,
    pub payload: Option<Vec<u8>>,
    pub perf: TransactionPerf,
    /// A classic transaction's spans, its root first; they go to the lake with it. (Streamed spans
    /// arrive on their own, in [`WriteBatch::spans`].)
    pub spans: Vec<SpanRow>,
}

#[derive(Debug, Clone)]
pub struct SpanRow {
    pub project_id: ProjectId,
    pub span: SpanRecord,
    /// The description normalized for storage (no SQL literal, no query string); the raw text is never
    /// written anywhere.
    pub description: Option<String>,
    pub depth: Option<i32>,
    pub sequence: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ItemCount {
    pub project_id: ProjectId,
    pub item_type: String,
    pub hour: i64,
}

#[derive(Debug, Default, Clone)]
pub struct WriteBatch {
    pub events: Vec<EventRow>,
    pub transactions: Vec<TransactionRow>,
    /// Streamed spans (span-v2): they wait in the database for the rest of their segment.
    pub spans: Vec<SpanRow>,
    pub item_counts: BTreeMap<ItemCount, i64>,
    /// The ledger's entries for the batch's messages.
    pub message_ids: Vec<super::LedgerKey>,
    /// Cron check-ins (from the processor) and the monitor evaluation's conclusions.
    pub check_ins: Vec<CheckInRow>,
    pub monitor_marks: Vec<MonitorMark>,
    /// User feedback and user reports.
    pub feedback: Vec<FeedbackRow>,
}

impl WriteBatch {
    /// Adds another batch's rows to this one.
    pub fn absorb(&mut self, other: WriteBatch) {
        self.events.extend(other.events);
        self.transactions.extend(other.transactions);
        self.spans.extend(other.spans);
        for (key, n) in other.item_counts {
            *self.item_counts.entry(key).or_default() += n;
        }
        self.message_ids.extend(other.message_ids);
        self.check_ins.extend(other.check_ins);
        self.monitor_marks.extend(other.monitor_marks);
        self.feedback.extend(other.feedback);
    }

    pub fn count_item(&mut self, project_id: ProjectId, item_type: &str, at_us: i64, n: i64) {
        let hour = at_us.div_euclid(3_600_000_000) * 3_600;
        *self
            .item_counts
            .entry(ItemCount {
                project_id,
                item_type: item_type.to_owned(),
                hour,
            })
            .or_default() += n;
    }
}

fn duration(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    Some(end? - start?).filter(|d| *d >= 0)
}

impl Store {
    /// Writes the batch's database rows atomically, without the lake (tests of the database alone).
    pub async fn commit(&self, batch: &WriteBatch) -> Result<Vec<IssueChange>> {
        self.commit_with_lake(batch, None).await
    }

    /// Writes the batch atomically: the database rows, then the lake files of the rows that were new
    /// (uploaded while the write transaction is open, so that events carry their issue id), registered in
    /// the catalog by the same commit. Rows that already exist (same event id, same span) are kept as they
    /// were, so replaying a batch changes nothing, in the database or in the lake.
    pub async fn commit_with_lake(
        &self,
        batch: &WriteBatch,
        lake: Option<&LakeWriter>,
    ) -> Result<Vec<IssueChange>> {
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        // On a libSQL server the writes wait and leave together with the next read (see `Cached`).
        let mut cached = Cached::batching(&tx, self.remote);
        let mut issues = IssueWriter::default();
        issues.load_stored(&mut cached, &batch.events).await?;
        let mut changes = Vec::new();
        let mut facts = LakeFacts::default();
        for event in &batch.events {
            if let Some((issue_id, change)) = issues.record_event(&mut cached, event).await? {
                changes.extend(change);
                facts.events.push(event_fact(event, issue_id));
            }
        }
        // Transactions stored for the first time go to the lake with their spans, and count in the rollups.
        let mut rollups = RollupWriter::default();
        let streamed_children = segments::children_in_batch(&batch.spans);
        // Streamed transactions first stored by this batch: their figures already count every child.
        let mut segments_stored = HashSet::new();
        // Which rows are new is known before writing them: the keys stored before, read at once.
        let (mut stored, mut stored_spans) = stored_keys(&mut cached, batch).await?;
        if !batch.transactions.is_empty() {
            let sql = "INSERT OR IGNORE INTO transactions (project_id, event_id, trace_id, span_id, parent_span_id, name, op, status,
                        start_time, end_time, duration_us, environment, release, platform, sdk_name, source, received_at, payload,
                        server_name, http_method, http_url, http_status, db_time_ms, view_time_ms, query_count, has_n_plus_one,
                        n_plus_one_wasted_ms, span_count, spans_truncated, query_patterns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                        ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)";
            for t in &batch.transactions {
                let figured;
                // (Its reads of stored spans need none of the writes still waiting: the batch's spans
                // are written after its transactions.)
                let t = if t.source == "span" {
                    figured = segments::with_figures(&tx, t, &streamed_children).await?;
                    &figured
                } else {
                    t
                };
                let (r, root) = (&t.record, &t.record.root);
                let inserted = i32::from(stored.insert(transaction_key(t)));
                cached
                    .write(
                        sql,
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
                    .await?;
                if inserted == 1 && t.source == "span" {
                    let key = (
                        t.project_id.value(),
                        root.trace_id.clone(),
                        root.span_id.clone(),
                    );
                    segments_stored.insert(key);
                }
                if inserted == 1 {
                    facts.transactions.push(transaction_fact(t));
                    facts.spans.extend(t.spans.iter().filter_map(span_fact));
                    rollups.add(t);
                }
                // Only a transaction seen for the first time counts toward its release.
                if let (1, Some(release)) = (inserted, r.release.as_deref()) {
                    issues.sight_release(
                        t.project_id.value(),
                        release,
                        t.end_us,
                        Sighting::Transaction,
                    );
                }
            }
        }
        let mut late_segments = std::collections::BTreeSet::new();
        if !batch.spans.is_empty() {
            for row in &batch.spans {
                let s = &row.span;
                let inserted = i32::from(stored_spans.insert(span_key(row)));
                cached.write(
                    "INSERT OR IGNORE INTO spans (project_id, trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status,
                        start_time, end_time, duration_us, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    libsql::params![
                        row.project_id.value(),
                        s.trace_id.as_str(),
                        s.span_id.as_str(),
                        s.parent_span_id.clone(),
                        s.segment_id.clone(),
                        s.is_segment as i64,
                        row.description.clone(),
                        s.op.clone(),
                        s.status.clone(),
                        s.start_us,
                        s.end_us,
                        duration(s.start_us, s.end_us),
                        s.data.clone(),
                    ],
                ).await?;
                if inserted == 1 {
                    facts.spans.extend(span_fact(row));
                    if let (false, Some(segment)) = (s.is_segment, s.segment_id.as_deref()) {
                        let key = (
                            row.project_id.value(),
                            s.trace_id.clone(),
                            segment.to_owned(),
                        );
                        if !segments_stored.contains(&key) {
                            late_segments.insert(key);
                        }
                    }
                }
            }
        }
        if !late_segments.is_empty() {
            // Their reads go straight to the transaction: the rows written so far first.
            cached.flush().await?;
            segments::correct_late(&tx, late_segments, &mut rollups).await?;
        }
        for (key, n) in &batch.item_counts {
            cached.write(
                "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, item_type, hour) DO UPDATE SET count = count + excluded.count",
                (key.project_id.value(), key.item_type.as_str(), key.hour, *n),
            )
            .await?;
        }
        // The ledger in one statement (the keys as a JSON array): one round trip to a libSQL server.
        let keys = super::LedgerKey::json(&batch.message_ids)?;
        cached.write("INSERT OR IGNORE INTO processed_messages (sent_ms, message_id, processed_at) SELECT value ->> 0, value ->> 1, ?2 FROM json_each(?1)", (keys, now_us())).await?;
        feedback::insert(&mut cached, &batch.feedback).await?;
        issues.flush(&mut cached).await?;
        rollups.flush(&mut cached).await?;
        // After the events: a monitor that recovers in this batch resolves the issues they opened.
        monitors::apply(&mut cached, &batch.check_ins, &batch.monitor_marks).await?;
        // On a server the writes so far are still waiting: a failure among them after the upload leaves
        // unregistered files, as a failed commit could already (retention deletes orphans).
        if let Some(lake) = lake.filter(|_| !facts.is_empty()) {
            let files = lake.write(&facts).await?;
            catalog::register(&mut cached, &files).await?;
        }
        // On a server the last writes go with COMMIT; `commit()` then has nothing left to send.
        cached.send_with_commit().await?;
        tx.commit().await?;
        Ok(changes)
    }
}

/// A transaction's key: project, trace id and its root span's id.
fn transaction_key(t: &TransactionRow) -> (i64, String, String) {
    let root = &t.record.root;
    (
        t.project_id.value(),
        root.trace_id.clone(),
        root.span_id.clone(),
    )
}

fn span_key(row: &SpanRow) -> (i64, String, String) {
    let s = &row.span;
    (
        row.project_id.value(),
        s.trace_id.clone(),
        s.span_id.clone(),
    )
}

type Keys = HashSet<(i64, String, String)>;

/// The keys of the batch's transactions and spans that are already stored, in one statement each (the
/// keys as a JSON array), sent together: which rows the batch adds is then known without a read per row.
async fn stored_keys(cached: &mut Cached<'_>, batch: &WriteBatch) -> Result<(Keys, Keys)> {
    let wanted: [(&'static str, Vec<_>); 2] = [
        (
            STORED_TRANSACTIONS,
            batch.transactions.iter().map(transaction_key).collect(),
        ),
        (STORED_SPANS, batch.spans.iter().map(span_key).collect()),
    ];
    let mut queries = Vec::new();
    for (sql, keys) in wanted.iter().filter(|(_, keys)| !keys.is_empty()) {
        let json = serde_json::to_string(keys)
            .map_err(|e| super::StoreError::Invalid(format!("row keys: {e}")))?;
        queries.push((*sql, vec![libsql::Value::Text(json)]));
    }
    let mut found = cached.reads(queries).await?.into_iter();
    let [transactions, spans] = wanted.map(|(_, keys)| {
        let rows = match keys.is_empty() {
            true => Vec::new(),
            false => found.next().unwrap_or_default(),
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

const STORED_TRANSACTIONS: &str = "SELECT t.project_id, t.trace_id, t.span_id FROM json_each(?1) j JOIN transactions t
    ON t.project_id = json_extract(j.value, '$[0]') AND t.trace_id = json_extract(j.value, '$[1]') AND t.span_id = json_extract(j.value, '$[2]')";
const STORED_SPANS: &str = "SELECT s.project_id, s.trace_id, s.span_id FROM json_each(?1) j JOIN spans s
    ON s.project_id = json_extract(j.value, '$[0]') AND s.trace_id = json_extract(j.value, '$[1]') AND s.span_id = json_extract(j.value, '$[2]')";

fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn event_fact(e: &EventRow, issue_id: i64) -> EventFact {
    let s = &e.summary;
    EventFact {
        project_id: e.project_id.value(),
        timestamp_us: e.timestamp_us,
        event_id: e.event_id.clone(),
        issue_id,
        level: s.level.clone(),
        environment: s.environment.clone(),
        release: s.release.clone(),
        platform: s.platform.clone(),
        exception_type: s.exception_type.clone(),
        transaction: s.transaction.clone(),
        trace_id: s.trace_id.clone(),
        server_name: s.server_name.clone(),
        sdk_name: s.sdk_name.clone(),
    }
}

fn transaction_fact(t: &TransactionRow) -> TransactionFact {
    let (r, root) = (&t.record, &t.record.root);
    TransactionFact {
        project_id: t.project_id.value(),
        timestamp_us: t.end_us,
        start_us: root.start_us,
        event_id: t.event_id.clone(),
        trace_id: root.trace_id.clone(),
        span_id: root.span_id.clone(),
        name: r.name.clone(),
        op: root.op.clone(),
        status: root.status.clone(),
        duration_ms: duration(root.start_us, root.end_us).map(ms),
        environment: r.environment.clone(),
        release: r.release.clone(),
        platform: r.platform.clone(),
        sdk_name: r.sdk_name.clone(),
        server_name: r.server_name.clone(),
        http_method: r.http.method.clone(),
        http_url: r.http.url.clone(),
        http_status: r.http.status,
        db_time_ms: t.perf.db_time_ms,
        view_time_ms: t.perf.view_time_ms,
        query_count: t.perf.query_count,
        has_n_plus_one: t.perf.has_n_plus_one,
        n_plus_one_wasted_ms: t.perf.n_plus_one_wasted_ms,
        span_count: t.perf.span_count,
        spans_truncated: t.perf.spans_truncated,
        source: t.source,
    }
}

/// A span's lake row; none for a span without a start (it cannot be placed in time).
fn span_fact(row: &SpanRow) -> Option<SpanFact> {
    let s = &row.span;
    Some(SpanFact {
        project_id: row.project_id.value(),
        start_us: s.start_us?,
        trace_id: s.trace_id.clone(),
        transaction_id: s.segment_id.clone(),
        span_id: s.span_id.clone(),
        parent_span_id: s.parent_span_id.clone(),
        op: s.op.clone(),
        description: row.description.clone(),
        group_hash: row
            .description
            .as_deref()
            .map(|d| crate::perf::transaction::group_hash(s.op.as_deref(), d)),
        status: s.status.clone(),
        duration_ms: duration(s.start_us, s.end_us).map(ms),
        depth: row.depth,
        sequence: row.sequence,
    })
}
