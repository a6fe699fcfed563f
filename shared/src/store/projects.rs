//! Projects and their DSN keys.

use crate::protocol::{Dsn, ProjectId, PublicKey};

use super::{now_us, parse_key, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectKey {
    pub public_key: PublicKey,
    pub label: String,
    pub enabled: bool,
    /// Microseconds since the epoch.
    pub created_at: i64,
}

/// Serialized in an alert of the outbox ([`crate::notify::outbox`]) without its keys: no alert shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub slug: String,
    #[serde(skip)]
    pub keys: Vec<ProjectKey>,
}

impl Project {
    /// The DSN of the first enabled key, for a server reachable at `scheme://host`.
    pub fn dsn(&self, scheme: &str, host: &str) -> Option<Dsn> {
        let key = self.keys.iter().find(|k| k.enabled)?;
        Some(Dsn::new(scheme, key.public_key.clone(), host, self.id))
    }
}

/// `My Shop API!` → `my-shop-api`.
fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug
        .trim_end_matches('-')
        .chars()
        .take(50)
        .collect::<String>();
    if slug.is_empty() {
        "project".into()
    } else {
        slug
    }
}

impl Store {
    /// Creates a project with one enabled key.
    pub async fn create_project(&self, name: &str) -> Result<Project> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(StoreError::Invalid(
                "a project name is 1 to 200 characters".into(),
            ));
        }
        let base = slugify(name);
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        let mut slug = base.clone();
        for n in 2.. {
            let mut rows = tx
                .query("SELECT 1 FROM projects WHERE slug = ?1", [slug.as_str()])
                .await?;
            if rows.next().await?.is_none() {
                break;
            }
            slug = format!("{base}-{n}");
        }
        tx.execute(
            "INSERT INTO projects (name, slug, created_at) VALUES (?1, ?2, ?3)",
            (name, slug.as_str(), now_us()),
        )
        .await?;
        let id = tx.last_insert_rowid();
        let key = PublicKey::generate();
        tx.execute(
            "INSERT INTO project_keys (public_key, project_id, created_at) VALUES (?1, ?2, ?3)",
            (key.as_str(), id, now_us()),
        )
        .await?;
        tx.commit().await?;
        self.project(ProjectId::new(id))
            .await?
            .ok_or_else(|| StoreError::Invalid("project vanished".into()))
    }

    /// The first project, created as "default" when there is none: what `splat serve` prints on first start.
    pub async fn ensure_default_project(&self) -> Result<Project> {
        match self.list_projects().await?.into_iter().next() {
            Some(project) => Ok(project),
            None => self.create_project("default").await,
        }
    }

    pub async fn list_projects(&self) -> Result<Vec<Project>> {
        let mut rows = self
            .conn()
            .query("SELECT id FROM projects ORDER BY id", ())
            .await?;
        let mut ids = Vec::new();
        while let Some(row) = rows.next().await? {
            ids.push(ProjectId::new(row.get(0)?));
        }
        let mut projects = Vec::with_capacity(ids.len());
        for id in ids {
            projects.extend(self.project(id).await?);
        }
        Ok(projects)
    }

    pub async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT name, slug FROM projects WHERE id = ?1",
                [id.value()],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let (name, slug) = (row.get(0)?, row.get(1)?);
        let mut rows = self
            .conn()
            .query("SELECT public_key, label, enabled, created_at FROM project_keys WHERE project_id = ?1 ORDER BY created_at, public_key", [id.value()])
            .await?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next().await? {
            keys.push(ProjectKey {
                public_key: parse_key(&row.get::<String>(0)?)?,
                label: row.get(1)?,
                enabled: row.get::<i64>(2)? != 0,
                created_at: row.get(3)?,
            });
        }
        Ok(Some(Project {
            id,
            name,
            slug,
            keys,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("My Shop API!"), "my-shop-api");
        assert_eq!(slugify("  "), "project");
        assert_eq!(slugify("Ünïcode ✓ name"), "n-code-name");
    }

    #[tokio::test]
    async fn projects_keys_and_slugs() {
        let store = Store::open_in_memory().await.unwrap();
        let a = store.create_project("Web").await.unwrap();
        let b = store.create_project("web").await.unwrap();
        assert_eq!((a.slug.as_str(), b.slug.as_str()), ("web", "web-2"));
        assert_eq!(a.keys.len(), 1);
        let extra = store.add_key(a.id, "ci").await.unwrap();
        store
            .set_key_enabled(&a.keys[0].public_key, false)
            .await
            .unwrap();
        let a = store.project(a.id).await.unwrap().unwrap();
        assert_eq!(a.dsn("http", "h:1").unwrap().public_key, extra.public_key);
        let info = store
            .key_info(&a.keys[0].public_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((info.project_id, info.enabled), (a.id, false));
        assert!(store
            .key_info(&PublicKey::generate())
            .await
            .unwrap()
            .is_none());
        assert!(store.create_project(" ").await.is_err());
        assert_eq!(store.ensure_default_project().await.unwrap().id, a.id);
    }
}
