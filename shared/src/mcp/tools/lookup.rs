//! What a tool's arguments name, found in the store: the projects to search, an issue and its project, a
//! transaction (by id or trace), a trace id; and the tags a stored payload carries.

use serde_json::Value;

use crate::mcp::args::{self, Args, ToolError, ToolResult};
use crate::store::{Issue, Project, Store, TransactionDetail};

/// The projects a lookup by id, a list or a search covers: `project` if given, else all of them.
pub async fn projects_to_search(store: &Store, a: &Args) -> ToolResult<Vec<Project>> {
    let projects = match args::string(a, "project")? {
        Some(_) => vec![args::project(store, a).await?],
        None => store.list_projects().await?,
    };
    if projects.is_empty() {
        return Err(ToolError::new(
            "there are no projects yet; create one with `splat project create NAME`",
        ));
    }
    Ok(projects)
}

/// How an answer names the projects it covers: the slug of one, or "all projects (a, b)".
pub fn projects_heading(projects: &[Project]) -> String {
    match projects {
        [one] => one.slug.clone(),
        many => format!(
            "all projects ({})",
            many.iter()
                .map(|p| p.slug.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The slug of project `id` among `projects` (empty if it is not one of them).
pub fn slug_of(projects: &[Project], id: crate::protocol::ProjectId) -> &str {
    projects
        .iter()
        .find(|p| p.id == id)
        .map_or("", |p| p.slug.as_str())
}

/// `trace_id` as stored: 32 lowercase hex digits (dashes and case forgiven).
pub fn trace_id_arg(a: &Args) -> ToolResult<Option<String>> {
    let Some(raw) = args::string(a, "trace_id")? else {
        return Ok(None);
    };
    let id: String = raw
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(Some(id))
    } else {
        Err(ToolError(format!(
            "`trace_id` must be a trace id (32 hex digits), got {raw:?}"
        )))
    }
}

/// How many of a project's newest transactions a lookup by event or span id without its trace looks
/// through (see [`Store::transaction_id`]): an agent can be handed any id, and reading a few tens of MB
/// is the most a wrong one may cost.
const SEARCHED_BY_ID_ALONE: u32 = 50_000;

/// The transaction a tool names: `transaction_id` (its event id, root span id or row id; within
/// `trace_id` when both are given), or `trace_id` alone (the trace's first transaction, its root), in
/// `project` or any project.
pub async fn transaction_arg(store: &Store, a: &Args) -> ToolResult<(Project, TransactionDetail)> {
    let trace = trace_id_arg(a)?;
    let raw = match (args::string(a, "transaction_id")?, &trace) {
        (Some(raw), _) => raw,
        (None, Some(trace)) => return transaction_of_trace(store, a, trace).await,
        (None, None) => {
            return Err(ToolError::new(
                "give `transaction_id` (an event id or root span id, as the transaction lists show) or `trace_id`",
            ))
        }
    };
    let id: String = raw
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_ascii_lowercase();
    let row_id = (id.len() < 16).then(|| id.parse::<i64>().ok()).flatten();
    for p in projects_to_search(store, a).await? {
        let found = match row_id {
            Some(n) => Some(n),
            None => {
                store
                    .transaction_id(p.id, &id, trace.as_deref(), SEARCHED_BY_ID_ALONE)
                    .await?
            }
        };
        if let Some(n) = found {
            if let Some(d) = store.transaction_detail(p.id, n).await? {
                return Ok((p, d));
            }
        }
    }
    let searched = match trace {
        Some(trace) => format!("in trace {trace}"),
        None => format!("among each project's newest {SEARCHED_BY_ID_ALONE} transactions (pass its `trace_id` too to find an older one)"),
    };
    Err(ToolError(format!(
        "no transaction {raw:?} {searched}: pass the event id (32 hex digits) or root span id (16 hex digits) that search_slow_transactions, get_transactions_by_endpoint or find_n_plus_one_endpoints list (transactions older than the retention period are gone)"
    )))
}

async fn transaction_of_trace(
    store: &Store,
    a: &Args,
    trace: &str,
) -> ToolResult<(Project, TransactionDetail)> {
    for p in projects_to_search(store, a).await? {
        if let Some(t) = store.trace_transactions(p.id, trace, 1).await?.first() {
            if let Some(d) = store.transaction_detail(p.id, t.id).await? {
                return Ok((p, d));
            }
        }
    }
    Err(ToolError(format!(
        "no transaction in trace {trace}: the SDK may not have sampled it, or it is older than the retention period; get_trace lists what a trace has"
    )))
}

/// The issue `issue_id` names, or a tool error saying it does not exist.
pub async fn issue_arg(store: &Store, a: &Args) -> ToolResult<Issue> {
    let id = args::required_integer(a, "issue_id")?;
    store.issue(id).await?.ok_or_else(|| {
        ToolError(format!(
            "no issue #{id}; list_recent_issues or search_issues show the existing ones"
        ))
    })
}

pub async fn project_of(store: &Store, issue: &Issue) -> ToolResult<Project> {
    store
        .project(issue.project_id)
        .await?
        .ok_or_else(|| ToolError(format!("issue #{} belongs to a deleted project", issue.id)))
}

/// Tags as sent: an object, or a list of `[key, value]` pairs.
pub fn tags_of(payload: &Value) -> Vec<(String, String)> {
    let Some(tags) = payload.get("tags") else {
        return Vec::new();
    };
    crate::model::tag_pairs(tags)
        .map(|(k, v)| (k.to_owned(), crate::format::json_text(v)))
        .collect()
}
