//! Log records into the batch: a `log` item's records (and, through the same [`add_records`], the records
//! OpenTelemetry logs become), checked, their timestamps kept to the logs' horizon, each keyed by where it
//! came from so that a redelivery writes nothing twice.
//!
//! A record refused (not an object, no timestamp, body or level, a trace id that is not one) is counted
//! under `log_refused` with a warning naming the first reason; the item's other records are kept, and
//! the message never fails for it: nothing could ever make such a record valid.

use md5::{Digest, Md5};

use crate::lake::LogFact;
use crate::model::log::{self, LogRecord};
use crate::protocol::ProjectId;
use crate::scrub::Scrubber;
use crate::store::{LogRow, WriteBatch};

use super::time::Clock;

/// Where a message's records come from: the queue's id for the message (the same on every redelivery)
/// and the item's position in it.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub message_id: &'a str,
    pub item: usize,
}

/// One `log` item's records into the batch, each scrubbed by the project's rules.
pub(super) fn add_log_item(
    batch: &mut WriteBatch,
    project: ProjectId,
    origin: Origin<'_>,
    clock: &Clock,
    scrubber: &Scrubber,
    payload: &[u8],
) {
    let item = match log::logs_from_payload(payload) {
        Ok(item) => item,
        Err(e) => log::LogItem {
            records: Vec::new(),
            refused: vec![e.to_string()],
        },
    };
    add_records(batch, project, origin, clock, scrubber, item);
}

/// Records (and the reasons for those refused) into the batch.
pub(crate) fn add_records(
    batch: &mut WriteBatch,
    project: ProjectId,
    origin: Origin<'_>,
    clock: &Clock,
    scrubber: &Scrubber,
    item: log::LogItem,
) {
    let received = clock.received_us();
    if let Some(first) = item.refused.first() {
        tracing::warn!(%project, refused = item.refused.len(), reason = %first, "log records refused");
        batch.count_item(project, "log_refused", received, item.refused.len() as i64);
    }
    batch.count_item(project, "log", received, item.records.len() as i64);
    batch.logs.reserve(item.records.len());
    let item_key = item_key(origin);
    for record in item.records {
        batch
            .logs
            .push(prepare(project, item_key, clock, scrubber, record));
    }
}

/// The one place a record becomes a row: scrubbed first (its body and attributes, as an event's payload,
/// with the fields scrubbed named in a `splat.processing_notes` attribute, never their values), then its
/// its timestamp clamped, its promoted attributes, the text a search looks in. (The store gives it its id,
/// from its item's key and its place among the item's records.)
fn prepare(
    project: ProjectId,
    item_key: u64,
    clock: &Clock,
    scrubber: &Scrubber,
    mut record: LogRecord,
) -> LogRow {
    let mut scrubbed = scrubber.attributes(&mut record.attributes);
    scrubbed.absorb(scrubber.text(&mut record.body));
    if !scrubbed.is_empty() {
        let notes = serde_json::to_string(&scrubbed.notes()).unwrap_or_default();
        record.attributes.insert(
            "splat.processing_notes".into(),
            serde_json::json!({"type": "string", "value": notes}),
        );
    }
    let (timestamp_us, moved) = clock.log_timestamp(record.timestamp_us);
    if moved.is_some() {
        // What the SDK sent is kept beside what is stored, as an event's processing notes keep it.
        let sent = crate::model::time::Ts(record.timestamp_us).iso();
        record.attributes.insert(
            "splat.sdk_timestamp".into(),
            serde_json::json!({"type": "string", "value": sent}),
        );
    }
    let promoted = |key: &str| record.attribute_str(key).map(str::to_owned);
    let (environment, release, sdk_name) = (
        promoted("sentry.environment"),
        promoted("sentry.release"),
        promoted("sentry.sdk.name"),
    );
    let attributes = record.attributes_json();
    let text = log::searchable_text(&record.body, &record.attributes)
        .map(|t| t.into_owned())
        .collect();
    LogRow {
        log: LogFact {
            project_id: project.value(),
            timestamp_us,
            log_id: String::new(),
            trace_id: record.trace_id,
            span_id: record.span_id,
            level: record.level,
            severity_number: record.severity_number,
            body: record.body,
            environment,
            release,
            sdk_name,
            attributes,
        },
        received_at_us: clock.received_us(),
        origin: item_key,
        text,
    }
}

