//! Deleting an event or an issue from its page: the Delete button posts (with the CSRF token) to a
//! confirmation page, whose button posts again with `confirm=yes`; no JavaScript is needed. What a
//! deletion changes besides the rows is in [`crate::store`]'s `deletes`.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::events::event_or_404;
use super::issues::issue_of_project;
use super::{project_or_404, redirect_local, render, Chrome, WebError, WebResult, WebState};
use crate::store::Project;

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDeletePage {
    chrome: Chrome,
    /// "event" or "issue".
    what: &'static str,
    title: String,
    consequence: String,
    action: String,
    cancel: String,
}

/// What a deletion is about, for its confirmation page.
struct Doomed {
    what: &'static str,
    title: String,
    consequence: String,
    /// The page of what is deleted (Cancel goes back there; the form posts to its `/delete`).
    page: String,
}

impl ConfirmForm {
    /// `None` once confirmed; else the confirmation page of `doomed`.
    async fn confirmed(
        &self,
        state: &WebState,
        chrome: Chrome,
        project: &Project,
        doomed: Doomed,
    ) -> WebResult<Option<Response>> {
        if self.confirm.as_deref() == Some("yes") {
            return Ok(None);
        }
        let title = format!("Delete {} · {}", doomed.what, project.name);
        let chrome = chrome.for_project(state, project, "issues", title).await?;
        render(&ConfirmDeletePage {
            chrome,
            what: doomed.what,
            title: doomed.title,
            consequence: doomed.consequence,
            action: format!("{}/delete", doomed.page),
            cancel: doomed.page,
        })
        .map(Some)
    }
}

/// `POST /projects/{slug}/events/{event_id}/delete`: then back to its issue (or the list, if the issue
/// went with its last event).
pub async fn event(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, event_id)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> WebResult<Response> {
    let (project, event_id, event) = event_or_404(&state, &slug, &event_id).await?;
    let doomed = Doomed {
        what: "event",
        title: event.title.clone(),
        consequence: "The event is removed from its issue, whose counts go down by one; an issue left with no event is deleted too. The same event sent again is not stored again. Lake files keep their copy for analytics.".into(),
        page: format!("/projects/{}/events/{event_id}", project.slug),
    };
    if let Some(page) = form.confirmed(&state, chrome, &project, doomed).await? {
        return Ok(page);
    }
    let issue = state
        .store
        .delete_event(project.id, &event_id)
        .await?
        .ok_or(WebError::NotFound("event"))?;
    tracing::info!(project = %project.id, event = %event_id, "event deleted");
    let next = match issue {
        Some(issue) => format!("/projects/{}/issues/{issue}", project.slug),
        None => format!("/projects/{}/issues", project.slug),
    };
    Ok(redirect_local(None, &next))
}

/// `POST /projects/{slug}/issues/{id}/delete`: then back to the issue list.
pub async fn issue(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let issue = issue_of_project(&state, &project, &id).await?;
    let doomed = Doomed {
        what: "issue",
        title: issue.title.clone(),
        consequence: format!(
            "Issue #{} and its {} stored event(s) are deleted, and the project's counts go down by them. The same events sent again are not stored again; a new event with the same fingerprint opens a new issue. Lake files keep their copy for analytics.",
            issue.id, issue.times_seen
        ),
        page: format!("/projects/{}/issues/{}", project.slug, issue.id),
    };
    if let Some(page) = form.confirmed(&state, chrome, &project, doomed).await? {
        return Ok(page);
    }
    let events = state
        .store
        .delete_issue(project.id, issue.id)
        .await?
        .ok_or(WebError::NotFound("issue"))?;
    tracing::info!(project = %project.id, issue = issue.id, events, "issue deleted");
    let list = format!("/projects/{}/issues", project.slug);
    Ok(redirect_local(None, &list))
}
