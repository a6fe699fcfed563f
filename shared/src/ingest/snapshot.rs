//! The key snapshot: every key, enabled or not, with what ingest needs of it (its project and quotas), as
//! one JSON object in the blob store at [`KEY`] (S3 in AWS, the data folder for `splat serve`). With it the
//! ingest Lambda needs no database, so it runs outside the VPC and the stack needs no SQS endpoint.
//!
//! - Writers: whatever changes keys, quotas or projects publishes after its commit ([`publishing`]: the
//!   UI's forms, `splat key …` and `splat project …`). Triggers raise [`Store::key_version`] on every such
//!   change, and the snapshot carries the version it was built at.
//! - Repair: a publish that fails after the commit (the bucket was unreachable, the CLI ran without
//!   `SPLAT_BUCKET`) is caught by the monitor tick ([`repair`], every minute): one GET of the snapshot, and
//!   a PUT only when its version differs from the database's.
//! - Reader: ingest ([`SnapshotKeys`]) reads it at most once per `SPLAT_KEY_CACHE_SECS` (a disabled key is
//!   refused within that time, as with the database), refusing an object over [`MAX_BYTES`] before holding
//!   it. While none exists (a new stack before its first project) it answers 503 with `Retry-After`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::keys::{KeyLookup, LookupError};
use crate::blob::{BlobError, BlobStore};
use crate::protocol::{DataCategory, ProjectId, PublicKey};
use crate::store::{KeyInfo, Quota, QuotaScope, Store};

/// Where the snapshot lives in the blob store.
pub const KEY: &str = "keys/snapshot.json";

/// The largest snapshot written or read: about 60,000 keys (a key with a quota or two takes ~130 bytes).
/// Ingest holds it parsed; this bounds that memory whatever the object in the bucket says.
pub const MAX_BYTES: usize = 8 << 20;

/// The layout's version; a reader refuses a newer one rather than misread it.
const FORMAT: u8 = 1;

/// How long a failed read is remembered (never longer than the TTL): on a new stack, or while the bucket
/// fails, a flood of requests costs one GET per this, not one per request.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The object as stored.
#[derive(Serialize, Deserialize)]
struct Wire {
    format: u8,
    /// [`Store::key_version`] when the keys were read: they are at least that recent.
    version: i64,
    published_at_us: i64,
    keys: BTreeMap<String, WireKey>,
}

#[derive(Serialize, Deserialize)]
struct WireKey {
    project: i64,
    /// Absent from snapshots published before slugs were: such a key then takes numeric DSNs only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    slug: String,
    enabled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quotas: Vec<WireQuota>,
}

#[derive(Serialize, Deserialize)]
struct WireQuota {
    scope: String,
    category: String,
    per_minute: u64,
}

/// Every key with what ingest needs of it, at one version of the database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub version: i64,
    keys: HashMap<PublicKey, KeyInfo>,
}

impl Snapshot {
    pub fn new(version: i64, keys: impl IntoIterator<Item = (PublicKey, KeyInfo)>) -> Self {
        Self {
            version,
            keys: keys.into_iter().collect(),
        }
    }

