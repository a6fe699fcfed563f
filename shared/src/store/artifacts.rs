//! Artifact bundles (sentry-cli's source bundles) and the index symbolication looks them up by: a
//! file's debug id, or its release, dist and URL. The bundles themselves live in the blob store.

use crate::protocol::ProjectId;

use super::{now_us, Result, Store, StoreError};

/// What a file in a bundle is (the manifest's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    MinifiedSource,
    SourceMap,
    Source,
    /// Any other type the manifest names (indexed, never looked up).
    Other,
}

impl ArtifactKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::MinifiedSource => "minified_source",
            Self::SourceMap => "source_map",
            Self::Source => "source",
            Self::Other => "other",
        }
    }

    pub fn from_name(name: &str) -> Self {
        match name {
            "minified_source" => Self::MinifiedSource,
            "source_map" => Self::SourceMap,
            "source" => Self::Source,
            _ => Self::Other,
        }
    }
}

/// One file of a bundle, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Its path inside the zip.
    pub path: String,
    /// `~/static/app.min.js` or a full URL.
    pub url: String,
    pub kind: ArtifactKind,
    /// The `debug-id` header, lowercased.
    pub debug_id: Option<String>,
    /// The `sourcemap` header: the map a minified file names (relative to its URL, or absolute).
    pub sourcemap: Option<String>,
}

/// A new bundle to index.
#[derive(Debug, Clone)]
pub struct NewBundle<'a> {
    pub project: ProjectId,
    pub checksum: &'a str,
    pub release: &'a str,
    pub dist: &'a str,
    pub blob_key: &'a str,
    pub bytes: i64,
    pub files: &'a [ArtifactFile],
}

/// Where a looked-up file is: its bundle's id and blob, and the file as indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundArtifact {
    pub bundle_id: i64,
    pub blob_key: String,
    pub file: ArtifactFile,
}

const FOUND_COLUMNS: &str = "b.id, b.blob_key, f.path, f.url, f.kind, f.debug_id, f.sourcemap";

fn found(row: &libsql::Row) -> Result<FoundArtifact> {
    let kind: String = row.get(4)?;
    Ok(FoundArtifact {
        bundle_id: row.get(0)?,
        blob_key: row.get(1)?,
        file: ArtifactFile {
            path: row.get(2)?,
            url: row.get(3)?,
            kind: ArtifactKind::from_name(&kind),
            debug_id: row.get(5)?,
            sourcemap: row.get(6)?,
        },
    })
}

impl Store {
    /// Whether the project has the bundle with this checksum already (an upload then needs no chunks).
    pub async fn has_artifact_bundle(&self, project: ProjectId, checksum: &str) -> Result<bool> {
        Ok(self
            .scalar(
                "SELECT count(*) FROM artifact_bundles WHERE project_id = ?1 AND checksum = ?2",
                (project.value(), checksum),
            )
            .await?
            > 0)
    }

