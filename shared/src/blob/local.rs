//! Blobs as files under a root directory, written atomically (temp file, fsync, rename).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{check_key, BlobError, BlobStore, ListPage};

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

    /// The `.tmp-` files anywhere under the root (a write's, in its key's folder; a merge's, in the root)
    /// last written before `before_us`: a write in progress keeps its file's time recent.
    async fn delete_abandoned_scratch(&self, before_us: i64) -> Result<u64, BlobError> {
        let root = self.root.clone();
        let before = std::time::UNIX_EPOCH
            + std::time::Duration::from_micros(u64::try_from(before_us).unwrap_or(0));
        tokio::task::spawn_blocking(move || {
            let mut deleted = 0;
            delete_scratch_under(&root, before, &mut deleted)?;
            Ok(deleted)
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
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
        self.list_where(prefix, written_before(before_us)).await
    }

    /// A page is what follows `after` in the first folder (in key order) that holds any of it, up to the
    /// folder's first subfolder and at most `LOCAL_PAGE` keys: never the whole tree's names, nor a large
    /// folder's.
    async fn list_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        before_us: i64,
    ) -> Result<ListPage, BlobError> {
        let (root, start) = (self.root.clone(), self.start_of(prefix));
        let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
        let keep = written_before(before_us);
        tokio::task::spawn_blocking(move || {
            let within = Within {
                root: &root,
                prefix: &prefix,
                after: after.as_deref(),
                keep: &keep,
            };
            Ok(match within.page(&start)? {
                Some((keys, last)) => ListPage {
                    keys,
                    next: Some(last),
                },
                None => ListPage::default(),
            })
        })
        .await
        .map_err(|e| BlobError::Backend(e.to_string()))?
    }
}

/// Whether a file was last written before `before_us`. A file whose time cannot be read is left out: a
/// sweep never deletes what it cannot date.
fn written_before(before_us: i64) -> impl Fn(&Path) -> bool + Send + 'static {
    let before = std::time::UNIX_EPOCH
        + std::time::Duration::from_micros(u64::try_from(before_us).unwrap_or(0));
    move |file| {
        std::fs::metadata(file)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < before)
    }
}

/// Files a local page holds at most. Each page reads its folder's names again (a day of the soak's tiny
/// files, 125,000 in one folder, takes 13 reads) and keeps the first this many after where it starts, so a
/// page's keys stay about a megabyte, whatever the folder.
const LOCAL_PAGE: usize = 10_000;

/// One page's search: keys under `prefix` after `after` that `keep` accepts.
struct Within<'a> {
    root: &'a Path,
    prefix: &'a str,
    after: Option<&'a str>,
    keep: &'a dyn Fn(&Path) -> bool,
}

impl Within<'_> {
    /// The first page under `dir`, in key order: the kept keys and the last key looked at, or `None` when
    /// nothing under `dir` follows `after`. A folder's key ends with `/`, so it sorts among the files as
    /// the keys inside it do; a page ends before a subfolder.
    fn page(&self, dir: &Path) -> Result<Option<(Vec<String>, String)>, BlobError> {
        let (mut dirs, mut files) = (Vec::new(), std::collections::BinaryHeap::new());
        for entry in read_dir(dir)? {
            let entry = entry.map_err(backend)?;
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                continue;
            }
            let Some(mut key) = self.key_of(&entry.path()) else {
                continue;
            };
            if entry.file_type().map_err(backend)?.is_dir() {
                key.push('/');
                // A folder before `after` may still hold keys after it: those that start with its key.
                let follows = self
                    .after
                    .is_none_or(|a| key.as_str() > a || a.starts_with(&key));
                let may_match = key.starts_with(self.prefix) || self.prefix.starts_with(&key);
                if follows && may_match {
                    dirs.push(key);
                }
            } else if key.starts_with(self.prefix) && self.after.is_none_or(|a| key.as_str() > a) {
                // The page's first files: the greatest leaves the heap once it holds more.
                files.push(key);
                if files.len() > LOCAL_PAGE {
                    files.pop();
                }
            }
        }
        dirs.sort_unstable();
        let mut dirs = dirs.into_iter().peekable();
        let (mut keys, mut last) = (Vec::new(), None);
        for file in files.into_sorted_vec() {
            while let Some(sub) = dirs.next_if(|d| *d < file) {
                if last.is_some() {
                    return Ok(last.map(|last| (keys, last)));
                }
                if let Some(page) = self.page(&self.root.join(sub))? {
                    return Ok(Some(page));
                }
            }
            if (self.keep)(&self.root.join(&file)) {
                keys.push(file.clone());
            }
            last = Some(file);
        }
        if last.is_none() {
            for sub in dirs {
                if let Some(page) = self.page(&self.root.join(sub))? {
                    return Ok(Some(page));
                }
            }
        }
        Ok(last.map(|last| (keys, last)))
    }

    fn key_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.root).ok()?;
        Some(rel.to_string_lossy().replace('\\', "/"))
    }
}

/// A folder's entries, read as they come; a missing folder has none.
fn read_dir(
    dir: &Path,
) -> Result<impl Iterator<Item = std::io::Result<std::fs::DirEntry>>, BlobError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries).into_iter().flatten()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None.into_iter().flatten()),
        Err(e) => Err(backend(e)),
    }
}