/// An item's key, the same for the same item of the same message on every delivery.
fn item_key(origin: Origin<'_>) -> u64 {
    let mut hash = Md5::new();
    hash.update(origin.message_id.as_bytes());
    hash.update([0]);
    hash.update((origin.item as u64).to_le_bytes());
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_780_000_000_000_000;

    /// The scrubber every project starts with.
    fn defaults() -> Scrubber {
        Scrubber::new(&crate::scrub::ScrubSettings::default())
    }

    fn rows(payload: serde_json::Value, message_id: &str) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let origin = Origin {
            message_id,
            item: 0,
        };
        let bytes = payload.to_string();
        add_log_item(
            &mut batch,
            ProjectId::new(1),
            origin,
            &Clock::at(NOW),
            &defaults(),
            bytes.as_bytes(),
        );
        batch
    }

    #[test]
    fn records_are_scrubbed_before_they_are_stored_and_say_what_was() {
        let batch = rows(
            json!({"items": [{"timestamp": NOW as f64 / 1e6, "level": "info",
                "body": "login with password=hunter2 done",
                "attributes": {"db.password": {"type": "string", "value": "s3cret"},
                               "user.id": {"type": "integer", "value": 7}}}]}),
            "m",
        );
        let log = &batch.logs[0].log;
        assert_eq!(log.body, "login with password=[Filtered] done");
        let stored = &log.attributes;
        assert!(
            !stored.contains("hunter2") && !stored.contains("s3cret"),
            "{stored}"
        );
        assert!(
            stored.contains("[Filtered]") && stored.contains("\"value\":7"),
            "{stored}"
        );
        assert!(
            stored.contains("splat.processing_notes") && stored.contains("db.password"),
            "{stored}"
        );
    }

    #[test]
    fn records_are_keyed_by_their_message_and_clamped() {
        let payload = json!({"items": [
            {"timestamp": NOW as f64 / 1e6, "level": "info", "body": "a",
             "attributes": {"sentry.environment": {"type": "string", "value": "prod"}}},
            {"timestamp": 1.0, "level": "error", "body": "ancient"},
            {"level": "info"}
        ]});
        let batch = rows(payload.clone(), "m1");
        assert_eq!(batch.logs.len(), 2);
        let (a, b) = (&batch.logs[0].log, &batch.logs[1].log);
        assert_eq!(a.environment.as_deref(), Some("prod"));
        assert_eq!(
            b.timestamp_us, NOW,
            "a record past the horizon lands on the received time"
        );
        assert!(b.attributes.contains("splat.sdk_timestamp"));
        assert_eq!(batch.logs[0].origin, batch.logs[1].origin, "one item");
        let again = rows(payload.clone(), "m1");
        assert_eq!(
            again.logs[0].origin, batch.logs[0].origin,
            "a redelivery has the same key"
        );
        assert_ne!(rows(payload, "m2").logs[0].origin, batch.logs[0].origin);
        let counts: Vec<(String, i64)> = batch
            .item_counts
            .iter()
            .map(|(k, n)| (k.item_type.clone(), *n))
            .collect();
        assert_eq!(
            counts,
            [("log".to_owned(), 2), ("log_refused".to_owned(), 1)]
        );
    }

    /// The same records committed twice (a batch committed again, past the ledger: say two processors
    /// took the same redelivered message) are written once, in the database and in the lake.
    #[tokio::test]
    async fn a_batch_committed_twice_writes_its_records_once() {
        use std::sync::Arc;
        let store = crate::store::Store::open_in_memory().await.unwrap();
        let project = store.create_project("logs").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn crate::blob::BlobStore> =
            Arc::new(crate::blob::LocalBlobStore::new(dir.path()));
        let lake = crate::lake::LakeWriter::new(blobs.clone());
        let mut batch = WriteBatch::default();
        let now = chrono::Utc::now().timestamp_micros();
        let payload = json!({"items": [
            {"timestamp": now as f64 / 1e6, "level": "info", "body": "one", "trace_id": "ab".repeat(16)},
            {"timestamp": now as f64 / 1e6, "level": "warn", "body": "two"}
        ]})
        .to_string();
        let origin = Origin {
            message_id: "m",
            item: 0,
        };
        add_log_item(
            &mut batch,
            project.id,
            origin,
            &Clock::at(now),
            &defaults(),
            payload.as_bytes(),
        );
        for _ in 0..2 {
            super::super::batch::commit(&store, &batch, Some(&lake))
                .await
                .unwrap();
        }
        let rows = store
            .search_logs(
                project.id.value(),
                &crate::store::LogQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let files = blobs.list("lake/main/logs/").await.unwrap();
        assert_eq!(
            files.len(),
            1,
            "the second commit wrote no lake file: {files:?}"
        );
        let trace = store
            .trace_logs(project.id.value(), &"ab".repeat(16), None, 10)
            .await
            .unwrap();
        assert_eq!(trace.len(), 1);
        let found = store
            .log_by_id(project.id.value(), &trace[0].log_id)
            .await
            .unwrap();
        assert_eq!(found.as_ref().map(|l| l.body.as_str()), Some("one"));
        // Retention deletes what is past the horizon, and only that (to the millisecond).
        assert_eq!(store.delete_logs_before(now).await.unwrap(), 0);
        assert_eq!(store.delete_logs_before(now + 1_000).await.unwrap(), 2);
    }

    #[test]
    fn an_item_that_is_not_an_object_is_refused_without_failing() {
        let mut batch = WriteBatch::default();
        let origin = Origin {
            message_id: "m",
            item: 3,
        };
        add_log_item(
            &mut batch,
            ProjectId::new(1),
            origin,
            &Clock::at(NOW),
            &defaults(),
            b"[]",
        );
        assert!(batch.logs.is_empty());
        assert_eq!(batch.item_counts.values().sum::<i64>(), 1);
    }
}
