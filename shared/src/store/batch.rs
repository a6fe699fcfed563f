//! The processor's unit of work: every row from one batch of queue messages, committed in one
//! transaction together with the ids of the messages it consumed.

use std::collections::BTreeMap;

use crate::grouping::Grouping;
use crate::model::{EventSummary, SpanRecord, TransactionRecord};
use crate::protocol::ProjectId;

use super::cached::Cached;
use super::issues::{IssueChange, IssueWriter, Sighting};
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
}

#[derive(Debug, Clone)]
pub struct SpanRow {
    pub project_id: ProjectId,
    pub span: SpanRecord,
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
    pub spans: Vec<SpanRow>,
    pub item_counts: BTreeMap<ItemCount, i64>,
    pub message_ids: Vec<String>,
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
    /// Writes the batch atomically. Rows that already exist (same event id, same span) are kept as they
    /// were, so replaying a batch changes nothing.
    pub async fn commit(&self, batch: &WriteBatch) -> Result<Vec<IssueChange>> {
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let mut cached = Cached::new(&tx);
        let mut issues = IssueWriter::new(&tx);
        let mut changes = Vec::new();
        for event in &batch.events {
            changes.extend(issues.record_event(event).await?);
        }
        if !batch.transactions.is_empty() {
            let stmt = tx
                .prepare(
                    "INSERT OR IGNORE INTO transactions (project_id, event_id, trace_id, span_id, parent_span_id, name, op, status,
                        start_time, end_time, duration_us, environment, release, platform, sdk_name, source, received_at, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                )
                .await?;
            for t in &batch.transactions {
                let (r, root) = (&t.record, &t.record.root);
                let inserted = stmt
                    .execute(libsql::params![
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
                    ])
                    .await?;
                stmt.reset();
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
        if !batch.spans.is_empty() {
            let stmt = tx
                .prepare(
                    "INSERT OR IGNORE INTO spans (project_id, trace_id, span_id, parent_span_id, segment_id, is_segment, name, op, status,
                        start_time, end_time, duration_us, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )
                .await?;
            for row in &batch.spans {
                let s = &row.span;
                stmt.execute(libsql::params![
                    row.project_id.value(),
                    s.trace_id.as_str(),
                    s.span_id.as_str(),
                    s.parent_span_id.clone(),
                    s.segment_id.clone(),
                    s.is_segment as i64,
                    s.name.clone(),
                    s.op.clone(),
                    s.status.clone(),
                    s.start_us,
                    s.end_us,
                    duration(s.start_us, s.end_us),
                    s.data.clone(),
                ])
                .await?;
                stmt.reset();
            }
        }
        for (key, n) in &batch.item_counts {
            cached.execute(
                "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, item_type, hour) DO UPDATE SET count = count + excluded.count",
                (key.project_id.value(), key.item_type.as_str(), key.hour, *n),
            )
            .await?;
        }
        let now = now_us();
        for id in &batch.message_ids {
            cached.execute("INSERT OR IGNORE INTO processed_messages (message_id, processed_at) VALUES (?1, ?2)", (id.as_str(), now)).await?;
        }
        issues.flush().await?;
        drop(cached);
        tx.commit().await?;
        Ok(changes)
    }
}
