//! One batch, composed: the processor decides which rows are new, computes every transaction's figures
//! (classic ones when they are built, streamed ones here, from their children in the batch and in the
//! database), writes the rows through the store's batch transaction ([`BatchTx`]), turns the new rows
//! into lake files, uploads them while the write transaction is open (so that events carry their issue id)
//! and registers them in the catalog by the same commit. Rows that already exist (same event id, same
//! span) are kept as they were, so replaying a batch changes nothing, in the database or in the lake.

use crate::model::time::us_to_ms;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::lake::{EventFact, LakeFacts, LakeWriter, LogFact, SpanFact, TransactionFact};
use crate::model::SpanRecord;
use crate::perf::transaction::{self, SpanTree};
use crate::store::{
    duration, span_key, transaction_key, BatchTx, EventRow, IssueChange, RowKey, Sighting, SpanRow,
    Store, StoreError, TransactionRow, WriteBatch,
};

/// Writes the batch atomically, its lake files with it when `lake` is given; returns the issues it
/// created or brought back.
pub async fn commit(
    store: &Store,
    batch: &WriteBatch,
    lake: Option<&LakeWriter>,
) -> Result<Vec<IssueChange>, StoreError> {
    let mut tx = store.begin_batch().await?;
    // What the batch reads before its writes, read at once: on a libSQL server this and BEGIN are its
    // first request, and its writes with COMMIT the second (a third only for streamed segments that
    // received children late: they are read back with this batch's spans).
    tx.read_ahead(batch, lake.is_some()).await?;
    let mut facts = LakeFacts::default();
    let changes = write_events(&mut tx, &batch.events, &mut facts).await?;
    // Which rows are new is known before writing them: the keys stored before, read at once.
    let (stored, stored_spans) = tx.stored_keys(&batch.transactions, &batch.spans).await?;
    let segments_stored = write_transactions(&mut tx, batch, stored, &mut facts).await?;
    let late = write_spans(
        &mut tx,
        &batch.spans,
        stored_spans,
        &segments_stored,
        &mut facts,
    )
    .await?;
    correct_late_segments(&mut tx, late).await?;
    // After the batch's spans: a segment that just received one is not settled.
    if let Some(cutoff) = batch.spans_settled_before {
        tx.sweep_settled_spans(cutoff, &batch.spans).await?;
    }
    tx.write_item_counts(&batch.item_counts).await?;
    tx.write_ledger(&batch.message_ids).await?;
    tx.write_feedback(&batch.feedback).await?;
    let new_logs = tx.write_logs(&batch.logs).await?;
    facts
        .logs
        .extend(new_logs.into_iter().map(|(i, log_id)| LogFact {
            log_id,
            ..batch.logs[i].log.clone()
        }));
    tx.flush_issues_and_rollups().await?;
    // After the events: a monitor that recovers in this batch resolves the issues they opened.
    tx.write_monitors(&batch.check_ins, &batch.monitor_marks)
        .await?;
    // On a server the writes so far are still waiting: a failure among them after the upload leaves
    // unregistered files, as a failed commit could already (retention deletes orphans).
    if let Some(lake) = lake.filter(|_| !facts.is_empty()) {
        let files = lake.write(&facts).await?;
        tx.register_lake_files(&files).await?;
    }
    tx.commit().await?;
    Ok(changes)
}

/// Files each event under its issue; the new ones go to the lake with their issue id.
async fn write_events(
    tx: &mut BatchTx,
    events: &[EventRow],
    facts: &mut LakeFacts,
) -> Result<Vec<IssueChange>, StoreError> {
    tx.load_issues(events).await?;
    let mut changes = Vec::new();
    for event in events {
        if let Some((issue_id, change)) = tx.record_event(event).await? {
            changes.extend(change);
            facts.events.push(event_fact(event, issue_id));
        }
    }
    Ok(changes)
}

/// Writes the transactions; those stored for the first time go to the lake with their spans, and count
/// in the rollups and toward their release. Returns the streamed transactions first stored by this
/// batch: their figures already count every child.
async fn write_transactions(
    tx: &mut BatchTx,
    batch: &WriteBatch,
    mut stored: HashSet<RowKey>,
    facts: &mut LakeFacts,
) -> Result<HashSet<RowKey>, StoreError> {
    let streamed_children = children_in_batch(&batch.spans);
    let mut segments_stored = HashSet::new();
    for t in &batch.transactions {
        let figured;
        let t = if t.source == "span" {
            figured = with_figures(tx, t, &streamed_children).await?;
            &figured
        } else {
            t
        };
        let key = transaction_key(t);
        let inserted = stored.insert(key.clone());
        tx.insert_transaction(t).await?;
        if !inserted {
            continue;
        }
        if t.source == "span" {
            segments_stored.insert(key);
        }
        facts.transactions.push(transaction_fact(t));
        facts.spans.extend(t.spans.iter().filter_map(span_fact));
        tx.count_in_rollups(t);
        // Only a transaction seen for the first time counts toward its release.
        if let Some(release) = t.record.release.as_deref() {
            tx.sight_release(
                t.project_id.value(),
                release,
                t.end_us,
                Sighting::Transaction,
            );
        }
    }
    Ok(segments_stored)
}

