//! A project's data scrubbing on its settings page: the default rules (on unless turned off), IP
//! addresses, additional sensitive fields and safe fields ([`crate::scrub`]). Saved settings apply from
//! the processor's next batch.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;

use crate::scrub::ScrubSettings;
use crate::store::Project;

use super::{project_or_404, redirect_local, WebError, WebResult, WebState};

/// The form as the settings page fills it.
pub struct ScrubbingView {
    pub settings: ScrubSettings,
    pub url: String,
}

impl ScrubbingView {
    pub async fn of(state: &WebState, project: &Project) -> WebResult<Self> {
        Ok(Self {
            settings: state.store.scrub_settings(project.id).await?,
            url: format!("/projects/{}/scrubbing", project.slug),
        })
    }

    /// A field list as the text area shows it: one per line.
    pub fn lines(fields: &[String]) -> String {
        fields.join("\n")
    }
}

/// `POST /projects/{slug}/scrubbing`: checkboxes `defaults` and `ip_addresses` (absent when unticked),
/// text areas `sensitive_fields` and `safe_fields` (one per line or comma-separated).
pub async fn save(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let fields = |name: &str| {
        ScrubSettings::parse_fields(form.get(name).map_or("", String::as_str))
            .map_err(|e| WebError::BadRequest(format!("{}: {e}", name.replace('_', " "))))
    };
    let settings = ScrubSettings {
        defaults: form.contains_key("defaults"),
        ip_addresses: form.contains_key("ip_addresses"),
        sensitive_fields: fields("sensitive_fields")?,
        safe_fields: fields("safe_fields")?,
    };
    state
        .store
        .set_scrub_settings(project.id, &settings)
        .await?;
    tracing::info!(project = %project.id, defaults = settings.defaults, ip_addresses = settings.ip_addresses, "scrubbing settings saved");
    Ok(redirect_local(
        None,
        &format!("/projects/{}/settings#scrubbing", project.slug),
    ))
}
