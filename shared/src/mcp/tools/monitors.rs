//! `list_monitors`: a project's cron monitors with their schedule, state and last and next check-in.

use schemars::JsonSchema;
use serde::Serialize;

use super::lookup::{projects_heading, projects_to_search};
use super::views::ProjectView;
use super::Answer;
use crate::mcp::args::{Args, ToolResult};
use crate::mcp::format::{code, iso};
use crate::mcp::McpState;
use crate::store::{Monitor, Project};

#[derive(Serialize, JsonSchema)]
pub struct MonitorsAnswer {
    /// The projects listed: the one given as `project`, else every project.
    projects: Vec<ProjectView>,
    monitors: Vec<MonitorView>,
}

#[derive(Serialize, JsonSchema)]
struct MonitorView {
    /// The slug of the monitor's project.
    project: String,
    slug: String,
    state: &'static str,
    schedule: Option<ScheduleView>,
    checkin_margin_minutes: i64,
    max_runtime_minutes: i64,
    failure_issue_threshold: i64,
    recovery_threshold: i64,
    environment: Option<String>,
    last_checkin_at: Option<String>,
    last_status: Option<&'static str>,
    last_duration_ms: Option<f64>,
    next_expected_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct ScheduleView {
    /// `crontab` or `interval`.
    #[serde(rename = "type")]
    ty: &'static str,
    value: String,
    unit: Option<&'static str>,
    timezone: Option<String>,
}

pub async fn list_monitors(state: &McpState, a: &Args) -> ToolResult<Answer<MonitorsAnswer>> {
    let store = &state.store;
    let projects = projects_to_search(store, a).await?;
    let mut monitors = Vec::new();
    for project in &projects {
        monitors.extend(
            store
                .monitors(Some(project.id))
                .await?
                .into_iter()
                .map(|m| (project, m)),
        );
    }
    let mut md = format!(
        "## Cron monitors of {} ({})\n\n",
        projects_heading(&projects),
        monitors.len()
    );
    if monitors.is_empty() {
        md.push_str("No monitors yet: they appear with their first check-in (`capture_checkin`, the `@monitor` decorator, or `/api/<project>/cron/<slug>/<key>/`).\n");
    } else {
        md.push_str("| Monitor | State | Schedule | Last check-in | Duration | Next expected | Project |\n|---|---|---|---|---|---|---|\n");
        for (p, m) in &monitors {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                code(&m.slug),
                m.state(),
                schedule(m).replace('|', "\\|"),
                m.last_checkin_at.map(iso).unwrap_or_else(|| "never".into()),
                m.last_duration_ms
                    .map(|ms| format!("{:.1} s", ms / 1000.0))
                    .unwrap_or_else(|| "–".into()),
                m.next_expected_at.map(iso).unwrap_or_else(|| "–".into()),
                code(&p.slug),
            ));
        }
        md.push_str("\nA missed, failed or overrunning monitor has an open issue titled `Monitor `<slug>` …` (see `search_issues`).\n");
    }
    Ok(Answer {
        markdown: md,
        structured: MonitorsAnswer {
            projects: projects.iter().map(ProjectView::from).collect(),
            monitors: monitors
                .iter()
                .map(|(p, m)| MonitorView::new(p, m))
                .collect(),
        },
    })
}

fn schedule(m: &Monitor) -> String {
    m.schedule
        .as_ref()
        .map_or_else(|| "none (never missed)".into(), |s| s.describe())
}

impl MonitorView {
    fn new(project: &Project, m: &Monitor) -> Self {
        let schedule = m.schedule.as_ref().map(|s| {
            let (ty, value, unit, timezone) = s.parts();
            ScheduleView {
                ty,
                value,
                unit,
                timezone,
            }
        });
        Self {
            project: project.slug.clone(),
            slug: m.slug.clone(),
            state: m.state(),
            schedule,
            checkin_margin_minutes: m.checkin_margin,
            max_runtime_minutes: m.max_runtime,
            failure_issue_threshold: m.failure_issue_threshold,
            recovery_threshold: m.recovery_threshold,
            environment: m.environment.clone(),
            last_checkin_at: m.last_checkin_at.map(iso),
            last_status: m.last_status.map(|s| s.as_str()),
            last_duration_ms: m.last_duration_ms,
            next_expected_at: m.next_expected_at.map(iso),
        }
    }
}