/// Writes the streamed spans; the new ones go to the lake. Returns the segments stored by earlier batches
/// that received new children now: their figures are computed again.
async fn write_spans(
    tx: &mut BatchTx,
    spans: &[SpanRow],
    mut stored: HashSet<RowKey>,
    segments_stored: &HashSet<RowKey>,
    facts: &mut LakeFacts,
) -> Result<BTreeSet<RowKey>, StoreError> {
    let mut late_segments = BTreeSet::new();
    for row in spans {
        let s = &row.span;
        let inserted = stored.insert(span_key(row));
        tx.insert_span(row).await?;
        if !inserted {
            continue;
        }
        facts.spans.extend(span_fact(row));
        if let (false, Some(segment)) = (s.is_segment, s.segment_id.as_deref()) {
            let key = segment_key(row.project_id.value(), s, segment);
            if !segments_stored.contains(&key) {
                late_segments.insert(key);
            }
        }
    }
    Ok(late_segments)
}

/// (project, trace id, segment span id).
fn segment_key(project: i64, span: &SpanRecord, segment: &str) -> RowKey {
    (project, span.trace_id.clone(), segment.to_owned())
}

/// The batch's streamed children (not segment spans themselves), by segment.
fn children_in_batch(spans: &[SpanRow]) -> HashMap<RowKey, Vec<&SpanRow>> {
    let mut by_segment: HashMap<RowKey, Vec<&SpanRow>> = HashMap::new();
    for row in spans.iter().filter(|r| !r.span.is_segment) {
        if let Some(segment) = row.span.segment_id.as_deref() {
            by_segment
                .entry(segment_key(row.project_id.value(), &row.span, segment))
                .or_default()
                .push(row);
        }
    }
    by_segment
}

/// A streamed transaction of the batch with its figures computed from every child known so far: the
/// batch's (as the SDK sent them) and the database's (for the ones that came earlier).
async fn with_figures(
    tx: &mut BatchTx,
    t: &TransactionRow,
    in_batch: &HashMap<RowKey, Vec<&SpanRow>>,
) -> Result<TransactionRow, StoreError> {
    let root = &t.record.root;
    let key = segment_key(t.project_id.value(), root, &root.span_id);
    let mut children: HashMap<String, SpanRecord> = tx
        .stored_children(&key)
        .await?
        .into_iter()
        .map(|s| (s.span_id.clone(), s))
        .collect();
    for row in in_batch.get(&key).into_iter().flatten() {
        children.insert(row.span.span_id.clone(), row.span.clone());
    }
    let tree = SpanTree::new(root, children.into_values().collect());
    let (perf, _) = transaction::analyze(&t.record, &tree);
    Ok(TransactionRow { perf, ..t.clone() })
}

/// Recomputes the figures of segments stored earlier that received new children in this batch, updating
/// their transaction rows and correcting their rollups. Segments stored in this very batch are left
/// alone: [`with_figures`] already saw all their children.
async fn correct_late_segments(
    tx: &mut BatchTx,
    segments: BTreeSet<RowKey>,
) -> Result<(), StoreError> {
    for (key, stored) in tx.stored_segments(&segments).await? {
        let tree = SpanTree::new(&stored.record.root, stored.children);
        let (new, _) = transaction::analyze(&stored.record, &tree);
        tx.correct_figures(&key, &stored.record, stored.end_us, &stored.figures, &new)
            .await?;
    }
    Ok(())
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
        trace_id: root.trace_id.clone(),
        span_id: root.span_id.clone(),
        name: r.name.clone(),
        op: root.op.clone(),
        status: root.status.clone(),
        duration_ms: duration(root.start_us, root.end_us).map(us_to_ms),
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
            .map(|d| transaction::group_hash(s.op.as_deref(), d)),
        status: s.status.clone(),
        duration_ms: duration(s.start_us, s.end_us).map(us_to_ms),
        depth: row.depth,
        sequence: row.sequence,
    })
}
