//! User feedback: written by the processor with its batch, read by the event, issue and feedback pages.
//! A feedback names its event by id; the issue is found through the event when the feedback is written, or
//! when the event is, if it comes later, so feedback processed before its event still shows on its issue.

use crate::model::Feedback;
use crate::protocol::ProjectId;

use super::cached::Cached;
use super::{Result, Store};

/// `feedback` (the item `capture_feedback` sends) or `user_report` (the legacy item).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackKind {
    Feedback,
    UserReport,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feedback => "feedback",
            Self::UserReport => "user_report",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeedbackRow {
    pub project_id: ProjectId,
    pub kind: FeedbackKind,
    /// Unique per project and kind: a redelivered message inserts nothing.
    pub feedback_id: String,
    pub feedback: Feedback,
    pub received_at_us: i64,
}

/// One stored feedback, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFeedback {
    pub kind: String,
    pub event_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub url: Option<String>,
    pub timestamp: i64,
}

/// Most feedback rows a page lists.
pub const FEEDBACK_PAGE: i64 = 100;

pub(super) async fn insert(cached: &mut Cached, rows: &[FeedbackRow]) -> Result<()> {
    for row in rows {
        let f = &row.feedback;
        cached
            .write(
                super::event_keys::INSERT_FEEDBACK,
                libsql::params![
                    row.project_id.value(),
                    row.kind.as_str(),
                    row.feedback_id.as_str(),
                    f.associated_event_id.map(|id| id.to_string()),
                    f.name.clone(),
                    f.email.clone(),
                    f.message.as_str(),
                    f.url.clone(),
                    f.timestamp_us.unwrap_or(row.received_at_us),
                    row.received_at_us,
                ],
            )
            .await?;
    }
    Ok(())
}

const COLUMNS: &str = "f.kind, f.event_id, f.name, f.email, f.message, f.url, f.timestamp";

impl Store {
    /// Feedback about one event, newest first.
    pub async fn event_feedback(
        &self,
        project: ProjectId,
        event_id: &str,
    ) -> Result<Vec<StoredFeedback>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM feedback f WHERE f.project_id = ?1 AND f.event_id = ?2
             ORDER BY f.timestamp DESC LIMIT ?3"
        );
        self.feedback_rows(&sql, (project.value(), event_id, FEEDBACK_PAGE))
            .await
    }

    /// Feedback about any event of an issue, newest first (at most a page), and how many there are.
    pub async fn issue_feedback(
        &self,
        project: ProjectId,
        issue_id: i64,
    ) -> Result<(Vec<StoredFeedback>, i64)> {
        // The issue is recorded with the feedback, or by its event when that came later (`event_keys`).
        const FROM: &str = "FROM feedback f WHERE f.project_id = ?1 AND f.issue_id = ?2";
        let rows = self
            .feedback_rows(
                &format!("SELECT {COLUMNS} {FROM} ORDER BY f.timestamp DESC LIMIT ?3"),
                (project.value(), issue_id, FEEDBACK_PAGE),
            )
            .await?;
        let count = self
            .scalar(
                &format!("SELECT count(*) {FROM}"),
                (project.value(), issue_id),
            )
            .await?;
        Ok((rows, count))
    }

    /// All of a project's feedback, newest first (at most a page), and how many there are.
    pub async fn project_feedback(&self, project: ProjectId) -> Result<(Vec<StoredFeedback>, i64)> {
        let rows = self
            .feedback_rows(
                &format!(
                    "SELECT {COLUMNS} FROM feedback f WHERE f.project_id = ?1 ORDER BY f.timestamp DESC LIMIT ?2"
                ),
                (project.value(), FEEDBACK_PAGE),
            )
            .await?;
        let count = self
            .scalar(
                "SELECT count(*) FROM feedback WHERE project_id = ?1",
                [project.value()],
            )
            .await?;
        Ok((rows, count))
    }

    async fn feedback_rows(
        &self,
        sql: &str,
        params: impl libsql::params::IntoParams,
    ) -> Result<Vec<StoredFeedback>> {
        let mut rows = self.conn().query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(StoredFeedback {
                kind: row.get(0)?,
                event_id: row.get(1)?,
                name: row.get(2)?,
                email: row.get(3)?,
                message: row.get(4)?,
                url: row.get(5)?,
                timestamp: row.get(6)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBatch;

    fn row(project: ProjectId, kind: FeedbackKind, id: &str, event: Option<&str>) -> FeedbackRow {
        FeedbackRow {
            project_id: project,
            kind,
            feedback_id: id.to_owned(),
            feedback: Feedback {
                message: format!("message {id}"),
                name: Some("Ann".into()),
                email: None,
                url: None,
                associated_event_id: event.map(|e| e.parse().unwrap()),
                timestamp_us: None,
            },
            received_at_us: 1_000,
        }
    }

    #[tokio::test]
    async fn feedback_is_stored_once_and_read_per_event_and_project() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.create_project("Web").await.unwrap().id;
        let event = "0123456789abcdef0123456789abcdef";
        let batch = WriteBatch {
            feedback: vec![
                row(project, FeedbackKind::Feedback, "a", Some(event)),
                row(project, FeedbackKind::UserReport, event, Some(event)),
                row(project, FeedbackKind::Feedback, "b", None),
            ],
            ..WriteBatch::default()
        };
        crate::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
        // A redelivered batch changes nothing.
        crate::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
        let about = store.event_feedback(project, event).await.unwrap();
        assert_eq!(about.len(), 2);
        assert_eq!(about[0].timestamp, 1_000);
        let (all, count) = store.project_feedback(project).await.unwrap();
        assert_eq!((all.len(), count), (3, 3));
        // No event stored yet: no issue to show it on.
        assert_eq!(store.issue_feedback(project, 1).await.unwrap().1, 0);
    }
}
