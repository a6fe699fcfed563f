//! Object storage: S3 in AWS, a directory locally. Holds claim-checked envelopes now and lake files later.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

pub mod local;
#[cfg(feature = "aws")]
pub mod s3;

pub use local::LocalBlobStore;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0:?} not found")]
    NotFound(String),
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    #[error("blob {0:?} is larger than {1} bytes")]
    TooLarge(String, usize),
    #[error("blob store: {0}")]
    Backend(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `data` under `key`, replacing what was there; durable when it returns.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError>;
    /// Where an object too large to hold in memory is written, piece by piece, before
    /// [`BlobStore::put_file`] stores it (a compacted lake file): by default the system's temporary folder.
    fn scratch_dir(&self) -> PathBuf {
        std::env::temp_dir()
    }
    /// Stores the complete file at `path` (made in [`BlobStore::scratch_dir`]) under `key`, without holding
    /// it in memory where the store can (a local store moves it, S3 streams it); the file may be gone after.
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let data = tokio::fs::read(path)
            .await
            .map_err(|e| BlobError::Backend(e.to_string()))?;
        self.put(key, Bytes::from(data)).await
    }
    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;
    /// [`BlobStore::get`] of an object that must not exceed `max_bytes`: a larger one is refused
    /// ([`BlobError::TooLarge`]) from its stated size, and reading stops past the cap, before it is held.
    async fn get_capped(&self, key: &str, max_bytes: usize) -> Result<Bytes, BlobError>;
    /// Deleting a missing key is not an error: deletes are retried under at-least-once delivery.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;
    /// Keys under `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError>;
    /// Deletes the temporary files of writes that never finished (a process killed while writing a file
    /// or merging lake files) last written before `before_us`; how many. Only a store that keeps them
    /// where they outlive the process has any: S3's scratch is the instance's own `/tmp`, and an upload
    /// never completed is aborted by the bucket's lifecycle rule.
    async fn delete_abandoned_scratch(&self, _before_us: i64) -> Result<u64, BlobError> {
        Ok(0)
    }
    /// Keys under `prefix` last written before `before_us` (µs since the Unix epoch), sorted: what a sweep
    /// of objects left behind (chunks of an upload never assembled) may delete.
    async fn list_written_before(
        &self,
        prefix: &str,
        before_us: i64,
    ) -> Result<Vec<String>, BlobError>;
    /// [`BlobStore::list_written_before`] a page at a time, for listings too large to hold: the keys after
    /// `after` (from the first when `None`), sorted, at most a page (S3: one request's 1,000 keys; a local
    /// store: up to 10,000 keys of one folder). Continue after [`ListPage::next`] until it is `None`.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        before_us: i64,
    ) -> Result<ListPage, BlobError>;
}

/// One page of a listing: the keys it kept, and the last key it looked at (kept or not: a page may keep
/// none of its keys) when more may follow.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// Keys are relative paths of plain segments: never absolute, never `..`, never empty segments.
pub fn check_key(key: &str) -> Result<(), BlobError> {
    let ok = !key.is_empty()
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(check_key("ingest/2026/abc.envelope").is_ok());
        assert!(check_key("lake/main/events/project_id=1/x.parquet").is_ok());
        for bad in ["", "/abs", "a/../b", "a//b", "..", "a/./b", "a\\b", "a b"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
