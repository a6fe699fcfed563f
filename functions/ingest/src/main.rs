//! The ingest Lambda: API Gateway (HTTP API v2) or a function URL → the shared ingest router → SQS.

// mimalloc: the processor and ingest allocate per event; measured faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use splat::config::Config;
use splat::wiring::{adapters, ingest_state, open_reader};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    splat::init_tracing();
    // Routes are `/api/...`; the API Gateway stage name must not prefix them.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = Config::from_env()?;
    // Read-only and never migrating: ingest only looks up keys, and must not wait on the writer's lock.
    let store = open_reader(&config).await?;
    let (queue, blobs) = adapters(&config).await?;
    lambda_http::run(splat::ingest::router(ingest_state(
        &config, store, queue, blobs,
    )))
    .await
}
