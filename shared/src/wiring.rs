//! Builds what the config asks for — the database, the queue and blob adapters (local, or SQS/S3 when
//! `SPLAT_QUEUE_URL`/`SPLAT_BUCKET` are set), the ingest state — for the Lambda binaries and `splat serve`.

use std::sync::Arc;

use anyhow::Context;

use crate::blob::{BlobStore, LocalBlobStore};
use crate::config::Config;
use crate::ingest::{CachedKeys, IngestState, KeyLookup, MemoryBudget, RateLimiter, SnapshotKeys};
use crate::queue::{LocalQueue, Queue};
use crate::secret::redact_url;
use crate::store::{Migrate, Project, Store};

/// `splat queue dead-letters …` against the configured local queue (SQS has its own redrive); what to
/// print.
pub async fn dead_letters(
    config: &Config,
    command: crate::queue::dead_letters::Command,
) -> anyhow::Result<String> {
    if config.queue_url.is_some() {
        anyhow::bail!("{}", crate::queue::dead_letters::SQS_REDRIVE);
    }
    let queue = LocalQueue::open(
        &config.queue_path(),
        config.queue_visibility,
        config.queue_max_receives,
    )
    .await?;
    crate::queue::dead_letters::run(&queue, command, blob_store(config)).await
}

/// The queue and blob store the config asks for.
pub async fn adapters(config: &Config) -> anyhow::Result<(Arc<dyn Queue>, Arc<dyn BlobStore>)> {
    Ok((queue(config).await?, blob_store(config).await?))
}

/// SQS when `SPLAT_QUEUE_URL` is set, else the local queue file.
pub async fn queue(config: &Config) -> anyhow::Result<Arc<dyn Queue>> {
    match &config.queue_url {
        #[cfg(feature = "aws")]
        Some(url) => Ok(Arc::new(crate::queue::sqs::SqsQueue::new(
            crate::aws::clients(config).await.sqs,
            url,
        ))),
        #[cfg(not(feature = "aws"))]
        Some(_) => anyhow::bail!("SPLAT_QUEUE_URL needs a build with the `aws` feature"),
        None => {
            let path = config.queue_path();
            let queue = LocalQueue::open_capped(
                &path,
                config.queue_visibility,
                config.queue_max_receives,
                config.queue_max_bytes,
            )
            .await
            .with_context(|| format!("opening the local queue {}", path.display()))?;
            Ok(Arc::new(queue))
        }
    }
}

/// S3 when `SPLAT_BUCKET` is set, else the data folder.
pub async fn blob_store(config: &Config) -> anyhow::Result<Arc<dyn BlobStore>> {
    match &config.bucket {
        #[cfg(feature = "aws")]
        Some(bucket) => Ok(Arc::new(crate::blob::s3::S3BlobStore::new(
            crate::aws::clients(config).await.s3,
            bucket,
        ))),
        #[cfg(not(feature = "aws"))]
        Some(_) => anyhow::bail!("SPLAT_BUCKET needs a build with the `aws` feature"),
        None => Ok(Arc::new(LocalBlobStore::new(config.data_dir.clone()))),
    }
}

/// Opens the database as its writer, creating the directory, applying migrations, and pointing the lake
/// catalog at where this configuration keeps lake files.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_store_migrating(config, Migrate::All).await
}

/// [`open_store`], applying only the pending migrations `scope` allows (the processor function leaves long
/// ones to the migrate job).
pub async fn open_store_migrating(config: &Config, scope: Migrate) -> anyhow::Result<Store> {
    let store = match &config.remote_database {
        Some(remote) => Store::open_remote(remote, Some(scope))
            .await
            .with_context(|| format!("opening the database at {}", redact_url(&remote.url)))?,
        None => Store::open_writer(&config.database_path, config.journal, scope)
            .await
            .with_context(|| format!("opening the database {}", config.database_path.display()))?,
    };
    store.set_lake_data_path(&lake_data_path(config)).await?;
    Ok(store)
}

/// Opens the database for a Lambda function that must not migrate it (the UI, MCP, daily retention): the
/// processor and the migrate job do. [`crate::store::StoreError::NotReady`] (a 503, see
/// [`crate::lambda::run_http_when_ready`]) while the database is missing or behind this code.
pub async fn open_migrated(config: &Config) -> anyhow::Result<Store> {
    let store = match &config.remote_database {
        Some(remote) => Store::open_remote(remote, None).await?,
        None => Store::open_existing(&config.database_path).await?,
    };
    store.ensure_migrated().await?;
    Ok(store)
}

/// The lake's `data_path`: `s3://<bucket>/lake/`, or the local lake folder as configured (relative paths
/// stay relative, so `ATTACH 'ducklake:sqlite:data/splat.db' (DATA_PATH 'data/lake/')` matches it when run
/// from where `splat serve` runs).
pub fn lake_data_path(config: &Config) -> String {
    match &config.bucket {
        Some(bucket) => format!("s3://{bucket}/{}", crate::lake::KEY_PREFIX),
        None => {
            let dir = config.lake_dir().display().to_string();
            format!(
                "{}/",
                dir.strip_prefix("./").unwrap_or(&dir).trim_end_matches('/')
            )
        }
    }
}

/// Opens the database read-only, without migrating: what `splat serve`'s ingest looks keys up in.
pub async fn open_reader(config: &Config) -> anyhow::Result<Store> {
    if let Some(remote) = &config.remote_database {
        // The server enforces nothing read-only for us; ingest's code only reads keys.
        return Store::open_remote(remote, None)
            .await
            .with_context(|| format!("opening the database at {}", redact_url(&remote.url)));
    }
    Store::open_reader(&config.database_path)
        .await
        .with_context(|| {
            format!(
                "opening the database {} read-only",
                config.database_path.display()
            )
        })
}

/// Ingest state over a store: keys looked up through a short-lived cache.
pub fn ingest_state(
    config: &Config,
    keys: Store,
    queue: Arc<dyn Queue>,
    blobs: Arc<dyn BlobStore>,
) -> IngestState {
    let keys = Arc::new(CachedKeys::new(keys, config.key_cache_ttl));
    ingest_state_with(config, keys, queue, blobs)
}

/// Ingest state without a database: keys looked up in the key snapshot in the blob store, read at most
/// once per `SPLAT_KEY_CACHE_SECS` (the ingest Lambda, outside the VPC).
pub fn snapshot_ingest_state(
    config: &Config,
    queue: Arc<dyn Queue>,
    blobs: Arc<dyn BlobStore>,
) -> IngestState {
    let keys = Arc::new(SnapshotKeys::new(blobs.clone(), config.key_cache_ttl));
    ingest_state_with(config, keys, queue, blobs)
}

fn ingest_state_with(
    config: &Config,
    keys: Arc<dyn KeyLookup>,
    queue: Arc<dyn Queue>,
    blobs: Arc<dyn BlobStore>,
) -> IngestState {
    IngestState {
        keys,
        queue,
        blobs,
        limits: config.limits.clone(),
        rate_limiter: Arc::new(RateLimiter::default()),
        budget: MemoryBudget::new(config.edge.ingest_memory_bytes),
    }
}

/// The line `splat` prints for a project: `DSN: http://<key>@<host>/<id>` (or a note when it has no key).
pub fn dsn_line(project: &Project, scheme: &str, host: &str) -> String {
    match project.dsn(scheme, host) {
        Some(dsn) => format!("DSN: {dsn}"),
        None => format!("(project {} has no enabled key)", project.id),
    }
}
