//! The scheduled Lambda (EventBridge): daily retention, which keeps the database and the lake within
//! their horizons (see `splat::retention`), and the per-minute evaluation of cron monitors. Reserved
//! concurrency 1 keeps two runs from overlapping; this function and the processor serialise on the
//! database's write lock.

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::lambda::{handle_scheduled_event, ScheduledContext};
use splat::wiring::{blob_store, open_store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let blobs = blob_store(&config).await?;
    // Monitor issues alert like any issue.
    let notifier = splat::lambda::lambda_notifier(&config).await?;
    let cx = ScheduledContext {
        store: &store,
        blobs: &blobs,
        horizons: &config.retention,
        notifier: notifier.as_ref(),
    };
    let cx = &cx;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            handle_scheduled_event(cx, &event.payload).await
        },
    ))
    .await
}
