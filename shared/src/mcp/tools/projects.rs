//! Instance-level tools: projects, status counts, releases.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::lookup::{projects_heading, projects_to_search};
use super::views::ProjectView;
use super::Answer;
use crate::mcp::args::{self, Args, ToolResult};
use crate::mcp::format::{code, iso};
use crate::mcp::McpState;
use crate::store::{IssueStatus, Project, Release};

#[derive(Serialize, JsonSchema)]
pub struct ProjectsAnswer {
    projects: Vec<ProjectSummaryView>,
}

#[derive(Serialize, JsonSchema)]
struct ProjectSummaryView {
    #[serde(flatten)]
    project: ProjectView,
    open_issues: i64,
    events: i64,
    last_activity: Option<String>,
}

pub async fn list_projects(state: &McpState, _: &Args) -> ToolResult<Answer<ProjectsAnswer>> {
    let store = &state.store;
    let summaries = store.project_summaries().await?;
    if summaries.is_empty() {
        return Ok(Answer {
            markdown:
                "## Projects\n\nNo projects yet. Create one with `splat project create NAME`.\n"
                    .into(),
            structured: ProjectsAnswer { projects: vec![] },
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
        list.push(ProjectSummaryView {
            project: ProjectView::from(&s.project),
            open_issues: s.open_issues,
            events,
            last_activity: s.last_activity.map(iso),
        });
    }
    Ok(Answer {
        markdown: md,
        structured: ProjectsAnswer { projects: list },
    })
}

#[derive(Serialize, JsonSchema)]
pub struct StatusAnswer {
    version: &'static str,
    projects: usize,
    issues: i64,
    issues_by_status: BTreeMap<&'static str, i64>,
    events: i64,
    transactions: i64,
    /// Streamed spans waiting in the database for their segment to settle (the lake holds every span).
    spans: i64,
    releases: i64,
    queue_depth: Option<u64>,
    queue_lag_seconds: Option<f64>,
    queue_last_batch_at: Option<String>,
}

pub async fn get_status(state: &McpState, _: &Args) -> ToolResult<Answer<StatusAnswer>> {
    let store = &state.store;
    let projects = store.list_projects().await?;
    let mut by_status: BTreeMap<&'static str, i64> =
        IssueStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for p in &projects {
        for (st, n) in store.issue_status_counts(p.id).await? {
            *by_status.entry(st.as_str()).or_insert(0) += n;
        }
    }
    let issues: i64 = by_status.values().sum();
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
    md.push_str(&format!("- Events: {events}\n- Transactions: {transactions}\n- Streamed spans waiting for their segment to settle: {spans}\n- Releases: {releases}\n"));
    md.push_str(&match (depth, gauge.lag(), gauge.last_batch_at()) {
        (Some(d), ..) => format!("- Queue depth: {d} message(s) waiting\n"),
        (None, Some(lag), Some(at)) => format!(
            "- Queue lag: {:.1} s (the oldest message of the processor's last batch, at {at})\n",
            lag.as_secs_f64()
        ),
        _ => "- Queue depth: not available\n".into(),
    });
    Ok(Answer {
        markdown: md,
        structured: StatusAnswer {
            version: env!("CARGO_PKG_VERSION"),
            projects: projects.len(),
            issues,
            issues_by_status: by_status,
            events,
            transactions,
            spans,
            releases,
            queue_depth: depth,
            queue_lag_seconds: gauge.lag().map(|lag| lag.as_secs_f64()),
            queue_last_batch_at: gauge.last_batch_at(),
        },
    })
}

#[derive(Serialize, JsonSchema)]
pub struct ReleasesAnswer {
    /// The projects listed: the one given as `project`, else every project.
    projects: Vec<ProjectView>,
    total: usize,
    releases: Vec<ReleaseView>,
}

#[derive(Serialize, JsonSchema)]
struct ReleaseView {
    /// The slug of the release's project.
    project: String,
    version: String,
    first_seen: String,
    last_seen: String,
    events: i64,
    transactions: i64,
}

impl ReleaseView {
    fn new(project: &Project, r: &Release) -> Self {
        Self {
            project: project.slug.clone(),
            version: r.version.clone(),
            first_seen: iso(r.first_seen),
            last_seen: iso(r.last_seen),
            events: r.event_count,
            transactions: r.transaction_count,
        }
    }
}

pub async fn list_releases(state: &McpState, a: &Args) -> ToolResult<Answer<ReleasesAnswer>> {
    let store = &state.store;
    let projects = projects_to_search(store, a).await?;
    let limit = args::limit(a, 20, 100)? as usize;
    let mut releases = Vec::new();
    for project in &projects {
        releases.extend(
            store
                .releases(project.id)
                .await?
                .into_iter()
                .map(|r| (project, r)),
        );
    }
    // Newest first across projects, as within one.
    releases.sort_by_key(|(_, r)| std::cmp::Reverse(r.first_seen));
    let total = releases.len();
    let shown: Vec<_> = releases.into_iter().take(limit).collect();
    let mut md = format!(
        "## Releases of {} ({total})\n\n",
        projects_heading(&projects)
    );
    if shown.is_empty() {
        md.push_str(
            "No releases yet: events name their release with the SDK's `release` option.\n",
        );
    } else {
        md.push_str(
            "| Release | First seen | Last seen | Events | Transactions | Project |\n|---|---|---|---|---|---|\n",
        );
        for (p, r) in &shown {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                code(&r.version),
                iso(r.first_seen),
                iso(r.last_seen),
                r.event_count,
                r.transaction_count,
                code(&p.slug),
            ));
        }
        if total > shown.len() {
            md.push_str(&format!(
                "\n{} older releases not shown.\n",
                total - shown.len()
            ));
        }
    }
    Ok(Answer {
        markdown: md,
        structured: ReleasesAnswer {
            projects: projects.iter().map(ProjectView::from).collect(),
            total,
            releases: shown.iter().map(|(p, r)| ReleaseView::new(p, r)).collect(),
        },
    })
}
