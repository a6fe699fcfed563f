//! The Lambda side: the processor's SQS handler with partial batch responses, the scheduled jobs, and the
//! HTTP functions' wait for a migrated database. (The routers are the same axum routers
//! as `splat serve`'s.)

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use base64::Engine;

use crate::notify::Notifier;
use crate::process::supervisor::catching;
use crate::process::{BatchOutcome, ProcessError, Processor};
use crate::queue::Delivery;

/// The longest a batch's alerts may hold the processor function after its commit.
pub const NOTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn delivery(message: &SqsMessage) -> Option<Delivery> {
    Some(Delivery {
        message_id: message.message_id.clone()?,
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1),
        // The SQS adapter sends base64 (queue bodies are binary); anything else is passed on to fail as malformed.
        body: message
            .body
            .as_deref()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .unwrap_or_else(|_| b.as_bytes().to_vec())
            })
            .unwrap_or_default(),
        sent_at_ms: message
            .attributes
            .get("SentTimestamp")
            .and_then(|n| n.parse().ok()),
    })
}

/// Handles one SQS batch. Failed messages are returned as `batchItemFailures` (the trigger must enable
/// `ReportBatchItemFailures`); SQS deletes the rest. If the batch cannot be committed at all, every message
/// is reported so that none is lost.
///
/// Records SQS delivered before (`ApproximateReceiveCount` above 1) were in an invocation that did not
/// finish, a panic among the possible causes: each is processed alone first, its panic caught and only it
/// reported, so a record that panics every time reaches the dead-letter queue alone instead of taking its
/// batch-mates with it. (A panic among first deliveries fails the invocation; SQS redelivers them all.)
/// The others are committed in batches bounded by their envelopes' bytes ([`Processor::batches`]).
///
/// After the commit, alerts for the batch's new and regressed issues (and any burst) are sent right here,
/// within [`NOTIFY_DEADLINE`]: nothing runs between invocations. Their failures are logged and never fail
/// the batch.
pub async fn handle_sqs_event(
    processor: &Processor,
    notifier: Option<&Notifier>,
    event: SqsEvent,
) -> SqsBatchResponse {
    let deliveries: Vec<Delivery> = event.records.iter().filter_map(delivery).collect();
    let batches = processor.batches(deliveries);
    let mut outcome = BatchOutcome::default();
    for batch in &batches {
        let suspect = &batch[0];
        if suspect.receive_count <= 1 {
            let result = processor.process_batch(batch).await;
            outcome.absorb(committed_or_all_failed(result, batch));
            continue;
        }
        match catching(processor.process_batch(batch)).await {
            Ok(result) => outcome.absorb(committed_or_all_failed(result, batch)),
            Err(panic) => {
                tracing::error!(message_id = %suspect.message_id, panic = %panic, "a redelivered message panicked the processor");
                outcome.failed.push(suspect.message_id.clone());
            }
        }
    }
    processor.note_queue_lag(batches.iter().flatten()).await;
    if let Some(notifier) = notifier {
        notifier
            .deliver_changes(&outcome.issue_changes, NOTIFY_DEADLINE)
            .await;
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcome.failed.into_iter().map(failure).collect();
    response
}

/// Everything the processor function is invoked with: SQS batches from its trigger, and the scheduler's
/// per-minute monitor tick. The tick belongs to the single writer (it turns missed check-ins into issues),
/// and it starts the processor, which applies pending migrations at init, within a minute of a deploy
/// even when no event arrives: the other functions wait for that ([`run_http_when_ready`]). A long
/// migration it leaves to the migrate job, and holds everything until that has run ([`MigrationGate`]).
pub async fn handle_processor_event(
    processor: &Processor,
    notifier: Option<&Notifier>,
    scheduled: &ScheduledContext<'_>,
    gate: &MigrationGate,
    event: serde_json::Value,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    let tick = event.get("Records").is_none();
    if tick {
        match ScheduledJob::of(&event)? {
            ScheduledJob::Monitors => {}
            ScheduledJob::Retention | ScheduledJob::Migrate => {
                return Err("this job runs in the retention function, not the processor".into())
            }
        }
    }
    let pending = gate.pending(scheduled.store).await;
    if pending > 0 {
        tracing::warn!(
            pending,
            "migrations are pending for the migrate job: holding this invocation's work"
        );
        if tick {
            return Ok(serde_json::json!({ "job": "monitors", "held": pending }));
        }
        let batch: SqsEvent = serde_json::from_value(event)?;
        return Ok(serde_json::to_value(all_failed(&batch))?);
    }
    if tick {
        return handle_scheduled_event(scheduled, &event).await;
    }
    let batch: SqsEvent = serde_json::from_value(event)?;
    Ok(serde_json::to_value(
        handle_sqs_event(processor, notifier, batch).await,
    )?)
}

/// Whether the processor's schema is complete. A processor that opened the database with
/// [`Migrate::UntilLong`](crate::store::Migrate) may have left migrations to the migrate job (the
/// retention function, every few minutes, with 15 minutes to run them). Until they are applied it
/// processes nothing: every message of a batch is reported failed and comes back after the queue's
/// visibility timeout, and the monitor tick is skipped. That holds messages for `MaxReceiveCount`
/// visibility timeouts (70 minutes with the template's defaults) before the dead-letter queue, well past
/// the job's schedule plus its run. The processor cannot do more from inside its VPC: pausing its
/// trigger would need the Lambda API, which is not reachable there without an endpoint billed by the hour.
#[derive(Debug, Default)]
pub struct MigrationGate {
    complete: std::sync::atomic::AtomicBool,
}

impl MigrationGate {
    /// The migrations still pending, checked until once there are none. A check that fails (the migrate
    /// job holds the database's lock) counts as pending.
    pub async fn pending(&self, store: &crate::store::Store) -> usize {
        use std::sync::atomic::Ordering;
        if self.complete.load(Ordering::Relaxed) {
            return 0;
        }
        match store.pending_migrations().await {
            Ok(0) => {
                self.complete.store(true, Ordering::Relaxed);
                0
            }
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "could not check the pending migrations");
                1
            }
        }
    }
}

