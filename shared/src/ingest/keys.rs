//! Which project a public key belongs to, cached so that ingest does not ask per request: the database
//! (`splat serve`), or the key snapshot in the bucket (the ingest Lambda, see [`super::snapshot`]).
//! Entries live for `SPLAT_KEY_CACHE_SECS` (default 30 s): a key disabled or rotated (`splat key`, the
//! settings page) is refused within that time, and a changed quota applies within it. Lower it to cut a
//! leaked key off faster, at the cost of one key lookup per key per TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::protocol::PublicKey;
use crate::store::{KeyInfo, Store};

/// Why a key could not be looked up (as opposed to: it is unknown). Either way ingest answers 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No key has been published for ingest yet: a new stack before its first `splat project create`.
    #[error("no project keys are published yet (the bucket has no key snapshot): create a project first (`splat project create`)")]
    NotPublished,
    /// The keys could not be read (the database or the bucket failed).
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait KeyLookup: Send + Sync {
    async fn lookup(&self, key: &PublicKey) -> Result<Option<KeyInfo>, LookupError>;
}

#[async_trait]
impl KeyLookup for Store {
    async fn lookup(&self, key: &PublicKey) -> Result<Option<KeyInfo>, LookupError> {
        self.key_info(key)
            .await
            .map_err(|e| LookupError::Unavailable(e.to_string()))
    }
}

/// A TTL cache in front of another lookup. Unknown keys are cached too, so a flood of bad keys costs
/// one query per key per TTL.
pub struct CachedKeys<L> {
    inner: L,
    ttl: Duration,
    entries: Mutex<HashMap<PublicKey, (Instant, Option<KeyInfo>)>>,
}

/// Bound on cached keys; a flood of random keys resets the cache instead of growing it.
const MAX_ENTRIES: usize = 100_000;

impl<L: KeyLookup> CachedKeys<L> {
    pub fn new(inner: L, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl<L: KeyLookup> KeyLookup for CachedKeys<L> {
    async fn lookup(&self, key: &PublicKey) -> Result<Option<KeyInfo>, LookupError> {
        let now = Instant::now();
        if let Some((at, info)) = self.entries.lock().expect("poisoned").get(key) {
            if now.duration_since(*at) < self.ttl {
                return Ok(info.clone());
            }
        }
        let info = self.inner.lookup(key).await?;
        let mut entries = self.entries.lock().expect("poisoned");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.clone(), (now, info.clone()));
        Ok(info)
    }
}
