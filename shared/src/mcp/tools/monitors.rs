//! `list_monitors`: a project's cron monitors with their schedule, state and last and next check-in.

use serde_json::{json, Value};

use super::ToolOutput;
use crate::mcp::args::{self, Args, ToolResult};
use crate::mcp::format::{code, iso, project_json};
use crate::store::{Monitor, Store};

pub async fn list_monitors(store: &Store, a: &Args) -> ToolResult<ToolOutput> {
    let project = args::project(store, a).await?;
    let monitors = store.monitors(Some(project.id)).await?;
    let mut md = format!(
        "## Cron monitors of {} ({})\n\n",
        project.slug,
        monitors.len()
    );
    if monitors.is_empty() {
        md.push_str("No monitors yet: they appear with their first check-in (`capture_checkin`, the `@monitor` decorator, or `/api/<project>/cron/<slug>/<key>/`).\n");
    } else {
        md.push_str("| Monitor | State | Schedule | Last check-in | Duration | Next expected |\n|---|---|---|---|---|---|\n");
        for m in &monitors {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                code(&m.slug),
                m.state(),
                schedule(m).replace('|', "\\|"),
                m.last_checkin_at.map(iso).unwrap_or_else(|| "never".into()),
                m.last_duration_ms
                    .map(|ms| format!("{:.1} s", ms / 1000.0))
                    .unwrap_or_else(|| "–".into()),
                m.next_expected_at.map(iso).unwrap_or_else(|| "–".into()),
            ));
        }
        md.push_str("\nA missed, failed or overrunning monitor has an open issue titled `Monitor `<slug>` …` (see `search_issues`).\n");
    }
    Ok(ToolOutput {
        markdown: md,
        structured: json!({
            "project": project_json(&project),
            "monitors": monitors.iter().map(monitor_json).collect::<Vec<_>>(),
        }),
    })
}

fn schedule(m: &Monitor) -> String {
    m.schedule
        .as_ref()
        .map_or_else(|| "none (never missed)".into(), |s| s.describe())
}

fn monitor_json(m: &Monitor) -> Value {
    let schedule = m.schedule.as_ref().map(|s| {
        let (ty, value, unit, timezone) = s.parts();
        json!({ "type": ty, "value": value, "unit": unit, "timezone": timezone })
    });
    json!({
        "slug": m.slug,
        "state": m.state(),
        "schedule": schedule,
        "checkin_margin_minutes": m.checkin_margin,
        "max_runtime_minutes": m.max_runtime,
        "failure_issue_threshold": m.failure_issue_threshold,
        "recovery_threshold": m.recovery_threshold,
        "environment": m.environment,
        "last_checkin_at": m.last_checkin_at.map(iso),
        "last_status": m.last_status.map(|s| s.as_str()),
        "last_duration_ms": m.last_duration_ms,
        "next_expected_at": m.next_expected_at.map(iso),
    })
}