/// The migrate job: every pending migration, long ones included, then the schema version reached and the
/// migrations still pending (a migration in parts that `deadline` stopped: the next run goes on). With
/// nothing pending it is a read of the applied versions; with no database file yet, nothing (the
/// processor creates it).
pub async fn migrate_job(
    config: &crate::config::Config,
    deadline: crate::retention::Deadline,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    if config.remote_database.is_none() && !config.database_path.exists() {
        let skipped = "no database yet: the processor creates it";
        return Ok(serde_json::json!({ "job": "migrate", "skipped": skipped }));
    }
    let scope = crate::store::Migrate::AllBy(deadline);
    let store = crate::wiring::open_store_migrating(config, scope).await?;
    Ok(serde_json::json!({
        "job": "migrate",
        "schema_version": store.schema_version().await?,
        "pending": store.pending_migrations().await?,
    }))
}

/// Every message of the batch back to the queue.
fn all_failed(batch: &SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = batch
        .records
        .iter()
        .filter_map(|m| m.message_id.clone())
        .map(failure)
        .collect();
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

/// Serves the router `build` makes, built at the first request that finds the database ready rather than
/// at init. Only the processor and the migrate job migrate; a UI or MCP function that starts first (a
/// fresh stack, or a deploy whose new code starts before the processor's) answers 503 with the reason and
/// `Retry-After` instead of failing its init over and over, and serves once the schema has caught up.
pub async fn run_http_when_ready<F, Fut>(build: F) -> Result<(), lambda_http::Error>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<axum::Router>> + Send,
{
    use tower::ServiceExt;
    let ready = std::sync::Arc::new(tokio::sync::OnceCell::<axum::Router>::new());
    let build = std::sync::Arc::new(build);
    lambda_http::run(tower::service_fn(move |request: lambda_http::Request| {
        let (ready, build) = (ready.clone(), build.clone());
        async move {
            match ready.get_or_try_init(|| build()).await {
                Ok(router) => router.clone().oneshot(request).await,
                Err(e) => Ok(not_ready(&e)),
            }
        }
    }))
    .await
}

/// The answer while the database is not ready. The reason goes to the log only: this answer is given
/// before any origin-secret, sign-in or token check.
fn not_ready(e: &anyhow::Error) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::warn!(error = %format!("{e:#}"), "not serving yet");
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "10")],
        "Splat is starting: the database is not ready yet (it is being created or migrated)\n",
    )
        .into_response()
}

