//! The processor Lambda, the single writer: SQS batches → the shared processor → libSQL, reporting partial
//! batch failures; and the scheduler's per-minute monitor tick. It migrates the database at init, except
//! for long migrations, which it leaves to the retention function's migrate job and waits for.

// mimalloc: the processor and ingest allocate per event; measured faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::lambda::{handle_processor_event, lambda_notifier, MigrationGate, ScheduledContext};
use splat::process::Processor;
use splat::store::Migrate;
use splat::wiring::{blob_store, open_store_migrating};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    // Migrates the database at init, but not through a migration that could outlast this function's
    // 60 s: those the migrate job applies, and the gate holds every invocation until it has.
    let store = open_store_migrating(&config, Migrate::UntilLong).await?;
    let gate = MigrationGate::default();
    // The SQS trigger delivers the messages; only the blob store (claim checks) is needed here.
    let blobs = blob_store(&config).await?;
    let processor = Processor::new(store.clone(), blobs.clone())
        .with_horizons(config.retention)
        .with_max_monitors(config.max_monitors_per_project)
        .with_span_settle(config.span_settle)
        .with_artifact_limits(config.artifacts);
    // Alerts go out after each batch's commit and each monitor tick (see `splat::lambda::lambda_notifier`).
    let notifier = lambda_notifier(&config).await?;
    let scheduled = ScheduledContext {
        store: &store,
        blobs: &blobs,
        horizons: &config.retention,
        notifier: notifier.as_ref(),
        // Only the monitor tick runs here; it has no deadline of its own.
        deadline: splat::retention::Deadline::NONE,
    };
    let (processor, notifier, scheduled, gate) = (&processor, notifier.as_ref(), &scheduled, &gate);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle_processor_event(processor, notifier, scheduled, gate, event.payload).await
        },
    ))
    .await
}
