//! The processor: the single writer. It turns a batch of queue deliveries into rows and commits them in
//! one transaction together with the ids of the messages consumed.
//!
//! Per batch: skip messages the ledger already holds (redeliveries), decode the rest, fetch claim-checked
//! bodies, build a [`WriteBatch`], commit, then delete claim-checked bodies. A message that cannot be
//! decoded is reported as failed and never holds up the others; the queue retries it and finally moves it
//! to the dead-letter queue.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::blob::{BlobError, BlobStore};
use crate::grouping;
use crate::lake::LakeWriter;
use crate::model::check_in::CheckIn;
use crate::model::{self, Event, EventSummary, Feedback, SpanRecord};
use crate::perf::transaction::{self, SpanTree};
use crate::protocol::{Envelope, EventId, Item, ItemType, ProjectId};
use crate::queue::{Delivery, EnvelopeRef, QueueMessage};
use crate::retention::Horizons;
use crate::store::{
    CheckInRow, EventRow, FeedbackKind, FeedbackRow, IssueChange, LedgerKey, Packer, PayloadTable,
    SpanRow, Store, StoreError, TransactionRow, WriteBatch,
};

pub mod batch;
pub mod logs;
pub mod monitors;
pub mod runner;
pub mod sizing;
pub mod sourcemaps;
mod stored;
pub mod supervisor;
pub mod time;

use self::stored::{Payload, Scrubbers};
use self::time::Clock;
use crate::scrub::Scrubber;

/// The outcome of one batch, per message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Committed now or earlier: safe to delete from the queue.
    pub done: Vec<String>,
    /// Could not be processed; left on the queue to be retried (and eventually dead-lettered).
    pub failed: Vec<String>,
    /// Issues created or regressed by this batch, for notifications.
    pub issue_changes: Vec<IssueChange>,
    /// Why each failed message failed (message id, reason), for the dead letters.
    pub reasons: Vec<(String, String)>,
}

impl BatchOutcome {
    /// Adds another batch's outcome to this one.
    pub fn absorb(&mut self, other: BatchOutcome) {
        self.done.extend(other.done);
        self.failed.extend(other.failed);
        self.issue_changes.extend(other.issue_changes);
        self.reasons.extend(other.reasons);
    }