impl LocalBlobStore {
    /// Where a listing of `prefix` starts: the prefix's own folder, not the whole data folder.
    fn start_of(&self, prefix: &str) -> PathBuf {
        match prefix.rsplit_once('/') {
            Some((dir, _)) if check_key(dir).is_ok() => self.root.join(dir),
            _ => self.root.clone(),
        }
    }

    /// The keys under `prefix` of the files `keep` accepts, sorted.
    async fn list_where(
        &self,
        prefix: &str,
        keep: impl Fn(&Path) -> bool + Send + 'static,
    ) -> Result<Vec<String>, BlobError> {
        let (root, start) = (self.root.clone(), self.start_of(prefix));
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

/// Deletes the `.tmp-` files under `dir` last modified before `before`, counting them in `deleted`.
fn delete_scratch_under(
    dir: &Path,
    before: std::time::SystemTime,
    deleted: &mut u64,
) -> Result<(), BlobError> {
    for entry in read_dir(dir)? {
        let entry = entry.map_err(backend)?;
        let kind = entry.file_type().map_err(backend)?;
        if kind.is_dir() {
            delete_scratch_under(&entry.path(), before, deleted)?;
        } else if kind.is_file() && entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|m| m < before);
            if gone_or(old)? == Some(true) && gone_or(std::fs::remove_file(entry.path()))?.is_some()
            {
                *deleted += 1;
            }
        }
    }
    Ok(())
}

/// `None` when the file is gone (its writer renamed it into place or deleted it meanwhile).
fn gone_or<T>(result: std::io::Result<T>) -> Result<Option<T>, BlobError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(backend(e)),
    }
}

/// Calls `visit` with the key of each file under `dir` (temporary files of writes under way left out).
fn walk(root: &Path, dir: &Path, visit: &mut dyn FnMut(String, &Path)) -> Result<(), BlobError> {
    for entry in read_dir(dir)? {
        let entry = entry.map_err(backend)?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        if entry.file_type().map_err(backend)?.is_dir() {
            walk(root, &path, visit)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            visit(rel.to_string_lossy().replace('\\', "/"), &path);
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

    /// Scratch files a killed process left (a write's in its key's folder, a merge's in the root) go once
    /// they are old; a young one (a write under way) and every stored file stay.
    #[tokio::test]
    async fn abandoned_scratch_files_are_deleted_once_old() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        store
            .put("lake/a/b.parquet", Bytes::from_static(b"kept"))
            .await
            .unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7_200);
        let file = |path: &str, modified: std::time::SystemTime| {
            let path = dir.path().join(path);
            std::fs::write(&path, b"half").unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(modified).unwrap();
            path
        };
        let abandoned = [
            file(".tmp-merge", two_hours_ago),
            file("lake/a/.tmp-write", two_hours_ago),
        ];
        let under_way = file("lake/a/.tmp-under-way", std::time::SystemTime::now());
        let stored_long_ago = file("lake/a/c.parquet", two_hours_ago);

        let an_hour_ago = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
        assert_eq!(
            store.delete_abandoned_scratch(an_hour_ago).await.unwrap(),
            2
        );
        assert!(abandoned.iter().all(|p| !p.exists()));
        assert!(under_way.exists() && stored_long_ago.exists());
        assert_eq!(store.list("lake/").await.unwrap().len(), 2);
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

    #[tokio::test]
    async fn lists_a_folder_at_a_time_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        // `a/b.x` sorts before `a/b/` ('.' < '/'), and `a/b/` before `a/c`.
        for key in ["a/c", "a/b/2", "a/b/1", "a/b.x", "a/d/e/3", "z/9"] {
            store.put(key, Bytes::from_static(b"x")).await.unwrap();
        }
        std::fs::write(dir.path().join("a/b/.tmp-upload"), b"half").unwrap();
        let later = chrono::Utc::now().timestamp_micros() + 60_000_000;
        let mut pages = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list_page("a/", after.as_deref(), later)
                .await
                .unwrap();
            pages.push(page.keys);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let expected: [&[&str]; 5] = [&["a/b.x"], &["a/b/1", "a/b/2"], &["a/c"], &["a/d/e/3"], &[]];
        assert_eq!(pages, expected);
        // Files written after the cutoff are looked at but not kept: the page says where to go on.
        let page = store.list_page("a/", Some("a/b.x"), 0).await.unwrap();
        assert!(page.keys.is_empty());
        assert_eq!(page.next.as_deref(), Some("a/b/2"));
    }

    #[tokio::test]
    async fn a_folder_larger_than_a_page_is_listed_a_page_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path());
        let folder = dir.path().join("lake/day");
        std::fs::create_dir_all(&folder).unwrap();
        // Written in no particular order, as a folder's names come back.
        let count = LOCAL_PAGE + 50;
        for i in (0..count).rev() {
            std::fs::write(
                folder.join(format!("{:05}.parquet", (i * 7_919) % count)),
                b"",
            )
            .unwrap();
        }
        std::fs::create_dir(folder.join("sub")).unwrap();
        std::fs::write(folder.join("sub/last.parquet"), b"").unwrap();
        let later = chrono::Utc::now().timestamp_micros() + 60_000_000;
        let (mut seen, mut sizes, mut after) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let page = store
                .list_page("lake/", after.as_deref(), later)
                .await
                .unwrap();
            sizes.push(page.keys.len());
            seen.extend(page.keys);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(sizes, [LOCAL_PAGE, 50, 1, 0]);
        assert_eq!(seen, store.list("lake/").await.unwrap());
    }
}
