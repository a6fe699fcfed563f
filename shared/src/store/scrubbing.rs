//! Each project's data-scrubbing settings ([`ScrubSettings`]), kept as JSON in the settings table under
//! `scrub.<project id>`: no migration, and a project without a row has the defaults (scrubbing on). The
//! processor reads them all once per batch.

use std::collections::HashMap;

use crate::protocol::ProjectId;
use crate::scrub::ScrubSettings;

use super::{Result, Store};

const PREFIX: &str = "scrub.";

fn key(project: ProjectId) -> String {
    format!("{PREFIX}{}", project.value())
}

/// A saved row, or the defaults when it cannot be read (a row written by a later version, say): a
/// broken row never turns scrubbing off.
fn parse(project: &str, json: &str) -> ScrubSettings {
    serde_json::from_str(json).unwrap_or_else(|e| {
        tracing::warn!(project, error = %e, "unreadable scrubbing settings; the defaults apply");
        ScrubSettings::default()
    })
}

impl Store {
    pub async fn scrub_settings(&self, project: ProjectId) -> Result<ScrubSettings> {
        let saved = self.settings_with_prefix(&key(project)).await?;
        let own = saved.iter().find(|(k, _)| *k == key(project));
        Ok(own.map_or_else(ScrubSettings::default, |(k, v)| parse(k, v)))
    }

    /// Every project's saved settings, by project id; projects not listed have the defaults.
    pub async fn all_scrub_settings(&self) -> Result<HashMap<i64, ScrubSettings>> {
        let saved = self.settings_with_prefix(PREFIX).await?;
        Ok(saved
            .into_iter()
            .filter_map(|(k, v)| {
                let id = k.strip_prefix(PREFIX)?.parse().ok()?;
                Some((id, parse(&k, &v)))
            })
            .collect())
    }

    /// Saves a project's settings; the defaults are saved as no row at all.
    pub async fn set_scrub_settings(
        &self,
        project: ProjectId,
        settings: &ScrubSettings,
    ) -> Result<()> {
        let json = (settings != &ScrubSettings::default())
            .then(|| serde_json::to_string(settings))
            .transpose()
            .map_err(|e| super::StoreError::Invalid(e.to_string()))?;
        self.set_setting(&key(project), json.as_deref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_round_trip_and_default_to_scrubbing_on() {
        let store = Store::open_in_memory().await.unwrap();
        let (one, eleven) = (ProjectId::new(1), ProjectId::new(11));
        assert_eq!(
            store.scrub_settings(one).await.unwrap(),
            ScrubSettings::default()
        );
        let mine = ScrubSettings {
            ip_addresses: true,
            safe_fields: vec!["order_token".into()],
            ..ScrubSettings::default()
        };
        store.set_scrub_settings(eleven, &mine).await.unwrap();
        // `scrub.1` is a prefix of `scrub.11`: each project reads its own row only.
        assert_eq!(
            store.scrub_settings(one).await.unwrap(),
            ScrubSettings::default()
        );
        assert_eq!(store.scrub_settings(eleven).await.unwrap(), mine);
        let all = store.all_scrub_settings().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[&11], mine);
        store
            .set_scrub_settings(eleven, &ScrubSettings::default())
            .await
            .unwrap();
        assert!(store.all_scrub_settings().await.unwrap().is_empty());
        store
            .set_setting("scrub.3", Some("{not json"))
            .await
            .unwrap();
        assert_eq!(
            store.all_scrub_settings().await.unwrap()[&3],
            ScrubSettings::default()
        );
    }
}
