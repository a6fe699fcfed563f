//! Blobs as files under a root directory, written atomically (temp file, fsync, rename).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{check_key, BlobError, BlobStore};

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn backend(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            let dir = path.parent().expect("keys have a parent: the root");
            crate::private_files::create_dir(dir)?;
            let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
            let mut file = crate::private_files::create_file(&tmp)?;
            std::io::Write::write_all(&mut file, &data)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
        .map_err(backend)
    }

    /// The root itself, so that storing a scratch file is a rename on the same file system; its `.tmp-`
    /// name keeps it out of listings.
    fn scratch_dir(&self) -> PathBuf {
        self.root.clone()
    }

    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let (from, to) = (path.to_owned(), self.path(key)?);
        tokio::task::spawn_blocking(move || {
            crate::private_files::create_dir(to.parent().expect("keys have a parent: the root"))?;
            std::fs::File::open(&from)?.sync_all()?;
            std::fs::rename(&from, &to)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
        .map_err(backend)
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.to_owned()))
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn get_capped(&self, key: &str, max_bytes: usize) -> Result<Bytes, BlobError> {
        use tokio::io::AsyncReadExt;
        let not_found = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => BlobError::NotFound(key.to_owned()),
            _ => backend(e),
        };
        let file = tokio::fs::File::open(self.path(key)?)
            .await
            .map_err(not_found)?;
        let stated = file.metadata().await.map_err(backend)?.len();
        if stated > max_bytes as u64 {
            return Err(BlobError::TooLarge(key.to_owned(), max_bytes));
        }
        // A file that grew since its size was read is cut off one byte past the cap and refused.
        let mut data = Vec::with_capacity(stated as usize);
        file.take(max_bytes as u64 + 1)
            .read_to_end(&mut data)
            .await
            .map_err(backend)?;
        if data.len() > max_bytes {
            return Err(BlobError::TooLarge(key.to_owned(), max_bytes));
        }
        Ok(Bytes::from(data))
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        self.list_where(prefix, |_| true).await
    }

    async fn list_written_before(
        &self,
        prefix: &str,
        before_us: i64,
    ) -> Result<Vec<String>, BlobError> {
        let before = std::time::UNIX_EPOCH
            + std::time::Duration::from_micros(u64::try_from(before_us).unwrap_or(0));
        // A file whose time cannot be read is kept: a sweep never deletes what it cannot date.
        self.list_where(prefix, move |file| {
            file.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        })
        .await
    }
}

impl LocalBlobStore {
    /// The keys under `prefix` of the files `keep` accepts, sorted.
    async fn list_where(
        &self,
        prefix: &str,
        keep: impl Fn(&std::fs::DirEntry) -> bool + Send + 'static,
    ) -> Result<Vec<String>, BlobError> {
        let root = self.root.clone();
        // Only the prefix's own folder is walked, not the whole data folder.
        let start = match prefix.rsplit_once('/') {
            Some((dir, _)) if check_key(dir).is_ok() => root.join(dir),
            _ => root.clone(),
        };
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            walk(&root, &start, &mut |key, file| {
                if key.starts_with(&prefix) && keep(file) {
                    keys.push(key);
                }
            })?;
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }
}

/// Calls `visit` with the key of each file under `dir` (temporary files of writes under way left out).
fn walk(
    root: &Path,
    dir: &Path,
    visit: &mut dyn FnMut(String, &std::fs::DirEntry),
) -> Result<(), BlobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(backend(e)),
    };
    for entry in entries {
        let entry = entry.map_err(backend)?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        if entry.file_type().map_err(backend)?.is_dir() {
            walk(root, &path, visit)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            visit(rel.to_string_lossy().replace('\\', "/"), &entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        store
            .put("a/b/one", Bytes::from_static(b"1"))
            .await
            .unwrap();
        store.put("a/two", Bytes::from_static(b"2")).await.unwrap();
        store
            .put("c/three", Bytes::from_static(b"3"))
            .await
            .unwrap();
        assert_eq!(&store.get("a/b/one").await.unwrap()[..], b"1");
        assert_eq!(store.list("a/").await.unwrap(), vec!["a/b/one", "a/two"]);
        store.delete("a/two").await.unwrap();
        store.delete("a/two").await.unwrap();
        assert!(matches!(
            store.get("a/two").await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            store.get("../etc/passwd").await,
            Err(BlobError::InvalidKey(_))
        ));
    }

    #[tokio::test]
    async fn a_scratch_file_is_moved_into_place_unlisted_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let scratch = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(store.scratch_dir())
            .unwrap();
        std::fs::write(scratch.path(), b"parquet").unwrap();
        assert!(store.list("").await.unwrap().is_empty());
        store
            .put_file("lake/x/y.parquet", scratch.path())
            .await
            .unwrap();
        assert_eq!(
            &store.get("lake/x/y.parquet").await.unwrap()[..],
            b"parquet"
        );
        assert!(!scratch.path().exists(), "moved, not copied");
        assert_eq!(store.list("").await.unwrap(), vec!["lake/x/y.parquet"]);
    }

    #[tokio::test]
    async fn lists_what_was_written_before_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        for key in ["c/old", "c/new", "d/old"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        let two_days_ago =
            std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for key in ["c/old", "d/old"] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(key))
                .unwrap();
            file.set_modified(two_days_ago).unwrap();
        }
        let a_day_ago = chrono::Utc::now().timestamp_micros() - 86_400_000_000;
        assert_eq!(
            store.list_written_before("c/", a_day_ago).await.unwrap(),
            vec!["c/old"]
        );
        assert!(store
            .list_written_before("e/", a_day_ago)
            .await
            .unwrap()
            .is_empty());
    }
}
