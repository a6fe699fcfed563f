//! Splat's library: every piece of domain logic the function binaries share.
//!
//! # Path of an event through Splat
//! 1. An SDK posts an envelope to `/api/{project}/envelope/`. [`ingest`] authenticates the key, decodes
//!    the body (gzip, deflate, br, zstd, capped), frames the envelope ([`protocol`]), checks limits and
//!    JSON, and sends a [`queue::QueueMessage`] to the [`queue`] (SQS, or a SQLite file locally). Only then
//!    does the SDK get `200 {"id": …}`; a refused request gets Relay's status and `X-Sentry-Error`.
//! 2. The [`process`]or — the single writer — receives batches, skips messages already in its ledger, and
//!    commits every row of the batch ([`store`]) plus the message ids in one libSQL transaction.
//! 3. Failed messages stay on the queue and end in its dead-letter queue; they never block a batch.

pub mod admin;
pub mod blob;
pub mod config;
pub mod format;
pub mod grouping;
pub mod http_server;
pub mod ingest;
pub mod lake;
pub mod mcp;
pub mod model;
pub mod monitors;
pub mod notify;
pub mod perf;
pub mod private_files;
pub mod process;
pub mod protocol;
pub mod queue;
pub mod retention;
pub mod secret;
pub mod serve;
pub mod store;
pub mod web;
pub mod wiring;

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "aws")]
pub mod lambda;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`, with the MCP library's three lines per request
/// only from `warn`). In Lambda with the JSON log format
/// (`AWS_LAMBDA_LOG_FORMAT=JSON`, the template's setting), one JSON object per line with a `level` field:
/// CloudWatch then filters application logs by level and the platform's own lines (START, END, REPORT:
/// about 300 bytes per invocation, $0.15 per million at CloudWatch's ingestion price) by `SystemLogLevel`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rmcp=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: in CloudWatch (a Lambda's stderr) and log files they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _ = if json {
        logs.json()
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        logs.try_init()
    };
}
