//! The ingest pipeline: authenticate, decode, frame-check and size-check an SDK request, then put the
//! envelope on the durable queue and only then answer `200 {"id": …}`.
//!
//! Path of a request: [`router`] → [`receive`] → [`Queue::send`] ([`handle`] runs the same path over an
//! [`IngestRequest`], so tests and benchmarks call it without HTTP). Envelopes too large for a queue message go
//! to the blob store first and the message carries the key (claim check). Every refusal is a [`BadStoreRequest`].
//!
//! Work is done in the order of its cost to us: the key is checked before the body is read (from the headers or
//! query string, else from the envelope's first line alone), the body is read and decoded within the
//! [`MemoryBudget`], and bodies large enough to take milliseconds are decoded and framed on the blocking pool.
//! Before queueing, the key's and project's quotas per data category drop what is over ([`rate_limit`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;

use crate::blob::BlobStore;
use crate::protocol::auth::{self, AuthError, Credentials};
use crate::protocol::store::envelope_from_store_body;
use crate::protocol::{
    DecodeError, Envelope, EnvelopeError, EnvelopeHeaders, EventId, ItemType, Limits, ProjectId,
    ProjectRef,
};
use crate::queue::{EnvelopeRef, Queue, QueueError, QueueMessage};
use crate::store::KeyInfo;

mod body;
pub mod budget;
pub mod cron;
mod error;
pub mod keys;
mod otlp;
mod rate_limit;
pub mod snapshot;
mod unpacker;

use body::{decode_within, refuse, BodyReader};
pub use budget::{MemoryBudget, Reservation};
pub use error::BadStoreRequest;
pub use keys::{CachedKeys, KeyLookup, LookupError};
pub use rate_limit::{RateLimiter, RateLimits};
pub use snapshot::SnapshotKeys;

/// Everything ingest needs, built once per process.
#[derive(Clone)]
pub struct IngestState {
    pub keys: Arc<dyn KeyLookup>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub limits: Limits,
    pub rate_limiter: Arc<RateLimiter>,
    /// Bytes of request bodies held at once, across requests (`SPLAT_INGEST_MEMORY_BYTES`).
    pub budget: MemoryBudget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Envelope,
    Store,
}

/// An SDK request, reduced to what ingest looks at.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub endpoint: Endpoint,
    pub project: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    /// The raw body, possibly compressed, already capped at `max_body_bytes`.
    pub body: Bytes,
}

/// What a successful request returns: the event id when the envelope carries an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event_id: Option<EventId>,
    /// Categories dropped from the envelope by a quota (the rest was accepted): sent back in
    /// `X-Sentry-Rate-Limits` so the SDK stops sending them.
    pub rate_limits: RateLimits,
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        // Written out, not built as a JSON value: it is the answer to every envelope.
        let body = match self.event_id {
            Some(id) => format!(r#"{{"id":"{id}"}}"#),
            None => "{}".to_owned(),
        };
        let json = HeaderValue::from_static("application/json");
        let mut response = ([(http::header::CONTENT_TYPE, json)], body).into_response();
        if !self.rate_limits.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&self.rate_limits.header()) {
                response.headers_mut().insert("x-sentry-rate-limits", v);
            }
        }
        response
    }
}

/// Runs one request through the pipeline. Returns once the envelope is durably queued.
pub async fn handle(state: &IngestState, req: IngestRequest) -> Result<Accepted, BadStoreRequest> {
    let mut headers = req.headers;
    headers.insert(http::header::CONTENT_LENGTH, req.body.len().into());
    let mut body = Body::from(req.body);
    let (project, query) = (&req.project, req.query.as_deref());
    receive(state, req.endpoint, project, &headers, query, &mut body).await
}

