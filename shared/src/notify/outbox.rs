//! The alert outbox: in AWS the processor and the monitor tick run in a VPC with no way to the internet
//! (a NAT gateway would cost ~$32 a month idle), so they do not deliver alerts. Each alert, decided and
//! formatted data included (kind, issue, project, link), becomes one JSON object under [`PREFIX`] in the
//! bucket, which the VPC reaches for free through its S3 gateway endpoint. S3 announces the object to the
//! notify function, outside the VPC, which reads it ([`take`]), delivers it to the channels and deletes it.
//!
//! Failure and duplicates, by design:
//! - No channel took the alert: the object stays and [`take`] fails, so Lambda's asynchronous retries (two,
//!   minutes apart) try again. An object still there afterwards waits for the bucket's lifecycle rule; an
//!   operator can resend it by copying it onto itself (a new ObjectCreated event).
//! - S3 delivers its events at least once: a second event for an object already delivered finds it gone
//!   and does nothing. Two events handled at the very same moment could both deliver: one alert twice,
//!   never none.
//! - An object the function cannot read (too big, not an alert: a newer writer, a hand-made object) is
//!   refused, logged and left for the lifecycle rule: retrying would not make it readable.

use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;

use super::{Alert, Channels, RetryPolicy};
use crate::blob::{check_key, BlobError, BlobStore};

/// Where alerts wait in the bucket. The template's notification filter, lifecycle rule and IAM policies
/// name the same prefix.
pub const PREFIX: &str = "alerts/";
/// An alert is a few KiB (titles and names are bounded upstream); anything larger is not one of ours.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024;

/// Writes alerts into the bucket. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    blobs: Arc<dyn BlobStore>,
}

impl Outbox {
    pub fn new(blobs: Arc<dyn BlobStore>) -> Self {
        Self { blobs }
    }

    /// Puts the alert in the outbox; returns its key.
    pub async fn put(&self, alert: &Alert) -> anyhow::Result<String> {
        let body = serde_json::to_vec(alert).context("encoding the alert")?;
        let key = format!(
            "{PREFIX}{}-{}-{:016x}.json",
            chrono::Utc::now().timestamp_micros(),
            alert.issue.id,
            rand::random::<u64>()
        );
        self.blobs.put(&key, Bytes::from(body)).await?;
        Ok(key)
    }
}

/// What became of one outbox object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Delivered to this many channels, and deleted.
    Delivered(usize),
    /// Gone already: delivered after an earlier event for the same object.
    Gone,
    /// Not an alert this function can read; left in place.
    Refused(String),
}

/// Reads the object `key` (announced at `size` bytes), delivers the alert in it to `channels` and deletes
/// it. Fails (so that the invocation is retried) when the store cannot be read or no channel took it.
pub async fn take(
    blobs: &dyn BlobStore,
    channels: &Channels,
    retry: RetryPolicy,
    key: &str,
    size: u64,
) -> anyhow::Result<Taken> {
    if !key.starts_with(PREFIX) || check_key(key).is_err() {
        return Ok(Taken::Refused("not a key of the alert outbox".into()));
    }
    if size > MAX_OBJECT_BYTES {
        return Ok(Taken::Refused(format!(
            "{size} bytes, over the {MAX_OBJECT_BYTES} an alert may have"
        )));
    }
    let body = match blobs.get(key).await {
        Ok(body) => body,
        Err(BlobError::NotFound(_)) => return Ok(Taken::Gone),
        Err(e) => return Err(e).context("reading the alert"),
    };
    let alert = match decode(&body) {
        Ok(alert) => alert,
        Err(why) => return Ok(Taken::Refused(why)),
    };
    let took = channels.deliver(&alert, retry).await;
    anyhow::ensure!(
        took > 0,
        "no channel took the alert about issue {}; it stays in the outbox",
        alert.issue.id
    );
    // Deleted once any channel took it: retrying for the others would repeat it on those that did.
    if let Err(e) = blobs.delete(key).await {
        tracing::warn!(%key, error = %e, "alert delivered but not deleted; the lifecycle rule will");
    }
    Ok(Taken::Delivered(took))
}

