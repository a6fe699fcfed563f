//! The UI's two static files, compiled into the binary: one stylesheet (light and dark) and one small
//! script of enhancements (copy buttons, live refresh, theme toggle). Pages link them with a content hash
//! in the query, so browsers may cache them for a year.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use md5::Digest;

use super::error::WebError;

const CSS: &str = include_str!("assets/splat.css");
const JS: &str = include_str!("assets/splat.js");
const FAVICON: &str = include_str!("assets/favicon.svg");

struct Asset {
    name: &'static str,
    body: &'static str,
    content_type: &'static str,
    url: String,
}

fn asset(name: &'static str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = hex::encode(&md5::Md5::digest(body.as_bytes())[..6]);
    Asset {
        name,
        body,
        content_type,
        url: format!("/static/{name}?v={hash}"),
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset("splat.css", CSS, "text/css; charset=utf-8"),
        asset("splat.js", JS, "text/javascript; charset=utf-8"),
        asset("favicon.svg", FAVICON, "image/svg+xml"),
    ]
});

/// `/static/splat.css?v=<hash>`.
pub fn css_url() -> &'static str {
    &ASSETS[0].url
}

/// `/static/splat.js?v=<hash>`.
pub fn js_url() -> &'static str {
    &ASSETS[1].url
}

pub fn favicon_url() -> &'static str {
    &ASSETS[2].url
}

/// `GET /static/{name}`.
pub async fn serve(Path(name): Path<String>) -> Result<Response, WebError> {
    let asset = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or(WebError::NotFound("file"))?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response())
}
