//! The AWS adapters against a real AWS-API emulator (moto, started by `tests/run`, which sets
//! `SPLAT_TEST_AWS_ENDPOINT`): SQS and S3 through the SDK, ingest → SQS → processor → libSQL, and the S3
//! claim check for envelopes too large for a queue message.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use bytes::Bytes;
use serde_json::json;
use splat::aws::AwsClients;
use splat::blob::s3::S3BlobStore;
use splat::blob::{BlobError, BlobStore};
use splat::process::runner::{run_once, RunnerOptions};
use splat::process::Processor;
use splat::queue::sqs::SqsQueue;
use splat::queue::{EnvelopeRef, Queue, QueueMessage};
use splat_tests::*;
use tower::ServiceExt;

const NEEDS: &str = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT";

async fn clients() -> AwsClients {
    let endpoint = std::env::var("SPLAT_TEST_AWS_ENDPOINT").expect(NEEDS);
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(endpoint)
        .load()
        .await;
    AwsClients::from_shared(&shared, true)
}

/// A fresh bucket and a queue whose messages go to a dead-letter queue after `max_receives`.
async fn resources(aws: &AwsClients, name: &str, max_receives: u32) -> (String, String, String) {
    let unique = format!("{name}-{}", uuid_like());
    aws.s3.create_bucket().bucket(&unique).send().await.unwrap();
    let dlq = aws
        .sqs
        .create_queue()
        .queue_name(format!("{unique}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives.to_string()})
            .to_string();
    let queue = aws
        .sqs
        .create_queue()
        .queue_name(&unique)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (unique, queue, dlq)
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test]
#[ignore = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT"]
async fn sqs_queue_sends_receives_deletes_and_dead_letters() {
    let aws = clients().await;
    let (_, url, dlq) = resources(&aws, "sqs-adapter", 2).await;
    let queue = SqsQueue::new(aws.sqs.clone(), &url);
    for n in 0..3 {
        queue
            .send(format!("message {n}").into_bytes())
            .await
            .unwrap();
    }
    assert_eq!(queue.depth().await.unwrap(), 3);
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(queue.receive(10, Duration::from_secs(1)).await.unwrap());
    }
    let mut bodies: Vec<_> = got
        .iter()
        .map(|d| String::from_utf8(d.body.clone()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["message 0", "message 1", "message 2"]);
    assert!(got.iter().all(|d| d.receive_count == 1));
    // Acknowledge two; the third is never acknowledged and must end in the DLQ after two receives.
    queue
        .delete(&[got[0].receipt.clone(), got[1].receipt.clone()])
        .await
        .unwrap();
    let poison = got[2].message_id.clone();
    let dead = SqsQueue::new(aws.sqs.clone(), &dlq);
    let mut seen = 1;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        seen += queue.receive(10, Duration::ZERO).await.unwrap().len();
        if dead.depth().await.unwrap() == 1 {
            break;
        }
    }
    let dead_letters = dead.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        dead_letters
            .iter()
            .map(|d| d.message_id.clone())
            .collect::<Vec<_>>(),
        vec![poison],
        "after {seen} receives"
    );
    assert_eq!(queue.depth().await.unwrap(), 0);
}

