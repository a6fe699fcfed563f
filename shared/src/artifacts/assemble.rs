//! Chunks in, bundles out: [`put_chunk`] keeps one verified chunk, [`assemble`] joins a bundle's chunks
//! once all are there, checks the whole against its SHA-1, indexes it and stores it per project.

use std::io::Read;

use bytes::Bytes;

use super::{bundle, is_sha1_hex, sha1_hex, ArtifactError, ArtifactLimits, CHUNK_SIZE};
use crate::blob::{BlobError, BlobStore};
use crate::protocol::ProjectId;
use crate::store::{NewBundle, Store};

/// Where chunks wait for their bundle's assembly.
const CHUNKS: &str = "artifacts/chunks/";

/// How long a chunk waits for its assembly: longer than any upload takes. (In AWS a lifecycle rule on
/// the bucket expires them after the same day; see infra/template.yaml.)
pub const CHUNK_LIFE_US: i64 = crate::model::time::DAY_US;

fn chunk_key(sha1: &str) -> String {
    format!("{CHUNKS}{}", sha1.to_ascii_lowercase())
}

/// Deletes the chunks written before `before_us` (µs): those of an upload that failed halfway and was
/// never assembled (assembly deletes its chunks). Returns how many went.
pub async fn sweep_chunks(blobs: &dyn BlobStore, before_us: i64) -> Result<u64, ArtifactError> {
    let stale = blobs.list_written_before(CHUNKS, before_us).await?;
    for key in &stale {
        blobs.delete(key).await?;
    }
    Ok(stale.len() as u64)
}

/// Where a project's bundle is kept.
pub fn bundle_key(project: ProjectId, checksum: &str) -> String {
    format!(
        "artifacts/bundles/{project}/{}.zip",
        checksum.to_ascii_lowercase()
    )
}

/// Keeps one uploaded chunk (gunzipped first when `gzipped`), after checking it is at most
/// [`CHUNK_SIZE`] bytes and that its SHA-1 is the name it came under.
pub async fn put_chunk(
    blobs: &dyn BlobStore,
    name: &str,
    data: &[u8],
    gzipped: bool,
) -> Result<(), ArtifactError> {
    if !is_sha1_hex(name) {
        return Err(ArtifactError::Invalid(format!(
            "a chunk is named by its SHA-1 (40 hex digits), not {name:?}"
        )));
    }
    let data = if gzipped {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .take(CHUNK_SIZE as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| ArtifactError::Invalid(format!("chunk {name}: not gzip: {e}")))?;
        out
    } else {
        data.to_vec()
    };
    if data.len() > CHUNK_SIZE {
        return Err(ArtifactError::Invalid(format!(
            "chunk {name} is over the chunk size of {CHUNK_SIZE} bytes"
        )));
    }
    let actual = sha1_hex(&data);
    if !actual.eq_ignore_ascii_case(name) {
        return Err(ArtifactError::Invalid(format!(
            "chunk {name}: its SHA-1 is {actual}; refused"
        )));
    }
    blobs.put(&chunk_key(name), Bytes::from(data)).await?;
    Ok(())
}

/// What sentry-cli asks to assemble (`POST …/artifactbundle/assemble/`).
#[derive(Debug, Clone)]
pub struct AssembleRequest {
    pub checksum: String,
    pub chunks: Vec<String>,
    pub projects: Vec<ProjectId>,
    pub release: Option<String>,
    pub dist: Option<String>,
}

/// Where an assembly stands, as Sentry's `state` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// Chunks the server does not have yet (`not_found` with `missingChunks`).
    Missing(Vec<String>),
    /// Stored and indexed (`ok`).
    Ok,
}

