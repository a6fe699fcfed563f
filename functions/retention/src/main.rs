//! The scheduled Lambda (EventBridge): daily retention, which keeps the database and the lake within
//! their horizons (see `splat::retention`), and the per-minute evaluation of cron monitors. Reserved
//! concurrency 1 keeps two runs from overlapping; this function and the processor serialise on the
//! database's write lock.

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::lambda::{handle_scheduled_event, ScheduledContext};
use splat::notify::{Notifier, RetryPolicy};
use splat::wiring::{blob_store, open_store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let blobs = blob_store(&config).await?;
    // Monitor issues alert like any issue, with short retries: the function's time is the tick's.
    let ui_base = config.public_url.clone().unwrap_or_default();
    let notifier = Notifier::from_config(&config.notify, open_store(&config).await?, &ui_base)?
        .map(|n| {
            n.with_retry(RetryPolicy {
                attempts: 3,
                backoff: std::time::Duration::from_millis(300),
                timeout: std::time::Duration::from_secs(3),
            })
        });
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