/// The alert in an outbox object; the reason when it is none (the size is checked again: the announced
/// one is S3's word, the body is what arrived).
pub fn decode(body: &[u8]) -> Result<Alert, String> {
    if body.len() as u64 > MAX_OBJECT_BYTES {
        return Err(format!(
            "{} bytes, over the {MAX_OBJECT_BYTES} an alert may have",
            body.len()
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("not an alert: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::LocalBlobStore;
    use crate::notify::message::tests::alert;
    use crate::notify::AlertKind;

    fn no_retry() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            backoff: std::time::Duration::ZERO,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn an_alert_goes_in_whole_and_comes_out_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path().to_owned()));
        let mut sent = alert(
            AlertKind::Burst {
                events: 1200,
                hour: 1_764_000_000,
            },
            "ValueError: ünïcode \"quoted\"",
        );
        // A webhook saved on the settings page travels with the alert, its URL whole.
        let saved = "https://chat.googleapis.com/v1/spaces/A/messages?key=k&token=SEKRIT";
        sent.webhooks = vec![crate::notify::Webhook::new("chat", None, saved).unwrap()];
        let key = Outbox::new(blobs.clone()).put(&sent).await.unwrap();
        assert!(key.starts_with(PREFIX) && key.ends_with(".json") && check_key(&key).is_ok());
        let body = blobs.get(&key).await.unwrap();
        let back = decode(&body).unwrap();
        assert_eq!(back.kind, sent.kind);
        assert_eq!(back.issue, sent.issue);
        assert_eq!(back.project, sent.project);
        assert_eq!(back.url, sent.url);
        // What every channel shows is the same on both sides.
        use crate::notify::message;
        assert_eq!(message::text(&back), message::text(&sent));
        for format in crate::notify::Format::ALL {
            assert_eq!(format.body(&back), format.body(&sent));
            assert!(!format.body(&back).to_string().contains("SEKRIT"));
        }
        assert_eq!(back.webhooks, sent.webhooks);
        assert_eq!(back.webhooks[0].url.expose(), saved);
        assert_eq!(back.environment.as_deref(), Some("production"));
    }

    #[test]
    fn what_is_not_an_alert_is_refused_without_panic() {
        for body in [
            &b""[..],
            b"{",
            b"null",
            b"{\"kind\":{\"type\":\"exploded\"}}",
            b"[1,2,3]",
            &[0xff, 0xfe, 0x00][..],
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(decode(deep.as_bytes()).is_err());
        let big = vec![b' '; MAX_OBJECT_BYTES as usize + 1];
        assert!(decode(&big).unwrap_err().contains("over the"));
    }

    #[tokio::test]
    async fn keys_outside_the_outbox_and_oversized_objects_are_refused_before_any_read() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(dir.path().to_owned());
        let channels = Channels::from_config(&Default::default()).unwrap();
        for (key, size) in [
            ("ingest/x.envelope", 10),
            ("alerts/../lake/x", 10),
            ("alerts/a%20b.json", 10),
            ("alerts/big.json", MAX_OBJECT_BYTES + 1),
        ] {
            let taken = take(&blobs, &channels, no_retry(), key, size)
                .await
                .unwrap();
            assert!(matches!(taken, Taken::Refused(_)), "{key}: {taken:?}");
        }
        // An object already delivered (and deleted): nothing to do, no error.
        let taken = take(&blobs, &channels, no_retry(), "alerts/gone.json", 10)
            .await
            .unwrap();
        assert_eq!(taken, Taken::Gone);
        // Undeliverable (no channel): an error, and the object stays for the retry.
        let key = Outbox::new(Arc::new(LocalBlobStore::new(dir.path().to_owned())))
            .put(&alert(AlertKind::Created, "boom"))
            .await
            .unwrap();
        assert!(take(&blobs, &channels, no_retry(), &key, 100)
            .await
            .is_err());
        assert!(blobs.get(&key).await.is_ok());
    }
}