    fn fail(&mut self, message_id: &str, reason: String) {
        self.failed.push(message_id.to_owned());
        self.reasons.push((message_id.to_owned(), reason));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The whole batch failed to commit; every message stays on the queue.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A message whose rows are in the batch, and the claim-check key to delete once they are committed.
struct Accepted<'d> {
    delivery: &'d Delivery,
    claim: Option<String>,
}

#[derive(Clone)]
pub struct Processor {
    store: Store,
    blobs: Arc<dyn BlobStore>,
    lake: LakeWriter,
    /// How old an item's timestamps may be before they are taken as wrong ([`time`]).
    horizons: Horizons,
    /// Monitors a project may have; check-ins for new slugs past it are dropped.
    max_monitors: usize,
    /// What one batch's envelopes may add up to ([`sizing`]).
    batch_bytes: u64,
    /// Test only: panic on an envelope containing this (see [`Processor::with_panic_marker`]).
    panic_marker: Option<Arc<[u8]>>,
    /// When this processor last recorded the queue's lag (see [`Processor::note_queue_lag`]).
    lag_noted: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Symbolicates JavaScript stack traces with uploaded source maps, its parsed maps cached.
    sourcemaps: Arc<sourcemaps::SourceMaps>,
    /// How long a streamed segment's spans wait in the database after its last arrival (`span_settle`).
    span_settle: std::time::Duration,
    /// Compresses payloads with each project's trained dictionary; loaded with the first batch.
    packer: Arc<std::sync::Mutex<Option<Packer>>>,
}

/// How long a streamed segment's spans wait in the database after its last arrival, by default: SDKs send a
/// segment's spans within seconds of each other (the Node SDK flushes every 5 s and at the segment's end),
/// so an hour leaves room for retries and queue backlogs.
pub const DEFAULT_SPAN_SETTLE_SECS: u64 = 3600;

/// The queue's lag is recorded at most this often per processor: each record is a write of its own (about
/// 5 ms with the rollback journal on a local disk), and a second is finer than anyone reads it.
const LAG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Why one message was not processed.
#[derive(Debug, thiserror::Error)]
enum MessageFailure {
    #[error("{0}")]
    Malformed(String),
    #[error("claim-checked body unavailable: {0}")]
    Blob(#[from] BlobError),
    #[error("source maps unavailable: {0}")]
    SourceMaps(#[from] sourcemaps::SymbolicationError),
}

impl Processor {
    /// Lake files go to the same blob store as claim-checked bodies, under `lake/`.
    pub fn new(store: Store, blobs: Arc<dyn BlobStore>) -> Self {
        let lake = LakeWriter::new(blobs.clone());
        let sourcemaps = Arc::new(sourcemaps::SourceMaps::new(
            store.clone(),
            blobs.clone(),
            crate::artifacts::ArtifactLimits::default(),
        ));
        Self {
            sourcemaps,
            store,
            blobs,
            lake,
            horizons: Horizons::default(),
            max_monitors: crate::monitors::DEFAULT_MAX_MONITORS_PER_PROJECT,
            batch_bytes: sizing::DEFAULT_BATCH_BYTES,
            panic_marker: None,
            lag_noted: Arc::default(),
            span_settle: std::time::Duration::from_secs(DEFAULT_SPAN_SETTLE_SECS),
            packer: Arc::default(),
        }
    }

    /// The retention horizons in force (`config.retention`): timestamps older than these are replaced.
    pub fn with_horizons(mut self, horizons: Horizons) -> Self {
        self.horizons = horizons;
        self
    }

    /// The same processor keeping streamed spans in the database for `settle` after their segment's last
    /// arrival (`config.span_settle`; an hour by default), the lake alone after.
    pub fn with_span_settle(mut self, settle: std::time::Duration) -> Self {
        self.span_settle = settle;
        self
    }

    /// Segments whose spans all arrived before this time are settled.
    fn spans_settled_before(&self) -> i64 {
        let settle = i64::try_from(self.span_settle.as_micros()).unwrap_or(i64::MAX);
        chrono::Utc::now().timestamp_micros().saturating_sub(settle)
    }

    /// The same processor reading uploaded source maps within `limits` (`config.artifacts`).
    pub fn with_artifact_limits(mut self, limits: crate::artifacts::ArtifactLimits) -> Self {
        self.sourcemaps = Arc::new(sourcemaps::SourceMaps::new(
            self.store.clone(),
            self.blobs.clone(),
            limits,
        ));
        self
    }

    /// The same processor with another cap on monitors per project (`SPLAT_MAX_MONITORS_PER_PROJECT`).
    pub fn with_max_monitors(mut self, cap: usize) -> Self {
        self.max_monitors = cap;
        self
    }

    /// The same processor with another bound on the envelope bytes of one batch.
    pub fn with_batch_bytes(mut self, bytes: u64) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// What one batch's envelopes may add up to.
    pub fn batch_bytes(&self) -> u64 {
        self.batch_bytes
    }

    /// A receive's deliveries as the batches to process one after another ([`sizing::batches`]).
    pub fn batches(&self, deliveries: Vec<Delivery>) -> Vec<Vec<Delivery>> {
        sizing::batches(deliveries, self.batch_bytes)
    }

    /// For tests only (`SPLAT_TEST_PANIC_ON_MARKER`): the processor panics on any envelope whose bytes
    /// contain `marker`, which is how the tests prove a panic loses nothing. Empty means off.
    pub fn with_panic_marker(mut self, marker: Option<&str>) -> Self {
        self.panic_marker = marker
            .filter(|m| !m.is_empty())
            .map(|m| Arc::from(m.as_bytes()));
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Processes a batch. Messages are decoded one by one, then committed together; if that commit fails,
    /// each message is committed alone so that one bad message (say, rows the database refuses) fails only
    /// itself. `Err` only when the database is unusable altogether.
    pub async fn process_batch(
        &self,
        deliveries: &[Delivery],
    ) -> Result<BatchOutcome, ProcessError> {
        let keys: Vec<LedgerKey> = deliveries.iter().map(ledger_key).collect();
        let already = self.store.processed(&keys).await?;
        let projects = self.store.project_ids().await?;
        let scrubbers = Scrubbers::load(&self.store).await?;
        self.load_packer().await?;
        let mut outcome = BatchOutcome::default();
        // Each message's rows are moved into one batch as they are decoded: no copy of a whole batch of
        // payloads and spans is ever made (it cost memory and time on every batch).
        let mut whole = WriteBatch::default();
        let mut accepted: Vec<Accepted> = Vec::new();
        for delivery in deliveries {
            let id = &delivery.message_id;
            if already.contains(id) || accepted.iter().any(|a| &a.delivery.message_id == id) {
                outcome.done.push(id.clone());
                continue;
            }
            match self.message_rows(delivery, &projects, &scrubbers).await {
                Ok((part, claim)) => {
                    whole.absorb(part);
                    accepted.push(Accepted { delivery, claim });
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, receive_count = delivery.receive_count, error = %e, "message failed");
                    outcome.fail(id, e.to_string());
                }
            }
        }
        self.store
            .drop_monitors_past_cap(&mut whole.check_ins, self.max_monitors)
            .await?;
        whole.spans_settled_before = Some(self.spans_settled_before());
        let committed = match batch::commit(&self.store, &whole, Some(&self.lake)).await {
            Ok(changes) => {
                outcome.issue_changes = changes;
                accepted
            }
            Err(e) => {
                tracing::warn!(error = %e, messages = accepted.len(), "batch commit failed; committing message by message");
                drop(whole);
                let tried = accepted.len();
                let committed = self
                    .commit_each(accepted, &projects, &scrubbers, &mut outcome)
                    .await;
                if committed.is_empty() && tried > 0 {
                    // Nothing commits at all: the database is the problem, not the messages.
                    return Err(e.into());
                }
                committed
            }
        };
        for Accepted { delivery, claim } in committed {
            outcome.done.push(delivery.message_id.clone());
            // The rows are committed; a body left behind is expired by the bucket's lifecycle rule.
            if let Some(key) = claim {
                if let Err(e) = self.blobs.delete(&key).await {
                    tracing::warn!(%key, error = %e, "could not delete a claim-checked body");
                }
            }
        }
        self.train_dictionaries().await;
        Ok(outcome)
    }

    /// Loads the stored payload dictionaries before the first batch.
    async fn load_packer(&self) -> Result<(), StoreError> {
        if self.packer.lock().expect("not poisoned").is_some() {
            return Ok(());
        }
        let mut packer = Packer::default();
        for (project, table, dictionary) in self.store.payload_dictionaries().await? {
            packer.add(project, table, &dictionary);
        }
        *self.packer.lock().expect("not poisoned") = Some(packer);
        Ok(())
    }

    /// Trains the payload dictionaries that are due, from the payloads committed; one that fails to
    /// train for a database error is due again after the next batch.
    async fn train_dictionaries(&self) {
        let due = match &*self.packer.lock().expect("not poisoned") {
            Some(packer) => packer.due(),
            None => return,
        };
        for (project, table) in due {
            let trained = self.store.train_payload_dictionary(project, table).await;
            let mut packer = self.packer.lock().expect("not poisoned");
            let packer = packer.get_or_insert_with(Packer::default);
            match trained {
                Ok(Some(dictionary)) => packer.add(project, table, &dictionary),
                Ok(None) => packer.give_up(project, table),
                Err(e) => {
                    tracing::warn!(project, ?table, error = %e, "could not train a payload dictionary")
                }
            }
        }
    }

    /// Records when a batch ran and how long its oldest message had waited: on SQS, what the UI and
    /// `/_health` show in place of the queue's depth (see [`crate::queue::gauge`]). Called once the batch
    /// is done (committed and acknowledged), so that it never delays either; at most once per
    /// [`LAG_EVERY`]; never fails.
    pub async fn note_queue_lag<'d>(&self, deliveries: impl IntoIterator<Item = &'d Delivery>) {
        let Some(batch) = crate::queue::gauge::batch_of(deliveries) else {
            return;
        };
        {
            let mut noted = self.lag_noted.lock().expect("not poisoned");
            if noted.is_some_and(|at| at.elapsed() < LAG_EVERY) {
                return;
            }
            *noted = Some(std::time::Instant::now());
        }
        if let Err(e) = self.store.record_queue_batch(batch).await {
            tracing::warn!(error = %e, "could not record the batch's queue lag");
        }
    }

    /// Commits each message's rows on its own (decoding it again: this path is rare, and keeping every
    /// message's rows apart for it would cost every batch); returns the ones that committed and records
    /// the rest as failed.
    async fn commit_each<'d>(
        &self,
        accepted: Vec<Accepted<'d>>,
        projects: &HashSet<i64>,
        scrubbers: &Scrubbers,
        outcome: &mut BatchOutcome,
    ) -> Vec<Accepted<'d>> {
        let mut committed = Vec::new();
        for message in accepted {
            let id = &message.delivery.message_id;
            let result = match self
                .message_rows(message.delivery, projects, scrubbers)
                .await
            {
                Ok((mut part, _)) => self.commit_part(&mut part).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(changes) => {
                    outcome.issue_changes.extend(changes);
                    committed.push(message);
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, error = %e, "message failed to commit");
                    outcome.fail(id, e);
                }
            }
        }
        committed
    }

    /// Commits one message's rows, within the monitor cap.
    async fn commit_part(&self, part: &mut WriteBatch) -> Result<Vec<IssueChange>, StoreError> {
        self.store
            .drop_monitors_past_cap(&mut part.check_ins, self.max_monitors)
            .await?;
        batch::commit(&self.store, part, Some(&self.lake)).await
    }

    /// One message's rows (its id in the ledger included) and the claim-check key to delete once they
    /// are committed.
    async fn message_rows(
        &self,
        delivery: &Delivery,
        projects: &HashSet<i64>,
        scrubbers: &Scrubbers,
    ) -> Result<(WriteBatch, Option<String>), MessageFailure> {
        let mut part = WriteBatch {
            message_ids: vec![ledger_key(delivery)],
            ..WriteBatch::default()
        };
        let claim = self
            .add_message(&mut part, delivery, projects, scrubbers)
            .await?;
        Ok((part, claim))
    }

    /// Adds one message's rows to the batch; returns the claim-check key to delete after the commit.
    async fn add_message(
        &self,
        batch: &mut WriteBatch,
        delivery: &Delivery,
        projects: &HashSet<i64>,
        scrubbers: &Scrubbers,
    ) -> Result<Option<String>, MessageFailure> {
        let message = QueueMessage::decode(&delivery.body)
            .map_err(|e| MessageFailure::Malformed(e.to_string()))?;
        if !projects.contains(&message.project_id.value()) {
            // The project was deleted after ingest accepted this: its data goes with it.
            tracing::info!(message_id = %delivery.message_id, project = %message.project_id, "dropping a message for a deleted project");
            return Ok(None);
        }
        let (bytes, claim) = match &message.envelope {
            EnvelopeRef::Inline(bytes) => (bytes.clone(), None),
            EnvelopeRef::Blob { key, .. } => (self.blobs.get(key).await?, Some(key.clone())),
        };
        if let Some(marker) = &self.panic_marker {
            if bytes.windows(marker.len()).any(|w| w == &marker[..]) {
                panic!("test hook: the envelope contains SPLAT_TEST_PANIC_ON_MARKER");
            }
        }
        let mut envelope =
            Envelope::parse(bytes).map_err(|e| MessageFailure::Malformed(e.to_string()))?;
        // JavaScript frames get their original files, lines and names before anything reads them.
        for item in &mut envelope.items {
            if *item.ty() == ItemType::Event {
                if let Some(resolved) = self
                    .sourcemaps
                    .symbolicate(message.project_id, &item.payload)
                    .await?
                {
                    item.payload = Bytes::from(resolved);
                }
            }
        }
        let clock = Clock::new(
            message.received_at_us,
            envelope.headers.sent_at.as_deref(),
            &self.horizons,
        );
        let scrubber = scrubbers.of(message.project_id);
        let mut packer = self.packer.lock().expect("not poisoned");
        add_envelope(
            batch,
            &message,
            &delivery.message_id,
            &envelope,
            &clock,
            scrubber,
            packer.get_or_insert_with(Packer::default),
        )
        .map_err(MessageFailure::Malformed)?;
        Ok(claim)
    }
}

