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

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

impl ConfirmForm {
    fn confirmed(&self) -> bool {
        self.confirm.as_deref() == Some("yes")
    }
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

/// `POST /projects/{slug}/events/{event_id}/delete`: then back to its issue (or the list, if the issue
/// went with its last event).
pub async fn event(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, event_id)): Path<(String, String)>,
    Form(form): Form<ConfirmForm>,
) -> WebResult<Response> {
    let (project, event_id, event) = event_or_404(&state, &slug, &event_id).await?;
    let page = format!("/projects/{}/events/{event_id}", project.slug);
    if !form.confirmed() {
        let chrome = chrome
            .for_project(
                &state,
                &project,
                "issues",
                format!("Delete event · {}", project.name),
            )
            .await?;
        return render(&ConfirmDeletePage {
            chrome,
            what: "event",
            title: event.title.clone(),
            consequence: "The event is removed from its issue, whose counts go down by one; an issue left with no event is deleted too. The same event sent again is not stored again. Lake files keep their copy for analytics.".into(),
            action: format!("{page}/delete"),
            cancel: page,
        });
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
    let page = format!("/projects/{}/issues/{}", project.slug, issue.id);
    if !form.confirmed() {
        let chrome = chrome
            .for_project(
                &state,
                &project,
                "issues",
                format!("Delete issue · {}", project.name),
            )
            .await?;
        return render(&ConfirmDeletePage {
            chrome,
            what: "issue",
            title: issue.title.clone(),
            consequence: format!(
                "Issue #{} and its {} stored event(s) are deleted, and the project's counts go down by them. The same events sent again are not stored again; a new event with the same fingerprint opens a new issue. Lake files keep their copy for analytics.",
                issue.id, issue.times_seen
            ),
            action: format!("{page}/delete"),
            cancel: page,
        });
    }
    let events = state
        .store
        .delete_issue(project.id, issue.id)
        .await?
        .ok_or(WebError::NotFound("issue"))?;
    tracing::info!(project = %project.id, issue = issue.id, events, "issue deleted");
    Ok(redirect_local(
        None,
        &format!("/projects/{}/issues", project.slug),
    ))
}
