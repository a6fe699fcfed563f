//! Projects on the read side of the UI — the list with open-issue counts and last activity, a project by
//! its slug, events per hour, recent events, the values its filters offer, a cheap change stamp for live
//! updates — and the two changes people make to a project: rename and delete.

use crate::protocol::ProjectId;

use super::{Project, Result, Store, StoreError};

/// A project as the projects list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    pub project: Project,
    pub open_issues: i64,
    /// The newest `last_seen` of its issues; `None` before its first error.
    pub last_activity: Option<i64>,
}

/// An event as the dashboard's recent list shows it, with the issue it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    pub event_id: String,
    pub issue_id: Option<i64>,
    pub timestamp: i64,
    pub title: String,
    pub level: String,
    pub environment: Option<String>,
    pub release: Option<String>,
}

/// [`Store::change_stamp`] of one project (`?1`).
const STAMP_OF_PROJECT: &str = "SELECT (SELECT total(count) FROM item_counts WHERE project_id = ?1 AND item_type = 'event'),
                (SELECT group_concat(status || ':' || count) FROM
                   (SELECT status, count FROM issue_status_counts
                    WHERE project_id = ?1 AND status IN ('resolved', 'resolved_next_release', 'ignored')
                    ORDER BY status)),
                (SELECT name FROM projects WHERE id = ?1)";

/// [`Store::change_stamp`] of every project (`?1` unused but bound).
const STAMP_OF_ALL: &str =
    "SELECT (SELECT total(count) FROM item_counts WHERE item_type = 'event' AND ?1 = ?1),
                (SELECT group_concat(project_id || ':' || status || ':' || count) FROM
                   (SELECT project_id, status, count FROM issue_status_counts
                    WHERE status IN ('resolved', 'resolved_next_release', 'ignored')
                    ORDER BY project_id, status)),
                (SELECT group_concat(id || ':' || name) FROM projects)";

impl Store {
    /// A project by its URL slug.
    pub async fn project_by_slug(&self, slug: &str) -> Result<Option<Project>> {
        let mut rows = self
            .conn()
            .query("SELECT id FROM projects WHERE slug = ?1", [slug])
            .await?;
        let id = match rows.next().await? {
            Some(row) => ProjectId::new(row.get(0)?),
            None => return Ok(None),
        };
        drop(rows);
        self.project(id).await
    }

    /// Every project with its open issues and last activity, oldest project first.
    pub async fn project_summaries(&self) -> Result<Vec<ProjectSummary>> {
        let projects = self.list_projects().await?;
        // Both are index lookups: (project_id, status, last_seen) and (project_id, last_seen).
        let open = self
            .conn()
            .prepare("SELECT count(*) FROM issues WHERE project_id = ?1 AND status = 'open'")
            .await?;
        let last = self
            .conn()
            .prepare("SELECT max(last_seen) FROM issues WHERE project_id = ?1")
            .await?;
        let mut out = Vec::with_capacity(projects.len());
        for project in projects {
            let id = project.id.value();
            let open_issues = first_i64(open.query([id]).await?).await?.unwrap_or(0);
            open.reset();
            let last_activity = first_i64(last.query([id]).await?).await?;
            last.reset();
            out.push(ProjectSummary {
                project,
                open_issues,
                last_activity,
            });
        }
        Ok(out)
    }

