//! DSN keys and quotas on the project settings page: add a key, disable or enable it, rotate it (a new key
//! replaces a leaked one), and set per-minute quotas per data category for the project and for each key.
//!
//! Every change is a POST form (CSRF-checked like all of them). Disabling and rotating cut SDKs off, so
//! they first answer with a confirmation page whose button posts again with `confirm=yes`: a confirm step
//! that needs no JavaScript.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::model::time::Ts;
use crate::protocol::{DataCategory, PublicKey};
use crate::store::{Project, ProjectKey, QuotaRow, StoreError};

use super::{
    key_dsn, project_or_404, redirect_local, render, Chrome, WebError, WebResult, WebState,
};

/// One category's quota field: the category and the current quota (empty: none).
pub struct LimitField {
    pub category: &'static str,
    pub value: String,
}

/// A key of the project with its DSNs and quotas.
pub struct KeyView {
    pub public_key: String,
    pub label: String,
    pub enabled: bool,
    pub created: Ts,
    pub dsns: Vec<(&'static str, String)>,
    pub limits: Vec<LimitField>,
    /// Where the key's quota form posts.
    pub limits_url: String,
    /// `error 100/min, span 5000/min`, or empty.
    pub limit_summary: String,
}

/// The quota fields of a key (`Some`) or of the project (`None`), one per category.
pub fn limit_fields(quotas: &[QuotaRow], key: Option<&PublicKey>) -> Vec<LimitField> {
    DataCategory::ALL
        .iter()
        .map(|&category| LimitField {
            category: category.name(),
            value: quotas
                .iter()
                .find(|q| q.public_key.as_ref() == key && q.category == category)
                .map(|q| q.per_minute.to_string())
                .unwrap_or_default(),
        })
        .collect()
}

fn summary(fields: &[LimitField]) -> String {
    fields
        .iter()
        .filter(|f| !f.value.is_empty())
        .map(|f| format!("{} {}/min", f.category, f.value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings page's key rows.
pub fn key_rows(chrome: &Chrome, project: &Project, quotas: &[QuotaRow]) -> Vec<KeyView> {
    project
        .keys
        .iter()
        .map(|k| {
            let mut dsns = vec![(
                "External DSN",
                key_dsn(&chrome.external_base, project.id, &k.public_key),
            )];
            if let Some(internal) = &chrome.internal_base {
                dsns.push(("Internal DSN", key_dsn(internal, project.id, &k.public_key)));
            }
            let limits = limit_fields(quotas, Some(&k.public_key));
            KeyView {
                public_key: k.public_key.to_string(),
                label: k.label.clone(),
                enabled: k.enabled,
                created: Ts(k.created_at),
                dsns,
                limit_summary: summary(&limits),
                limits,
                limits_url: format!("/projects/{}/keys/{}/limits", project.slug, k.public_key),
            }
        })
        .collect()
}

fn settings_url(project: &Project) -> String {
    format!("/projects/{}/settings", project.slug)
}

fn to_settings(project: &Project, anchor: &str) -> Response {
    redirect_local(None, &format!("{}#{anchor}", settings_url(project)))
}

#[derive(Debug, Deserialize)]
pub struct LabelForm {
    label: String,
}

/// `POST /projects/{slug}/keys`: a new enabled key.
pub async fn add(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<LabelForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let key = state
        .store
        .add_key(project.id, &form.label)
        .await
        .map_err(|e| match e {
            StoreError::Invalid(why) => WebError::BadRequest(why),
            other => other.into(),
        })?;
    tracing::info!(project = %project.id, key = %key.public_key, "key added");
    Ok(to_settings(&project, &format!("key-{}", key.public_key)))
}

/// The project's key named in the path, or 404 (also for a key of another project).
async fn project_key(state: &WebState, project: &Project, key: &str) -> WebResult<ProjectKey> {
    let key: PublicKey = key.parse().map_err(|_| WebError::NotFound("key"))?;
    match state.store.key(&key).await? {
        Some((owner, key)) if owner == project.id => Ok(key),
        _ => Err(WebError::NotFound("key")),
    }
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

/// What a key action is, for the confirmation page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAction {
    Disable,
    Enable,
    Rotate,
}

impl KeyAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "disable" => Some(Self::Disable),
            "enable" => Some(Self::Enable),
            "rotate" => Some(Self::Rotate),
            _ => None,
        }
    }

    /// Disabling and rotating cut SDKs off: they are confirmed first.
    fn needs_confirmation(self) -> bool {
        match self {
            Self::Disable | Self::Rotate => true,
            Self::Enable => false,
        }
    }
}

#[derive(Template)]
#[template(path = "projects/confirm_key.html")]
struct ConfirmKeyPage {
    chrome: Chrome,
    project: Project,
    key: ProjectKey,
    action: &'static str,
    dsn: String,
}

/// `POST /projects/{slug}/keys/{key}/{disable|enable|rotate}`.
pub async fn act(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, key, action)): Path<(String, String, String)>,
    Form(form): Form<ConfirmForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let key = project_key(&state, &project, &key).await?;
    let action = KeyAction::parse(&action).ok_or(WebError::NotFound("page"))?;
    if action.needs_confirmation() && form.confirm.as_deref() != Some("yes") {
        let title = format!("Confirm · {}", project.name);
        let chrome = chrome
            .for_project(&state, &project, "settings", title)
            .await?;
        return render(&ConfirmKeyPage {
            dsn: key_dsn(&chrome.external_base, project.id, &key.public_key),
            action: if action == KeyAction::Disable {
                "disable"
            } else {
                "rotate"
            },
            chrome,
            project,
            key,
        });
    }
    let anchor = match action {
        KeyAction::Disable | KeyAction::Enable => {
            let enabled = action == KeyAction::Enable;
            state
                .store
                .set_key_enabled(&key.public_key, enabled)
                .await?;
            tracing::info!(project = %project.id, key = %key.public_key, enabled, "key state changed");
            format!("key-{}", key.public_key)
        }
        KeyAction::Rotate => {
            let new = state.store.rotate_key(&key.public_key).await?;
            tracing::info!(project = %project.id, old = %key.public_key, new = %new.public_key, "key rotated");
            format!("key-{}", new.public_key)
        }
    };
    Ok(to_settings(&project, &anchor))
}

