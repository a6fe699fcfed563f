//! The monitors page (`/projects/{slug}/monitors`): each cron monitor with its schedule, state, last
//! check-in, next expected check-in and latest runs. Monitors appear with their first check-in; there is
//! nothing to set up here.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use crate::model::check_in::RunStatus;
use crate::model::time::Ts;
use crate::store::{Monitor, Project, Run};

use super::{project_or_404, render, Chrome, WebResult, WebState};

/// Runs shown per monitor.
const RECENT_RUNS: u32 = 20;

#[derive(Template)]
#[template(path = "monitors/list.html")]
struct MonitorListPage {
    chrome: Chrome,
    project: Project,
    rows: Vec<MonitorView>,
}

struct MonitorView {
    slug: String,
    state: &'static str,
    /// Badge colour: `ok`, `warn`, `bad` or `muted-badge`.
    class: &'static str,
    schedule: String,
    schedule_title: String,
    margin: i64,
    max_runtime: i64,
    environment: String,
    last_checkin: Option<Ts>,
    duration: String,
    next_expected: Option<Ts>,
    /// Oldest first: `(symbol, tooltip)`.
    runs: Vec<(&'static str, String)>,
}

/// `GET /projects/{slug}/monitors`.
pub async fn list(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "monitors",
            format!("Monitors · {}", project.name),
        )
        .await?;
    let mut rows = Vec::new();
    for m in state.store.monitors(Some(project.id)).await? {
        let runs = state.store.monitor_runs(m.id, RECENT_RUNS).await?;
        rows.push(row(m, runs));
    }
    render(&MonitorListPage {
        chrome,
        project,
        rows,
    })
}

fn row(m: Monitor, runs: Vec<Run>) -> MonitorView {
    let class = match m.last_status {
        Some(RunStatus::Ok) => "ok",
        Some(RunStatus::InProgress) => "warn",
        Some(RunStatus::Error | RunStatus::Missed | RunStatus::Timeout) => "bad",
        None => "muted-badge",
    };
    let (schedule, schedule_title) = match &m.schedule {
        Some(s) => (s.describe(), s.explain().unwrap_or_default()),
        None => (
            "no schedule".to_owned(),
            "No check-in has sent a monitor_config yet, so this monitor is never missed".to_owned(),
        ),
    };
    MonitorView {
        state: m.state(),
        class,
        schedule,
        schedule_title,
        margin: m.checkin_margin,
        max_runtime: m.max_runtime,
        environment: m.environment.clone().unwrap_or_default(),
        last_checkin: m.last_checkin_at.map(Ts),
        duration: m
            .last_duration_ms
            .map(seconds)
            .unwrap_or_else(|| "–".into()),
        next_expected: m.next_expected_at.map(Ts),
        runs: runs.iter().rev().map(run_mark).collect(),
        slug: m.slug,
    }
}

fn seconds(ms: f64) -> String {
    if ms < 10_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

fn run_mark(run: &Run) -> (&'static str, String) {
    let symbol = match run.status {
        RunStatus::Ok => "✓",
        RunStatus::Error => "✗",
        RunStatus::Missed => "○",
        RunStatus::Timeout => "⧖",
        RunStatus::InProgress => "…",
    };
    let took = run
        .duration_ms
        .map(seconds)
        .map_or_else(String::new, |d| format!(", {d}"));
    let title = format!(
        "{} at {}{took}",
        run.status.monitor_state(),
        Ts(run.started_at).utc()
    );
    (symbol, title)
}
