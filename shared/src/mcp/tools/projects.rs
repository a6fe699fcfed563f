//! Instance-level tools: projects, status counts, releases.

use serde_json::json;

use super::ToolOutput;
use crate::mcp::args::{self, Args, ToolResult};
use crate::mcp::format::{code, iso, project_json, release_json};
use crate::mcp::McpState;
use crate::store::{IssueStatus, Store};

pub async fn list_projects(store: &Store) -> ToolResult<ToolOutput> {
    let summaries = store.project_summaries().await?;
    if summaries.is_empty() {
        return Ok(ToolOutput {
            markdown:
                "## Projects\n\nNo projects yet. Create one with `splat project create NAME`.\n"
                    .into(),
            structured: json!({ "projects": [] }),
        });
    }
    let mut md = format!("## Projects ({})\n\n", summaries.len());
    md.push_str(
        "| Id | Slug | Name | Open issues | Events | Last activity |\n|---|---|---|---|---|---|\n",
    );
    let mut list = Vec::new();
    for s in &summaries {
        let events = store.item_count(s.project.id, "event").await?;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            s.project.id.value(),
            code(&s.project.slug),
            s.project.name.replace('|', "\\|"),
            s.open_issues,
            events,
            s.last_activity.map(iso).unwrap_or_else(|| "never".into())
        ));
        let mut p = project_json(&s.project);
        p["open_issues"] = json!(s.open_issues);
        p["events"] = json!(events);
        p["last_activity"] = json!(s.last_activity.map(iso));
        list.push(p);
    }
    Ok(ToolOutput {
        markdown: md,
        structured: json!({ "projects": list }),
    })
}

pub async fn get_status(state: &McpState) -> ToolResult<ToolOutput> {
    let store = &state.store;
    let projects = store.list_projects().await?;
    let mut by_status = serde_json::Map::new();
    for st in IssueStatus::ALL {
        by_status.insert(st.as_str().into(), json!(0));
    }
    for p in &projects {
        for (st, n) in store.issue_status_counts(p.id).await? {
            let e = by_status.entry(st.as_str()).or_insert(json!(0));
            *e = json!(e.as_i64().unwrap_or(0) + n);
        }
    }
    let issues: i64 = by_status.values().filter_map(|v| v.as_i64()).sum();
    let events = store.count("events").await?;
    let transactions = store.count("transactions").await?;
    let spans = store.count("spans").await?;
    let releases = store.count("releases").await?;
    let gauge = match &state.queue {
        Some(q) => crate::queue::QueueGauge::read(&**q, store).await,
        None => crate::queue::QueueGauge::Unavailable,
    };
    let depth = gauge.depth();
    let mut md = String::from("## Splat status\n\n");
    md.push_str(&format!("- Version: {}\n", env!("CARGO_PKG_VERSION")));
    md.push_str(&format!("- Projects: {}\n", projects.len()));
    md.push_str(&format!("- Issues: {issues}"));
    let parts: Vec<String> = IssueStatus::ALL
        .iter()
        .map(|s| format!("{} {}", by_status[s.as_str()], s.as_str()))
        .collect();
    md.push_str(&format!(" ({})\n", parts.join(", ")));
    md.push_str(&format!("- Events: {events}\n- Transactions: {transactions}\n- Spans: {spans}\n- Releases: {releases}\n"));
    md.push_str(&match (depth, gauge.lag(), gauge.last_batch_at()) {
        (Some(d), ..) => format!("- Queue depth: {d} message(s) waiting\n"),
        (None, Some(lag), Some(at)) => format!(
            "- Queue lag: {:.1} s (the oldest message of the processor's last batch, at {at})\n",
            lag.as_secs_f64()
        ),
        _ => "- Queue depth: not available\n".into(),
    });
    Ok(ToolOutput {
        markdown: md,
        structured: json!({
            "version": env!("CARGO_PKG_VERSION"),
            "projects": projects.len(),
            "issues": issues,
            "issues_by_status": by_status,
            "events": events,
            "transactions": transactions,
            "spans": spans,
            "releases": releases,
            "queue_depth": depth,
            "queue_lag_seconds": gauge.lag().map(|lag| lag.as_secs_f64()),
            "queue_last_batch_at": gauge.last_batch_at(),
        }),
    })
}

pub async fn list_releases(store: &Store, a: &Args) -> ToolResult<ToolOutput> {
    let project = args::project(store, a).await?;
    let limit = args::limit(a, 20, 100)? as usize;
    let releases = store.releases(project.id).await?;
    let total = releases.len();
    let shown: Vec<_> = releases.into_iter().take(limit).collect();
    let mut md = format!("## Releases of {} ({total})\n\n", project.slug);
    if shown.is_empty() {
        md.push_str(
            "No releases yet: events name their release with the SDK's `release` option.\n",
        );
    } else {
        md.push_str(
            "| Release | First seen | Last seen | Events | Transactions |\n|---|---|---|---|---|\n",
        );
        for r in &shown {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                code(&r.version),
                iso(r.first_seen),
                iso(r.last_seen),
                r.event_count,
                r.transaction_count
            ));
        }
        if total > shown.len() {
            md.push_str(&format!(
                "\n{} older releases not shown.\n",
                total - shown.len()
            ));
        }
    }
    Ok(ToolOutput {
        markdown: md,
        structured: json!({
            "project": project_json(&project),
            "total": total,
            "releases": shown.iter().map(release_json).collect::<Vec<_>>(),
        }),
    })
}
