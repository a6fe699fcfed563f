//! Alert rules on the project settings page (its own section, `templates/projects/alerts.html`), the
//! "Send a test alert" button, and muting an issue's alerts from the issue page
//! (`templates/issues/mute.html`). Plain POST forms with the CSRF token, as every other form.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::model::time::Ts;
use crate::notify::rules::LEVELS;
use crate::notify::{
    free_destination_name as free_name, saved_webhooks, Format, Webhook, MAX_SAVED_WEBHOOKS,
    SAVED_WEBHOOKS,
};
use crate::secret::redact_url;
use crate::store::{AlertRule, Project};

use super::{project_or_404, WebError, WebResult, WebState};

/// The rule form's values, and what the page says about destinations and the last test alert.
pub struct AlertsSection {
    pub action: String,
    pub test_action: String,
    /// (form name, label, checked).
    pub kinds: Vec<(&'static str, &'static str, bool)>,
    /// (level, selected).
    pub levels: Vec<(&'static str, bool)>,
    pub environments: String,
    pub every_destination: bool,
    /// (name, checked): the channels this process knows, then any the rule names that it does not.
    pub destinations: Vec<(String, bool)>,
    /// Whether this process can send alerts (no notifier: no channel configured).
    pub can_send: bool,
    /// After the test button: how many destinations took the test alert.
    pub test_result: Option<String>,
}

impl AlertsSection {
    /// The section for `project`; `here` is the page's path and query (the test button comes back with
    /// `?alert_test=N`).
    pub async fn load(state: &WebState, project: &Project, here: &str) -> WebResult<Self> {
        let rule = state.store.alert_rule(project.id.value()).await?;
        let mut known = environment_names(state);
        known.extend(
            saved_webhooks(&state.store)
                .await
                .into_iter()
                .map(|w| w.name),
        );
        let chosen = rule.destinations.clone().unwrap_or_default();
        let mut destinations: Vec<(String, bool)> = known
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    rule.destinations.is_none() || chosen.contains(name),
                )
            })
            .collect();
        for name in chosen.iter().filter(|n| !known.contains(n)) {
            destinations.push((name.clone(), true));
        }
        let tested = here
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|uri| Query::<TestResult>::try_from_uri(&uri).ok())
            .and_then(|q| q.0.alert_test);
        Ok(Self {
            action: format!("/projects/{}/alerts", project.slug),
            test_action: format!("/projects/{}/alerts/test", project.slug),
            kinds: vec![
                ("kind_new", "New issues", rule.new),
                (
                    "kind_regressed",
                    "Regressions (a resolved issue seen again)",
                    rule.regressed,
                ),
                ("kind_burst", "Bursts (many events in one hour)", rule.burst),
            ],
            levels: LEVELS.iter().map(|l| (*l, *l == rule.min_level)).collect(),
            environments: rule.environments.join(", "),
            every_destination: rule.destinations.is_none(),
            destinations,
            can_send: state.notifier.is_some(),
            test_result: tested.map(|n| match n {
                0 => "The test alert reached no destination: see the server's log.".to_owned(),
                1 => "The test alert was taken by 1 destination.".to_owned(),
                n => format!("The test alert was taken by {n} destinations."),
            }),
        })
    }
}

#[derive(Deserialize)]
struct TestResult {
    alert_test: Option<u32>,
}

/// Longest environments list and longest environment name.
const MAX_ENVIRONMENTS: usize = 50;
const MAX_NAME_CHARS: usize = 200;

/// `POST /projects/{slug}/alerts`: saves the rule. Checkboxes come as repeated fields (`destination`),
/// so the form is read as pairs.
pub async fn save_rules(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let rule = rule_from_form(&form)?;
    state
        .store
        .set_alert_rule(project.id.value(), &rule)
        .await?;
    tracing::info!(project = %project.id, ?rule, "alert rule saved");
    Ok(Redirect::to(&format!("/projects/{}/settings#alerts", project.slug)).into_response())
}

