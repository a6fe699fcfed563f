//! User feedback as Sentry shows it: a "User feedback" section on the event page and the issue page (who,
//! their email, what they wrote, when), and the project's feedback page, which also lists feedback that
//! names no event. Everything here was typed by a stranger: the templates escape it all.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;

use crate::format::Count;
use crate::model::time::Ts;
use crate::store::StoredFeedback;

use super::{project_or_404, render, Chrome, WebResult, WebState};

/// One feedback, ready to show.
#[derive(Debug, Clone)]
pub struct FeedbackView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub url: Option<String>,
    pub time: Ts,
    /// The event it is about: its page, and its short id.
    pub event: Option<(String, String)>,
    /// `user report` for the legacy item.
    pub legacy: bool,
}

impl FeedbackView {
    pub fn new(slug: &str, f: StoredFeedback) -> Self {
        Self {
            event: f.event_id.map(|id| {
                let short = id.chars().take(8).collect();
                (format!("/projects/{slug}/events/{id}"), short)
            }),
            legacy: f.kind == "user_report",
            name: f.name,
            email: f.email,
            message: f.message,
            url: f.url,
            time: Ts(f.timestamp),
        }
    }

    pub fn all(slug: &str, rows: Vec<StoredFeedback>) -> Vec<Self> {
        rows.into_iter().map(|f| Self::new(slug, f)).collect()
    }
}

/// The feedback section as the event and issue pages show it.
pub struct FeedbackSection {
    pub items: Vec<FeedbackView>,
    /// All of it, of which `items` is the newest page.
    pub count: Count,
}

impl FeedbackSection {
    pub fn new(slug: &str, rows: Vec<StoredFeedback>, count: i64) -> Self {
        Self {
            items: FeedbackView::all(slug, rows),
            count: Count(count),
        }
    }

    /// Only the newest page of it is shown.
    pub fn is_partial(&self) -> bool {
        self.count.0 > self.items.len() as i64
    }
}

#[derive(Template)]
#[template(path = "feedback/list.html")]
struct FeedbackPage {
    chrome: Chrome,
    feedback: FeedbackSection,
}

/// `GET /projects/{slug}/feedback`: the project's feedback, newest first.
pub async fn list(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let (rows, count) = state.store.project_feedback(project.id).await?;
    let chrome = chrome
        .for_project(
            &state,
            &project,
            "feedback",
            format!("User feedback · {}", project.name),
        )
        .await?;
    render(&FeedbackPage {
        chrome,
        feedback: FeedbackSection::new(&project.slug, rows, count),
    })
}