/// The pipeline over a body still to be read.
async fn receive(
    state: &IngestState,
    endpoint: Endpoint,
    project: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &mut Body,
) -> Result<Accepted, BadStoreRequest> {
    let named: ProjectRef = project.parse().map_err(|_| BadStoreRequest::BadProjectId)?;
    let encoding = header(headers, "content-encoding");
    // A declared length over the cap is refused here, before anything else.
    let mut reader = BodyReader::new(body, headers, state.limits.max_body_bytes, &state.budget)?;
    // Who is asking is settled before the body is read: by the request line and headers when they say, else
    // by the envelope's first line alone (the legacy store body carries no key).
    let creds = match auth::from_request(headers, query)? {
        Some(creds) => creds,
        None if endpoint == Endpoint::Envelope
            || is_envelope_content_type(header(headers, "content-type")) =>
        {
            dsn_credentials(&reader.first_line(encoding).await?)?
        }
        None => return Err(AuthError::Missing.into()),
    };
    let key = authorize(state, &creds, &named).await?;
    let project = key.project_id;
    let (raw, reservation) = reader.finish().await?;
    if raw.is_empty() {
        return Err(BadStoreRequest::EmptyBody);
    }
    let store_json =
        endpoint == Endpoint::Store && !is_envelope_content_type(header(headers, "content-type"));
    let Unpacked {
        mut envelope,
        bytes,
        event_id,
        mut reservation,
    } = unpack(state, endpoint, store_json, encoding, raw, reservation).await?;
    let creds = auth::with_envelope_dsn(Some(creds), envelope.headers.dsn.as_deref())?;
    check_dsn_project(&creds, &key)?;
    let rate_limits = rate_limit::enforce(
        &state.rate_limiter,
        &creds.public_key,
        project,
        &key.quotas,
        &mut envelope,
        chrono::Utc::now().timestamp(),
    )?;
    // An event dropped by a quota gets no id: nothing will be stored under it.
    let event_id = event_id.filter(|_| envelope.event_item().is_some());
    // A quota that dropped items changed the envelope: it is framed again (a copy the budget holds too).
    let bytes = if rate_limits.is_empty() {
        bytes
    } else {
        reservation.grow(bytes.len())?;
        Bytes::from(envelope.to_bytes())
    };
    drop(envelope);
    // The queue message is a copy of the envelope.
    reservation.grow(bytes.len())?;
    enqueue(state, project, event_id, bytes).await?;
    Ok(Accepted {
        event_id,
        rate_limits,
    })
}

/// The key and project an envelope's header line names in its `dsn`.
fn dsn_credentials(header_line: &[u8]) -> Result<Credentials, BadStoreRequest> {
    let headers: EnvelopeHeaders = serde_json::from_slice(header_line)
        .map_err(|e| BadStoreRequest::Envelope(EnvelopeError::InvalidHeader(e.to_string())))?;
    Ok(auth::with_envelope_dsn(None, headers.dsn.as_deref())?)
}

/// An envelope decoded, framed and checked, with the bytes to queue and the budget they hold.
struct Unpacked {
    envelope: Envelope,
    bytes: Bytes,
    event_id: Option<EventId>,
    reservation: Reservation,
}

/// Decoded bodies up to this size are unpacked on the runtime's worker (a quarter millisecond of inflating and
/// checking at most: every SDK envelope but those with large attachments); larger ones on the unpacking
/// thread, so that milliseconds of inflating never hold up the other connections on a worker. A compressed
/// body is tried here first: one that inflates past it cost that much before it moves.
const INLINE_BYTES: usize = 256 << 10;

async fn unpack(
    state: &IngestState,
    endpoint: Endpoint,
    store_json: bool,
    encoding: Option<&str>,
    raw: Bytes,
    mut reservation: Reservation,
) -> Result<Unpacked, BadStoreRequest> {
    let limits = &state.limits;
    if raw.len() <= INLINE_BYTES {
        let limit = INLINE_BYTES.min(limits.max_envelope_bytes);
        match decode_within(encoding, raw.clone(), limit, &mut reservation) {
            Ok(body) => {
                drop(raw);
                return frame_and_check(limits, endpoint, store_json, body, reservation);
            }
            // Larger than a worker takes, not than the limit: on to the unpacking thread.
            Err(BadStoreRequest::Decode(DecodeError::TooLarge(_)))
                if limit < limits.max_envelope_bytes => {}
            Err(e) => return Err(e),
        }
    }
    let (limits, encoding) = (limits.clone(), encoding.map(str::to_owned));
    unpacker::unpack(move || {
        let limit = limits.max_envelope_bytes;
        let body = decode_within(encoding.as_deref(), raw, limit, &mut reservation)?;
        frame_and_check(&limits, endpoint, store_json, body, reservation)
    })
    .await
    .ok_or_else(|| BadStoreRequest::QueueUnavailable("the unpacking thread stopped".into()))?
}

