//! `GET /live.json`: what live pages poll. The change stamp moves when an event is stored or an issue
//! changes status; the page compares it with the stamp it was rendered at and, when it moved, fetches
//! itself again and swaps its live regions. The queue depth (on SQS, the processor's last lag) feeds the
//! header's pill.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{project_or_404, QueuePill, WebResult, WebState};

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    project: Option<String>,
    /// Set by the logs page: the stamp moves when the project's log records do.
    logs: Option<String>,
}

pub async fn stamp(
    State(state): State<WebState>,
    Query(query): Query<LiveQuery>,
) -> WebResult<Response> {
    let project = match query.project.as_deref().filter(|p| !p.is_empty()) {
        Some(slug) => Some(project_or_404(&state, slug).await?.id),
        None => None,
    };
    let stamp = match (project, query.logs.is_some()) {
        (Some(p), true) => state.store.logs_stamp(p.value()).await?,
        _ => state.store.change_stamp(project).await?,
    };
    let pill = QueuePill::new(state.queue_gauge().await);
    Ok(Json(serde_json::json!({
        "stamp": stamp,
        "queue_depth": pill.depth,
        "queue_label": pill.label,
        "queue_caption": pill.caption,
        "queue_class": pill.class,
    }))
    .into_response())
}