fn rule_from_form(form: &[(String, String)]) -> WebResult<AlertRule> {
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
    let min_level = field("min_level").unwrap_or("debug");
    if !LEVELS.contains(&min_level) {
        return Err(WebError::BadRequest(format!(
            "the minimum level is one of {}",
            LEVELS.join(", ")
        )));
    }
    let environments: Vec<String> = field("environments")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    if environments.len() > MAX_ENVIRONMENTS
        || environments
            .iter()
            .any(|e| e.chars().count() > MAX_NAME_CHARS)
    {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_ENVIRONMENTS} environments of at most {MAX_NAME_CHARS} characters"
        )));
    }
    let chosen: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "destination")
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    if chosen.len() > MAX_ENVIRONMENTS
        || !chosen
            .iter()
            .all(|d| d == "*" || crate::notify::is_destination_name(d))
    {
        return Err(WebError::BadRequest("unknown destination name".into()));
    }
    let every = chosen.iter().any(|d| d == "*");
    Ok(AlertRule {
        new: field("kind_new").is_some(),
        regressed: field("kind_regressed").is_some(),
        burst: field("kind_burst").is_some(),
        min_level: min_level.to_owned(),
        environments,
        destinations: (!every).then_some(chosen),
    })
}

/// `POST /projects/{slug}/alerts/test`: sends a test alert to the rule's destinations and comes back
/// saying how many took it.
pub async fn send_test(
    State(state): State<WebState>,
    Path(slug): Path<String>,
    headers: axum::http::HeaderMap,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let Some(notifier) = &state.notifier else {
        return Err(WebError::BadRequest(
            "No alert channel is configured (SMTP_*, SPLAT_WEBHOOK_URL(S), SPLAT_NTFY_URL).".into(),
        ));
    };
    // Its link goes back to where the button was pressed (a same-origin form post: CSRF checked it).
    let (scheme, host) = super::request_base(&headers);
    let took = notifier
        .send_test(&project, &format!("{scheme}://{host}"))
        .await;
    tracing::info!(project = %project.id, took, "test alert sent");
    Ok(Redirect::to(&format!(
        "/projects/{}/settings?alert_test={took}#alerts",
        project.slug
    ))
    .into_response())
}

/// What the issue page shows about the issue's mute.
pub struct MuteView {
    pub action: String,
    /// `Some(None)`: muted for good; `Some(Some(t))`: until `t`.
    pub muted: Option<Option<Ts>>,
    /// The earliest date the form offers (tomorrow, UTC).
    pub min_date: String,
}