    pub fn get(&self, key: &PublicKey) -> Option<&KeyInfo> {
        self.keys.get(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The stored form: JSON, keys in order (the same keys give the same bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let keys = self
            .keys
            .iter()
            .map(|(key, info)| {
                let quotas = info
                    .quotas
                    .iter()
                    .map(|q| WireQuota {
                        scope: q.scope.name().to_owned(),
                        category: q.category.name().to_owned(),
                        per_minute: q.per_minute,
                    })
                    .collect();
                let wire = WireKey {
                    project: info.project_id.value(),
                    slug: info.project_slug.clone(),
                    enabled: info.enabled,
                    quotas,
                };
                (key.as_str().to_owned(), wire)
            })
            .collect();
        let wire = Wire {
            format: FORMAT,
            version: self.version,
            published_at_us: chrono::Utc::now().timestamp_micros(),
            keys,
        };
        serde_json::to_vec(&wire).expect("plain data serializes")
    }

    /// Reads the stored form. A key or quota this version cannot read is left out (the key is then
    /// unknown, and refused); a layout from a newer version is refused whole.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(bytes)
            .map_err(|e| format!("the key snapshot is not readable: {e}"))?;
        if wire.format != FORMAT {
            return Err(format!(
                "the key snapshot has format {}, this version reads {FORMAT}",
                wire.format
            ));
        }
        let keys = wire.keys.into_iter().filter_map(|(key, wire)| {
            let quotas = wire.quotas.iter().filter_map(quota).collect();
            let info = KeyInfo {
                project_id: ProjectId::new(wire.project),
                project_slug: wire.slug,
                enabled: wire.enabled,
                quotas,
            };
            Some((key.parse().ok()?, info))
        });
        Ok(Self::new(wire.version, keys))
    }
}

fn quota(wire: &WireQuota) -> Option<Quota> {
    let scope = match wire.scope.as_str() {
        "key" => QuotaScope::Key,
        "project" => QuotaScope::Project,
        _ => return None,
    };
    Some(Quota {
        scope,
        category: DataCategory::from_name(&wire.category)?,
        per_minute: wire.per_minute,
    })
}

/// Builds the snapshot from the database and writes it; returns the version written.
pub async fn publish(store: &Store, blobs: &dyn BlobStore) -> anyhow::Result<i64> {
    let (version, keys) = store.all_key_infos().await?;
    let bytes = Snapshot::new(version, keys).to_bytes();
    anyhow::ensure!(
        bytes.len() <= MAX_BYTES,
        "the key snapshot takes {} bytes, over the {MAX_BYTES} ingest reads: disable and remove unused keys",
        bytes.len()
    );
    blobs.put(KEY, Bytes::from(bytes)).await?;
    tracing::info!(version, "published the key snapshot");
    Ok(version)
}

/// Runs `change` (something that may write keys, quotas or projects) and, when it moved the key version,
/// publishes the snapshot. A failed publish is logged, never returned: the change is committed, and
/// [`repair`] publishes it on the next monitor tick.
pub async fn publishing<T>(
    store: &Store,
    blobs: &dyn BlobStore,
    change: impl Future<Output = T>,
) -> T {
    let before = store.key_version().await.ok();
    let out = change.await;
    let after = store.key_version().await.ok();
    if before.is_none() || after != before {
        if let Err(e) = publish(store, blobs).await {
            tracing::warn!(error = %e, "keys changed but the key snapshot was not published; the monitor tick will");
        }
    }
    out
}

/// Publishes the snapshot when the one in the blob store is missing, unreadable or of another version than
/// the database's keys; `true` when it did. Nothing is read or written while no key was ever made.
pub async fn repair(store: &Store, blobs: &dyn BlobStore) -> anyhow::Result<bool> {
    let version = store.key_version().await?;
    if version == 0 {
        return Ok(false);
    }
    // Any failure to read counts as stale: S3 answers a missing object with 403, not 404, to a role that
    // may not list the bucket, and a write that fails too says more than the read did.
    let published = match blobs.get_capped(KEY, MAX_BYTES).await {
        Ok(bytes) => Snapshot::parse(&bytes).ok().map(|s| s.version),
        Err(e) => {
            if !matches!(e, BlobError::NotFound(_)) {
                tracing::warn!(error = %e, "could not read the key snapshot; publishing it again");
            }
            None
        }
    };
    // Versions only grow, so a snapshot newer than the database means the database was restored.
    if published == Some(version) {
        return Ok(false);
    }
    publish(store, blobs).await?;
    Ok(true)
}

/// Keys looked up in the snapshot, read from the blob store at most once per TTL.
pub struct SnapshotKeys {
    blobs: Arc<dyn BlobStore>,
    ttl: Duration,
    /// Behind an async lock: while one request reads the snapshot, the others wait for it rather than
    /// read it too.
    current: tokio::sync::Mutex<Option<LastRead>>,
}

/// When the last read started, and what it gave.
type LastRead = (Instant, Result<Arc<Snapshot>, LookupError>);

impl SnapshotKeys {
    pub fn new(blobs: Arc<dyn BlobStore>, ttl: Duration) -> Self {
        Self {
            blobs,
            ttl,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The snapshot, read again once the last read is older than the TTL (a failed one: than
    /// [`RETRY_AFTER_FAILURE`]).
    async fn snapshot(&self) -> Result<Arc<Snapshot>, LookupError> {
        let mut current = self.current.lock().await;
        if let Some((at, result)) = &*current {
            let life = match result {
                Ok(_) => self.ttl,
                Err(_) => self.ttl.min(RETRY_AFTER_FAILURE),
            };
            if at.elapsed() < life {
                return result.clone();
            }
        }
        let started = Instant::now();
        let result = self.read().await;
        match &result {
            Ok(snapshot) => {
                tracing::debug!(
                    version = snapshot.version,
                    keys = snapshot.len(),
                    "read the key snapshot"
                )
            }
            Err(e) => tracing::warn!(error = %e, "no key snapshot"),
        }
        *current = Some((started, result.clone()));
        result
    }

    async fn read(&self) -> Result<Arc<Snapshot>, LookupError> {
        match self.blobs.get_capped(KEY, MAX_BYTES).await {
            Ok(bytes) => Snapshot::parse(&bytes)
                .map(Arc::new)
                .map_err(LookupError::Unavailable),
            Err(BlobError::NotFound(_)) => Err(LookupError::NotPublished),
            // On S3, without a list permission a missing snapshot is this too (403, not 404).
            Err(e) => Err(LookupError::Unavailable(format!(
                "could not read the key snapshot {KEY} (there is none before the first project): {e}"
            ))),
        }
    }
}

#[async_trait]
impl KeyLookup for SnapshotKeys {
    async fn lookup(&self, key: &PublicKey) -> Result<Option<KeyInfo>, LookupError> {
        Ok(self.snapshot().await?.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::blob::LocalBlobStore;

    /// The data folder's blob store, counting what is written to it.
    struct Counting {
        inner: LocalBlobStore,
        puts: AtomicUsize,
    }

    impl Counting {
        fn new(dir: &std::path::Path) -> Arc<Self> {
            Arc::new(Self {
                inner: LocalBlobStore::new(dir),
                puts: AtomicUsize::new(0),
            })
        }
        fn puts(&self) -> usize {
            self.puts.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl BlobStore for Counting {
        async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put(key, data).await
        }
        async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
            self.inner.get(key).await
        }
        async fn get_capped(&self, key: &str, max: usize) -> Result<Bytes, BlobError> {
            self.inner.get_capped(key, max).await
        }
        async fn delete(&self, key: &str) -> Result<(), BlobError> {
            self.inner.delete(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
            self.inner.list(prefix).await
        }
        async fn list_written_before(
            &self,
            prefix: &str,
            before_us: i64,
        ) -> Result<Vec<String>, BlobError> {
            self.inner.list_written_before(prefix, before_us).await
        }
        async fn list_page(
            &self,
            prefix: &str,
            after: Option<&str>,
            before_us: i64,
        ) -> Result<crate::blob::ListPage, BlobError> {
            self.inner.list_page(prefix, after, before_us).await
        }
    }

    fn sorted(mut info: KeyInfo) -> KeyInfo {
        info.quotas.sort_by_key(|q| (q.category, q.scope.name()));
        info
    }

    #[tokio::test]
    async fn what_ingest_reads_is_what_the_database_says() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(dir.path());
        let store = Store::open_in_memory().await.unwrap();
        let shop = store.create_project("Shop").await.unwrap();
        let blog = store.create_project("Blog").await.unwrap();
        let old = shop.keys[0].public_key.clone();
        let ci = store.add_key(shop.id, "ci").await.unwrap().public_key;
        store
            .set_quota(shop.id, Some(&ci), DataCategory::Span, Some(5))
            .await
            .unwrap();
        store
            .set_quota(shop.id, None, DataCategory::Error, Some(7))
            .await
            .unwrap();
        store.set_key_enabled(&old, false).await.unwrap();
        let version = publish(&store, &blobs).await.unwrap();
        assert_eq!(version, store.key_version().await.unwrap());

        let keys = SnapshotKeys::new(Arc::new(blobs), Duration::from_secs(60));
        for key in [&old, &ci, &blog.keys[0].public_key] {
            let expected = store.key_info(key).await.unwrap().unwrap();
            let got = keys.lookup(key).await.unwrap().unwrap();
            assert_eq!(sorted(got), sorted(expected), "{key}");
        }
        assert!(!keys.lookup(&old).await.unwrap().unwrap().enabled);
        assert_eq!(keys.lookup(&PublicKey::generate()).await.unwrap(), None);
        let snapshot = keys.snapshot().await.unwrap();
        assert_eq!((snapshot.version, snapshot.len()), (version, 3));
        // The stored bytes read back to the same snapshot.
        assert_eq!(Snapshot::parse(&snapshot.to_bytes()).unwrap(), *snapshot);
    }

    #[tokio::test]
    async fn missing_is_not_published_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(LocalBlobStore::new(dir.path()));
        let keys = SnapshotKeys::new(blobs.clone(), Duration::ZERO);
        let key = PublicKey::generate();
        assert_eq!(keys.lookup(&key).await, Err(LookupError::NotPublished));
        let store = Store::open_in_memory().await.unwrap();
        let project = store.create_project("p").await.unwrap();
        publish(&store, &*blobs).await.unwrap();
        let key = &project.keys[0].public_key;
        assert!(keys.lookup(key).await.unwrap().unwrap().enabled);
    }

    #[tokio::test]
    async fn a_snapshot_past_the_cap_or_unreadable_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(LocalBlobStore::new(dir.path()));
        let keys = SnapshotKeys::new(blobs.clone(), Duration::ZERO);
        blobs
            .put(KEY, Bytes::from(vec![b' '; MAX_BYTES + 1]))
            .await
            .unwrap();
        match keys.lookup(&PublicKey::generate()).await {
            Err(LookupError::Unavailable(why)) => assert!(why.contains("larger than"), "{why}"),
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"{not json"[..],
            br#"{"format":2,"version":1,"published_at_us":0,"keys":{}}"#,
        ] {
            blobs.put(KEY, Bytes::from_static(bad)).await.unwrap();
            assert!(matches!(
                keys.lookup(&PublicKey::generate()).await,
                Err(LookupError::Unavailable(_))
            ));
        }
        // A key the reader cannot take is left out, not the whole snapshot.
        let odd = br#"{"format":1,"version":3,"published_at_us":0,"keys":{
            "bad key!":{"project":1,"enabled":true},
            "good":{"project":2,"enabled":true,"quotas":[{"scope":"key","category":"error","per_minute":1},
                {"scope":"galaxy","category":"error","per_minute":1},{"scope":"key","category":"new-thing","per_minute":1}]}}}"#;
        let snapshot = Snapshot::parse(odd).unwrap();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(
            snapshot.get(&"good".parse().unwrap()).unwrap().quotas.len(),
            1
        );
    }

    #[tokio::test]
    async fn a_disabled_key_is_refused_once_the_cached_snapshot_expires() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(LocalBlobStore::new(dir.path()));
        let store = Store::open_in_memory().await.unwrap();
        let key = store.create_project("p").await.unwrap().keys[0]
            .public_key
            .clone();
        publish(&store, &*blobs).await.unwrap();
        let cached = SnapshotKeys::new(blobs.clone(), Duration::from_secs(3600));
        let fresh = SnapshotKeys::new(blobs.clone(), Duration::ZERO);
        assert!(cached.lookup(&key).await.unwrap().unwrap().enabled);
        publishing(&store, &*blobs, store.set_key_enabled(&key, false))
            .await
            .unwrap();
        assert!(
            cached.lookup(&key).await.unwrap().unwrap().enabled,
            "within the TTL"
        );
        assert!(!fresh.lookup(&key).await.unwrap().unwrap().enabled);
    }

