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
use crate::store::StorageFigures;

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
    destinations: super::alerts::DestinationsSection,
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
    let mut chrome = chrome.global(&state, "Settings").await?;
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
        destinations: super::alerts::DestinationsSection::load(&state).await?,
        chrome,
        horizons,
        runs,
        storage: state.store.storage_figures().await?,
    })
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