/// Frames and checks the decoded body: every refusal that needs its content.
fn frame_and_check(
    limits: &Limits,
    endpoint: Endpoint,
    store_json: bool,
    body: Bytes,
    mut reservation: Reservation,
) -> Result<Unpacked, BadStoreRequest> {
    let envelope = if store_json {
        // A legacy body holds one event; its base64 and zlib forms are copies of the body on the way.
        reservation.grow(2 * body.len() + limits.max_event_bytes)?;
        envelope_from_store_body(body.clone(), limits.max_event_bytes)?
    } else {
        Envelope::parse(body.clone())?
    };
    limits.check(&envelope).map_err(BadStoreRequest::Overflow)?;
    let event_id = validate_items(&envelope)?;
    // The store endpoint built its envelope in memory; the envelope endpoint forwards the bytes it received.
    let bytes = match endpoint {
        Endpoint::Store => {
            reservation.grow(body.len())?;
            Bytes::from(envelope.to_bytes())
        }
        Endpoint::Envelope => body,
    };
    Ok(Unpacked {
        envelope,
        bytes,
        event_id,
        reservation,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_envelope_content_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/x-sentry-envelope")
    })
}

/// The key must exist, be enabled and belong to the project the path names (by id, or by slug as the
/// seed's DSNs did) and to the one its DSN names. Returns what is known about it, quotas included.
pub(crate) async fn authorize(
    state: &IngestState,
    creds: &Credentials,
    named: &ProjectRef,
) -> Result<KeyInfo, BadStoreRequest> {
    let info = state
        .keys
        .lookup(&creds.public_key)
        .await
        .map_err(|e| match e {
            LookupError::NotPublished => BadStoreRequest::KeysNotPublished,
            LookupError::Unavailable(why) => BadStoreRequest::ConfigUnavailable(why),
        })?
        .ok_or(BadStoreRequest::UnknownKey)?;
    if !named.names(info.project_id, &info.project_slug) {
        return Err(BadStoreRequest::WrongProject(named.to_string()));
    }
    check_dsn_project(creds, &info)?;
    if !info.enabled {
        return Err(BadStoreRequest::DisabledKey);
    }
    Ok(info)
}

/// An envelope's `dsn` must name the key's project.
fn check_dsn_project(creds: &Credentials, info: &KeyInfo) -> Result<(), BadStoreRequest> {
    match &creds.dsn_project {
        Some(named) if !named.names(info.project_id, &info.project_slug) => {
            Err(BadStoreRequest::WrongProject(named.to_string()))
        }
        _ => Ok(()),
    }
}

/// Checks the items ingest is responsible for and picks the event id: the envelope header's, else the
/// event payload's, else a fresh one. `None` when nothing in the envelope creates an event.
fn validate_items(envelope: &Envelope) -> Result<Option<EventId>, BadStoreRequest> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default, deserialize_with = "crate::protocol::lenient::event_id")]
        event_id: Option<EventId>,
    }
    let mut event_id = None;
    let mut seen_event = false;
    for item in &envelope.items {
        let ty = item.ty();
        if !ty.is_json() {
            continue;
        }
        let invalid = |reason: String| BadStoreRequest::InvalidItem {
            item: ty.as_str().to_owned(),
            reason,
        };
        if item.payload.is_empty() {
            return Err(invalid("empty payload".into()));
        }
        if !crate::protocol::lenient::starts_as_object(&item.payload) {
            return Err(invalid("expected a JSON object".into()));
        }
        // Parsing into a struct that ignores the rest still checks the whole payload is one JSON object.
        let head: Head =
            serde_json::from_slice(&item.payload).map_err(|e| invalid(e.to_string()))?;
        if ty.creates_event() {
            if seen_event {
                return Err(BadStoreRequest::DuplicateItem("event"));
            }
            seen_event = true;
            event_id = Some(
                envelope
                    .headers
                    .event_id
                    .or(head.event_id)
                    .unwrap_or_else(EventId::random),
            );
        }
        if *ty == ItemType::CheckIn {
            crate::model::check_in::CheckIn::from_payload(&item.payload)
                .map_err(|e| invalid(e.to_string()))?;
        }
        if *ty == ItemType::Span && item.headers.item_count.is_some_and(|n| n > 1000) {
            return Err(invalid("more than 1000 spans in one item".into()));
        }
    }
    Ok(event_id)
}

