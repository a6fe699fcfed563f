//! `/settings`: what the whole instance keeps and for how long. The retention horizons in force (each
//! saved here, else from its environment variable, else the default) with a form to change them, what the
//! last retention runs removed, and how much the database and the lake hold.

use std::collections::HashMap;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::Form;

use crate::format::Count;
use crate::model::time::Ts;
use crate::retention::{Horizons, SETTING_PREFIX};
use crate::store::{ApiScope, StorageFigures};

use super::{redirect_local, render, Chrome, WebError, WebResult, WebState};

/// One horizon as the page shows it.
struct HorizonView {
    variable: &'static str,
    what: &'static str,
    days: u32,
    /// `settings page`, `environment or default`.
    source: &'static str,
    saved: String,
}

/// One retention run: when, how long, and what it removed (named counts that were not zero).
struct RunView {
    started: Ts,
    seconds: String,
    removed: Vec<(String, u64)>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    horizons: Vec<HorizonView>,
    runs: Vec<RunView>,
    storage: StorageFigures,
    tokens: Vec<TokenView>,
    /// A token just created: its text, shown on this one page and never again.
    new_token: Option<String>,
    destinations: super::alerts::DestinationsSection,
}

/// An API token as the page lists it.
struct TokenView {
    id: i64,
    label: String,
    scope: &'static str,
    prefix: String,
    created: Ts,
    last_used: Option<Ts>,
    revoked: Option<Ts>,
}

impl SettingsPage {
    fn mib(bytes: &i64) -> String {
        format!("{:.1} MiB", *bytes as f64 / (1024.0 * 1024.0))
    }

    fn count(n: &i64) -> Count {
        Count(*n)
    }
}

/// `GET /settings`.
pub async fn page(State(state): State<WebState>, chrome: Chrome) -> WebResult<Response> {
    page_with(&state, chrome, None).await
}

/// The page, with a token just created shown once.
async fn page_with(
    state: &WebState,
    chrome: Chrome,
    new_token: Option<String>,
) -> WebResult<Response> {
    let mut chrome = chrome.global(state, "Settings").await?;
    chrome.section = "settings";
    let saved = state.store.settings_with_prefix(SETTING_PREFIX).await?;
    let in_force = state.retention.with_saved(&saved);
    let saved: HashMap<String, String> = saved.into_iter().collect();
    let horizons = in_force
        .fields()
        .into_iter()
        .map(|(variable, what, days)| {
            let value = saved.get(&format!("{SETTING_PREFIX}{variable}")).cloned();
            HorizonView {
                variable,
                what,
                days,
                source: if value.is_some() {
                    "settings page"
                } else {
                    "environment or default"
                },
                saved: value.unwrap_or_default(),
            }
        })
        .collect();
    let runs = state
        .store
        .retention_runs(10)
        .await?
        .into_iter()
        .map(|(started, finished, report)| RunView {
            started: Ts(started),
            seconds: format!("{:.1}", (finished - started) as f64 / 1e6),
            removed: removed_counts(&report),
        })
        .collect();
    render(&SettingsPage {
        destinations: super::alerts::DestinationsSection::load(state).await?,
        chrome,
        horizons,
        runs,
        storage: state.store.storage_figures().await?,
        tokens: state
            .store
            .api_tokens()
            .await?
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                label: t.label,
                scope: t.scope.name(),
                prefix: t.prefix,
                created: Ts(t.created_at),
                last_used: t.last_used_at.map(Ts),
                revoked: t.revoked_at.map(Ts),
            })
            .collect(),
        new_token,
    })
}

#[derive(serde::Deserialize)]
pub struct NewTokenForm {
    label: String,
    scope: String,
}

/// `POST /settings/tokens`: creates an API token and shows its text on the page this once.
pub async fn create_token(
    State(state): State<WebState>,
    chrome: Chrome,
    Form(form): Form<NewTokenForm>,
) -> WebResult<Response> {
    let scope = ApiScope::from_name(&form.scope)
        .ok_or_else(|| WebError::BadRequest(format!("unknown scope {:?}", form.scope)))?;
    let (token, text) = state.store.create_api_token(&form.label, scope).await?;
    tracing::info!(
        token = token.id,
        scope = scope.name(),
        "API token created from the settings page"
    );
    page_with(&state, chrome, Some(text.expose().to_owned())).await
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<WebState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> WebResult<Response> {
    if !state.store.revoke_api_token(id).await? {
        return Err(WebError::NotFound("token"));
    }
    tracing::info!(token = id, "API token revoked from the settings page");
    Ok(redirect_local(Some("/settings"), "/settings"))
}

/// The non-zero counts of a stored report (`{"database": {...}, "lake": {...}}`), labelled for people.
fn removed_counts(report: &str) -> Vec<(String, u64)> {
    let Ok(serde_json::Value::Object(parts)) = serde_json::from_str(report) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (part, counts) in parts {
        for (name, n) in counts.as_object().into_iter().flatten() {
            if let Some(n) = n.as_u64().filter(|n| *n > 0) {
                out.push((format!("{part}: {}", name.replace('_', " ")), n));
            }
        }
    }
    out
}

/// `POST /settings/retention`: each field a number of days (saved), or empty (back to the environment or
/// default). Nothing is saved unless every field is valid.
pub async fn save_retention(
    State(state): State<WebState>,
    Form(form): Form<HashMap<String, String>>,
) -> WebResult<Response> {
    let mut changes = Vec::new();
    for (variable, _, _) in Horizons::default().fields() {
        let value = form.get(variable).map(|v| v.trim()).unwrap_or("");
        if value.is_empty() {
            changes.push((variable, None));
            continue;
        }
        match value.parse::<u32>() {
            Ok(days) if (1..=36_500).contains(&days) => changes.push((variable, Some(days.to_string()))),
            _ => {
                return Err(WebError::BadRequest(format!(
                    "{variable} must be a whole number of days from 1 to 36500, or empty; got {value:?}"
                )))
            }
        }
    }
    for (variable, value) in changes {
        let key = format!("{SETTING_PREFIX}{variable}");
        state.store.set_setting(&key, value.as_deref()).await?;
    }
    tracing::info!("retention horizons saved from the settings page");
    Ok(redirect_local(Some("/settings"), "/settings"))
}
