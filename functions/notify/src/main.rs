//! The notify Lambda, outside the VPC: S3 announces each alert the processor or the monitor tick put in the
//! bucket's `alerts/` outbox; this function delivers it by email, webhooks (chats' formats included) and ntfy, and deletes it (see
//! `splat::notify::outbox`). It holds the channels' settings and secrets; no function in the VPC does.

use lambda_runtime::{service_fn, LambdaEvent};
use splat::config::Config;
use splat::lambda::{handle_alert_objects, AlertSender, S3Event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    splat::init_tracing();
    let config = Config::from_env()?;
    let cx = AlertSender::from_config(&config).await?;
    if cx.channels.names().is_empty() {
        // Alerts then stay in the outbox (each invocation fails) until a channel is configured.
        tracing::error!(
            "no alert channel is configured (SMTP_*, SPLAT_WEBHOOK_URL(S), SPLAT_NTFY_URL)"
        );
    }
    let cx = &cx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        handle_alert_objects(cx, event.payload).await
    }))
    .await
}
