//! `/api/0/…`: the part of Sentry's web API that sentry-cli calls for releases, deploys and source map
//! uploads (`SENTRY_URL`, `SENTRY_AUTH_TOKEN`, `SENTRY_ORG`, `SENTRY_PROJECT`), answered in Sentry's shapes.
//!
//! Every request carries `Authorization: Bearer <token>` with an API token ([`crate::store::ApiToken`]);
//! a missing, unknown or revoked one gets 401, a read-only one trying a change 403, each with Sentry's
//! error body `{"detail": "…"}`. The organization slug in paths is accepted and ignored (an instance is
//! one organization); project slugs name Splat projects by slug, name or numeric id.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::artifacts::{ArtifactError, ArtifactLimits};
use crate::blob::BlobStore;
use crate::protocol::ProjectId;
use crate::store::{ApiToken, Project, Store, StoreError};

mod releases;
mod uploads;

/// What the API needs, built once per process.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub blobs: Arc<dyn BlobStore>,
    pub limits: ArtifactLimits,
}

/// The API's routes; merged beside the UI's (never behind its sign-in or CSRF checks: tokens are the
/// credential here).
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/api/0/organizations/{org}/chunk-upload/",
            get(uploads::options).post(uploads::chunks).layer(
                axum::extract::DefaultBodyLimit::max(crate::artifacts::MAX_REQUEST_BYTES),
            ),
        )
        .route(
            "/api/0/organizations/{org}/artifactbundle/assemble/",
            post(uploads::assemble),
        )
        .route(
            "/api/0/organizations/{org}/releases/",
            get(releases::list_all).post(releases::create),
        )
        .route(
            "/api/0/organizations/{org}/releases/{version}/",
            get(releases::show).put(releases::update),
        )
        .route(
            "/api/0/organizations/{org}/releases/{version}/deploys/",
            get(releases::list_deploys).post(releases::create_deploy),
        )
        .route(
            "/api/0/projects/{org}/{project}/releases/",
            get(releases::list_for_project).post(releases::create_for_project),
        )
        .route(
            "/api/0/organizations/{org}/repos/",
            get(releases::no_repositories),
        )
        .route("/api/0/", get(whoami))
        .route("/api/0/{*rest}", axum::routing::any(not_implemented))
        .layer(from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// A failed API request, answered as Sentry does: a status and `{"detail": "…"}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, detail.into())
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, detail.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "detail": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(why) => Self::bad_request(why),
            e => {
                tracing::error!(error = %e, "API request failed");
                Self(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server's log".into(),
                )
            }
        }
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::Invalid(why) => Self::bad_request(why),
            ArtifactError::Store(e) => e.into(),
            ArtifactError::Blob(e) => {
                tracing::error!(error = %e, "API request failed at the blob store");
                Self(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error; see the server's log".into(),
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Checks the bearer token, and that a read-only one asks for nothing but reads; hands the token on.
async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let text = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let Some(text) = text else {
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.".into(),
        )
        .into_response();
    };
    let token = match state.store.api_token_by_text(text).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            return ApiError(StatusCode::UNAUTHORIZED, "Invalid token".into()).into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !req.method().is_safe() && !token.scope.may_write() {
        return ApiError(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action (the token is read-only).".into(),
        )
        .into_response();
    }
    req.extensions_mut().insert(token);
    next.run(req).await
}

/// `GET /api/0/`: who the token is (sentry-cli's `info` and login check).
async fn whoami(axum::Extension(token): axum::Extension<ApiToken>) -> Json<serde_json::Value> {
    Json(json!({
        "version": "0",
        "auth": { "scopes": [token.scope.name()] },
        // sentry-cli's `info` prints the email; a token has none, so its label stands in.
        "user": { "id": token.id.to_string(), "email": token.label, "name": token.label, "username": token.label },
    }))
}

async fn not_implemented() -> ApiError {
    ApiError::not_found("Splat does not implement this endpoint of Sentry's API")
}

/// A Splat project by slug, name or numeric id (what `SENTRY_PROJECT` and `projects` name).
pub(crate) async fn find_project(store: &Store, reference: &str) -> ApiResult<Project> {
    if let Ok(id) = reference.parse::<i64>() {
        if let Some(p) = store.project(ProjectId::new(id)).await? {
            return Ok(p);
        }
    }
    if let Some(p) = store.project_by_slug(reference).await? {
        return Ok(p);
    }
    store
        .list_projects()
        .await?
        .into_iter()
        .find(|p| p.name == reference)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "The requested project {reference:?} does not exist"
            ))
        })
}

/// Each named project, or an error naming the first unknown one.
pub(crate) async fn find_projects(store: &Store, references: &[String]) -> ApiResult<Vec<Project>> {
    let mut out = Vec::with_capacity(references.len());
    for reference in references.iter().take(100) {
        out.push(find_project(store, reference).await?);
    }
    Ok(out)
}

/// Sentry's timestamps: RFC 3339 with milliseconds, in UTC.
pub(crate) fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