    /// Indexes a bundle stored in the blob store, with its files, in one transaction. Assembling the same
    /// bundle again (a retried upload) changes nothing.
    pub async fn insert_artifact_bundle(&self, bundle: &NewBundle<'_>) -> Result<()> {
        let tx = self.conn().transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO artifact_bundles (project_id, checksum, release, dist, blob_key, bytes, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (project_id, checksum) DO NOTHING",
                (
                    bundle.project.value(),
                    bundle.checksum,
                    bundle.release,
                    bundle.dist,
                    bundle.blob_key,
                    bundle.bytes,
                    now_us(),
                ),
            )
            .await?;
        if inserted == 0 {
            return Ok(());
        }
        let id = tx.last_insert_rowid();
        for file in bundle.files {
            tx.execute(
                "INSERT INTO artifact_files (bundle_id, path, url, kind, debug_id, sourcemap) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (bundle_id, path) DO NOTHING",
                (
                    id,
                    file.path.as_str(),
                    file.url.as_str(),
                    file.kind.name(),
                    file.debug_id.as_deref(),
                    file.sourcemap.as_deref(),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The id of the project's newest bundle, 0 when it has none: it changes whenever a bundle is
    /// uploaded, or the newest deleted, so a symbolicator can remember its lookups until then.
    pub async fn newest_artifact_bundle(&self, project: ProjectId) -> Result<i64> {
        self.scalar(
            "SELECT coalesce(max(id), 0) FROM artifact_bundles WHERE project_id = ?1",
            [project.value()],
        )
        .await
    }

    /// The newest file of `kind` with this debug id among the project's bundles.
    pub async fn artifact_by_debug_id(
        &self,
        project: ProjectId,
        debug_id: &str,
        kind: ArtifactKind,
    ) -> Result<Option<FoundArtifact>> {
        let mut rows = self
            .conn()
            .query(
                &format!(
                    "SELECT {FOUND_COLUMNS} FROM artifact_files f JOIN artifact_bundles b ON b.id = f.bundle_id
                     WHERE f.debug_id = ?1 AND f.kind = ?2 AND b.project_id = ?3 ORDER BY b.id DESC LIMIT 1"
                ),
                (debug_id.to_ascii_lowercase(), kind.name(), project.value()),
            )
            .await?;
        rows.next().await?.map(|r| found(&r)).transpose()
    }

    /// The newest file of `kind` at the first of `urls` that the project's bundles of this release and
    /// dist hold (the legacy lookup, without debug ids).
    pub async fn artifact_by_url(
        &self,
        project: ProjectId,
        release: &str,
        dist: &str,
        urls: &[String],
        kind: ArtifactKind,
    ) -> Result<Option<FoundArtifact>> {
        for url in urls {
            let mut rows = self
                .conn()
                .query(
                    &format!(
                        "SELECT {FOUND_COLUMNS} FROM artifact_files f JOIN artifact_bundles b ON b.id = f.bundle_id
                         WHERE f.url = ?1 AND f.kind = ?2 AND b.project_id = ?3 AND b.release = ?4 AND b.dist = ?5
                         ORDER BY b.id DESC LIMIT 1"
                    ),
                    (url.as_str(), kind.name(), project.value(), release, dist),
                )
                .await?;
            if let Some(row) = rows.next().await? {
                return Ok(Some(found(&row)?));
            }
        }
        Ok(None)
    }

    /// Bundles created before `before` (µs): `(id, blob_key)`, at most `limit`, for retention.
    pub async fn artifact_bundles_before(
        &self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT id, blob_key FROM artifact_bundles WHERE created_at < ?1 ORDER BY created_at LIMIT ?2",
                (before, limit),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?));
        }
        Ok(out)
    }

    /// Forgets a bundle and its files (its blob is the caller's to delete, first).
    pub async fn delete_artifact_bundle(&self, id: i64) -> Result<()> {
        let tx = self.conn().transaction().await?;
        tx.execute("DELETE FROM artifact_files WHERE bundle_id = ?1", [id])
            .await?;
        tx.execute("DELETE FROM artifact_bundles WHERE id = ?1", [id])
            .await?;
        tx.commit().await.map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, url: &str, kind: ArtifactKind, debug_id: Option<&str>) -> ArtifactFile {
        ArtifactFile {
            path: path.into(),
            url: url.into(),
            kind,
            debug_id: debug_id.map(str::to_owned),
            sourcemap: None,
        }
    }

    #[tokio::test]
    async fn bundles_are_found_by_debug_id_and_by_release_and_url() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        let files = [
            file("a.js", "~/a.js", ArtifactKind::MinifiedSource, Some("abc")),
            file(
                "a.js.map",
                "~/a.js.map",
                ArtifactKind::SourceMap,
                Some("abc"),
            ),
        ];
        let bundle = NewBundle {
            project,
            checksum: "f00",
            release: "1.0",
            dist: "",
            blob_key: "artifacts/bundles/1/f00.zip",
            bytes: 10,
            files: &files,
        };
        store.insert_artifact_bundle(&bundle).await.unwrap();
        // Again (a retried upload): nothing doubles.
        store.insert_artifact_bundle(&bundle).await.unwrap();
        assert!(store.has_artifact_bundle(project, "f00").await.unwrap());
        let by_id = store
            .artifact_by_debug_id(project, "ABC", ArtifactKind::SourceMap)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_id.file.path, "a.js.map");
        let urls = ["http://x/a.js".to_owned(), "~/a.js".to_owned()];
        let by_url = store
            .artifact_by_url(project, "1.0", "", &urls, ArtifactKind::MinifiedSource)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(by_url.file.path, "a.js");
        assert!(store
            .artifact_by_url(project, "2.0", "", &urls, ArtifactKind::MinifiedSource)
            .await
            .unwrap()
            .is_none());
        let old = store
            .artifact_bundles_before(now_us() + 1, 10)
            .await
            .unwrap();
        assert_eq!(old.len(), 1);
        store.delete_artifact_bundle(old[0].0).await.unwrap();
        assert!(!store.has_artifact_bundle(project, "f00").await.unwrap());
    }
}
