//! The ingest Lambda: API Gateway (HTTP API v2) or a function URL → the shared ingest router → SQS.
//! It runs outside the VPC with no database: keys come from the key snapshot in the bucket
//! (`splat::ingest::snapshot`), so it starts before the database exists and answers 503 until the first
//! project's keys are published.

// mimalloc: the processor and ingest allocate per event; measured faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use splat::config::Config;
use splat::wiring::{adapters, snapshot_ingest_state};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    splat::init_tracing();
    // Routes are `/api/...`; the API Gateway stage name must not prefix them.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = Config::from_env()?;
    let (queue, blobs) = adapters(&config).await?;
    lambda_http::run(splat::ingest::router(snapshot_ingest_state(
        &config, queue, blobs,
    )))
    .await
}
