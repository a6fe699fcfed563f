//! Projects: the list (open issues, last activity, DSN), create, the settings page (rename, keys and
//! quotas from [`super::keys`], delete), and the dashboard: its errors half (open issues, events in 24 h, recent issues and events,
//! queue depth) and its performance half (`performance::dashboard_perf`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::format::Count;
use crate::model::time::Ts;
use crate::store::{IssueFilter, IssueSort, IssueStatus, Project, RecentEvent};

use super::chart::Sparkline;
use super::issues::{deploys, issue_rows, IssueView};
use super::keys::{key_rows, limit_fields, KeyView, LimitField};
use super::performance::{dashboard_perf, DashboardPerf};
use super::scrubbing::ScrubbingView;
use super::{project_or_404, render, Chrome, WebError, WebResult, WebState};

/// A project card on the list.
pub struct ProjectCard {
    pub project: Project,
    pub open_issues: Count,
    pub last_activity: Option<Ts>,
    pub dsn: Option<String>,
}

#[derive(Template)]
#[template(path = "projects/list.html")]
struct ProjectListPage {
    chrome: Chrome,
    cards: Vec<ProjectCard>,
}

/// `GET /`.
pub async fn list(State(state): State<WebState>, chrome: Chrome) -> WebResult<Response> {
    let chrome = chrome.global(&state, "Projects · Splat").await?;
    let cards = state
        .store
        .project_summaries()
        .await?
        .into_iter()
        .map(|s| ProjectCard {
            dsn: chrome.dsns(&s.project).into_iter().next().map(|(_, d)| d),
            open_issues: Count(s.open_issues),
            last_activity: s.last_activity.map(Ts),
            project: s.project,
        })
        .collect();
    render(&ProjectListPage { chrome, cards })
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    name: String,
}

fn valid_name(name: &str) -> WebResult<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(WebError::BadRequest(
            "A project name is 1 to 200 characters.".into(),
        ));
    }
    Ok(name)
}

/// `POST /projects`: creates a project with one key and opens its dashboard.
pub async fn create(
    State(state): State<WebState>,
    Form(form): Form<NameForm>,
) -> WebResult<Response> {
    let project = state.store.create_project(valid_name(&form.name)?).await?;
    tracing::info!(project = %project.id, slug = %project.slug, "project created");
    Ok(see_other(&format!("/projects/{}", project.slug)))
}

fn see_other(path: &str) -> Response {
    use axum::response::IntoResponse;
    Redirect::to(path).into_response()
}

#[derive(Template)]
#[template(path = "projects/dashboard.html")]
struct DashboardPage {
    chrome: Chrome,
    project: Project,
    dsns: Vec<(&'static str, String)>,
    open_issues: Count,
    events_24h: Sparkline,
    events_total: Count,
    latest_release: Option<String>,
    releases: Count,
    recent_issues: Vec<IssueView>,
    recent_events: Vec<RecentEventView>,
    perf: DashboardPerf,
}

pub struct RecentEventView {
    pub event: RecentEvent,
    pub timestamp: Ts,
    pub url: String,
    pub issue_url: Option<String>,
}

/// `GET /projects/{slug}`: the dashboard.
pub async fn dashboard(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let now = Ts::now().0;
    let since = Ts(now).hour_secs() - 23 * 3_600;
    let hours = state.store.project_event_hours(project.id, since).await?;
    let deploys = deploys(&state, project.id).await?;
    let counts = state.store.issue_status_counts(project.id).await?;
    let (recent, _) = state
        .store
        .list_issues(
            project.id,
            &IssueFilter {
                status: Some(IssueStatus::Open),
                sort: IssueSort::LastSeen,
                per_page: 5,
                ..IssueFilter::default()
            },
        )
        .await?;
    let recent_issues = issue_rows(&state, &project.slug, recent, &deploys).await?;
    let recent_events = state
        .store
        .recent_events(project.id, 5)
        .await?
        .into_iter()
        .map(|event| RecentEventView {
            timestamp: Ts(event.timestamp),
            url: format!("/projects/{}/events/{}", project.slug, event.event_id),
            issue_url: event
                .issue_id
                .map(|id| format!("/projects/{}/issues/{id}", project.slug)),
            event,
        })
        .collect();
    let events_total = state.store.item_count(project.id, "event").await?;
    let errors_24h: i64 = hours.iter().map(|(_, n)| n).sum();
    let perf = dashboard_perf(&state, &project, &deploys, errors_24h, now).await?;
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "overview",
            format!("{} · Splat", project.name),
        )
        .await?;
    render(&DashboardPage {
        dsns: chrome.dsns(&project),
        open_issues: Count(counts.get(&IssueStatus::Open).copied().unwrap_or(0)),
        events_24h: Sparkline::hourly(&hours, &deploys, 24, now),
        events_total: Count(events_total),
        latest_release: deploys.first().map(|(_, v)| v.clone()),
        releases: Count(deploys.len() as i64),
        recent_issues,
        recent_events,
        perf,
        chrome,
        project,
    })
}

#[derive(Template)]
#[template(path = "projects/settings.html")]
struct SettingsPage {
    chrome: Chrome,
    project: Project,
    keys: Vec<KeyView>,
    project_limits: Vec<LimitField>,
    limits_url: String,
    scrubbing: ScrubbingView,
    alerts: super::alerts::AlertsSection,
}

/// `GET /projects/{slug}/settings`: rename, keys with their DSNs and quotas, project quotas, data
/// scrubbing, delete.
pub async fn settings(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "settings",
            format!("Settings · {}", project.name),
        )
        .await?;
    let quotas = state.store.quotas(project.id).await?;
    let keys = key_rows(&chrome, &project, &quotas);
    let project_limits = limit_fields(&quotas, None);
    let scrubbing = ScrubbingView::of(&state, &project).await?;
    let alerts = super::alerts::AlertsSection::load(&state, &project, &chrome.here).await?;
    render(&SettingsPage {
        scrubbing,
        alerts,
        chrome,
        keys,
        project_limits,
        limits_url: format!("/projects/{}/limits", project.slug),
        project,
    })
}

/// `POST /projects/{slug}/rename`: the name only; the slug and keys stay.
pub async fn rename(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<NameForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    state
        .store
        .rename_project(project.id, valid_name(&form.name)?)
        .await?;
    Ok(see_other(&format!("/projects/{}/settings", project.slug)))
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    /// The slug, typed again: deleting drops every event of the project.
    confirm: String,
}

/// `POST /projects/{slug}/delete`: only with the slug typed as confirmation.
pub async fn delete(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<DeleteForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    if form.confirm.trim() != project.slug {
        return Err(WebError::BadRequest(format!(
            "To delete this project, type its slug ({}) to confirm.",
            project.slug
        )));
    }
    state.store.delete_project(project.id).await?;
    tracing::info!(project = %project.id, slug = %project.slug, "project deleted");
    Ok(see_other("/"))
}