/// Every item of one envelope into the batch, each scrubbed by the project's rules before anything is read
/// from it. Items that fail are errors only when they are the ones ingest vouched for (events,
/// transactions, spans); the rest are counted.
fn add_envelope(
    batch: &mut WriteBatch,
    message: &QueueMessage,
    message_id: &str,
    envelope: &Envelope,
    clock: &Clock,
    scrubber: &Scrubber,
    packer: &mut Packer,
) -> Result<(), String> {
    let project = message.project_id;
    let received = message.received_at_us;
    let event_id = message
        .event_id
        .or(envelope.headers.event_id)
        .unwrap_or_else(EventId::random)
        .to_string();
    for (index, item) in envelope.items.iter().enumerate() {
        let ty = item.ty();
        match ty {
            ItemType::Event => {
                let payload = &item.payload;
                add_event(batch, project, &event_id, clock, payload, scrubber, packer)?
            }
            ItemType::Transaction => {
                let payload = &item.payload;
                add_transaction(batch, project, &event_id, clock, payload, scrubber, packer)?
            }
            ItemType::Span => add_spans(batch, project, clock, &item.payload, scrubber, packer)?,
            ItemType::CheckIn => {
                add_check_in(batch, project, received, &item.payload);
                batch.count_item(project, ty.as_str(), received, 1);
            }
            ItemType::Feedback | ItemType::UserReport => {
                // The n-th item of its message: what names a user report that names no event, the same
                // way on every delivery.
                let fallback_id = format!("{}-{index}", message.received_at_us);
                add_feedback(
                    batch,
                    project,
                    &event_id,
                    &fallback_id,
                    received,
                    item,
                    scrubber,
                )?;
                batch.count_item(project, ty.as_str(), received, 1);
            }
            ItemType::Log => {
                let origin = logs::Origin {
                    message_id,
                    item: index,
                };
                logs::add_log_item(batch, project, origin, clock, scrubber, &item.payload);
            }
            ItemType::Attachment
            | ItemType::Session
            | ItemType::Sessions
            | ItemType::ClientReport
            | ItemType::Profile
            | ItemType::ProfileChunk
            | ItemType::ReplayEvent
            | ItemType::ReplayRecording
            | ItemType::Unknown(_) => {
                // Counted now, stored by the features that use them later; the count is per item.
                let n = item.headers.item_count.map_or(1, |n| n as i64);
                batch.count_item(project, ty.as_str(), received, n);
            }
        }
    }
    Ok(())
}

