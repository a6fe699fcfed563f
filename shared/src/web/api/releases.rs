//! Releases and deploys as sentry-cli's `releases new|finalize|list|set-commits` and `deploys new|list`
//! call them, answered with the fields sentry-cli reads (`version`, `dateCreated`, `dateReleased`,
//! `projects`, …; a deploy's `environment`, `name`, `dateFinished`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{find_project, find_projects, iso, ApiError, ApiResult, ApiState};
use crate::protocol::ProjectId;
use crate::store::{Deploy, NewDeploy, Project, ReleaseMark};

/// Versions and environments are names, not documents.
const MAX_NAME_CHARS: usize = 200;
/// Releases listed at most.
const LIST_LIMIT: i64 = 100;

#[derive(Deserialize)]
pub struct NewRelease {
    version: String,
    #[serde(default)]
    projects: Vec<Value>,
    url: Option<String>,
    #[serde(rename = "dateReleased")]
    date_released: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize, Default)]
pub struct UpdatedRelease {
    #[serde(default)]
    projects: Option<Vec<Value>>,
    url: Option<String>,
    #[serde(rename = "dateReleased")]
    date_released: Option<chrono::DateTime<chrono::Utc>>,
    /// `set-commits`: commits are not tracked; refused with a reason.
    refs: Option<Value>,
    commits: Option<Value>,
}

#[derive(Deserialize)]
pub struct DeployBody {
    environment: String,
    name: Option<String>,
    url: Option<String>,
    #[serde(rename = "dateStarted")]
    date_started: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(rename = "dateFinished")]
    date_finished: Option<chrono::DateTime<chrono::Utc>>,
    projects: Option<Vec<String>>,
}

fn check_name(what: &str, value: &str) -> ApiResult<()> {
    if value.trim().is_empty()
        || value.chars().count() > MAX_NAME_CHARS
        || value.chars().any(char::is_control)
        || value == "."
        || value == ".."
        || value.contains('/')
    {
        return Err(ApiError::bad_request(format!(
            "{what} is 1 to {MAX_NAME_CHARS} characters, without slashes or control characters"
        )));
    }
    Ok(())
}