    #[tokio::test]
    async fn only_changes_to_keys_publish_and_the_tick_repairs_what_was_missed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Counting::new(dir.path());
        let store = Store::open_in_memory().await.unwrap();
        // A new database: no key, nothing to publish, ingest keeps saying so.
        assert!(!repair(&store, &*blobs).await.unwrap());
        assert_eq!(blobs.puts(), 0);

        // A change committed without its publish (the CLI without the bucket, a failed PUT).
        let project = store.create_project("p").await.unwrap();
        assert!(repair(&store, &*blobs).await.unwrap());
        assert!(!repair(&store, &*blobs).await.unwrap(), "current: no PUT");
        assert_eq!(blobs.puts(), 1);

        // A writer publishes only when keys, quotas or projects moved.
        publishing(&store, &*blobs, store.rename_project(project.id, "q"))
            .await
            .unwrap();
        assert_eq!(blobs.puts(), 1);
        let key = project.keys[0].public_key.clone();
        publishing(
            &store,
            &*blobs,
            store.set_quota(project.id, Some(&key), DataCategory::Error, Some(3)),
        )
        .await
        .unwrap();
        assert_eq!(blobs.puts(), 2);
        assert!(!repair(&store, &*blobs).await.unwrap());

        // Every kind of change moves the version; each missed one is repaired.
        store.set_key_enabled(&key, false).await.unwrap();
        assert!(repair(&store, &*blobs).await.unwrap());
        store.rotate_key(&key).await.unwrap();
        assert!(repair(&store, &*blobs).await.unwrap());
        store.delete_project(project.id).await.unwrap();
        assert!(repair(&store, &*blobs).await.unwrap());
        let after = Snapshot::parse(&blobs.get(KEY).await.unwrap()).unwrap();
        assert!(after.is_empty(), "the project's keys went with it");
        blobs.delete(KEY).await.unwrap();
        assert!(
            repair(&store, &*blobs).await.unwrap(),
            "a deleted snapshot comes back"
        );
        assert_eq!(blobs.puts(), 6);
    }

    #[tokio::test]
    async fn a_thousand_keys_take_well_under_the_cap() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.create_project("p").await.unwrap();
        for n in 1..1000 {
            let key = store
                .add_key(project.id, &format!("key {n}"))
                .await
                .unwrap();
            if n % 2 == 0 {
                store
                    .set_quota(
                        project.id,
                        Some(&key.public_key),
                        DataCategory::Error,
                        Some(n),
                    )
                    .await
                    .unwrap();
            }
        }
        let (version, keys) = store.all_key_infos().await.unwrap();
        let bytes = Snapshot::new(version, keys).to_bytes();
        eprintln!(
            "key snapshot: {} bytes for 1,000 keys (half with a quota)",
            bytes.len()
        );
        assert!(bytes.len() * 50 < MAX_BYTES, "{} bytes", bytes.len());
    }
}