/// Also how the monitor evaluation files its incidents: as events.
pub(crate) fn add_event(
    batch: &mut WriteBatch,
    project: ProjectId,
    event_id: &str,
    clock: &Clock,
    payload: &Bytes,
    scrubber: &Scrubber,
    packer: &mut Packer,
) -> Result<(), String> {
    let payload = Payload::read(payload, scrubber)?;
    let event = Event::from_value(&payload.value);
    let (timestamp_us, notes) = clock.event_timestamp(event.timestamp_us);
    let summary = EventSummary {
        timestamp_us: Some(timestamp_us),
        ..EventSummary::from_event(&event)
    };
    let grouping = grouping::group(&event);
    let tags = summary.issue_tags(&event);
    batch.events.push(EventRow {
        project_id: project,
        event_id: event_id.to_owned(),
        timestamp_us,
        received_at_us: clock.received_us(),
        grouping,
        tags,
        user_key: event.user.as_ref().and_then(|u| u.key()),
        search_text: search_text(&event),
        summary,
        payload: packer.pack(
            project.value(),
            PayloadTable::Events,
            &payload.stored(&notes),
        ),
    });
    Ok(())
}

/// What full-text search sees of an event: exception types and values, the message, and every frame's
/// function and file.
fn search_text(event: &Event) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for e in &event.exceptions {
        parts.extend(e.ty.as_deref());
        parts.extend(e.value.as_deref());
        for frame in e.stacktrace.iter().flat_map(|s| &s.frames) {
            parts.extend(frame.function.as_deref());
            parts.extend(frame.module.as_deref());
            parts.extend(frame.filename.as_deref());
        }
    }
    parts.extend(event.message.as_deref());
    model::clip(&parts.join("\n"), 64 * 1024)
}

