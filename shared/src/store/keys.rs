//! DSN keys and quotas: adding, disabling and rotating a project's keys, and the per-minute quotas per data
//! category that ingest enforces for a key or for its whole project.
//!
//! Ingest reads a key through [`Store::key_info`] (`splat serve`) or from the key snapshot built by
//! [`Store::all_key_infos`] (the ingest Lambda, see [`crate::ingest::snapshot`]), cached for
//! `SPLAT_KEY_CACHE_SECS` either way, so a key disabled or a quota changed here takes effect within that
//! time.

use crate::protocol::{DataCategory, ProjectId, PublicKey};

use super::{now_us, parse_key, ProjectKey, Result, Store, StoreError};

/// Who a quota counts for: one key, or every key of the project together (Relay's scope names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    Key,
    Project,
}

impl QuotaScope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Project => "project",
        }
    }
}

/// At most `per_minute` items of `category` accepted per clock minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub scope: QuotaScope,
    pub category: DataCategory,
    pub per_minute: u64,
}

/// What ingest needs to know about a key: its project, whether it may send, and the quotas that apply
/// to it (its own and its project's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub project_id: ProjectId,
    /// The project's slug: a DSN may name the project by it, as the seed's did.
    pub project_slug: String,
    pub enabled: bool,
    pub quotas: Vec<Quota>,
}

/// A quota as configured: for a key, or (`public_key` `None`) for the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    pub public_key: Option<PublicKey>,
    pub category: DataCategory,
    pub per_minute: u64,
}

/// Labels are shown in lists; keep them short and on one line.
fn valid_label(label: &str) -> Result<&str> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a key label is 1 to 100 characters on one line".into(),
        ));
    }
    Ok(label)
}

impl Store {
    /// Adds another key to a project (a project may have several, each disabled on its own).
    pub async fn add_key(&self, project: ProjectId, label: &str) -> Result<ProjectKey> {
        let label = valid_label(label)?;
        let key = PublicKey::generate();
        let created_at = now_us();
        self.conn()
            .execute(
                "INSERT INTO project_keys (public_key, project_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
                (key.as_str(), project.value(), label, created_at),
            )
            .await?;
        Ok(ProjectKey {
            public_key: key,
            label: label.to_owned(),
            enabled: true,
            created_at,
        })
    }

    /// Enables or disables a key; `false` when there is no such key.
    pub async fn set_key_enabled(&self, key: &PublicKey, enabled: bool) -> Result<bool> {
        let n = self
            .conn()
            .execute(
                "UPDATE project_keys SET enabled = ?1 WHERE public_key = ?2",
                (enabled as i64, key.as_str()),
            )
            .await?;
        Ok(n > 0)
    }

