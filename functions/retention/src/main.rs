//! The retention Lambda, on an EventBridge schedule: keeps the database and the lake within their
//! horizons (see `splat::retention`). Reserved concurrency 1 keeps two runs from overlapping; the
//! processor and this function serialise on the database's write lock.

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::wiring::{blob_store, open_store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    let store = open_store(&config).await?;
    let blobs = blob_store(&config).await?;
    let (store, blobs, horizons) = (&store, &blobs, &config.retention);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            splat::lambda::handle_scheduled_event(store, blobs, horizons, &event.payload).await
        },
    ))
    .await
}