/// A batch's outcome; when nothing could be committed, every one of its messages failed.
fn committed_or_all_failed(
    result: Result<BatchOutcome, ProcessError>,
    deliveries: &[Delivery],
) -> BatchOutcome {
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "batch commit failed; returning every message to the queue");
        BatchOutcome {
            failed: deliveries.iter().map(|d| d.message_id.clone()).collect(),
            ..BatchOutcome::default()
        }
    })
}

/// What a scheduled invocation asks for: the input's `job` (an EventBridge target's constant input), or
/// the `job` in a scheduled event's `detail`; a plain scheduled event means retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledJob {
    /// Daily: the database and the lake back within their horizons.
    Retention,
    /// Every minute: cron monitors whose check-in is missed, failed or overrunning become issues, and a
    /// stale key snapshot is published again ([`crate::ingest::snapshot::repair`]).
    Monitors,
    /// Every few minutes, in the retention function: the pending migrations the processor left to it
    /// ([`migrate_job`]).
    Migrate,
}

impl ScheduledJob {
    pub fn of(event: &serde_json::Value) -> Result<Self, String> {
        let job = event
            .get("job")
            .or_else(|| event.get("detail").and_then(|d| d.get("job")));
        match job.map(|j| j.as_str()) {
            None | Some(Some("retention")) => Ok(Self::Retention),
            Some(Some("monitors")) => Ok(Self::Monitors),
            Some(Some("migrate")) => Ok(Self::Migrate),
            Some(Some(other)) => Err(format!("unknown scheduled job {other:?}")),
            Some(None) => Err("the scheduled job must be a string".into()),
        }
    }
}

/// What the scheduled function works with.
pub struct ScheduledContext<'a> {
    pub store: &'a crate::store::Store,
    pub blobs: &'a std::sync::Arc<dyn crate::blob::BlobStore>,
    pub horizons: &'a crate::retention::Horizons,
    /// Where alerts about monitor issues go, when any channel is configured.
    pub notifier: Option<&'a Notifier>,
    /// When a retention run stops starting new work ([`retention_deadline`] of the invocation).
    pub deadline: crate::retention::Deadline,
}

/// What a retention run keeps of the invocation's time for the merge in hand when the deadline passes
/// (at most `MAX_COMPACTED_ROWS` rows, fetched and written) and for recording its report.
pub const RETENTION_MARGIN: std::time::Duration = std::time::Duration::from_secs(90);

/// The deadline of a retention run in an invocation that must end by `end`: [`RETENTION_MARGIN`] before.
pub fn retention_deadline(end: std::time::SystemTime) -> crate::retention::Deadline {
    let left = end
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(RETENTION_MARGIN);
    crate::retention::Deadline::at(std::time::Instant::now() + left)
}

/// Handles one scheduled invocation; the answer (what the run did) lands in the function's log and in
/// the invocation result.
pub async fn handle_scheduled_event(
    cx: &ScheduledContext<'_>,
    event: &serde_json::Value,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    match ScheduledJob::of(event)? {
        ScheduledJob::Retention => {
            let report =
                crate::retention::run_and_record(cx.store, cx.blobs, cx.horizons, cx.deadline)
                    .await?;
            Ok(serde_json::json!({ "job": "retention", "report": report }))
        }
        ScheduledJob::Migrate => {
            Err("the migrate job opens its own writer: see `migrate_job`".into())
        }
        ScheduledJob::Monitors => {
            // The tick is also the repair of a key snapshot whose publish failed after its commit.
            let keys_republished = crate::ingest::snapshot::repair(cx.store, &**cx.blobs)
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not check the key snapshot");
                    false
                });
            let lake = crate::lake::LakeWriter::new(cx.blobs.clone());
            let now = chrono::Utc::now().timestamp_micros();
            let outcome = crate::process::monitors::evaluate(cx.store, Some(&lake), now).await?;
            if let Some(notifier) = cx.notifier {
                notifier
                    .deliver_changes(&outcome.issue_changes, NOTIFY_DEADLINE)
                    .await;
            }
            Ok(serde_json::json!({
                "job": "monitors",
                "missed": outcome.missed,
                "failed": outcome.failed,
                "overrun": outcome.overrun,
                "recovered": outcome.recovered,
                "keys_republished": keys_republished,
            }))
        }
    }
}

