//! The scheduled Lambda (EventBridge Scheduler): daily retention, which keeps the database and the lake
//! within their horizons (see `splat::retention`), and every few minutes the migrate job, which applies
//! the long migrations the processor leaves to it (60 s would not see them through; this function has
//! 15 minutes, and a migration in parts goes on over as many runs as it needs). The per-minute monitor
//! tick runs in the processor. Reserved concurrency 1 keeps two runs from overlapping; this function and
//! the processor serialise on the database's write lock.

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::lambda::{
    handle_scheduled_event, migrate_job, retention_deadline, ScheduledContext, ScheduledJob,
};
use splat::wiring::{blob_store, open_migrated};
use tokio::sync::OnceCell;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    let blobs = blob_store(&config).await?;
    let ready = OnceCell::new();
    let (config, blobs, ready) = (&config, &blobs, &ready);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            match ScheduledJob::of(&event.payload)? {
                ScheduledJob::Retention => {}
                ScheduledJob::Migrate => {
                    // A migration in parts stops in time; the next run (5 minutes on) goes on.
                    return migrate_job(config, retention_deadline(event.context.deadline())).await;
                }
                ScheduledJob::Monitors => {
                    return Err("the monitor tick runs in the processor function".into())
                }
            }
            // Retention does not migrate; until the database is migrated, a run is skipped (tomorrow's is
            // the retry).
            let store = match ready.get_or_try_init(|| open_migrated(config)).await {
                Ok(store) => store,
                Err(e) => {
                    let reason = format!("{e:#}");
                    tracing::warn!(%reason, "database not ready; skipping this run");
                    return Ok(serde_json::json!({ "skipped": reason }));
                }
            };
            let cx = ScheduledContext {
                store,
                blobs,
                horizons: &config.retention,
                notifier: None,
                // A run that cannot finish in this invocation stops in time; tomorrow's goes on.
                deadline: retention_deadline(event.context.deadline()),
            };
            handle_scheduled_event(&cx, &event.payload).await
        },
    ))
    .await
}
