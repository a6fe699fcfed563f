//! The UI Lambda: API Gateway (HTTP API v2), a function URL or CloudFront → the shared web router, which
//! reads libSQL and shows the queue depth of the queue ingest writes to.

use std::sync::Arc;

use splat::config::Config;
use splat::lambda::run_http_when_ready;
use splat::web::auth::Auth;
use splat::web::health::{self, HealthState, QueueThresholds};
use splat::web::{router, WebState};
use splat::wiring::{adapters, open_migrated};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    splat::init_tracing();
    // Routes start at `/`; the API Gateway stage name must not prefix them.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = Arc::new(Config::from_env()?);
    // Every instance must check the same cookies: the session secret comes from the environment only.
    let auth = Auth::from_config(&config.sign_in, None);
    auth.log();
    // The processor creates and migrates the database; until it has, every request gets 503.
    run_http_when_ready(move || ui(config.clone(), auth.clone())).await
}

async fn ui(config: Arc<Config>, auth: Auth) -> anyhow::Result<axum::Router> {
    let store = open_migrated(&config).await?;
    let (queue, blobs) = adapters(&config).await?;
    // Span waterfalls are read from the lake files through the blob store.
    let lake = splat::lake::LakeFiles::new(store.clone(), blobs.clone());
    let health = HealthState::new(
        store.clone(),
        queue.clone(),
        QueueThresholds {
            warning: config.queue_warning_threshold,
            critical: config.queue_critical_threshold,
        },
    );
    // sentry-cli's API (`/api/0/…`): releases, deploys and source map uploads.
    let api = splat::web::api::ApiState {
        store: store.clone(),
        blobs: blobs.clone(),
        limits: config.artifacts,
    };
    let state = WebState::new(
        store,
        queue,
        config.public_url.clone(),
        config.internal_url.clone(),
    )
    .with_lake(Arc::new(lake))
    // Ingest reads keys from the snapshot in the bucket: key changes made here publish it.
    .with_key_snapshot(blobs)
    .with_retention(config.retention)
    .with_burst_threshold(config.notify.burst_threshold)
    // The settings page's test alert goes where the processor's alerts go (`None`: button disabled).
    .with_notifier(splat::lambda::lambda_notifier(&config).await?)
    .with_auth(auth)
    // No Host allowlist here: AWS routes a function URL by its Host, and the origin secret is what keeps
    // requests to CloudFront's door.
    .with_origin_secret(config.origin_secret.clone());
    // `/_health` sits beside the UI's router, never behind anything the UI puts in front of its pages.
    Ok(health::router(health)
        .merge(splat::web::api::router(api))
        .merge(router(state)))
}