/// The notifier of the processor, which alerts after each batch and each monitor tick. With `SPLAT_ALERT_OUTBOX` (the template's way) it puts alerts in the bucket's
/// outbox for the notify function; otherwise it delivers them itself when a channel is configured (which
/// needs a way to the internet), with short retries: the invocation's time is the batch's or the tick's.
/// `None` when neither.
///
/// It opens a connection of its own: the notifier never waits inside SQLite (see
/// [`crate::store::Store::never_wait_in_sqlite`]), which must not change the processor's connection.
/// That open migrates no further than the processor's own (a long migration is the migrate job's).
pub async fn lambda_notifier(config: &crate::config::Config) -> anyhow::Result<Option<Notifier>> {
    if !config.notify.alert_outbox && !config.notify.any_channel() {
        return Ok(None);
    }
    let ui_base = config.public_url.clone().unwrap_or_default();
    let store =
        crate::wiring::open_store_migrating(config, crate::store::Migrate::UntilLong).await?;
    if config.notify.alert_outbox {
        let outbox = crate::notify::outbox::Outbox::new(crate::wiring::blob_store(config).await?);
        let sink = crate::notify::Sink::Outbox(outbox);
        return Ok(Some(Notifier::with_sink(
            &config.notify,
            store,
            sink,
            &ui_base,
        )));
    }
    Ok(
        Notifier::from_config(&config.notify, store, &ui_base)?.map(|n| {
            n.with_retry(crate::notify::RetryPolicy {
                attempts: 3,
                backoff: std::time::Duration::from_millis(300),
                timeout: std::time::Duration::from_secs(3),
            })
        }),
    )
}

/// The blob store of a bucket, by name.
pub type BucketOpener =
    Box<dyn Fn(&str) -> std::sync::Arc<dyn crate::blob::BlobStore> + Send + Sync>;

/// What the notify function works with: the channels, and the bucket each event names. The function learns
/// its bucket from S3's events rather than from its environment: naming the bucket there would close a
/// circle in the template (bucket -> notification -> function -> bucket). Its role may read and delete
/// under `alerts/` of the stack's bucket only, so an event about another bucket gets nothing.
pub struct AlertSender {
    pub open_bucket: BucketOpener,
    pub channels: crate::notify::Channels,
}

impl AlertSender {
    /// S3 buckets through the configured client, and the channels `config` turns on.
    pub async fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let s3 = crate::aws::clients(config).await.s3;
        Ok(Self {
            open_bucket: Box::new(move |name| {
                std::sync::Arc::new(crate::blob::s3::S3BlobStore::new(s3.clone(), name))
            }),
            channels: crate::notify::Channels::from_config(&config.notify)?,
        })
    }
}

/// The part of an S3 event notification the notify function reads (`Records[].s3.bucket.name`,
/// `.object.key`, `.object.size`); anything else in it is ignored.
#[derive(Debug, serde::Deserialize)]
pub struct S3Event {
    #[serde(rename = "Records", default)]
    pub records: Vec<S3Record>,
}

#[derive(Debug, serde::Deserialize)]
pub struct S3Record {
    pub s3: S3Entity,
}

#[derive(Debug, serde::Deserialize)]
pub struct S3Entity {
    pub bucket: S3Bucket,
    pub object: S3Object,
}

