//! `splat serve`: every function in one process on one port. The same router as the ingest Lambda, the
//! same processor as the SQS Lambda (driven by polling), on the embedded default storage — or on SQS/S3
//! when `SPLAT_QUEUE_URL`/`SPLAT_BUCKET` are set.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::watch;

use crate::blob::{BlobStore, LocalBlobStore};
use crate::config::Config;
use crate::ingest::{self, CachedKeys, IngestState, RateLimiter};
use crate::process::runner::{self, RunnerOptions};
use crate::process::Processor;
use crate::queue::{LocalQueue, Queue};
use crate::store::{Project, Store};

/// The queue and blob store the config asks for.
pub async fn adapters(config: &Config) -> anyhow::Result<(Arc<dyn Queue>, Arc<dyn BlobStore>)> {
    #[cfg(feature = "aws")]
    let aws = if config.queue_url.is_some() || config.bucket.is_some() { Some(crate::aws::clients(config).await) } else { None };
    let queue: Arc<dyn Queue> = match &config.queue_url {
        #[cfg(feature = "aws")]
        Some(url) => Arc::new(crate::queue::sqs::SqsQueue::new(aws.as_ref().expect("built above").sqs.clone(), url)),
        #[cfg(not(feature = "aws"))]
        Some(_) => anyhow::bail!("SPLAT_QUEUE_URL needs a build with the `aws` feature"),
        None => Arc::new(
            LocalQueue::open(&config.queue_path(), config.queue_visibility, config.queue_max_receives)
                .await
                .with_context(|| format!("opening the local queue {}", config.queue_path().display()))?,
        ),
    };
    let blobs: Arc<dyn BlobStore> = match &config.bucket {
        #[cfg(feature = "aws")]
        Some(bucket) => Arc::new(crate::blob::s3::S3BlobStore::new(aws.as_ref().expect("built above").s3.clone(), bucket)),
        #[cfg(not(feature = "aws"))]
        Some(_) => anyhow::bail!("SPLAT_BUCKET needs a build with the `aws` feature"),
        None => Arc::new(LocalBlobStore::new(config.data_dir.clone())),
    };
    Ok((queue, blobs))
}

/// Opens the database, creating the directory and applying migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.database_path).await.with_context(|| format!("opening the database {}", config.database_path.display()))
}

/// Ingest state over a store: keys looked up through a short-lived cache.
pub fn ingest_state(config: &Config, keys: Store, queue: Arc<dyn Queue>, blobs: Arc<dyn BlobStore>) -> IngestState {
    IngestState {
        keys: Arc::new(CachedKeys::new(keys, config.key_cache_ttl)),
        queue,
        blobs,
        limits: config.limits.clone(),
        rate_limiter: Arc::new(RateLimiter::default()),
    }
}

/// The line `splat` prints for a project: `DSN: http://<key>@<host>/<id>` (or a note when it has no key).
pub fn dsn_line(project: &Project, scheme: &str, host: &str) -> String {
    match project.dsn(scheme, host) {
        Some(dsn) => format!("DSN: {dsn}"),
        None => format!("(project {} has no enabled key)", project.id),
    }
}

/// Runs until Ctrl-C or SIGTERM: HTTP on `config.bind`, the processor polling the queue.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let writer = open_store(&config).await?;
    let project = writer.ensure_default_project().await?;
    // Ingest reads keys over its own connection so it never waits inside the writer's transaction.
    let reader = open_store(&config).await?;
    let (queue, blobs) = adapters(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let bound: SocketAddr = listener.local_addr()?;
    let (scheme, host) = config.public_base(bound);
    println!("Splat is listening on {scheme}://{host} (data in {})", config.data_dir.display());
    println!("Project {:?} (id {}):", project.name, project.id);
    println!("{}", dsn_line(&project, &scheme, &host));

    let (stop, stopped) = watch::channel(false);
    let processor = Processor::new(writer, blobs.clone());
    let options = RunnerOptions { batch_size: config.batch_size, ..RunnerOptions::default() };
    let worker = tokio::spawn(runner::run(processor, queue.clone(), options, stopped));
    let app = ingest::router(ingest_state(&config, reader, queue, blobs));
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await?;
    let _ = stop.send(true);
    worker.await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
