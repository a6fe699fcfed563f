//! The figure tools (performance and logs) for every project when `project` is omitted, as the list and
//! search tools are: the tool runs once per project, at most [`MAX_PROJECTS`] of them, and each answer
//! names its own project. A project the tool cannot answer for (an endpoint it does not have) is said
//! so, not an error, unless no project can answer.

use std::future::Future;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::lookup::projects_to_search;
use super::perf::{compare, lists, n_plus_one, stats, timeseries};
use super::{logs, Answer};
use crate::mcp::args::{self, Args, ToolError, ToolResult};
use crate::mcp::format::{code, line};
use crate::mcp::McpState;

/// Projects a tool answers for when `project` is omitted; the rest are named, not read.
pub const MAX_PROJECTS: usize = 20;

/// A tool's answer for one project (the one given as `project`, else the first with an answer) at the
/// top level, as when `project` is given; the other projects' answers beside it.
#[derive(Serialize, JsonSchema)]
pub struct AcrossProjects<T> {
    #[serde(flatten)]
    pub first: T,
    /// The same answer for each other project, when `project` was omitted (each names its project).
    pub other_projects: Vec<T>,
    /// Projects the tool could not answer for, and why.
    pub unanswered: Vec<Unanswered>,
    /// Projects not read: only the first 20 are when `project` is omitted; pass `project` for these.
    pub projects_not_searched: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Unanswered {
    /// The project's slug.
    pub project: String,
    pub reason: String,
}

/// Runs `run` for the project `a` names, or for each project (up to [`MAX_PROJECTS`]) with `project`
/// set to its id.
async fn across_projects<'s, T, F, Fut>(
    state: &'s McpState,
    a: &Args,
    run: F,
) -> ToolResult<Answer<AcrossProjects<T>>>
where
    F: Fn(&'s McpState, Args) -> Fut,
    Fut: Future<Output = ToolResult<Answer<T>>>,
{
    if args::string(a, "project")?.is_some() {
        let answer = run(state, a.clone()).await?;
        return Ok(Answer {
            markdown: answer.markdown,
            structured: AcrossProjects {
                first: answer.structured,
                other_projects: Vec::new(),
                unanswered: Vec::new(),
                projects_not_searched: Vec::new(),
            },
        });
    }
    let mut projects = projects_to_search(&state.store, a).await?;
    let not_searched: Vec<String> = projects
        .split_off(projects.len().min(MAX_PROJECTS))
        .into_iter()
        .map(|p| p.slug)
        .collect();
    let mut answers = Vec::new();
    let mut unanswered = Vec::new();
    for p in &projects {
        let mut one = a.clone();
        one.insert("project".into(), Value::String(p.id.value().to_string()));
        match run(state, one).await {
            Ok(answer) => answers.push(answer),
            Err(ToolError(reason)) => unanswered.push(Unanswered {
                project: p.slug.clone(),
                reason,
            }),
        }
    }
    let mut answers = answers.into_iter();
    let Some(first) = answers.next() else {
        return Err(match unanswered.as_slice() {
            [one] => ToolError(one.reason.clone()),
            all => ToolError(format!(
                "no project has an answer: {}",
                all.iter()
                    .map(|u| format!("{}: {}", u.project, u.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        });
    };
    let others: Vec<Answer<T>> = answers.collect();
    let markdown = markdown(&first, &others, &unanswered, &not_searched, projects.len());
    Ok(Answer {
        markdown,
        structured: AcrossProjects {
            first: first.structured,
            other_projects: others.into_iter().map(|o| o.structured).collect(),
            unanswered,
            projects_not_searched: not_searched,
        },
    })
}

/// Each project's answer in turn (each names its project), then the projects without one.
fn markdown<T>(
    first: &Answer<T>,
    others: &[Answer<T>],
    unanswered: &[Unanswered],
    not_searched: &[String],
    searched: usize,
) -> String {
    let mut md = String::new();
    if searched > 1 {
        md.push_str(&format!(
            "Every project in turn ({searched}; pass `project` for one).\n\n"
        ));
    }
    md.push_str(&first.markdown);
    for o in others {
        md.push_str("\n---\n\n");
        md.push_str(&o.markdown);
    }
    if !unanswered.is_empty() {
        md.push_str("\n---\n\nNo answer for:\n");
        for u in unanswered {
            md.push_str(&format!(
                "- {}: {}\n",
                code(&u.project),
                line(&u.reason, 300)
            ));
        }
    }
    if !not_searched.is_empty() {
        md.push_str(&format!(
            "\nOnly the first {MAX_PROJECTS} projects were read; pass `project` for {}.\n",
            not_searched
                .iter()
                .map(|s| code(s))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    md
}

/// `name = tool => answer;`: `name` answers as `tool` does, for every project when `project` is omitted.
macro_rules! for_every_project {
    ($($name:ident = $tool:path => $answer:ty;)*) => {$(
        pub async fn $name(state: &McpState, a: &Args) -> ToolResult<Answer<AcrossProjects<$answer>>> {
            across_projects(state, a, |state, a| async move { $tool(state, &a).await }).await
        }
    )*};
}

for_every_project! {
    get_transaction_stats = stats::get_transaction_stats => stats::TransactionStatsAnswer;
    get_endpoint_summary = stats::get_endpoint_summary => stats::EndpointSummaryAnswer;
    get_endpoint_timeseries = timeseries::get_endpoint_timeseries => timeseries::TimeseriesAnswer;
    find_n_plus_one_endpoints = n_plus_one::find_n_plus_one_endpoints => n_plus_one::NPlusOneAnswer;
    search_slow_transactions = lists::search_slow_transactions => lists::SlowTransactionsAnswer;
    get_transactions_by_endpoint = lists::get_transactions_by_endpoint => lists::ByEndpointAnswer;
    compare_endpoint_performance = compare::compare_endpoint_performance => compare::CompareAnswer;
    search_logs = logs::search_logs => logs::LogsAnswer;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    async fn state_with_projects(n: usize) -> McpState {
        let store = Store::open_in_memory().await.unwrap();
        for i in 0..n {
            store.create_project(&format!("p{i:02}")).await.unwrap();
        }
        McpState::new(store, None, None)
    }

    #[tokio::test]
    async fn answers_for_the_first_twenty_projects_and_names_the_rest() {
        let state = state_with_projects(22).await;
        let out = super::super::call(&state, "search_logs", &Args::new())
            .await
            .unwrap();
        let s = &out.structured;
        assert_eq!(s["project"]["slug"], "p00");
        let others: Vec<&str> = s["other_projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["project"]["slug"].as_str().unwrap())
            .collect();
        assert_eq!(others.len(), MAX_PROJECTS - 1);
        assert_eq!((others[0], others[18]), ("p01", "p19"));
        assert_eq!(
            s["projects_not_searched"],
            serde_json::json!(["p20", "p21"])
        );
        for slug in [
            "Logs of p00",
            "Logs of p19",
            "pass `project` for `p20`, `p21`",
        ] {
            assert!(out.markdown.contains(slug), "{slug}: {}", out.markdown);
        }
    }

    #[tokio::test]
    async fn a_named_project_is_answered_alone_and_no_answer_anywhere_is_an_error() {
        let state = state_with_projects(3).await;
        let mut a = Args::new();
        a.insert("project".into(), "p01".into());
        let out = super::super::call(&state, "get_transaction_stats", &a)
            .await
            .unwrap();
        assert_eq!(out.structured["project"]["slug"], "p01");
        assert_eq!(out.structured["other_projects"], serde_json::json!([]));
        // No project has the endpoint: each one's reason, in one error.
        let mut a = Args::new();
        a.insert("endpoint".into(), "GET /nowhere".into());
        let Err(ToolError(e)) = super::super::call(&state, "get_endpoint_summary", &a).await else {
            panic!("an answer for an endpoint no project has")
        };
        for slug in [
            "p00: no transactions",
            "p01: no transactions",
            "p02: no transactions",
        ] {
            assert!(e.contains(slug), "{slug}: {e}");
        }
    }
}
