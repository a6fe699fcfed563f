//! `WebError`: every way a page request fails, turned into a status and `templates/error.html` in one
//! place. A 5xx page says only that something went wrong; the cause is logged here, never shown.

use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

use super::assets;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// What was asked for (`project`, `issue`, `event`, `page`) does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The request is understood but its input is wrong; the message is shown to the person.
    #[error("{0}")]
    BadRequest(String),
    /// A state change that failed the CSRF or origin checks.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A state change without a signed-in session (pages redirect to sign-in instead).
    #[error("sign-in required")]
    SignInRequired,
    /// The UI cannot serve as configured; the message names what to fix (variable names, no values).
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// The OpenID provider failed or answered wrongly; the detail is logged, not shown.
    #[error("sign-in provider: {0}")]
    Provider(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("template: {0}")]
    Render(#[from] askama::Error),
}

pub type WebResult<T> = Result<T, WebError>;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
    css: &'static str,
    /// As every page names it: without it a browser asks for `/favicon.ico`, a second 404.
    favicon: &'static str,
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::SignInRequired => StatusCode::UNAUTHORIZED,
            Self::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Provider(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) | Self::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, message) = match &self {
            Self::NotFound(what) => ("Not found", format!("There is no such {what}.")),
            Self::BadRequest(why) => ("Bad request", why.clone()),
            Self::Forbidden(why) => ("Forbidden", (*why).to_owned()),
            Self::SignInRequired => (
                "Sign-in required",
                "Sign in first: open any page and you will be asked to.".to_owned(),
            ),
            Self::Misconfigured(why) => (
                "Sign-in is misconfigured",
                format!("This Splat refuses to show its pages until its sign-in settings are fixed: {why}."),
            ),
            Self::Provider(_) => (
                "Sign-in failed",
                "The sign-in provider could not be reached or gave an answer Splat cannot accept. \
                 The details have been logged; try again in a moment."
                    .to_owned(),
            ),
            Self::Store(_) | Self::Render(_) => (
                "Something went wrong",
                "The server could not show this page. The error has been logged.".to_owned(),
            ),
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "web request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "web request refused");
        }
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
            css: assets::css_url(),
            favicon: assets::favicon_url(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        let mut response = (status, Html(body)).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let response = WebError::Store(StoreError::Invalid("secret detail".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let response = WebError::NotFound("issue").into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
