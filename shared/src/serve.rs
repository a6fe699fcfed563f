//! `splat serve`: every function in one process on one port. The same routers as the ingest and UI
//! Lambdas (ingest under `/api/`, the UI at `/`) and the same processor as the SQS Lambda (driven by
//! polling), on the embedded default storage.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest;
use crate::mcp::{self, McpState};
use crate::notify::{self, Notifier};
use crate::process::runner::{self, RunnerOptions};
use crate::process::supervisor::ProcessorHealth;
use crate::process::Processor;
use crate::web::front_door::HostPolicy;
use crate::web::health::{self, HealthState, QueueThresholds};
use crate::web::{self, WebState};
use crate::wiring::{adapters, dsn_line, ingest_state, open_reader, open_store};

/// Runs until Ctrl-C or SIGTERM: HTTP on `config.bind`, the processor polling the queue.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    private_data_dir(&config.data_dir)?;
    let writer = open_store(&config).await?;
    let project = writer.ensure_default_project().await?;
    // Ingest reads keys over its own connection so it never waits inside the writer's transaction.
    let reader = open_reader(&config).await?;
    // The UI reads (and makes its few writes) over a third connection, for the same reason.
    let ui_store = open_store(&config).await?;
    // MCP reads and changes issue status over its own connection too.
    let mcp_store = open_store(&config).await?;
    let (queue, blobs) = adapters(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let bound: SocketAddr = listener.local_addr()?;
    let (scheme, host) = config.public_base(bound);
    println!(
        "Splat is listening on {scheme}://{host} (data in {})",
        config.data_dir.display()
    );
    println!("Project {:?} (id {}):", project.name, project.id);
    println!("{}", dsn_line(&project, &scheme, &host));
    println!("Web UI: {scheme}://{host}/");
    match &config.mcp_auth_token {
        Some(_) => {
            println!("MCP: {scheme}://{host}/mcp (enabled; Authorization: Bearer <MCP_AUTH_TOKEN>)")
        }
        None => println!("MCP: disabled (set MCP_AUTH_TOKEN to enable {scheme}://{host}/mcp)"),
    }

    // Sign-in keeps a generated session secret in the data directory when SPLAT_SESSION_SECRET is unset.
    let auth = web::auth::Auth::from_config(&config.sign_in, Some(&config.data_dir));
    if auth.is_refused() {
        eprintln!("ERROR: {}", auth.describe());
    } else {
        println!("{}", auth.describe());
    }

    let internal = config.internal_url.clone().unwrap_or_else(|| {
        let mut loopback = bound;
        if loopback.ip().is_unspecified() {
            loopback.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{loopback}")
    });

    let (stop, stopped) = watch::channel(false);
    // Alerts are looked up and sent by a task of their own, over their own connection, fed without
    // waiting by the processor loop.
    let ui_base = config
        .public_url
        .clone()
        .unwrap_or_else(|| internal.clone());
    // Always on: webhooks saved on the settings page need no variable.
    let notifier = Notifier::with_channels(&config.notify, open_store(&config).await?, &ui_base)?;
    match notifier.channel_names() {
        names if names.is_empty() => println!("Notifications: none set in the environment"),
        names => println!("Notifications: {}", names.join(", ")),
    }
    let (handle, notifier_task) =
        notify::spawn(notifier.clone(), notify::BURST_CHECK_EVERY, stopped.clone());
    let notify = Some(handle);
    // The processor, retention and the cron monitors' evaluation (every minute) write the database, each
    // over a connection of its own, on threads of their own: the processor on one, the other two on another
    // (retention's first run after start merged a day of lake files for 30 s; sharing the processor's
    // thread, it held up processing as long, and the soak's queue grew to 28,000).
    let (monitors_store, retention_store) =
        (open_store(&config).await?, open_store(&config).await?);
    let processor = Processor::new(writer, blobs.clone())
        .with_horizons(config.retention)
        .with_max_monitors(config.max_monitors_per_project)
        .with_span_settle(config.span_settle)
        .with_artifact_limits(config.artifacts)
        .with_panic_marker(config.test_panic_marker.as_deref());
    if config.test_panic_marker.is_some() {
        eprintln!("WARNING: SPLAT_TEST_PANIC_ON_MARKER is set: the processor panics on purpose (tests only)");
    }
    let options = RunnerOptions {
        batch_size: config.batch_size,
        // Well within the local queue's visibility timeout (see `RunnerOptions::window`).
        window: config.batch_window.min(config.queue_visibility / 2),
        notify: notify.clone(),
        ..RunnerOptions::default()
    };
    let (processing, stop_processing) = writer_thread("splat-processor")?;
    let (maintenance, stop_maintenance) = writer_thread("splat-maintenance")?;
    let (monitors, retention) = {
        let _on_maintenance = maintenance.enter();
        let monitors = crate::process::monitors::spawn(
            monitors_store,
            Some(crate::lake::LakeWriter::new(blobs.clone())),
            notify,
            config.monitor_evaluate_every,
            stopped.clone(),
        );
        let retention = crate::retention::spawn_timer(
            retention_store,
            blobs.clone(),
            config.retention,
            retention_first_after(),
            crate::retention::SERVE_EVERY,
            stopped.clone(),
        );
        (monitors, retention)
    };
    let processor_health = ProcessorHealth::default();
    let worker = processing.spawn(runner::run(
        processor,
        queue.clone(),
        options,
        processor_health.clone(),
        stopped,
    ));
    let health = HealthState::new(
        open_reader(&config).await?,
        queue.clone(),
        QueueThresholds {
            warning: config.queue_warning_threshold,
            critical: config.queue_critical_threshold,
        },
    )
    .with_processor(processor_health);
    // The transaction page reads spans back from the lake files through the same blob store.
    let lake = crate::lake::LakeFiles::new(ui_store.clone(), blobs.clone());
    let ui = WebState::new(
        ui_store,
        queue.clone(),
        config.public_url.clone(),
        Some(internal),
    )
    .with_lake(std::sync::Arc::new(lake))
    .with_retention(config.retention)
    .with_burst_threshold(config.notify.burst_threshold)
    .with_notifier(Some(notifier))
    .with_auth(auth)
    .with_origin_secret(config.origin_secret.clone())
    // Ingest here reads the database; the snapshot is kept for an ingest Lambda sharing the bucket.
    .with_key_snapshot(blobs.clone())
    .with_hosts(HostPolicy::new(
        Some(bound.ip()),
        config.public_url.as_deref(),
        &config.allowed_hosts,
    ));
    let mcp_lake = crate::lake::LakeFiles::new(mcp_store.clone(), blobs.clone());
    let mcp = McpState::new(
        mcp_store,
        Some(queue.clone()),
        config.mcp_auth_token.clone(),
    )
    .with_lake(std::sync::Arc::new(mcp_lake));
    let api = web::api::ApiState {
        store: open_store(&config).await?,
        blobs: blobs.clone(),
        limits: config.artifacts,
    };
    let app = ingest::router(ingest_state(&config, reader, queue, blobs))
        .merge(web::api::router(api))
        .merge(health::router(health))
        .merge(web::router(ui))
        .merge(mcp::router(mcp));
    crate::http_server::serve(listener, app, &config.edge, shutdown_signal()).await;
    let _ = stop.send(true);
    worker.await?;
    retention.await?;
    monitors.await?;
    let _ = (stop_processing.send(()), stop_maintenance.send(()));
    notifier_task.await?;
    Ok(())
}

/// The data directory, this user's alone: made 0700, or made so when an older version left it open.
fn private_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let context = || format!("securing the data directory {}", dir.display());
    crate::private_files::create_dir(dir).with_context(context)?;
    if crate::private_files::tighten_dir(dir).with_context(context)? {
        println!(
            "Data directory {} was readable by other users; it is now 0700",
            dir.display()
        );
    }
    Ok(())
}

/// A thread of its own, with a single-threaded runtime, for tasks that write the database. libSQL's local
/// calls are synchronous: a writer waiting on a busy database (up to its busy timeout) or on fsync blocks
/// the thread it runs on. On the shared runtime that was one of the two workers serving HTTP, and requests
/// queued on it waited as long (with another process holding the write lock, an SDK's envelope got no
/// answer for 10 s while others were answered at once). Runs until the sender is used or dropped.
fn writer_thread(
    name: &str,
) -> anyhow::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = runtime.block_on(stopped);
        })?;
    Ok((handle, stop))
}

/// `SPLAT_RETENTION_FIRST_RUN_SECS` moves the first retention run (tests run it within seconds).
fn retention_first_after() -> std::time::Duration {
    std::env::var("SPLAT_RETENTION_FIRST_RUN_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map(std::time::Duration::from_secs)
        .unwrap_or(crate::retention::SERVE_FIRST_AFTER)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