    /// Accepted error events per hour (Unix seconds at the hour's start) from `since_hour` on, oldest first;
    /// hours without events are absent.
    pub async fn project_event_hours(
        &self,
        project: ProjectId,
        since_hour: i64,
    ) -> Result<Vec<(i64, i64)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT hour, count FROM item_counts WHERE project_id = ?1 AND item_type = 'event' AND hour >= ?2 ORDER BY hour",
                (project.value(), since_hour),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?));
        }
        Ok(out)
    }

    /// A project's newest events, by the time they happened.
    pub async fn recent_events(&self, project: ProjectId, limit: u32) -> Result<Vec<RecentEvent>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT event_id, issue_id, timestamp, title, level, environment, release FROM events
                 WHERE project_id = ?1 ORDER BY timestamp DESC, id DESC LIMIT ?2",
                (project.value(), limit.clamp(1, 100) as i64),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(RecentEvent {
                event_id: row.get(0)?,
                issue_id: row.get(1)?,
                timestamp: row.get(2)?,
                title: row.get(3)?,
                level: row.get(4)?,
                environment: row.get(5)?,
                release: row.get(6)?,
            });
        }
        Ok(out)
    }

    /// Values of one issue tag (`environment`, say) among the project's 1,000 most recently seen issues:
    /// what a filter drop-down offers. Bounded so it stays cheap however many issues there are.
    pub async fn recent_tag_values(
        &self,
        project: ProjectId,
        key: &str,
        limit: u32,
    ) -> Result<Vec<String>> {
        let mut rows = self
            .conn()
            .query(
                // CROSS JOIN fixes the order: from the 1,000 issues to their tags, never from every
                // tag value of the key (the planner would, through the (key, value) index).
                "SELECT DISTINCT t.value FROM
                   (SELECT id FROM issues WHERE project_id = ?1 ORDER BY last_seen DESC LIMIT 1000) i
                   CROSS JOIN issue_tags t ON t.issue_id = i.id AND t.key = ?2
                 ORDER BY t.value LIMIT ?3",
                (project.value(), key, limit.clamp(1, 500) as i64),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(row.get(0)?);
        }
        Ok(out)
    }

    /// A value that changes whenever an event is stored or an issue changes status, in one project or (with
    /// `None`) in any: live pages poll it and reload only when it moved. New and regressed issues come
    /// with events (the item counts move); every status change moves the count of some non-open status.
    /// Those counts are the trigger-kept `issue_status_counts`: counting the issues themselves read every
    /// resolved and ignored one on each page view (200,000 index entries at a million issues).
    pub async fn change_stamp(&self, project: Option<ProjectId>) -> Result<String> {
        let sql = match project {
            Some(_) => STAMP_OF_PROJECT,
            None => STAMP_OF_ALL,
        };
        let mut rows = self
            .conn()
            .query(sql, [project.map_or(0, ProjectId::value)])
            .await?;
        let row = rows
            .next()
            .await?
            .ok_or_else(|| StoreError::Invalid("no change stamp".into()))?;
        let mut stamp = String::new();
        for i in 0..3 {
            let part = match row.get_value(i)? {
                libsql::Value::Null => String::new(),
                libsql::Value::Integer(n) => n.to_string(),
                libsql::Value::Real(f) => f.to_string(),
                libsql::Value::Text(s) => s,
                libsql::Value::Blob(b) => hex::encode(b),
            };
            stamp.push_str(&part);
            stamp.push('|');
        }
        // Names are user text: hash the stamp so it is short and opaque.
        use md5::Digest;
        Ok(hex::encode(&md5::Md5::digest(stamp.as_bytes())[..8]))
    }

    /// Renames a project; its slug (in URLs) and keys (in DSNs) stay. False when there is no such project.
    pub async fn rename_project(&self, project: ProjectId, name: &str) -> Result<bool> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(StoreError::Invalid(
                "a project name is 1 to 200 characters".into(),
            ));
        }
        let n = self
            .conn()
            .execute(
                "UPDATE projects SET name = ?1 WHERE id = ?2",
                (name, project.value()),
            )
            .await?;
        Ok(n > 0)
    }

    /// Deletes a project and everything it holds, in one transaction. Keys, events, transactions, issues
    /// (with their hashes, users, tags and hours) and releases go by `ON DELETE CASCADE`; spans, item counts
    /// and the search index have no foreign key and are deleted here.
    pub async fn delete_project(&self, project: ProjectId) -> Result<bool> {
        let id = project.value();
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        tx.execute(
            "DELETE FROM issues_fts WHERE rowid IN (SELECT id FROM issues WHERE project_id = ?1)",
            [id],
        )
        .await?;
        tx.execute("DELETE FROM spans WHERE project_id = ?1", [id])
            .await?;
        tx.execute(
            "DELETE FROM payload_dictionaries WHERE project_id = ?1",
            [id],
        )
        .await?;
        tx.execute("DELETE FROM item_counts WHERE project_id = ?1", [id])
            .await?;
        // Its scrubbing settings: a later project may get the same id.
        tx.execute("DELETE FROM settings WHERE key = 'scrub.' || ?1", [id])
            .await?;
        let n = tx
            .execute("DELETE FROM projects WHERE id = ?1", [id])
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}

async fn first_i64(mut rows: libsql::Rows) -> Result<Option<i64>> {
    Ok(match rows.next().await? {
        Some(row) => row.get::<Option<i64>>(0)?,
        None => None,
    })
}

/// What `/_health` shows of the data: 24-hour event and transaction counts, open issues, and the
/// transactions of the last minute and hour (for rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthCounts {
    pub events_24h: i64,
    pub open_issues: i64,
    pub transactions_24h: i64,
    pub transactions_last_minute: i64,
    pub transactions_last_hour: i64,
}