fn add_transaction(
    batch: &mut WriteBatch,
    project: ProjectId,
    event_id: &str,
    clock: &Clock,
    payload: &Bytes,
    scrubber: &Scrubber,
    packer: &mut Packer,
) -> Result<(), String> {
    let payload = Payload::read(payload, scrubber)?;
    let (mut record, mut spans) =
        model::transaction_from_value(&payload.value, event_id).map_err(|e| e.to_string())?;
    let notes = clock.transaction(&mut record.root, &mut spans);
    let received = clock.received_us();
    let tree = SpanTree::new(&record.root, spans);
    let (perf, descriptions) = transaction::analyze(&record, &tree);
    // The root is a span too, as a streamed segment is: both shapes give the same span tree.
    let mut root = span_row(project, record.root.clone());
    (root.depth, root.sequence) = (Some(0), Some(0));
    let mut rows = vec![root];
    let children = tree.children.into_iter().zip(descriptions).zip(tree.depths);
    for (i, ((span, description), depth)) in children.enumerate() {
        // Described once, by the analysis: normalizing is the costliest step per span.
        rows.push(SpanRow {
            project_id: project,
            description,
            depth: Some(depth),
            sequence: Some(i as i32 + 1),
            span,
        });
    }
    batch.transactions.push(TransactionRow {
        project_id: project,
        event_id: Some(event_id.to_owned()),
        end_us: record.root.end_us.unwrap_or(received),
        record,
        received_at_us: received,
        source: "transaction",
        payload: Some(packer.pack(
            project.value(),
            PayloadTable::Transactions,
            &payload.stored(&notes),
        )),
        perf,
        spans: rows,
    });
    Ok(())
}