/// Assembles the bundle from its chunks, or says which are missing. Idempotent: a bundle the projects
/// have already is `Ok` at once.
pub async fn assemble(
    store: &Store,
    blobs: &dyn BlobStore,
    limits: &ArtifactLimits,
    request: &AssembleRequest,
) -> Result<Assembled, ArtifactError> {
    check_request(request, limits)?;
    let mut have_all = true;
    for project in &request.projects {
        have_all &= store
            .has_artifact_bundle(*project, &request.checksum)
            .await?;
    }
    if have_all {
        return Ok(Assembled::Ok);
    }
    let mut data = Vec::new();
    let mut missing = Vec::new();
    for chunk in &request.chunks {
        match blobs.get_capped(&chunk_key(chunk), CHUNK_SIZE).await {
            Ok(bytes) if missing.is_empty() => {
                if data.len() + bytes.len() > limits.max_bundle_bytes {
                    return Err(over_bundle_cap(limits));
                }
                data.extend_from_slice(&bytes);
            }
            Ok(_) => {}
            Err(BlobError::NotFound(_)) => missing.push(chunk.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    if !missing.is_empty() {
        return Ok(Assembled::Missing(missing));
    }
    let actual = sha1_hex(&data);
    if !actual.eq_ignore_ascii_case(&request.checksum) {
        return Err(ArtifactError::Invalid(format!(
            "the chunks join to a bundle whose SHA-1 is {actual}, not {}",
            request.checksum
        )));
    }
    let index = bundle::index(&data, limits.max_file_bytes)?;
    let release = request.release.clone().unwrap_or(index.release);
    let dist = request.dist.clone().unwrap_or(index.dist);
    let data = Bytes::from(data);
    for project in &request.projects {
        let key = bundle_key(*project, &request.checksum);
        blobs.put(&key, data.clone()).await?;
        store
            .insert_artifact_bundle(&NewBundle {
                project: *project,
                checksum: &request.checksum.to_ascii_lowercase(),
                release: &release,
                dist: &dist,
                blob_key: &key,
                bytes: data.len() as i64,
                files: &index.files,
            })
            .await?;
    }
    // The chunks have served; a failed delete only leaves a chunk for a later upload to reuse.
    for chunk in &request.chunks {
        if let Err(e) = blobs.delete(&chunk_key(chunk)).await {
            tracing::warn!(chunk, error = %e, "could not delete an assembled chunk");
        }
    }
    Ok(Assembled::Ok)
}

fn over_bundle_cap(limits: &ArtifactLimits) -> ArtifactError {
    ArtifactError::Invalid(format!(
        "the bundle is over the cap of {} bytes (SPLAT_MAX_BUNDLE_BYTES)",
        limits.max_bundle_bytes
    ))
}

/// Names are SHA-1s, the chunk count fits the bundle cap, and there is a project.
fn check_request(request: &AssembleRequest, limits: &ArtifactLimits) -> Result<(), ArtifactError> {
    if !is_sha1_hex(&request.checksum) {
        return Err(ArtifactError::Invalid(
            "checksum is the bundle's SHA-1 (40 hex digits)".into(),
        ));
    }
    if let Some(bad) = request.chunks.iter().find(|c| !is_sha1_hex(c)) {
        return Err(ArtifactError::Invalid(format!(
            "chunks are SHA-1s (40 hex digits), not {bad:?}"
        )));
    }
    if request.chunks.is_empty() {
        return Err(ArtifactError::Invalid(
            "a bundle has at least one chunk".into(),
        ));
    }
    if request.chunks.len() > limits.max_bundle_bytes / CHUNK_SIZE + 1 {
        return Err(over_bundle_cap(limits));
    }
    if request.projects.is_empty() {
        return Err(ArtifactError::Invalid("name at least one project".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::LocalBlobStore;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn chunks_then_assembly_store_and_index_the_bundle_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(dir.path());
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        let bytes = bundle::tests::bundle(&[(
            "files/_/_/a.js.map",
            "source_map",
            "~/a.js.map",
            &[("debug-id", "d1")],
            b"{}",
        )]);
        let (first, second) = bytes.split_at(bytes.len() / 2);
        let names = [sha1_hex(first), sha1_hex(second)];
        let request = AssembleRequest {
            checksum: sha1_hex(&bytes),
            chunks: names.to_vec(),
            projects: vec![project],
            release: None,
            dist: None,
        };
        let limits = ArtifactLimits::default();
        assert_eq!(
            assemble(&store, &blobs, &limits, &request).await.unwrap(),
            Assembled::Missing(names.to_vec())
        );
        put_chunk(&blobs, &names[0], &gzip(first), true)
            .await
            .unwrap();
        put_chunk(&blobs, &names[1], second, false).await.unwrap();
        // A chunk under another's name is refused.
        let err = put_chunk(&blobs, &names[0], second, false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("its SHA-1 is"), "{err}");
        assert_eq!(
            assemble(&store, &blobs, &limits, &request).await.unwrap(),
            Assembled::Ok
        );
        // Again: nothing to do, nothing doubled.
        assert_eq!(
            assemble(&store, &blobs, &limits, &request).await.unwrap(),
            Assembled::Ok
        );
        let found = store
            .artifact_by_debug_id(project, "d1", crate::store::ArtifactKind::SourceMap)
            .await
            .unwrap()
            .unwrap();
        let stored = blobs.get(&found.blob_key).await.unwrap();
        assert_eq!(
            bundle::read_file(&stored, &found.file.path, 10).unwrap(),
            b"{}"
        );
        // Retention: nothing is older than an hour ago; everything is older than an hour from now.
        let hour = 3_600_000_000;
        let now = chrono::Utc::now().timestamp_micros();
        assert_eq!(
            super::super::expire_bundles(&store, &blobs, now - hour)
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            super::super::expire_bundles(&store, &blobs, now + hour)
                .await
                .unwrap(),
            1
        );
        assert!(blobs.get(&found.blob_key).await.is_err());
        assert!(!store
            .has_artifact_bundle(project, &request.checksum)
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn wrong_names_and_a_wrong_whole_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = LocalBlobStore::new(dir.path());
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        assert!(put_chunk(&blobs, "../x", b"", false).await.is_err());
        let chunk = b"some bytes";
        put_chunk(&blobs, &sha1_hex(chunk), chunk, false)
            .await
            .unwrap();
        let request = AssembleRequest {
            checksum: "0".repeat(40),
            chunks: vec![sha1_hex(chunk)],
            projects: vec![project],
            release: None,
            dist: None,
        };
        let limits = ArtifactLimits::default();
        let err = assemble(&store, &blobs, &limits, &request)
            .await
            .unwrap_err();
        assert!(
            err.is_client_error() && err.to_string().contains("SHA-1"),
            "{err}"
        );
        let too_many = AssembleRequest {
            chunks: vec![sha1_hex(chunk); limits.max_bundle_bytes / CHUNK_SIZE + 2],
            ..request
        };
        let err = assemble(&store, &blobs, &limits, &too_many)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SPLAT_MAX_BUNDLE_BYTES"), "{err}");
    }
}
