//! Releases and deploys as CI declares them through the sentry-cli API (`releases new|finalize`,
//! `deploys new`). The processor's `releases` table counts what events say; these say what CI did, and
//! deploys are marked on the issue page.

use crate::protocol::ProjectId;

use super::{now_us, Result, Store};

/// A release CI created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseMark {
    pub project_id: ProjectId,
    pub version: String,
    pub url: Option<String>,
    pub created_at: i64,
    /// When it was finalized (Sentry's `dateReleased`).
    pub finalized_at: Option<i64>,
}

/// A deploy of a release to an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    pub id: i64,
    pub project_id: ProjectId,
    pub version: String,
    pub environment: String,
    pub name: Option<String>,
    pub url: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: i64,
}

/// A deploy to record (`finished_at` `None`: now).
#[derive(Debug, Clone, Copy)]
pub struct NewDeploy<'a> {
    pub project: ProjectId,
    pub version: &'a str,
    pub environment: &'a str,
    pub name: Option<&'a str>,
    pub url: Option<&'a str>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const RELEASE_COLUMNS: &str = "project_id, version, url, created_at, finalized_at";
/// A project (any when `?1` is null) and a version (any when `?2` is null).
const BY_VERSION: &str = "WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR version = ?2)";
const DEPLOY_COLUMNS: &str =
    "id, project_id, version, environment, name, url, started_at, finished_at";

fn release_mark(row: &libsql::Row) -> Result<ReleaseMark> {
    Ok(ReleaseMark {
        project_id: ProjectId::new(row.get(0)?),
        version: row.get(1)?,
        url: row.get(2)?,
        created_at: row.get(3)?,
        finalized_at: row.get(4)?,
    })
}

fn deploy(row: &libsql::Row) -> Result<Deploy> {
    Ok(Deploy {
        id: row.get(0)?,
        project_id: ProjectId::new(row.get(1)?),
        version: row.get(2)?,
        environment: row.get(3)?,
        name: row.get(4)?,
        url: row.get(5)?,
        started_at: row.get(6)?,
        finished_at: row.get(7)?,
    })
}

/// Every row, read by `read`.
async fn all<T>(mut rows: libsql::Rows, read: fn(&libsql::Row) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().await? {
        out.push(read(&row)?);
    }
    Ok(out)
}

/// The one row a `RETURNING` statement gives.
async fn one<T>(rows: libsql::Rows, read: fn(&libsql::Row) -> Result<T>) -> Result<T> {
    all(rows, read)
        .await?
        .pop()
        .ok_or_else(|| super::StoreError::Invalid("no row returned".into()))
}

impl Store {
    /// Creates the release in the project, or updates it: a URL or finalization given replaces the one
    /// stored, one not given keeps it (creating twice is what CI retries do).
    pub async fn upsert_release_mark(
        &self,
        project: ProjectId,
        version: &str,
        url: Option<&str>,
        finalized_at: Option<i64>,
    ) -> Result<ReleaseMark> {
        let rows = self
            .conn()
            .query(
                &format!(
                    "INSERT INTO release_marks (project_id, version, url, created_at, finalized_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (project_id, version) DO UPDATE SET
                        url = coalesce(excluded.url, url), finalized_at = coalesce(excluded.finalized_at, finalized_at)
                     RETURNING {RELEASE_COLUMNS}"
                ),
                (project.value(), version, url, now_us(), finalized_at),
            )
            .await?;
        one(rows, release_mark).await
    }

    /// The project's releases CI created (every project's when `None`), newest first, at most `limit`.
    pub async fn release_marks(
        &self,
        project: Option<ProjectId>,
        version: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReleaseMark>> {
        let sql = format!("SELECT {RELEASE_COLUMNS} FROM release_marks {BY_VERSION} ORDER BY created_at DESC LIMIT ?3");
        self.by_version(&sql, project, version, limit, release_mark)
            .await
    }

    /// Rows of `sql` (filtered by [`BY_VERSION`]), read by `read`.
    async fn by_version<T>(
        &self,
        sql: &str,
        project: Option<ProjectId>,
        version: Option<&str>,
        limit: i64,
        read: fn(&libsql::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let rows = self
            .conn()
            .query(sql, (project.map(ProjectId::value), version, limit))
            .await?;
        all(rows, read).await
    }

    pub async fn insert_deploy(&self, new: &NewDeploy<'_>) -> Result<Deploy> {
        let rows = self
            .conn()
            .query(
                &format!(
                    "INSERT INTO deploys (project_id, version, environment, name, url, started_at, finished_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {DEPLOY_COLUMNS}"
                ),
                (
                    new.project.value(),
                    new.version,
                    new.environment,
                    new.name,
                    new.url,
                    new.started_at,
                    new.finished_at.unwrap_or_else(now_us),
                ),
            )
            .await?;
        one(rows, deploy).await
    }

    /// Deploys of a project (of one release when given), newest first, at most `limit`.
    pub async fn deploys(
        &self,
        project: Option<ProjectId>,
        version: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Deploy>> {
        let sql = format!(
            "SELECT {DEPLOY_COLUMNS} FROM deploys {BY_VERSION} ORDER BY finished_at DESC LIMIT ?3"
        );
        self.by_version(&sql, project, version, limit, deploy).await
    }

    /// A project's deploys finished within `[from, to)` (µs), oldest first: the issue page's markers.
    pub async fn deploys_between(
        &self,
        project: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<Vec<Deploy>> {
        let rows = self
            .conn()
            .query(
                &format!(
                    "SELECT {DEPLOY_COLUMNS} FROM deploys
                     WHERE project_id = ?1 AND finished_at >= ?2 AND finished_at < ?3
                     ORDER BY finished_at LIMIT 200"
                ),
                (project.value(), from, to),
            )
            .await?;
        all(rows, deploy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn releases_are_created_once_and_finalized_and_deploys_listed() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id;
        let first = store
            .upsert_release_mark(project, "1.0", Some("https://ci/1"), None)
            .await
            .unwrap();
        assert_eq!(first.finalized_at, None);
        let again = store
            .upsert_release_mark(project, "1.0", None, Some(42))
            .await
            .unwrap();
        assert_eq!(again.url.as_deref(), Some("https://ci/1"));
        assert_eq!(again.finalized_at, Some(42));
        assert_eq!(again.created_at, first.created_at);
        assert_eq!(store.release_marks(None, None, 10).await.unwrap().len(), 1);
        let d = store
            .insert_deploy(&NewDeploy {
                project,
                version: "1.0",
                environment: "production",
                name: None,
                url: None,
                started_at: None,
                finished_at: Some(1_000),
            })
            .await
            .unwrap();
        assert_eq!(d.environment, "production");
        assert_eq!(
            store.deploys(Some(project), Some("1.0"), 10).await.unwrap(),
            vec![d.clone()]
        );
        assert_eq!(
            store.deploys_between(project, 0, 2_000).await.unwrap(),
            vec![d]
        );
        assert!(store
            .deploys_between(project, 2_000, 3_000)
            .await
            .unwrap()
            .is_empty());
    }
}
