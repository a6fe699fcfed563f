//! `splat`: the local all-in-one binary. `splat serve` runs ingest and the processor in one process on
//! the embedded default storage; `splat project …` manages projects (their DSNs, quotas and data
//! scrubbing); `splat key …` manages DSN keys and quotas; `splat token …` manages API tokens.

// The system allocator, unlike the Lambda functions' mimalloc: `splat serve` runs for months beside its daily
// compaction, and mimalloc held on to what compaction freed (a peak of 238 MB, 170 MB with its purge delay at
// 0, against 107 MB here, in one run each under 1,000 envelopes/s), for about 15% less CPU per envelope
// (BENCHMARKS.md, "The allocator of `splat serve`"). A Lambda function lives minutes and is billed by the
// millisecond: the trade goes the other way there.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use splat::admin;
use splat::config::Config;
use splat::ingest::snapshot::publishing;
use splat::queue::dead_letters;
use splat::wiring::{dsn_line, open_store};

#[derive(Parser)]
#[command(
    name = "splat",
    version,
    about = "A Sentry-compatible error and performance tracker"
)]
struct Cli {
    /// Where the database, queue and lake live (default ./data).
    #[arg(long, global = true, env = "SPLAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything in one process and print the default project's DSN.
    Serve {
        /// Address to listen on (default 127.0.0.1:3030).
        #[arg(long, env = "SPLAT_BIND")]
        bind: Option<std::net::SocketAddr>,
    },
    /// Manage projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Manage DSN keys: list, add, disable, enable, rotate, and per-key quotas.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage API tokens for `/api/0/` (sentry-cli's SENTRY_AUTH_TOKEN): create, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Keep the database and the lake within their horizons (`SPLAT_MAX_*_LIFE_DAYS`).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// The lake (DuckLake tables of parquet files).
    Lake {
        #[command(subcommand)]
        command: LakeCommand,
    },
    /// The local queue (`<data-dir>/queue.db`).
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Messages the processor failed `SPLAT_QUEUE_MAX_RECEIVES` times.
    DeadLetters {
        #[command(subcommand)]
        command: DeadLetterCommand,
    },
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Id, project, time received, receive count, size and reason of each.
    List,
    /// One dead letter: its envelope's header and item headers (never the payloads).
    Show { id: i64 },
    /// Move one dead letter (or all) back to the queue, its receive count reset.
    Redrive {
        #[arg(required_unless_present = "all")]
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
}

#[derive(Subcommand)]
enum LakeCommand {
    /// Copy the DuckLake catalog into a new SQLite file that stock DuckDB can attach
    /// (`ATTACH 'ducklake:sqlite:OUT' AS lake (READ_ONLY)`): the way to the lake when the database is on a
    /// libSQL server, and a snapshot that leaves the live database alone.
    ExportCatalog {
        out: PathBuf,
        /// Where the copy says the parquet files are (default: where Splat writes them).
        #[arg(long)]
        data_path: Option<String>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Run retention once now and print what it removed (JSON).
    Run {
        /// Start no lake merge or deletion round after this many seconds (as a Lambda's 15 minutes
        /// would); the report says whether work was left, and the next run goes on with it.
        #[arg(long)]
        budget_secs: Option<u64>,
    },
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project and print its DSN.
    Create { name: String },
    /// List projects with their DSNs.
    List,
    /// Set the project's quota (all its keys together) for categories, in items per minute, or `off`.
    Limit {
        /// Project slug or id.
        project: String,
        /// Comma-separated data categories: error, transaction, span, attachment, session, monitor, feedback, ...
        categories: String,
        /// Items per minute, or `off`.
        per_minute: String,
    },
    /// Show or change the project's data scrubbing (on by default); prints the settings in force.
    Scrub {
        /// Project slug or id.
        project: String,
        /// The default rules (sensitive keys, cookies, card numbers, …): `on` or `off`.
        #[arg(long, value_parser = on_off)]
        defaults: Option<bool>,
        /// Remove IP addresses (`user.ip_address`, …) and replace them in text: `on` or `off`.
        #[arg(long, value_parser = on_off)]
        ip_addresses: Option<bool>,
        /// Comma-separated further keys to scrub (values containing them go too); empty clears.
        #[arg(long)]
        sensitive_fields: Option<String>,
        /// Comma-separated keys or dotted paths never scrubbed; empty clears.
        #[arg(long)]
        safe_fields: Option<String>,
    },
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{value:?}: on or off")),
    }
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List keys with state, DSN and quotas (every project's unless one is named).
    List { project: Option<String> },
    /// Add a key to a project and print its DSN.
    Add {
        /// Project slug or id.
        project: String,
        #[arg(long, default_value = "Default")]
        label: String,
    },
    /// Disable a key: ingest refuses it within SPLAT_KEY_CACHE_SECS.
    Disable { key: String },
    /// Enable a disabled key again.
    Enable { key: String },
    /// Replace a (leaked) key: a new key with the same label and quotas, the old one disabled at once.
    Rotate { key: String },
    /// Set a key's own quota for categories, in items per minute, or `off`.
    Limit {
        key: String,
        /// Comma-separated data categories: error, transaction, span, attachment, session, monitor, feedback, ...
        categories: String,
        /// Items per minute, or `off`.
        per_minute: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (once: only its hash is kept).
    Create {
        label: String,
        /// `project:releases` (CI: releases, deploys, uploads) or `read`.
        #[arg(long, default_value = "project:releases")]
        scope: String,
    },
    /// List tokens: id, first characters, scope, live or revoked, label.
    List,
    /// Revoke a token: refused from now on.
    Revoke { id: i64 },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    splat::init_tracing();
    let cli = Cli::parse();
    let mut config = Config::from_env()?;
    if let Some(dir) = cli.data_dir {
        config = config.with_data_dir(dir);
    }
    match cli.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            splat::serve::serve(config).await
        }
        Command::Retention {
            command: RetentionCommand::Run { budget_secs },
        } => {
            let deadline = match budget_secs {
                Some(secs) => splat::retention::Deadline::at(
                    std::time::Instant::now() + std::time::Duration::from_secs(secs),
                ),
                None => splat::retention::Deadline::NONE,
            };
            let store = open_store(&config).await?;
            let blobs = splat::wiring::blob_store(&config).await?;
            let report =
                splat::retention::run_and_record(&store, &blobs, &config.retention, deadline)
                    .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Lake {
            command: LakeCommand::ExportCatalog { out, data_path },
        } => {
            let store = open_store(&config).await?;
            let exported =
                splat::lake::export::export_catalog(&store, &out, data_path.as_deref()).await?;
            println!(
                "{}: {} catalog tables, {} rows",
                out.display(),
                exported.tables,
                exported.rows
            );
            Ok(())
        }
        Command::Key { command } => {
            let store = open_store(&config).await?;
            let blobs = splat::wiring::blob_store(&config).await?;
            let (scheme, host) = config.public_base(config.bind);
            let base = (scheme.as_str(), host.as_str());
            // Ingest outside the VPC reads keys from the snapshot in the bucket: published after a change.
            let lines = publishing(&store, &*blobs, async {
                anyhow::Ok(match command {
                    KeyCommand::List { project } => {
                        admin::list_keys(&store, project.as_deref(), base).await?
                    }
                    KeyCommand::Add { project, label } => {
                        admin::add_key(&store, &project, &label, base).await?
                    }
                    KeyCommand::Disable { key } => {
                        admin::set_key_enabled(&store, &key, false, base).await?
                    }
                    KeyCommand::Enable { key } => {
                        admin::set_key_enabled(&store, &key, true, base).await?
                    }
                    KeyCommand::Rotate { key } => admin::rotate_key(&store, &key, base).await?,
                    KeyCommand::Limit {
                        key,
                        categories,
                        per_minute,
                    } => admin::limit_key(&store, &key, &categories, &per_minute, base).await?,
                })
            })
            .await?;
            println!("{}", lines.join("\n"));
            Ok(())
        }
        Command::Token { command } => {
            let store = open_store(&config).await?;
            let lines = match command {
                TokenCommand::Create { label, scope } => {
                    admin::create_token(&store, &label, &scope).await?
                }
                TokenCommand::List => admin::list_tokens(&store).await?,
                TokenCommand::Revoke { id } => admin::revoke_token(&store, id).await?,
            };
            println!("{}", lines.join("\n"));
            Ok(())
        }
        Command::Queue {
            command: QueueCommand::DeadLetters { command },
        } => {
            let command = match command {
                DeadLetterCommand::List => dead_letters::Command::List,
                DeadLetterCommand::Show { id } => dead_letters::Command::Show(id),
                DeadLetterCommand::Redrive { id, .. } => dead_letters::Command::Redrive(id),
            };
            print!("{}", splat::wiring::dead_letters(&config, command).await?);
            Ok(())
        }
        Command::Project { command } => {
            let store = open_store(&config).await?;
            let blobs = splat::wiring::blob_store(&config).await?;
            let (scheme, host) = config.public_base(config.bind);
            let projects = publishing(&store, &*blobs, async {
                anyhow::Ok(match command {
                    ProjectCommand::Create { name } => vec![store.create_project(&name).await?],
                    ProjectCommand::List => store.list_projects().await?,
                    ProjectCommand::Limit {
                        project,
                        categories,
                        per_minute,
                    } => {
                        let base = (scheme.as_str(), host.as_str());
                        let lines =
                            admin::limit_project(&store, &project, &categories, &per_minute, base)
                                .await?;
                        println!("{}", lines.join("\n"));
                        Vec::new()
                    }
                    ProjectCommand::Scrub {
                        project,
                        defaults,
                        ip_addresses,
                        sensitive_fields,
                        safe_fields,
                    } => {
                        let change = admin::ScrubChange {
                            defaults,
                            ip_addresses,
                            sensitive_fields,
                            safe_fields,
                        };
                        let lines = admin::scrub_project(&store, &project, change).await?;
                        println!("{}", lines.join("\n"));
                        Vec::new()
                    }
                })
            })
            .await?;
            for project in projects {
                println!("{} {} ({})", project.id, project.slug, project.name);
                println!("{}", dsn_line(&project, &scheme, &host));
            }
            Ok(())
        }
    }
}