pub(crate) async fn enqueue(
    state: &IngestState,
    project: ProjectId,
    event_id: Option<EventId>,
    envelope: Bytes,
) -> Result<(), BadStoreRequest> {
    let received_at_us = chrono::Utc::now().timestamp_micros();
    let large = envelope.len() > INLINE_BYTES;
    let mut message = QueueMessage {
        project_id: project,
        event_id,
        received_at_us,
        envelope: EnvelopeRef::Inline(envelope),
    };
    // A large envelope is compressed for the queue (`QueueMessage::encode`): milliseconds, off the workers.
    let mut body = if large {
        let job = message.clone();
        unpacker::unpack(move || job.encode())
            .await
            .ok_or_else(|| {
                BadStoreRequest::QueueUnavailable("the unpacking thread stopped".into())
            })?
    } else {
        message.encode()
    };
    if body.len() > state.queue.max_message_bytes() {
        let EnvelopeRef::Inline(bytes) = message.envelope else {
            unreachable!("just built inline")
        };
        let key = claim_check_key(received_at_us);
        let length = bytes.len() as u64;
        state
            .blobs
            .put(&key, bytes)
            .await
            .map_err(|e| BadStoreRequest::QueueUnavailable(e.to_string()))?;
        message.envelope = EnvelopeRef::Blob { key, bytes: length };
        body = message.encode();
    }
    state.queue.send(body).await.map_err(|e| match e {
        QueueError::Full(reason) => BadStoreRequest::QueueFull(reason),
        QueueError::Failed(reason) => BadStoreRequest::QueueUnavailable(reason),
    })
}

/// `ingest/<yyyy-mm-dd>/<uuid>.envelope`: the date prefix lets a lifecycle rule expire forgotten bodies.
fn claim_check_key(received_at_us: i64) -> String {
    let day = chrono::DateTime::from_timestamp_micros(received_at_us)
        .unwrap_or_default()
        .format("%Y-%m-%d");
    format!("ingest/{day}/{}.envelope", uuid::Uuid::new_v4().simple())
}

/// The ingest routes: envelope and store, with and without the trailing slash, plus CORS for browsers.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/api/{project}/envelope/", post(envelope_endpoint))
        .route("/api/{project}/envelope", post(envelope_endpoint))
        .route("/api/{project}/store/", post(store_endpoint))
        .route("/api/{project}/store", post(store_endpoint))
        .route(
            "/api/{project}/integration/otlp/v1/logs",
            post(otlp::endpoint),
        )
        .route(
            "/api/{project}/cron/{slug}/{key}/",
            get(cron::endpoint).post(cron::endpoint),
        )
        .route(
            "/api/{project}/cron/{slug}/{key}",
            get(cron::endpoint).post(cron::endpoint),
        )
        .layer(axum::middleware::from_fn(cors))
        // One reference count per request instead of one per field.
        .with_state(Arc::new(state))
}

async fn envelope_endpoint(
    state: State<Arc<IngestState>>,
    project: Path<String>,
    query: RawQuery,
    req: Request<Body>,
) -> Response {
    endpoint(Endpoint::Envelope, state, project, query, req).await
}

async fn store_endpoint(
    state: State<Arc<IngestState>>,
    project: Path<String>,
    query: RawQuery,
    req: Request<Body>,
) -> Response {
    endpoint(Endpoint::Store, state, project, query, req).await
}

async fn endpoint(
    endpoint: Endpoint,
    State(state): State<Arc<IngestState>>,
    Path(project): Path<String>,
    RawQuery(query): RawQuery,
    req: Request<Body>,
) -> Response {
    let (parts, mut body) = req.into_parts();
    let (headers, query) = (&parts.headers, query.as_deref());
    let received = receive(&state, endpoint, &project, headers, query, &mut body).await;
    match received {
        Ok(accepted) => accepted.into_response(),
        Err(e) => refuse(headers, &mut body, e).await,
    }
}

/// Browser SDKs post cross-origin: answer preflights and let them read our headers.
async fn cors(req: Request<Body>, next: Next) -> Response {
    let mut response = if req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static(
            "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, authentication, authorization, content-encoding, content-type, transfer-encoding, sentry-trace, baggage",
        ),
    );
    headers.insert(
        "access-control-expose-headers",
        HeaderValue::from_static("x-sentry-error, x-sentry-rate-limits, retry-after"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("3600"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn answer(accepted: Accepted) -> (String, serde_json::Value) {
        let response = accepted.into_response();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = header(response.headers(), "content-type").map(str::to_owned);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            content_type.unwrap_or_default(),
            serde_json::from_slice(&body).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_answer_is_the_json_sdks_read() {
        let id = EventId::random();
        let accepted = Accepted {
            event_id: Some(id),
            rate_limits: RateLimits::default(),
        };
        assert_eq!(
            answer(accepted).await,
            (
                "application/json".into(),
                serde_json::json!({ "id": id.to_string() })
            )
        );
        let accepted = Accepted {
            event_id: None,
            rate_limits: RateLimits::default(),
        };
        assert_eq!(
            answer(accepted).await,
            ("application/json".into(), serde_json::json!({}))
        );
    }
}
