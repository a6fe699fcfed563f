//! The processor Lambda: SQS batches → the shared processor (the single writer) → libSQL, reporting
//! partial batch failures.

// mimalloc: the processor and ingest allocate per event; measured faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::process::Processor;
use splat::wiring::{blob_store, open_store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    // The SQS trigger delivers the messages; only the blob store (claim checks) is needed here.
    let blobs = blob_store(&config).await?;
    let processor = Processor::new(open_store(&config).await?, blobs)
        .with_horizons(config.retention)
        .with_max_monitors(config.max_monitors_per_project);
    let processor = &processor;
    // Alerts go out after each batch's commit (see `splat::lambda::lambda_notifier`).
    let notifier = splat::lambda::lambda_notifier(&config).await?;
    let notifier = notifier.as_ref();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(
            splat::lambda::handle_sqs_event(processor, notifier, event.payload).await,
        )
    }))
    .await
}
