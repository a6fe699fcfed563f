//! Splat's library: every piece of domain logic the function binaries share.
//!
//! # Path of an event through Splat
//! 1. An SDK posts an envelope to `/api/{project}/envelope/`. [`ingest`] authenticates the key, decodes
//!    the body (gzip, deflate, br, zstd, capped), frames the envelope ([`protocol`]), checks limits and
//!    JSON, and sends a [`queue::QueueMessage`] to the [`queue`] (SQS, or a SQLite file locally). Only then
//!    does the SDK get `200 {"id": …}`; a refused request gets Relay's status and `X-Sentry-Error`.
//! 2. The [`process`]or — the single writer — receives batches, skips messages already in its ledger, and
//!    decodes the rest into rows, computing every figure of a transaction. [`process::batch`] composes one
//!    batch: it writes the rows through the store's write transaction ([`store::BatchTx`]), turns the new
//!    ones into [`lake`] files, uploads them while that transaction is open, registers them in the catalog
//!    and commits, the message ids included, at once.
//! 3. Failed messages stay on the queue and end in its dead-letter queue; they never block a batch.
//!
//! # Layers
//! A module uses modules of its own layer and of the layers before it, never one after it (the test at
//! the bottom of this file reads this list and checks every `crate::` path outside tests):
//!
//! 1. `secret`, `private_files`, `protocol`, `model`: the wire format and what it means (events,
//!    transactions, spans, check-ins and their schedules); no I/O.
//! 2. `grouping`, `perf`, `format`, `scrub`: pure logic over the model (issue hashes, transaction figures,
//!    normalization, how numbers, durations and times are written for people, by the UI and MCP, and data
//!    scrubbing).
//! 3. `blob`, `lake`: objects, and the lake's parquet files with their DuckLake catalog statements, run
//!    over a connection or transaction the caller hands in ([`lake::CatalogDb`], [`lake::CatalogTx`]).
//! 4. `store`: the database; every SQL statement of the crate but the lake catalog's.
//! 5. `queue`, `notify`, `monitors`, `artifacts`: the queue, alert delivery, the cron monitors' evaluation,
//!    the artifact bundles (source maps) sentry-cli uploads.
//! 6. `ingest`, `process`, `retention`: the pipelines (the processor composes each batch).
//! 7. `web`, `mcp`, `admin`, `http_server`: what people and agents use.
//! 8. `config`, `aws`, `wiring`, `serve`, `lambda`: reading the environment and putting it all together.
//!
//! Settings types live with the module they configure (`notify::NotifyConfig`, `http_server::EdgeLimits`,
//! `web::auth::SignInConfig`); `config` reads them from the environment once and re-exports them.

pub mod admin;
pub mod artifacts;
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
pub mod scrub;
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The layer of each top-level module, from the numbered list in this file's docs.
    fn layers() -> BTreeMap<String, usize> {
        let docs = include_str!("lib.rs");
        let mut layers = BTreeMap::new();
        for line in docs.lines().filter_map(|l| l.strip_prefix("//! ")) {
            let Some((number, rest)) = line.split_once(". `") else {
                continue;
            };
            let Ok(layer) = number.parse::<usize>() else {
                continue;
            };
            let names = rest.split(':').next().unwrap_or_default();
            for name in names.split(", ") {
                layers.insert(name.trim_matches('`').to_owned(), layer);
            }
        }
        layers
    }

    /// The top-level modules a file's code (comments and its `mod tests` left out) names as `crate::…`,
    /// `use crate::{a, b::{…}}` groups included.
    fn uses(source: &str) -> BTreeSet<String> {
        let code = source
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let code: Vec<&str> = code
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect();
        let code = code.join("\n");
        let mut found = BTreeSet::new();
        let mut name = |path: &str| {
            let first = path.trim_start();
            let end = first
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(first.len());
            found.insert(first[..end].to_owned());
        };
        for after in code.split("crate::").skip(1) {
            let Some(group) = after.strip_prefix('{') else {
                name(after);
                continue;
            };
            // The group's items at its top level: split at commas outside inner braces.
            let (mut depth, mut start) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        name(&group[start..i]);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        name(&group[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        }
        found.remove("");
        found
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_module_uses_one_of_a_later_layer_nor_one_that_uses_it() {
        let layers = layers();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        files(&root, &mut paths);
        let mut wrong = Vec::new();
        let mut edges = BTreeSet::new();
        for path in paths {
            let relative = path.strip_prefix(&root).unwrap();
            let first = relative.iter().next().unwrap().to_string_lossy();
            let module = first.trim_end_matches(".rs");
            if module == "lib" {
                continue;
            }
            let Some(own) = layers.get(module) else {
                wrong.push(format!("{module} is in no layer of the crate docs"));
                continue;
            };
            let source = std::fs::read_to_string(&path).unwrap();
            for used in uses(&source) {
                edges.insert((module.to_owned(), used.clone()));
                let later = layers.get(&used).is_some_and(|layer| layer > own);
                if later {
                    wrong.push(format!("{} uses crate::{used}", relative.display()));
                }
            }
        }
        for (a, b) in &edges {
            if a < b && edges.contains(&(b.clone(), a.clone())) {
                wrong.push(format!("{a} and {b} use each other"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
