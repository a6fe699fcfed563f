//! `sourcemaps upload`: sentry-cli asks for the chunk upload options, asks to assemble its bundle (the
//! answer lists the chunks the server lacks), posts those chunks (gzip'd, multipart, each named by its
//! SHA-1), and asks to assemble again until the state is `ok` or `error`.

use axum::extract::{Multipart, Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{find_projects, ApiError, ApiResult, ApiState};
use crate::artifacts::assemble::{self, AssembleRequest, Assembled};
use crate::artifacts::{CHUNKS_PER_REQUEST, CHUNK_SIZE, MAX_REQUEST_BYTES};

/// `GET /api/0/organizations/{org}/chunk-upload/`: where and how to send chunks. The URL is a path:
/// sentry-cli joins it to its own SENTRY_URL (the address that reached us), where an absolute one built
/// from `SPLAT_PUBLIC_URL` would name the ingest host in AWS, whose `/api/*` is not the UI function's.
pub async fn options(State(state): State<ApiState>, Path(org): Path<String>) -> Json<Value> {
    let org: String = form_urlencoded::byte_serialize(org.as_bytes()).collect();
    Json(json!({
        "url": format!("/api/0/organizations/{org}/chunk-upload/"),
        "chunkSize": CHUNK_SIZE,
        "chunksPerRequest": CHUNKS_PER_REQUEST,
        "maxFileSize": state.limits.max_bundle_bytes,
        "maxRequestSize": MAX_REQUEST_BYTES,
        "concurrency": 1,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "accept": ["artifact_bundles", "sources", "release_files"],
    }))
}

/// `POST /api/0/organizations/{org}/chunk-upload/`: each part (`file_gzip` gzip'd, or `file`) is a chunk
/// whose file name is its SHA-1; a chunk whose bytes do not hash to its name is refused (400), and so is
/// the rest of the request. The body's size is capped by the route.
pub async fn chunks(State(state): State<ApiState>, mut form: Multipart) -> ApiResult<Json<Value>> {
    let mut count = 0;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?
    {
        count += 1;
        if count > CHUNKS_PER_REQUEST {
            return Err(ApiError::bad_request(format!(
                "at most {CHUNKS_PER_REQUEST} chunks per request"
            )));
        }
        let gzipped = match field.name() {
            Some("file_gzip") => true,
            Some("file") => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "a chunk is a part named file_gzip or file, not {other:?}"
                )))
            }
        };
        let name = field.file_name().unwrap_or_default().to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("multipart body: {e}")))?;
        assemble::put_chunk(&*state.blobs, &name, &data, gzipped).await?;
    }
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub struct AssembleBody {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<String>,
    version: Option<String>,
    dist: Option<String>,
}

/// `POST /api/0/organizations/{org}/artifactbundle/assemble/`: `{"state", "missingChunks", "detail"}`.
/// A bundle that cannot be assembled (a map over the cap, a broken archive, a wrong checksum) is
/// `state: error` with the reason, which sentry-cli prints.
pub async fn assemble(
    State(state): State<ApiState>,
    Path(_org): Path<String>,
    Json(body): Json<AssembleBody>,
) -> ApiResult<Json<Value>> {
    let projects = find_projects(&state.store, &body.projects).await?;
    let request = AssembleRequest {
        checksum: body.checksum,
        chunks: body.chunks,
        projects: projects.iter().map(|p| p.id).collect(),
        release: body.version.filter(|v| !v.is_empty()),
        dist: body.dist.filter(|d| !d.is_empty()),
    };
    let answer =
        match assemble::assemble(&state.store, &*state.blobs, &state.limits, &request).await {
            Ok(Assembled::Missing(chunks)) => {
                json!({"state": "not_found", "missingChunks": chunks, "detail": null})
            }
            Ok(Assembled::Ok) => json!({"state": "ok", "missingChunks": [], "detail": null}),
            Err(e) if e.is_client_error() => {
                tracing::debug!(error = %e, "artifact bundle refused");
                json!({"state": "error", "missingChunks": [], "detail": e.to_string()})
            }
            Err(e) => return Err(e.into()),
        };
    Ok(Json(answer))
}