/// Applies a quota form: one field per category, `limit_<category>`, empty for none.
async fn save_limits(
    state: &WebState,
    project: &Project,
    key: Option<&PublicKey>,
    form: &HashMap<String, String>,
) -> WebResult<()> {
    for category in DataCategory::ALL {
        let Some(value) = form.get(&format!("limit_{}", category.name())) else {
            continue;
        };
        let value = value.trim();
        let limit = if value.is_empty() {
            None
        } else {
            Some(value.parse::<u64>().map_err(|_| {
                WebError::BadRequest(format!(
                    "The {category} limit must be a whole number of items per minute, or empty for none."
                ))
            })?)
        };
        state
            .store
            .set_quota(project.id, key, category, limit)
            .await?;
    }
    Ok(())
}

/// `POST /projects/{slug}/limits`: the project's quotas (all its keys together).
pub async fn project_limits(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    save_limits(&state, &project, None, &form).await?;
    Ok(to_settings(&project, "limits"))
}

/// `POST /projects/{slug}/keys/{key}/limits`: one key's own quotas.
pub async fn key_limits(
    State(state): State<WebState>,
    Path((slug, key)): Path<(String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let key = project_key(&state, &project, &key).await?;
    save_limits(&state, &project, Some(&key.public_key), &form).await?;
    Ok(to_settings(&project, &format!("key-{}", key.public_key)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_show_each_scope_its_own_quotas() {
        let key = PublicKey::generate();
        let quotas = [
            QuotaRow {
                public_key: None,
                category: DataCategory::Error,
                per_minute: 10,
            },
            QuotaRow {
                public_key: Some(key.clone()),
                category: DataCategory::Span,
                per_minute: 5,
            },
        ];
        assert_eq!(summary(&limit_fields(&quotas, None)), "error 10/min");
        assert_eq!(summary(&limit_fields(&quotas, Some(&key))), "span 5/min");
        assert_eq!(limit_fields(&quotas, None).len(), DataCategory::ALL.len());
    }
}
