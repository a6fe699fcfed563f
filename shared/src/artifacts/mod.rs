//! Artifact bundles: the source maps and minified sources that sentry-cli uploads (`sourcemaps upload`)
//! and symbolication reads back.
//!
//! sentry-cli sends a bundle (a zip with a `manifest.json`, [`bundle`]) in chunks named by their SHA-1,
//! then asks for it to be assembled from them ([`assemble`]); the bundle goes to the blob store
//! (`artifacts/bundles/<project>/<sha1>.zip`) and its files into the database's index, by debug id and
//! by release, dist and URL. Every size is checked before anything of that size is held.

pub mod assemble;
pub mod bundle;

/// What an upload may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactLimits {
    /// `SPLAT_MAX_ARTIFACT_FILE_BYTES`, default 32 MiB: one file of a bundle (a source map), uncompressed.
    pub max_file_bytes: usize,
    /// `SPLAT_MAX_BUNDLE_BYTES`, default 128 MiB: a whole bundle, as uploaded (compressed).
    pub max_bundle_bytes: usize,
}

impl Default for ArtifactLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 32 << 20,
            max_bundle_bytes: 128 << 20,
        }
    }
}

/// The chunk size sentry-cli is told to use, and chunks per upload request: small enough that a request
/// (base64'd into a Lambda event behind a function URL) stays under Lambda's 6 MB payload limit.
pub const CHUNK_SIZE: usize = 1 << 20;
pub const CHUNKS_PER_REQUEST: usize = 3;
/// A chunk upload request's cap: its chunks, gzip's worst case and the multipart framing.
pub const MAX_REQUEST_BYTES: usize = CHUNKS_PER_REQUEST * (CHUNK_SIZE + (64 << 10));

/// Why an upload was refused; the text goes back to sentry-cli, which prints it.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("blob store: {0}")]
    Blob(#[from] crate::blob::BlobError),
}

impl ArtifactError {
    /// Whether the uploader sent something wrong (a 4xx, or `state: error`), not the server failing.
    pub fn is_client_error(&self) -> bool {
        matches!(self, Self::Invalid(_))
    }
}

/// Deletes the bundles uploaded before `before` (µs): each blob first, then its index, so a failure
/// leaves nothing indexed that is gone. Returns how many went.
pub async fn expire_bundles(
    store: &crate::store::Store,
    blobs: &dyn crate::blob::BlobStore,
    before: i64,
) -> Result<u64, ArtifactError> {
    let mut deleted = 0;
    loop {
        let batch = store.artifact_bundles_before(before, 500).await?;
        if batch.is_empty() {
            return Ok(deleted);
        }
        for (id, key) in batch {
            blobs.delete(&key).await?;
            store.delete_artifact_bundle(id).await?;
            deleted += 1;
        }
    }
}

/// SHA-1 of `data` in lowercase hex: how sentry-cli names chunks and bundles.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

/// Whether `s` is a SHA-1 in hex (40 digits), as chunk names and checksums must be.
pub fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