#[derive(Debug, serde::Deserialize)]
pub struct S3Bucket {
    pub name: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct S3Object {
    /// URL-encoded by S3; outbox keys have no character that encoding changes, so an encoded one is refused.
    pub key: String,
    #[serde(default)]
    pub size: u64,
}

/// Handles the S3 events of new outbox objects: each alert delivered and its object deleted (see
/// [`crate::notify::outbox`]). Fails when an alert could not be delivered, after trying every record, so
/// that Lambda retries the event; the records already delivered are gone by then and are skipped.
pub async fn handle_alert_objects(
    cx: &AlertSender,
    event: S3Event,
) -> Result<serde_json::Value, lambda_runtime::Error> {
    use crate::notify::outbox::{take, Taken};
    let retry = crate::notify::RetryPolicy::default();
    let (mut delivered, mut gone, mut refused, mut failed) = (0, 0, 0, Vec::new());
    for record in &event.records {
        let (bucket, key) = (&record.s3.bucket.name, &record.s3.object.key);
        let blobs = (cx.open_bucket)(bucket);
        match take(&*blobs, &cx.channels, retry, key, record.s3.object.size).await {
            Ok(Taken::Delivered(_)) => delivered += 1,
            Ok(Taken::Gone) => gone += 1,
            Ok(Taken::Refused(why)) => {
                tracing::error!(%key, %why, "outbox object refused; left for the lifecycle rule");
                refused += 1;
            }
            Err(e) => {
                tracing::error!(%key, error = format!("{e:#}"), "alert not delivered; the event will be retried");
                failed.push(key.clone());
            }
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} alert(s) not delivered: {}",
            failed.len(),
            failed.join(", ")
        )
        .into());
    }
    Ok(serde_json::json!({ "delivered": delivered, "gone": gone, "refused": refused }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An S3 event notification as AWS documents it (notification format 2.1).
    const PUT_EVENT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
        "eventTime":"2026-12-05T21:00:00.000Z","eventName":"ObjectCreated:Put",
        "userIdentity":{"principalId":"AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters":{"sourceIPAddress":"127.0.0.1"},
        "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3":{"s3SchemaVersion":"1.0","configurationId":"alerts","bucket":{"name":"stack-bucket",
        "ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::stack-bucket"},
        "object":{"key":"KEY","size":SIZE,"eTag":"d41d8cd98f00b204e9800998ecf8427e","sequencer":"0055AED6DCD90281E5"}}}]}"#;

    fn event(key: &str, size: u64) -> S3Event {
        let json = PUT_EVENT
            .replace("KEY", key)
            .replace("SIZE", &size.to_string());
        serde_json::from_str(&json).unwrap()
    }

    fn sender(dir: &std::path::Path) -> AlertSender {
        let dir = dir.to_owned();
        AlertSender {
            open_bucket: Box::new(move |name| {
                assert_eq!(name, "stack-bucket");
                std::sync::Arc::new(crate::blob::LocalBlobStore::new(dir.clone()))
            }),
            channels: crate::notify::Channels::default(),
        }
    }

    #[test]
    fn s3_events_and_s3s_test_event_parse() {
        let parsed = event("alerts/1-2-3.json", 812);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].s3.bucket.name, "stack-bucket");
        assert_eq!(parsed.records[0].s3.object.key, "alerts/1-2-3.json");
        assert_eq!(parsed.records[0].s3.object.size, 812);
        // What S3 may send when a notification is set up: no records, nothing to do.
        let test: S3Event = serde_json::from_str(
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-05T21:00:00.000Z","Bucket":"stack-bucket"}"#,
        )
        .unwrap();
        assert!(test.records.is_empty());
    }

    #[tokio::test]
    async fn refused_and_gone_objects_answer_and_an_undeliverable_one_fails_the_invocation() {
        let dir = tempfile::tempdir().unwrap();
        let cx = sender(dir.path());
        for (key, size) in [("ingest/x.envelope", 10), ("alerts/a%2Fb.json", 10)] {
            let answer = handle_alert_objects(&cx, event(key, size)).await.unwrap();
            assert_eq!(answer["refused"], 1, "{key}");
        }
        let answer = handle_alert_objects(&cx, event("alerts/gone.json", 10))
            .await
            .unwrap();
        assert_eq!(answer["gone"], 1);
        // A good alert with no channel to take it: the invocation fails, so that Lambda retries it.
        let blobs: std::sync::Arc<dyn crate::blob::BlobStore> =
            std::sync::Arc::new(crate::blob::LocalBlobStore::new(dir.path().to_owned()));
        let alert = crate::notify::message::tests::alert(crate::notify::AlertKind::Created, "boom");
        let key = crate::notify::outbox::Outbox::new(blobs)
            .put(&alert)
            .await
            .unwrap();
        let failed = handle_alert_objects(&cx, event(&key, 900)).await;
        assert!(failed.unwrap_err().to_string().contains(&key));
    }
}