impl MuteView {
    pub async fn load(state: &WebState, slug: &str, issue_id: i64) -> WebResult<Self> {
        let now = Ts::now().0;
        let muted = state.store.issue_mute(issue_id, now).await?;
        let tomorrow = chrono::Utc::now().date_naive() + chrono::Days::new(1);
        Ok(Self {
            action: format!("/projects/{slug}/issues/{issue_id}/mute"),
            muted: muted.map(|until| until.map(Ts)),
            min_date: tomorrow.format("%Y-%m-%d").to_string(),
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct MuteForm {
    /// `mute` or `unmute`.
    action: String,
    /// `YYYY-MM-DD`: alerts resume when that day begins (UTC); empty: muted for good.
    until: Option<String>,
}

/// `POST /projects/{slug}/issues/{id}/mute`: mutes the issue's alerts until a date or for good, or
/// unmutes them.
pub async fn mute(
    State(state): State<WebState>,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<MuteForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let issue = super::issues::issue_of_project(&state, &project, &id).await?;
    match form.action.as_str() {
        "unmute" => state.store.unmute_issue(issue.id).await?,
        "mute" => {
            let until = match form
                .until
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
            {
                None => None,
                Some(date) => Some(day_start_us(date)?),
            };
            state.store.mute_issue(issue.id, until).await?;
        }
        other => return Err(WebError::BadRequest(format!("unknown action {other:?}"))),
    }
    tracing::info!(issue = issue.id, action = %form.action, "issue alerts mute changed");
    Ok(Redirect::to(&format!("/projects/{}/issues/{}", project.slug, issue.id)).into_response())
}

/// The start (UTC) of a `YYYY-MM-DD` day still to come, in microseconds.
fn day_start_us(date: &str) -> WebResult<i64> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| WebError::BadRequest(format!("{date:?} is not a date (YYYY-MM-DD)")))?;
    let start = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .ok_or_else(|| WebError::BadRequest("not a date".into()))?;
    if start <= Ts::now().0 {
        return Err(WebError::BadRequest(
            "the date alerts resume on must be in the future".into(),
        ));
    }
    Ok(start)
}

/// The global settings page's alert destinations: the environment's channels (named only) and the
/// webhooks saved here (name, format and host: the rest of the URL is the credential).
pub struct DestinationsSection {
    pub from_environment: Vec<String>,
    /// (name, format, `scheme://host/…`).
    pub saved: Vec<(String, &'static str, String)>,
    pub formats: Vec<&'static str>,
    pub full: bool,
}

impl DestinationsSection {
    pub async fn load(state: &WebState) -> WebResult<Self> {
        let saved = saved_webhooks(&state.store).await;
        Ok(Self {
            from_environment: environment_names(state),
            full: saved.len() >= MAX_SAVED_WEBHOOKS,
            saved: saved
                .into_iter()
                .map(|w| (w.name, w.format.as_str(), redact_url(w.url.expose())))
                .collect(),
            formats: Format::ALL.iter().map(|f| f.as_str()).collect(),
        })
    }
}

/// The environment's channels as this process knows them (none without a notifier: in AWS the notify
/// function holds them).
fn environment_names(state: &WebState) -> Vec<String> {
    state
        .notifier
        .as_ref()
        .map(|n| n.environment_destinations())
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub struct DestinationForm {
    /// `add` or `remove`.
    action: String,
    name: Option<String>,
    /// A format's name, or `auto` (from the URL's host).
    format: Option<String>,
    url: Option<String>,
}

/// `POST /settings/alert-destinations`: adds a webhook (named, or after its format) or removes one.
pub async fn save_destination(
    State(state): State<WebState>,
    Form(form): Form<DestinationForm>,
) -> WebResult<Response> {
    let mut saved = saved_webhooks(&state.store).await;
    let name = form.name.as_deref().map(str::trim).unwrap_or_default();
    match form.action.as_str() {
        "remove" => saved.retain(|w| w.name != name),
        "add" => saved.push(new_webhook(&form, name, environment_names(&state), &saved)?),
        other => return Err(WebError::BadRequest(format!("unknown action {other:?}"))),
    }
    let list: Vec<String> = saved.iter().map(Webhook::to_entry).collect();
    let value = (!list.is_empty()).then(|| list.join(","));
    state
        .store
        .set_setting(SAVED_WEBHOOKS, value.as_deref())
        .await?;
    tracing::info!(action = %form.action, name, "alert destination saved");
    Ok(Redirect::to("/settings#alert-destinations").into_response())
}

/// The webhook the add form describes, checked against the names in use.
fn new_webhook(
    form: &DestinationForm,
    name: &str,
    mut taken: Vec<String>,
    saved: &[Webhook],
) -> WebResult<Webhook> {
    if saved.len() >= MAX_SAVED_WEBHOOKS {
        return Err(WebError::BadRequest(format!(
            "at most {MAX_SAVED_WEBHOOKS} webhooks can be saved here"
        )));
    }
    let url = form.url.as_deref().unwrap_or_default();
    let format = match form.format.as_deref().unwrap_or("auto") {
        "auto" => Format::detect(url),
        f => {
            Format::parse(f).ok_or_else(|| WebError::BadRequest(format!("unknown format {f:?}")))?
        }
    };
    taken.extend(saved.iter().map(|w| w.name.clone()));
    let name = match name {
        "" => free_name(crate::notify::default_destination_name(format), &taken),
        name if taken.iter().any(|t| t == name) => {
            return Err(WebError::BadRequest(format!(
                "a destination is already named {name:?}"
            )))
        }
        name => name.to_owned(),
    };
    Webhook::new(&name, Some(format), url).map_err(|e| WebError::BadRequest(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_a_rule() {
        let rule = rule_from_form(&form(&[
            ("csrf", "x"),
            ("kind_new", "on"),
            ("min_level", "error"),
            ("environments", " production, staging ,"),
            ("destination", "slack"),
            ("destination", "email"),
        ]))
        .unwrap();
        assert_eq!(
            rule,
            AlertRule {
                new: true,
                regressed: false,
                burst: false,
                min_level: "error".into(),
                environments: vec!["production".into(), "staging".into()],
                destinations: Some(vec!["slack".into(), "email".into()]),
            }
        );
        let every =
            rule_from_form(&form(&[("destination", "*"), ("destination", "slack")])).unwrap();
        assert_eq!(every.destinations, None);
        for bad in [
            form(&[("min_level", "loud")]),
            form(&[("destination", "Not A Name")]),
            form(&[("environments", &"e,".repeat(60))]),
        ] {
            assert!(rule_from_form(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_mute_date_is_a_day_to_come() {
        assert!(day_start_us("2999-01-02").unwrap() > Ts::now().0);
        assert!(day_start_us("2000-01-01").is_err());
        assert!(day_start_us("tomorrow").is_err());
    }
}
