//! OpenTelemetry logs over OTLP/HTTP, at the path Sentry serves them:
//!
//! ```text
//! POST /api/{project}/integration/otlp/v1/logs     x-sentry-auth: sentry sentry_key=<public key>
//! Content-Type: application/x-protobuf | application/json    (Content-Encoding: gzip and the rest, as envelopes)
//! ```
//!
//! The key is checked before the body is read, as for envelopes. The records are read and checked
//! ([`crate::model::otlp_logs`]), counted against the key's and project's log quotas, and queued as one
//! Sentry `log` item, so the processor stores them as it stores an SDK's. A record that cannot be one is
//! refused alone: the answer (`ExportLogsServiceResponse`, in the request's encoding) says how many and
//! why in its `partial_success`, as OTLP asks; nothing refused is queued.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use prost::Message;

use super::body::{decode_within, refuse, BodyReader};
use super::{authorize, enqueue, header, BadStoreRequest, IngestState};
use crate::model::log::LogItem;
use crate::model::otlp_logs;
use crate::protocol::auth::{self, AuthError};
use crate::protocol::{DataCategory, ProjectRef};

/// What the answer says of refused records (OTLP's `ExportLogsPartialSuccess`).
#[derive(Clone, PartialEq, Message)]
struct PartialSuccess {
    #[prost(int64, tag = "1")]
    rejected_log_records: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

#[derive(Clone, PartialEq, Message)]
struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<PartialSuccess>,
}

/// The axum handler.
pub(super) async fn endpoint(
    State(state): State<std::sync::Arc<IngestState>>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    req: Request<Body>,
) -> Response {
    let (parts, mut body) = req.into_parts();
    let json = header(&parts.headers, "content-type").is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    });
    let received = receive(
        &state,
        &project,
        &parts.headers,
        query.as_deref(),
        json,
        &mut body,
    )
    .await;
    match received {
        Ok(refused) => answer(json, &refused),
        Err(e) => refuse(&parts.headers, &mut body, e).await,
    }
}

/// Authorizes, reads, checks and queues; returns why each refused record was refused.
async fn receive(
    state: &IngestState,
    project: &str,
    headers: &http::HeaderMap,
    query: Option<&str>,
    json: bool,
    body: &mut Body,
) -> Result<Vec<String>, BadStoreRequest> {
    let named: ProjectRef = project.parse().map_err(|_| BadStoreRequest::BadProjectId)?;
    let reader = BodyReader::new(body, headers, state.limits.max_body_bytes, &state.budget)?;
    let creds = auth::from_request(headers, query)?.ok_or(AuthError::Missing)?;
    let key = authorize(state, &creds, &named).await?;
    // The key says which project it is (the path may name it by id or slug).
    let project = key.project_id;
    let (raw, mut reservation) = reader.finish().await?;
    let limit = state.limits.max_log_container_bytes;
    let decoded = decode_within(
        header(headers, "content-encoding"),
        raw,
        limit,
        &mut reservation,
    )?;
    let request = match json {
        true => otlp_logs::from_json(&decoded),
        false => otlp_logs::from_protobuf(&decoded),
    }
    .map_err(|e| BadStoreRequest::InvalidItem {
        item: "otlp logs".into(),
        reason: e.to_string(),
    })?;
    let now = chrono::Utc::now();
    let LogItem { records, refused } = otlp_logs::records(request, now.timestamp_micros());
    if records.is_empty() {
        return Ok(refused);
    }
    let items: Vec<serde_json::Value> = records.iter().map(|r| r.to_value()).collect();
    let payload = serde_json::json!({ "items": items }).to_string();
    reservation.grow(2 * payload.len())?;
    if payload.len() > limit {
        return Err(BadStoreRequest::Overflow(format!(
            "{} log records make {} bytes, over the {limit}-byte limit of a log item",
            records.len(),
            payload.len()
        )));
    }
    let limits = state.rate_limiter.check(
        &creds.public_key,
        project,
        &key.quotas,
        &[
            (DataCategory::LogItem, records.len() as u64),
            (DataCategory::LogByte, payload.len() as u64),
        ],
        now.timestamp(),
    );
    if !limits.is_empty() {
        return Err(BadStoreRequest::RateLimited(limits));
    }
    let envelope = format!(
        "{{}}\n{{\"type\":\"log\",\"item_count\":{},\"content_type\":\"application/vnd.sentry.items.log+json\",\"length\":{}}}\n{payload}\n",
        records.len(),
        payload.len()
    );
    enqueue(state, project, None, Bytes::from(envelope)).await?;
    Ok(refused)
}

/// `ExportLogsServiceResponse`, in the request's encoding: empty when every record was taken.
fn answer(json: bool, refused: &[String]) -> Response {
    let partial = (!refused.is_empty()).then(|| PartialSuccess {
        rejected_log_records: refused.len() as i64,
        error_message: refused
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("; "),
    });
    let (body, content_type) = match (json, &partial) {
        (true, None) => (b"{}".to_vec(), "application/json"),
        (true, Some(p)) => (
            serde_json::json!({"partialSuccess": {
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }})
            .to_string()
            .into_bytes(),
            "application/json",
        ),
        (false, _) => (
            ExportLogsServiceResponse {
                partial_success: partial,
            }
            .encode_to_vec(),
            "application/x-protobuf",
        ),
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}