    /// A key and the project it belongs to.
    pub async fn key(&self, key: &PublicKey) -> Result<Option<(ProjectId, ProjectKey)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT project_id, label, enabled, created_at FROM project_keys WHERE public_key = ?1",
                [key.as_str()],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        Ok(Some((
            ProjectId::new(row.get(0)?),
            ProjectKey {
                public_key: key.clone(),
                label: row.get(1)?,
                enabled: row.get::<i64>(2)? != 0,
                created_at: row.get(3)?,
            },
        )))
    }

    /// Replaces a key: a new key with the same label and quotas, and the old one disabled, in one
    /// transaction (what to do when a DSN leaked). Without a leak, add a key, deploy it, then disable
    /// the old one.
    pub async fn rotate_key(&self, old: &PublicKey) -> Result<ProjectKey> {
        let (project, key) = self
            .key(old)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("no key {old}")))?;
        let new = PublicKey::generate();
        let created_at = now_us();
        let tx = self
            .conn()
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await?;
        tx.execute(
            "INSERT INTO project_keys (public_key, project_id, label, created_at) VALUES (?1, ?2, ?3, ?4)",
            (new.as_str(), project.value(), key.label.as_str(), created_at),
        )
        .await?;
        tx.execute(
            "INSERT INTO quotas (project_id, public_key, category, per_minute)
             SELECT project_id, ?2, category, per_minute FROM quotas WHERE public_key = ?1",
            (old.as_str(), new.as_str()),
        )
        .await?;
        tx.execute(
            "UPDATE project_keys SET enabled = 0 WHERE public_key = ?1",
            [old.as_str()],
        )
        .await?;
        tx.commit().await?;
        Ok(ProjectKey {
            public_key: new,
            label: key.label,
            enabled: true,
            created_at,
        })
    }

    /// Sets (or with `None` removes) the quota of `category` for a key of the project, or for the
    /// project as a whole when `key` is `None`.
    pub async fn set_quota(
        &self,
        project: ProjectId,
        key: Option<&PublicKey>,
        category: DataCategory,
        per_minute: Option<u64>,
    ) -> Result<()> {
        let key = key.map_or("", PublicKey::as_str);
        match per_minute {
            Some(n) => {
                let n = i64::try_from(n)
                    .map_err(|_| StoreError::Invalid("quota out of range".into()))?;
                self.conn()
                    .execute(
                        "INSERT INTO quotas (project_id, public_key, category, per_minute) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (project_id, public_key, category) DO UPDATE SET per_minute = excluded.per_minute",
                        (project.value(), key, category.name(), n),
                    )
                    .await?
            }
            None => {
                self.conn()
                    .execute(
                        "DELETE FROM quotas WHERE project_id = ?1 AND public_key = ?2 AND category = ?3",
                        (project.value(), key, category.name()),
                    )
                    .await?
            }
        };
        Ok(())
    }

    /// Every quota of a project: its own first, then its keys'.
    pub async fn quotas(&self, project: ProjectId) -> Result<Vec<QuotaRow>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT public_key, category, per_minute FROM quotas WHERE project_id = ?1 ORDER BY public_key, category",
                [project.value()],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            let key: String = row.get(0)?;
            // A category a newer version wrote and this one does not know counts for nothing here.
            let Some(category) = DataCategory::from_name(&row.get::<String>(1)?) else {
                continue;
            };
            out.push(QuotaRow {
                public_key: if key.is_empty() {
                    None
                } else {
                    Some(parse_key(&key)?)
                },
                category,
                per_minute: row.get::<i64>(2)?.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// What ingest needs to know about a key, in one read: project, state and the quotas that apply.
    pub async fn key_info(&self, key: &PublicKey) -> Result<Option<KeyInfo>> {
        let rows = self
            .conn()
            .query(
                &format!("{KEY_INFO_SELECT} WHERE k.public_key = ?1"),
                [key.as_str()],
            )
            .await?;
        Ok(key_infos(rows).await?.pop().map(|(_, info)| info))
    }

    /// Every key, enabled or not, with what [`Store::key_info`] says of it, and the [`Store::key_version`]
    /// read before them: the keys are at least that recent (what the key snapshot is built from).
    pub async fn all_key_infos(&self) -> Result<(i64, Vec<(PublicKey, KeyInfo)>)> {
        let version = self.key_version().await?;
        let rows = self
            .conn()
            .query(&format!("{KEY_INFO_SELECT} ORDER BY k.public_key"), ())
            .await?;
        Ok((version, key_infos(rows).await?))
    }

    /// A number that grows with every change to keys, quotas or projects (triggers keep it: nothing that
    /// writes them can forget), so that a copy of the keys knows whether it is stale.
    pub async fn key_version(&self) -> Result<i64> {
        self.scalar("SELECT coalesce(max(version), 0) FROM key_changes", ())
            .await
    }
}

/// A key with its project's quotas and its own, one row per quota (or one without any).
const KEY_INFO_SELECT: &str =
    "SELECT k.public_key, k.project_id, k.enabled, q.public_key, q.category, q.per_minute, p.slug
     FROM project_keys k JOIN projects p ON p.id = k.project_id
     LEFT JOIN quotas q ON q.project_id = k.project_id AND q.public_key IN ('', k.public_key)";

/// Folds [`KEY_INFO_SELECT`]'s rows, grouped by key, into one [`KeyInfo`] per key.
async fn key_infos(mut rows: libsql::Rows) -> Result<Vec<(PublicKey, KeyInfo)>> {
    let mut out: Vec<(PublicKey, KeyInfo)> = Vec::new();
    while let Some(row) = rows.next().await? {
        let key = parse_key(&row.get::<String>(0)?)?;
        if out.last().is_none_or(|(last, _)| *last != key) {
            let info = KeyInfo {
                project_id: ProjectId::new(row.get(1)?),
                project_slug: row.get(6)?,
                enabled: row.get::<i64>(2)? != 0,
                quotas: Vec::new(),
            };
            out.push((key, info));
        }
        let (Some(owner), Some(category), Some(per_minute)) = (
            row.get::<Option<String>>(3)?,
            row.get::<Option<String>>(4)?,
            row.get::<Option<i64>>(5)?,
        ) else {
            continue;
        };
        // A category a newer version wrote and this one does not know counts for nothing here.
        if let (Some(category), Some((_, info))) =
            (DataCategory::from_name(&category), out.last_mut())
        {
            info.quotas.push(Quota {
                scope: if owner.is_empty() {
                    QuotaScope::Project
                } else {
                    QuotaScope::Key
                },
                category,
                per_minute: per_minute.max(0) as u64,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rotate_carries_label_and_quotas_and_disables_the_old_key() {
        let store = Store::open_in_memory().await.unwrap();
        let p = store.create_project("p").await.unwrap();
        let old = p.keys[0].public_key.clone();
        store
            .set_quota(p.id, Some(&old), DataCategory::Span, Some(5))
            .await
            .unwrap();
        store
            .set_quota(p.id, None, DataCategory::Error, Some(7))
            .await
            .unwrap();
        let new = store.rotate_key(&old).await.unwrap();
        assert_eq!(new.label, "Default");
        let info = store.key_info(&new.public_key).await.unwrap().unwrap();
        assert!(info.enabled);
        let mut quotas = info.quotas.clone();
        quotas.sort_by_key(|q| q.category);
        assert_eq!(
            quotas,
            vec![
                Quota {
                    scope: QuotaScope::Project,
                    category: DataCategory::Error,
                    per_minute: 7
                },
                Quota {
                    scope: QuotaScope::Key,
                    category: DataCategory::Span,
                    per_minute: 5
                },
            ]
        );
        assert!(!store.key_info(&old).await.unwrap().unwrap().enabled);
        store
            .set_quota(p.id, None, DataCategory::Error, None)
            .await
            .unwrap();
        assert_eq!(
            store.quotas(p.id).await.unwrap().len(),
            2,
            "both keys' span"
        );
        assert!(store.add_key(p.id, " ").await.is_err());
        assert!(store.rotate_key(&PublicKey::generate()).await.is_err());
    }
}
