//! The MCP Lambda: API Gateway (HTTP API v2) or a function URL → the shared `/mcp` router (stateless
//! streamable HTTP, JSON responses), reading libSQL and the depth of the queue ingest writes to.
//! `MCP_AUTH_TOKEN` must be set, or every request is refused with 401.

use std::sync::Arc;

use splat::config::Config;
use splat::lambda::run_http_when_ready;
use splat::mcp::{router, McpState};
use splat::wiring::{adapters, open_migrated};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    splat::init_tracing();
    // The route is `/mcp`; the API Gateway stage name must not prefix it.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let config = Config::from_env()?;
    if config.mcp_auth_token.is_none() {
        eprintln!("MCP_AUTH_TOKEN is not set: every /mcp request will be refused with 401");
    }
    let config = Arc::new(config);
    // The processor creates and migrates the database; until it has, every request gets 503.
    run_http_when_ready(move || mcp(config.clone())).await
}

async fn mcp(config: Arc<Config>) -> anyhow::Result<axum::Router> {
    let store = open_migrated(&config).await?;
    let (queue, blobs) = adapters(&config).await?;
    // get_transaction_spans reads span trees back from the lake files through the blob store.
    let lake = splat::lake::LakeFiles::new(store.clone(), blobs);
    let state =
        McpState::new(store, Some(queue), config.mcp_auth_token.clone()).with_lake(Arc::new(lake));
    Ok(router(state))
}
