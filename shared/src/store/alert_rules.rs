//! A project's alert rule (which kinds, from which level, in which environments, to which destinations)
//! and the issues whose alerts are muted. Read by the notifier before each alert
//! ([`crate::notify::rules`] decides), written from the project settings page and the issue page.

use super::{now_us, Result, Store};

/// Which of a project's alerts go out, and where. The default is what Splat did before rules: every
/// kind, every level, every environment, every destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRule {
    pub new: bool,
    pub regressed: bool,
    pub burst: bool,
    /// The lowest level alerted about (`debug`: every one).
    pub min_level: String,
    /// Only issues whose latest event is in one of these (empty: any environment, none included).
    pub environments: Vec<String>,
    /// The channels to send to (`None`: every one, those configured later included).
    pub destinations: Option<Vec<String>>,
}

impl Default for AlertRule {
    fn default() -> Self {
        Self {
            new: true,
            regressed: true,
            burst: true,
            min_level: "debug".into(),
            environments: Vec::new(),
            destinations: None,
        }
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// The project's rule (the default when it has none).
    pub async fn alert_rule(&self, project_id: i64) -> Result<AlertRule> {
        let mut rows = self
            .conn()
            .query(
                "SELECT kinds, min_level, environments, destinations FROM alert_rules WHERE project_id = ?1",
                [project_id],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(AlertRule::default());
        };
        let kinds = list(&row.get::<String>(0)?);
        let has = |kind: &str| kinds.iter().any(|k| k == kind);
        Ok(AlertRule {
            new: has("new"),
            regressed: has("regressed"),
            burst: has("burst"),
            min_level: row.get(1)?,
            environments: list(&row.get::<String>(2)?),
            destinations: row.get::<Option<String>>(3)?.map(|d| list(&d)),
        })
    }

    /// Saves the project's rule (names and environments must hold no comma: the caller checks).
    pub async fn set_alert_rule(&self, project_id: i64, rule: &AlertRule) -> Result<()> {
        let kinds: Vec<&str> = [
            (rule.new, "new"),
            (rule.regressed, "regressed"),
            (rule.burst, "burst"),
        ]
        .into_iter()
        .filter_map(|(on, kind)| on.then_some(kind))
        .collect();
        self.conn()
            .execute(
                "INSERT INTO alert_rules (project_id, kinds, min_level, environments, destinations, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (project_id) DO UPDATE SET kinds = excluded.kinds, min_level = excluded.min_level,
                   environments = excluded.environments, destinations = excluded.destinations,
                   updated_at = excluded.updated_at",
                libsql::params![
                    project_id,
                    kinds.join(","),
                    rule.min_level.as_str(),
                    rule.environments.join(","),
                    rule.destinations.as_ref().map(|d| d.join(",")),
                    now_us(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Mutes the issue's alerts until `until` (microseconds), or for good (`None`).
    pub async fn mute_issue(&self, issue_id: i64, until: Option<i64>) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO issue_mutes (issue_id, until, muted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (issue_id) DO UPDATE SET until = excluded.until, muted_at = excluded.muted_at",
                libsql::params![issue_id, until, now_us()],
            )
            .await?;
        Ok(())
    }

    pub async fn unmute_issue(&self, issue_id: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM issue_mutes WHERE issue_id = ?1", [issue_id])
            .await?;
        Ok(())
    }

    /// Whether the issue's alerts are muted at `now_us`: `Some(None)` for good, `Some(Some(until))` until
    /// then, `None` when they are not (a mute whose time has passed included).
    pub async fn issue_mute(&self, issue_id: i64, now_us: i64) -> Result<Option<Option<i64>>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT until FROM issue_mutes WHERE issue_id = ?1 AND (until IS NULL OR until > ?2)",
                [issue_id, now_us],
            )
            .await?;
        Ok(match rows.next().await? {
            Some(row) => Some(row.get::<Option<i64>>(0)?),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rules_default_to_everything_and_round_trip() {
        let store = Store::open_in_memory().await.unwrap();
        let p = store.create_project("p").await.unwrap().id.value();
        assert_eq!(store.alert_rule(p).await.unwrap(), AlertRule::default());
        let rule = AlertRule {
            new: true,
            regressed: false,
            burst: true,
            min_level: "error".into(),
            environments: vec!["production".into(), "staging".into()],
            destinations: Some(vec!["slack".into()]),
        };
        store.set_alert_rule(p, &rule).await.unwrap();
        assert_eq!(store.alert_rule(p).await.unwrap(), rule);
        let nowhere = AlertRule {
            destinations: Some(Vec::new()),
            ..AlertRule::default()
        };
        store.set_alert_rule(p, &nowhere).await.unwrap();
        assert_eq!(store.alert_rule(p).await.unwrap(), nowhere);
    }

    #[tokio::test]
    async fn a_mute_holds_until_its_time_or_for_good() {
        let store = Store::open_in_memory().await.unwrap();
        // Any issue id: the mute is read by id (the foreign key is what a real issue brings).
        store
            .conn()
            .execute("PRAGMA foreign_keys=OFF", ())
            .await
            .unwrap();
        assert_eq!(store.issue_mute(7, 100).await.unwrap(), None);
        store.mute_issue(7, Some(200)).await.unwrap();
        assert_eq!(store.issue_mute(7, 100).await.unwrap(), Some(Some(200)));
        assert_eq!(store.issue_mute(7, 200).await.unwrap(), None, "over");
        store.mute_issue(7, None).await.unwrap();
        assert_eq!(store.issue_mute(7, i64::MAX).await.unwrap(), Some(None));
        store.unmute_issue(7).await.unwrap();
        assert_eq!(store.issue_mute(7, 100).await.unwrap(), None);
    }
}