#[tokio::test]
#[ignore = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT"]
async fn s3_blob_store_round_trip() {
    let aws = clients().await;
    let (bucket, _, _) = resources(&aws, "s3-adapter", 5).await;
    let blobs = S3BlobStore::new(aws.s3.clone(), &bucket);
    let data = Bytes::from(vec![7u8; 300_000]);
    blobs
        .put("lake/main/a/one.bin", data.clone())
        .await
        .unwrap();
    blobs
        .put("lake/main/b/two.bin", Bytes::from_static(b"2"))
        .await
        .unwrap();
    blobs
        .put("ingest/x.envelope", Bytes::from_static(b"3"))
        .await
        .unwrap();
    assert_eq!(blobs.get("lake/main/a/one.bin").await.unwrap(), data);
    // A capped read (the key snapshot ingest reads): whole at the cap, refused one byte under it.
    assert_eq!(
        blobs
            .get_capped("lake/main/a/one.bin", data.len())
            .await
            .unwrap(),
        data
    );
    assert!(matches!(
        blobs
            .get_capped("lake/main/a/one.bin", data.len() - 1)
            .await,
        Err(BlobError::TooLarge(_, _))
    ));
    assert!(matches!(
        blobs.get_capped("keys/none.json", 10).await,
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(
        blobs.list("lake/").await.unwrap(),
        vec!["lake/main/a/one.bin", "lake/main/b/two.bin"]
    );
    // The sweep's listing by age (S3's LastModified): written before a minute from now, not an hour ago.
    let now = chrono::Utc::now().timestamp_micros();
    assert_eq!(
        blobs
            .list_written_before("lake/main/a/", now + 60_000_000)
            .await
            .unwrap(),
        vec!["lake/main/a/one.bin"]
    );
    assert!(blobs
        .list_written_before("lake/", now - 3_600_000_000)
        .await
        .unwrap()
        .is_empty());
    blobs.delete("lake/main/a/one.bin").await.unwrap();
    blobs.delete("lake/main/a/one.bin").await.unwrap();
    assert!(matches!(
        blobs.get("lake/main/a/one.bin").await,
        Err(BlobError::NotFound(_))
    ));
    assert!(matches!(
        blobs.put("../escape", Bytes::new()).await,
        Err(BlobError::InvalidKey(_))
    ));
}

#[tokio::test]
#[ignore = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT"]
async fn ingest_to_sqs_to_processor_with_an_s3_claim_check() {
    let aws = clients().await;
    let (bucket, url, _) = resources(&aws, "pipeline", 5).await;
    let local = TestApp::new().await;
    let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(aws.sqs.clone(), &url));
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(aws.s3.clone(), &bucket));
    let reader = splat::store::Store::open(&local.config.database_path)
        .await
        .unwrap();
    let router = splat::ingest::router(splat::wiring::ingest_state(
        &local.config,
        reader,
        queue.clone(),
        blobs.clone(),
    ));

    // A small event travels inline; one with a 400 KB attachment is too big for an SQS message, even
    // compressed (the attachment is noise: a repeated letter would shrink into one message).
    let small = event_envelope(&event_id(1), &json!({"message": "small"}));
    let attachment = noise(400_000);
    let big = format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"big\"}}\n{{\"type\":\"attachment\",\"length\":{},\"filename\":\"a.txt\"}}\n{attachment}\n",
        event_id(2),
        attachment.len()
    );
    for body in [small, big.into_bytes()] {
        let req = http::Request::post(local.envelope_url())
            .header("content-encoding", "gzip")
            .body(axum::body::Body::from(gzip(&body)))
            .unwrap();
        let reply = Reply::read(router.clone().oneshot(req).await.unwrap()).await;
        assert_eq!(reply.status, 200, "{}", reply.error());
    }
    assert_eq!(
        blobs.list("ingest/").await.unwrap().len(),
        1,
        "the big envelope was claim-checked"
    );

    let processor = Processor::new(local.store.clone(), blobs.clone());
    let options = RunnerOptions {
        batch_size: 10,
        wait: Duration::from_secs(1),
        ..RunnerOptions::default()
    };
    let mut done = 0;
    for _ in 0..10 {
        done += run_once(&processor, queue.as_ref(), &options)
            .await
            .unwrap()
            .done
            .len();
        if done == 2 {
            break;
        }
    }
    assert_eq!(done, 2);
    let titles = local
        .query_strings("SELECT title FROM events ORDER BY event_id")
        .await;
    assert_eq!(
        titles,
        vec![
            vec![Some("small".to_string())],
            vec![Some("big".to_string())]
        ]
    );
    assert_eq!(
        local
            .store
            .item_count(local.project.id, "attachment")
            .await
            .unwrap(),
        1
    );
    assert!(
        blobs.list("ingest/").await.unwrap().is_empty(),
        "claim-checked body deleted after the commit"
    );
    assert_eq!(queue.depth().await.unwrap(), 0);
    // The lake file went to S3, under the key the catalog registered, and holds both events.
    let registered = local
        .query_strings("SELECT path, record_count FROM ducklake_data_file WHERE table_id = 3")
        .await;
    let [row] = registered.as_slice() else {
        panic!("one events file expected: {registered:?}")
    };
    let key = format!("lake/main/events/{}", row[0].as_deref().unwrap());
    assert_eq!(
        blobs.list("lake/main/events/").await.unwrap(),
        std::slice::from_ref(&key)
    );
    let file = blobs.get(&key).await.unwrap();
    let rows: usize = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!((rows, row[1].as_deref()), (2, Some("2")));
}

#[tokio::test]
#[ignore = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT"]
async fn a_claim_check_whose_body_is_missing_fails_only_that_message() {
    let aws = clients().await;
    let (bucket, url, _) = resources(&aws, "missing-blob", 5).await;
    let local = TestApp::new().await;
    let queue = SqsQueue::new(aws.sqs.clone(), &url);
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(aws.s3.clone(), &bucket));
    let lost = QueueMessage {
        project_id: local.project.id,
        event_id: None,
        received_at_us: 0,
        envelope: EnvelopeRef::Blob {
            key: "ingest/gone.envelope".into(),
            bytes: 1_000,
        },
    };
    queue.send(lost.encode()).await.unwrap();
    let processor = Processor::new(local.store.clone(), blobs);
    let outcome = run_once(
        &processor,
        &queue,
        &RunnerOptions {
            batch_size: 10,
            wait: Duration::from_secs(1),
            ..RunnerOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((outcome.done.len(), outcome.failed.len()), (0, 1));
    assert_eq!(
        queue.depth().await.unwrap(),
        1,
        "left on the queue to be retried"
    );
}

/// `len` letters and digits that do not compress (xorshift: no dependency for a test's noise).
fn noise(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs an AWS emulator: tests/run starts moto and sets SPLAT_TEST_AWS_ENDPOINT"]
async fn s3_orphans_go_folder_by_folder_over_paged_listings() {
    let aws = clients().await;
    let (bucket, _, _) = resources(&aws, "orphans", 5).await;
    let local = TestApp::new().await;
    let blobs = S3BlobStore::new(aws.s3.clone(), &bucket);
    crate::retention::orphans_go_folder_by_folder(&local, &blobs).await;
}