/// `projects` as sentry-cli sends them: slugs (or ids, as numbers or strings).
fn project_names(values: &[Value]) -> Vec<String> {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// Sentry's release object, for the marks of one version across its projects.
fn release_json(marks: &[ReleaseMark], projects: &[Project]) -> Value {
    let first = &marks[0];
    let project_list: Vec<Value> = marks
        .iter()
        .filter_map(|m| projects.iter().find(|p| p.id == m.project_id))
        .map(|p| json!({"id": p.id.value(), "slug": p.slug, "name": p.name}))
        .collect();
    json!({
        "id": first.created_at,
        "version": first.version,
        "shortVersion": first.version,
        "ref": null,
        "url": first.url,
        "status": "open",
        "dateCreated": iso(first.created_at),
        "dateReleased": first.finalized_at.map(iso),
        "lastEvent": null,
        "firstEvent": null,
        "newGroups": 0,
        "commitCount": 0,
        "deployCount": 0,
        "lastCommit": null,
        "lastDeploy": null,
        "authors": [],
        "projects": project_list,
    })
}

fn deploy_json(d: &Deploy) -> Value {
    json!({
        "id": d.id.to_string(),
        "environment": d.environment,
        "name": d.name,
        "url": d.url,
        "dateStarted": d.started_at.map(iso),
        "dateFinished": iso(d.finished_at),
    })
}

/// Creates (or updates) the release in each project and answers Sentry's release object.
async fn create_in(
    state: &ApiState,
    body: NewRelease,
    projects: Vec<Project>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_name("version", &body.version)?;
    if projects.is_empty() {
        return Err(ApiError::bad_request(
            "name at least one project (SENTRY_PROJECT)",
        ));
    }
    let released = body.date_released.map(|d| d.timestamp_micros());
    let mut marks = Vec::new();
    for project in &projects {
        marks.push(
            state
                .store
                .upsert_release_mark(project.id, &body.version, body.url.as_deref(), released)
                .await?,
        );
    }
    Ok((StatusCode::CREATED, Json(release_json(&marks, &projects))))
}

/// `POST /api/0/organizations/{org}/releases/` (`releases new`).
pub async fn create(
    State(state): State<ApiState>,
    Path(_org): Path<String>,
    Json(body): Json<NewRelease>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    // Without projects (`releases archive|restore` post the version again): the release's own.
    let names = match project_names(&body.projects) {
        names if names.is_empty() => target_projects(&state, None, &body.version)
            .await?
            .iter()
            .map(|p| p.to_string())
            .collect(),
        names => names,
    };
    let projects = find_projects(&state.store, &names).await?;
    create_in(&state, body, projects).await
}

/// `POST /api/0/projects/{org}/{project}/releases/` (older sentry-cli).
pub async fn create_for_project(
    State(state): State<ApiState>,
    Path((_org, project)): Path<(String, String)>,
    Json(body): Json<NewRelease>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let project = find_project(&state.store, &project).await?;
    create_in(&state, body, vec![project]).await
}

/// The marks of `version` in every project; 404 when CI never created it.
async fn marks_of(state: &ApiState, version: &str) -> ApiResult<Vec<ReleaseMark>> {
    let marks = state
        .store
        .release_marks(None, Some(version), LIST_LIMIT)
        .await?;
    if marks.is_empty() {
        return Err(ApiError::not_found("The requested resource does not exist"));
    }
    Ok(marks)
}

/// The projects a change to `version` applies to: those named, else every project the release is in.
async fn target_projects(
    state: &ApiState,
    named: Option<Vec<String>>,
    version: &str,
) -> ApiResult<Vec<ProjectId>> {
    Ok(match named {
        Some(names) => find_projects(&state.store, &names)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect(),
        None => marks_of(state, version)
            .await?
            .into_iter()
            .map(|m| m.project_id)
            .collect(),
    })
}

/// `GET /api/0/organizations/{org}/releases/{version}/`.
pub async fn show(
    State(state): State<ApiState>,
    Path((_org, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let marks = marks_of(&state, &version).await?;
    let projects = state.store.list_projects().await?;
    Ok(Json(release_json(&marks, &projects)))
}

/// `PUT /api/0/organizations/{org}/releases/{version}/` (`releases finalize`, `set-commits`).
pub async fn update(
    State(state): State<ApiState>,
    Path((_org, version)): Path<(String, String)>,
    Json(body): Json<UpdatedRelease>,
) -> ApiResult<Json<Value>> {
    if body.refs.is_some() || body.commits.is_some() {
        return Err(ApiError::bad_request(
            "Splat does not track commits: `set-commits` has nothing to set (releases, deploys and source maps work)",
        ));
    }
    let mut targets = target_projects(
        &state,
        body.projects.as_deref().map(project_names),
        &version,
    )
    .await?;
    targets.dedup();
    let released = body.date_released.map(|d| d.timestamp_micros());
    for project in targets {
        state
            .store
            .upsert_release_mark(project, &version, body.url.as_deref(), released)
            .await?;
    }
    show(State(state), Path((String::new(), version))).await
}

/// Releases CI created, then those only events named, newest first.
async fn list(state: &ApiState, project: Option<&Project>) -> ApiResult<Json<Value>> {
    let projects = state.store.list_projects().await?;
    let marks = state
        .store
        .release_marks(project.map(|p| p.id), None, LIST_LIMIT)
        .await?;
    let mut versions: Vec<String> = Vec::new();
    for mark in &marks {
        if !versions.contains(&mark.version) {
            versions.push(mark.version.clone());
        }
    }
    let mut out: Vec<Value> = versions
        .iter()
        .map(|v| {
            let of: Vec<ReleaseMark> = marks.iter().filter(|m| &m.version == v).cloned().collect();
            release_json(&of, &projects)
        })
        .collect();
    if let Some(project) = project {
        for seen in state.store.releases(project.id).await? {
            if !versions.contains(&seen.version) && out.len() < LIST_LIMIT as usize {
                let mark = ReleaseMark {
                    project_id: project.id,
                    version: seen.version.clone(),
                    url: None,
                    created_at: seen.first_seen,
                    finalized_at: None,
                };
                out.push(release_json(&[mark], &projects));
            }
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /api/0/organizations/{org}/releases/`.
pub async fn list_all(
    State(state): State<ApiState>,
    Path(_org): Path<String>,
) -> ApiResult<Json<Value>> {
    list(&state, None).await
}

/// `GET /api/0/projects/{org}/{project}/releases/` (`releases list`).
pub async fn list_for_project(
    State(state): State<ApiState>,
    Path((_org, project)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let project = find_project(&state.store, &project).await?;
    list(&state, Some(&project)).await
}

/// `POST /api/0/organizations/{org}/releases/{version}/deploys/` (`deploys new -e production`).
pub async fn create_deploy(
    State(state): State<ApiState>,
    Path((_org, version)): Path<(String, String)>,
    Json(body): Json<DeployBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    check_name("environment", &body.environment)?;
    let projects = target_projects(&state, body.projects.clone(), &version).await?;
    let mut created = None;
    for project in projects {
        created = Some(
            state
                .store
                .insert_deploy(&NewDeploy {
                    project,
                    version: &version,
                    environment: body.environment.trim(),
                    name: body.name.as_deref(),
                    url: body.url.as_deref(),
                    started_at: body.date_started.map(|d| d.timestamp_micros()),
                    finished_at: body.date_finished.map(|d| d.timestamp_micros()),
                })
                .await?,
        );
    }
    let created = created.ok_or_else(|| ApiError::bad_request("name at least one project"))?;
    Ok((StatusCode::CREATED, Json(deploy_json(&created))))
}

/// `GET /api/0/organizations/{org}/releases/{version}/deploys/` (`deploys list`).
pub async fn list_deploys(
    State(state): State<ApiState>,
    Path((_org, version)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let deploys = state
        .store
        .deploys(None, Some(&version), LIST_LIMIT)
        .await?;
    Ok(Json(Value::Array(
        deploys.iter().map(deploy_json).collect(),
    )))
}

/// `GET /api/0/organizations/{org}/repos/`: none (`set-commits --auto` then says so itself).
pub async fn no_repositories() -> impl IntoResponse {
    Json(json!([]))
}