/// User feedback: a `feedback` item is the envelope's event (its id is the one ingest answered with); a
/// legacy `user_report` is known by the event it names.
fn add_feedback(
    batch: &mut WriteBatch,
    project: ProjectId,
    event_id: &str,
    fallback_id: &str,
    received: i64,
    item: &Item,
    scrubber: &Scrubber,
) -> Result<(), String> {
    // Scrubbed as events are; a feedback row keeps no payload, so there is no note to keep either.
    let payload = Payload::read(&item.payload, scrubber)?;
    let (kind, feedback) = match item.ty() {
        ItemType::UserReport => (
            FeedbackKind::UserReport,
            Feedback::from_user_report(&payload.bytes()),
        ),
        _ => (
            FeedbackKind::Feedback,
            Feedback::from_feedback_payload(&payload.bytes()),
        ),
    };
    let feedback = feedback.map_err(|e| e.to_string())?;
    let feedback_id = match kind {
        FeedbackKind::Feedback => event_id.to_owned(),
        FeedbackKind::UserReport => feedback
            .associated_event_id
            .map_or_else(|| fallback_id.to_owned(), |id| id.to_string()),
    };
    batch.feedback.push(FeedbackRow {
        project_id: project,
        kind,
        feedback_id,
        feedback,
        received_at_us: received,
    });
    Ok(())
}

