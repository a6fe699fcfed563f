//! The HTTP check-in endpoint, for scripts and `curl`:
//!
//! ```text
//! GET|POST /api/{project}/cron/{monitor_slug}/{key}/?status=in_progress|ok|error[&check_in_id=…][&environment=…][&duration=<s>]
//! ```
//!
//! The key in the path authenticates it as a DSN key would. A POST may send a JSON object with the same
//! fields and a `monitor_config` (the query string wins where both name a field). The check-in is checked
//! like an SDK's, wrapped in a `check_in` envelope item and queued; the answer is `202 {"id": check_in_id}`
//! (the id generated when none was given, so a script can close the run it opened). It counts against the
//! key's and project's `monitor` quota like an SDK's check-in.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::body::{decode_within, refuse, BodyReader};
use super::{authorize, enqueue, BadStoreRequest, IngestState, Reservation};
use crate::model::check_in::CheckIn;
use crate::protocol::auth::{AuthSource, Credentials};
use crate::protocol::{DataCategory, ProjectId, ProjectRef, PublicKey};
use crate::store::KeyInfo;

/// Query parameters that are check-in fields; others (`sentry_key`, cache busters) are ignored.
const QUERY_FIELDS: [&str; 4] = ["status", "check_in_id", "environment", "duration"];

/// A project opened by the key in the path: what the check-in's quota is counted against.
struct PathKey {
    project: ProjectId,
    key: PublicKey,
    info: KeyInfo,
}

/// The key in the path must open the project before anything else is done.
async fn authorize_path(
    state: &IngestState,
    project: &str,
    key: &str,
) -> Result<PathKey, BadStoreRequest> {
    let named: ProjectRef = project.parse().map_err(|_| BadStoreRequest::BadProjectId)?;
    let public_key: PublicKey = key.parse().map_err(|_| BadStoreRequest::UnknownKey)?;
    let creds = Credentials {
        public_key,
        source: AuthSource::Path,
        client: None,
        dsn_project: None,
    };
    let info = authorize(state, &creds, &named).await?;
    Ok(PathKey {
        project: info.project_id,
        key: creds.public_key,
        info,
    })
}

/// Checks and queues one HTTP check-in of an authorized project; returns its `check_in_id`.
async fn check_in(
    state: &IngestState,
    path: &PathKey,
    slug: &str,
    query: Option<&str>,
    content_encoding: Option<&str>,
    (body, mut reservation): (Bytes, Reservation),
) -> Result<String, BadStoreRequest> {
    let mut fields = body_fields(state, content_encoding, body, &mut reservation)?;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if QUERY_FIELDS.contains(&name.as_ref()) {
            fields.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    fields.insert("monitor_slug".into(), Value::String(slug.to_owned()));
    let check_in = CheckIn::from_object(&fields).map_err(|e| BadStoreRequest::InvalidItem {
        item: "check_in".into(),
        reason: e.to_string(),
    })?;
    // The processor must record the id we answer with, also when we made it up.
    fields.insert(
        "check_in_id".into(),
        Value::String(check_in.check_in_id.clone()),
    );
    let payload = Value::Object(fields).to_string();
    if payload.len() > state.limits.max_check_in_bytes {
        return Err(BadStoreRequest::Overflow(format!(
            "check_in item exceeds {} bytes",
            state.limits.max_check_in_bytes
        )));
    }
    let envelope = format!(
        "{{}}\n{{\"type\":\"check_in\",\"length\":{}}}\n{payload}\n",
        payload.len()
    );
    let limits = state.rate_limiter.check(
        &path.key,
        path.project,
        &path.info.quotas,
        &[(DataCategory::Monitor, 1)],
        chrono::Utc::now().timestamp(),
    );
    if !limits.is_empty() {
        return Err(BadStoreRequest::RateLimited(limits));
    }
    enqueue(state, path.project, None, Bytes::from(envelope)).await?;
    Ok(check_in.check_in_id)
}

/// The JSON object a POST sent, or nothing.
fn body_fields(
    state: &IngestState,
    content_encoding: Option<&str>,
    body: Bytes,
    reservation: &mut Reservation,
) -> Result<Map<String, Value>, BadStoreRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let limit = state.limits.max_check_in_bytes;
    let body = decode_within(content_encoding, body, limit, reservation)?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(bad_body("expected a JSON object".into())),
        Err(e) => Err(bad_body(e.to_string())),
    }
}

fn bad_body(reason: String) -> BadStoreRequest {
    BadStoreRequest::InvalidItem {
        item: "check_in".into(),
        reason: format!("request body: {reason}"),
    }
}

/// The axum handler: checks the key, reads the body (capped at a check-in's size) and answers 202 with the
/// check-in id.
pub(super) async fn endpoint(
    State(state): State<std::sync::Arc<IngestState>>,
    Path((project, slug, key)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    req: Request<Body>,
) -> Response {
    let (parts, mut body) = req.into_parts();
    let encoding = parts
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok());
    let checked_in = async {
        let path = authorize_path(&state, &project, &key).await?;
        let limit = state.limits.max_check_in_bytes;
        let body = BodyReader::new(&mut body, &parts.headers, limit, &state.budget)?
            .finish()
            .await?;
        check_in(&state, &path, &slug, query.as_deref(), encoding, body).await
    };
    let checked_in = checked_in.await;
    match checked_in {
        Ok(id) => (StatusCode::ACCEPTED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err(e) => refuse(&parts.headers, &mut body, e).await,
    }
}