impl Store {
    /// The health counts, each through a per-project time index (`events (project_id, timestamp)`,
    /// `transactions (project_id, end_time)`), and open issues from the per-status counters.
    pub async fn health_counts(&self, now_us: i64) -> Result<HealthCounts> {
        use crate::model::time::{DAY_US, HOUR_US, MINUTE_US};
        const EVENTS: &str = "SELECT count(*) FROM projects p JOIN events e ON e.project_id = p.id AND e.timestamp >= ?1";
        const TRANSACTIONS: &str = "SELECT count(*) FROM projects p JOIN transactions t ON t.project_id = p.id AND t.end_time >= ?1";
        const OPEN: &str =
            "SELECT coalesce(sum(count), 0) FROM issue_status_counts WHERE status = 'open'";
        Ok(HealthCounts {
            events_24h: self.scalar(EVENTS, [now_us - DAY_US]).await?,
            open_issues: self.scalar(OPEN, ()).await?,
            transactions_24h: self.scalar(TRANSACTIONS, [now_us - DAY_US]).await?,
            transactions_last_minute: self.scalar(TRANSACTIONS, [now_us - MINUTE_US]).await?,
            transactions_last_hour: self.scalar(TRANSACTIONS, [now_us - HOUR_US]).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::IssueStatus;

    #[tokio::test]
    async fn summaries_rename_and_delete() {
        let store = Store::open_in_memory().await.unwrap();
        let a = store.create_project("Shop").await.unwrap();
        let b = store.create_project("Blog").await.unwrap();
        let summaries = store.project_summaries().await.unwrap();
        assert_eq!(summaries.len(), 2);
        assert_eq!(
            (summaries[0].open_issues, summaries[0].last_activity),
            (0, None)
        );
        assert_eq!(
            store.project_by_slug("blog").await.unwrap().unwrap().id,
            b.id
        );
        assert!(store.project_by_slug("nope").await.unwrap().is_none());

        // Every status change moves the stamp, of its project and of all.
        store
            .conn()
            .execute(
                "INSERT INTO issues (id, project_id, title, level, first_seen, last_seen, grouping_config)
                 VALUES (901, ?1, 't', 'error', 0, 0, 'x')",
                [a.id.value()],
            )
            .await
            .unwrap();
        let mut stamps = vec![(
            store.change_stamp(Some(a.id)).await.unwrap(),
            store.change_stamp(None).await.unwrap(),
        )];
        for status in [
            IssueStatus::Resolved,
            IssueStatus::Ignored,
            IssueStatus::ResolvedNextRelease,
            IssueStatus::Open,
        ] {
            assert!(store.set_issue_status(901, status).await.unwrap());
            let now = (
                store.change_stamp(Some(a.id)).await.unwrap(),
                store.change_stamp(None).await.unwrap(),
            );
            let last = stamps.last().unwrap();
            assert!(now.0 != last.0 && now.1 != last.1, "{status:?}: {now:?}");
            stamps.push(now);
        }
        // ... and it reads the counters, never the issues themselves.
        for sql in [STAMP_OF_PROJECT, STAMP_OF_ALL] {
            let plan = store.query_plan(sql, [a.id.value()]).await;
            assert!(
                !plan
                    .iter()
                    .any(|l| l.contains(" issues ") || l.ends_with(" issues")),
                "{plan:#?}"
            );
        }

        let before = store.change_stamp(Some(a.id)).await.unwrap();
        assert!(store.rename_project(a.id, " Shop API ").await.unwrap());
        assert!(store.rename_project(a.id, "").await.is_err());
        let a2 = store.project(a.id).await.unwrap().unwrap();
        assert_eq!((a2.name.as_str(), a2.slug.as_str()), ("Shop API", "shop"));
        assert_ne!(store.change_stamp(Some(a.id)).await.unwrap(), before);
        store.change_stamp(None).await.unwrap();

        store
            .conn()
            .execute(
                "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, 'event', 7200, 3), (?1, 'event', 3600, 2)",
                [a.id.value()],
            )
            .await
            .unwrap();
        assert_eq!(
            store.project_event_hours(a.id, 3600).await.unwrap(),
            vec![(3600, 2), (7200, 3)]
        );
        assert!(store.delete_project(a.id).await.unwrap());
        assert!(!store.delete_project(a.id).await.unwrap());
        assert!(store.project_event_hours(a.id, 0).await.unwrap().is_empty());
        assert_eq!(store.list_projects().await.unwrap().len(), 1);
    }
}