/// A check-in ingest did not vouch for (queued before ingest checked them) is dropped with a warning
/// rather than failing its message: nothing could ever make it valid.
fn add_check_in(batch: &mut WriteBatch, project: ProjectId, received: i64, payload: &Bytes) {
    match CheckIn::from_payload(payload) {
        Ok(check_in) => batch.check_ins.push(CheckInRow {
            project_id: project,
            check_in,
            received_at_us: received,
        }),
        Err(e) => tracing::warn!(%project, error = %e, "dropping an invalid check-in"),
    }
}

fn span_row(project: ProjectId, span: SpanRecord) -> SpanRow {
    SpanRow {
        project_id: project,
        description: transaction::describe(&span),
        depth: None,
        sequence: None,
        span,
    }
}

fn add_spans(
    batch: &mut WriteBatch,
    project: ProjectId,
    clock: &Clock,
    payload: &Bytes,
    scrubber: &Scrubber,
    packer: &mut Packer,
) -> Result<(), String> {
    let payload = Payload::read(payload, scrubber)?;
    let mut spans = model::spans_from_v2_value(&payload.value);
    let notes = clock.streamed(&mut spans);
    let received = clock.received_us();
    for (span, notes) in spans.into_iter().zip(notes) {
        if span.is_segment {
            let record = model::transaction_from_segment(&span);
            batch.transactions.push(TransactionRow {
                project_id: project,
                event_id: None,
                end_us: span.end_us.unwrap_or(received),
                record,
                received_at_us: received,
                source: "span",
                // A streamed transaction has no payload of its own: one is made for its notes, with what
                // scrubbing did to the item it came in.
                payload: stored::notes_payload(&notes, &payload.scrubbed)
                    .map(|p| packer.pack(project.value(), PayloadTable::Transactions, &p)),
                perf: Default::default(),
                spans: Vec::new(),
            });
        }
        batch.spans.push(span_row(project, span));
    }
    Ok(())
}

/// A delivery's key in the ledger of committed messages: the queue's time for it (SQS's `SentTimestamp`; the
/// local queue keeps none, and its ids already grow) and its id.
fn ledger_key(delivery: &Delivery) -> LedgerKey {
    LedgerKey {
        sent_ms: delivery.sent_at_ms.unwrap_or(0),
        message_id: delivery.message_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_queue_lag_is_recorded_at_most_once_a_second() {
        let store = Store::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(crate::blob::LocalBlobStore::new(dir.path()));
        let processor = Processor::new(store.clone(), blobs);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let delivery = |id: &str, sent_at_ms| Delivery {
            message_id: id.into(),
            receipt: id.into(),
            receive_count: 1,
            body: b"not a splat message".to_vec(),
            sent_at_ms,
        };
        // The local queue says nothing of when it took a message: nothing is written.
        processor.note_queue_lag(&[delivery("l", None)]).await;
        assert_eq!(store.last_queue_batch().await.unwrap(), None);
        // A failed message still waited in the queue: its lag counts.
        processor
            .note_queue_lag(&[delivery("a", Some(now_ms - 5_000))])
            .await;
        let first = store.last_queue_batch().await.unwrap().unwrap();
        assert!(first.lag_ms >= 5_000, "{first:?}");
        processor
            .note_queue_lag(&[delivery("b", Some(now_ms - 60_000))])
            .await;
        assert_eq!(
            store.last_queue_batch().await.unwrap(),
            Some(first),
            "within a second of the last record, no write"
        );
    }
}
