//! What `splat key …`, `splat project limit …` and `splat project scrub …` do: manage a project's DSN keys
//! (add, disable, enable, rotate), its quotas and its data scrubbing. Each returns the lines to print, with
//! DSNs for `scheme://host`.
//!
//! A running `splat serve` notices a change within `SPLAT_KEY_CACHE_SECS` (default 30 s): ingest caches
//! what it knows about a key for that long.

use anyhow::{bail, Context};

use crate::protocol::{DataCategory, Dsn, PublicKey};
use crate::scrub::ScrubSettings;
use crate::store::{ApiScope, ApiToken, Project, ProjectKey, QuotaRow, Store};

/// Where printed DSNs point: `(scheme, host)`.
pub type Base<'a> = (&'a str, &'a str);

/// A project by slug or numeric id.
pub async fn find_project(store: &Store, reference: &str) -> anyhow::Result<Project> {
    let by_id = match reference.parse::<i64>() {
        Ok(id) => store.project(crate::protocol::ProjectId::new(id)).await?,
        Err(_) => None,
    };
    match by_id {
        Some(project) => Ok(project),
        None => store
            .project_by_slug(reference)
            .await?
            .with_context(|| format!("no project {reference:?} (give its slug or id)")),
    }
}

/// `error,transaction` and `100` (or `off`): the categories and the quota per minute (`None`: no quota).
pub fn parse_limit(
    categories: &str,
    value: &str,
) -> anyhow::Result<(Vec<DataCategory>, Option<u64>)> {
    let mut parsed = Vec::new();
    for name in categories.split(',').filter(|n| !n.trim().is_empty()) {
        match DataCategory::from_name(name) {
            Some(c) => parsed.push(c),
            None => bail!(
                "unknown category {name:?}; one of: {}",
                DataCategory::ALL.map(DataCategory::name).join(", ")
            ),
        }
    }
    if parsed.is_empty() {
        bail!("name at least one category");
    }
    let value = value.trim();
    let limit = match value {
        "off" | "none" | "" => None,
        n => Some(
            n.parse::<u64>()
                .with_context(|| format!("a quota is items per minute or `off`, got {n:?}"))?,
        ),
    };
    Ok((parsed, limit))
}

/// `<key>  enabled  <label>  DSN: …` and its quotas, one line each.
fn key_lines(project: &Project, key: &ProjectKey, quotas: &[QuotaRow], base: Base) -> Vec<String> {
    let dsn = Dsn::new(base.0, key.public_key.clone(), base.1, project.id);
    let state = if key.enabled { "enabled" } else { "disabled" };
    let mut lines = vec![format!(
        "{}  {state:<8}  {}  DSN: {dsn}",
        key.public_key, key.label
    )];
    lines.extend(
        quotas
            .iter()
            .filter(|q| q.public_key.as_ref() == Some(&key.public_key))
            .map(|q| format!("    limit {} {}/min (key)", q.category, q.per_minute)),
    );
    lines
}

/// Every key of the project (or of every project) with state, label, DSN and quotas.
pub async fn list_keys(
    store: &Store,
    project: Option<&str>,
    base: Base<'_>,
) -> anyhow::Result<Vec<String>> {
    let projects = match project {
        Some(reference) => vec![find_project(store, reference).await?],
        None => store.list_projects().await?,
    };
    let mut lines = Vec::new();
    for project in projects {
        let quotas = store.quotas(project.id).await?;
        lines.push(format!(
            "{} {} ({})",
            project.id, project.slug, project.name
        ));
        lines.extend(
            quotas
                .iter()
                .filter(|q| q.public_key.is_none())
                .map(|q| format!("  limit {} {}/min (project)", q.category, q.per_minute)),
        );
        for key in &project.keys {
            lines.extend(
                key_lines(&project, key, &quotas, base)
                    .into_iter()
                    .map(|l| format!("  {l}")),
            );
        }
    }
    Ok(lines)
}

pub async fn add_key(
    store: &Store,
    project: &str,
    label: &str,
    base: Base<'_>,
) -> anyhow::Result<Vec<String>> {
    let project = find_project(store, project).await?;
    let key = store.add_key(project.id, label).await?;
    Ok(key_lines(&project, &key, &[], base))
}

/// Disables or enables a key; prints it as it is now.
pub async fn set_key_enabled(
    store: &Store,
    key: &str,
    enabled: bool,
    base: Base<'_>,
) -> anyhow::Result<Vec<String>> {
    let key = parse_key(key)?;
    if !store.set_key_enabled(&key, enabled).await? {
        bail!("no key {key}");
    }
    show_key(store, &key, base).await
}

/// A new key replaces the old, which is disabled at once; prints both.
pub async fn rotate_key(store: &Store, key: &str, base: Base<'_>) -> anyhow::Result<Vec<String>> {
    let old = parse_key(key)?;
    let new = store.rotate_key(&old).await?;
    let mut lines = show_key(store, &old, base).await?;
    lines.extend(show_key(store, &new.public_key, base).await?);
    Ok(lines)
}

/// Sets or removes a key's quota for each category.
pub async fn limit_key(
    store: &Store,
    key: &str,
    categories: &str,
    value: &str,
    base: Base<'_>,
) -> anyhow::Result<Vec<String>> {
    let key = parse_key(key)?;
    let (categories, limit) = parse_limit(categories, value)?;
    let (project, _) = store
        .key(&key)
        .await?
        .with_context(|| format!("no key {key}"))?;
    for category in categories {
        store
            .set_quota(project, Some(&key), category, limit)
            .await?;
    }
    show_key(store, &key, base).await
}

/// Sets or removes the project's quota (all its keys together) for each category.
pub async fn limit_project(
    store: &Store,
    project: &str,
    categories: &str,
    value: &str,
    base: Base<'_>,
) -> anyhow::Result<Vec<String>> {
    let project = find_project(store, project).await?;
    let (categories, limit) = parse_limit(categories, value)?;
    for category in categories {
        store.set_quota(project.id, None, category, limit).await?;
    }
    list_keys(store, Some(&project.id.to_string()), base).await
}

/// What `splat project scrub` changes: each `None` stays as saved.
#[derive(Debug, Default)]
pub struct ScrubChange {
    pub defaults: Option<bool>,
    pub ip_addresses: Option<bool>,
    /// Comma-separated; empty clears the list.
    pub sensitive_fields: Option<String>,
    pub safe_fields: Option<String>,
}

/// Changes a project's data-scrubbing settings and prints them as they now are.
pub async fn scrub_project(
    store: &Store,
    project: &str,
    change: ScrubChange,
) -> anyhow::Result<Vec<String>> {
    let project = find_project(store, project).await?;
    let mut settings = store.scrub_settings(project.id).await?;
    let fields = |text: &str| ScrubSettings::parse_fields(text).map_err(anyhow::Error::msg);
    settings.defaults = change.defaults.unwrap_or(settings.defaults);
    settings.ip_addresses = change.ip_addresses.unwrap_or(settings.ip_addresses);
    if let Some(text) = change.sensitive_fields {
        settings.sensitive_fields = fields(&text)?;
    }
    if let Some(text) = change.safe_fields {
        settings.safe_fields = fields(&text)?;
    }
    store.set_scrub_settings(project.id, &settings).await?;
    let on = |b: bool| if b { "on" } else { "off" };
    Ok(vec![
        format!("{} {} ({})", project.id, project.slug, project.name),
        format!("  default rules: {}", on(settings.defaults)),
        format!("  ip addresses: {}", on(settings.ip_addresses)),
        format!(
            "  sensitive fields: {}",
            settings.sensitive_fields.join(",")
        ),
        format!("  safe fields: {}", settings.safe_fields.join(",")),
    ])
}

async fn show_key(store: &Store, key: &PublicKey, base: Base<'_>) -> anyhow::Result<Vec<String>> {
    let (project_id, key) = store
        .key(key)
        .await?
        .with_context(|| format!("no key {key}"))?;
    let project = store
        .project(project_id)
        .await?
        .context("the key's project is gone")?;
    let quotas = store.quotas(project_id).await?;
    Ok(key_lines(&project, &key, &quotas, base))
}

fn parse_key(key: &str) -> anyhow::Result<PublicKey> {
    key.trim().parse().map_err(|e: &str| anyhow::anyhow!("{e}"))
}

/// `splat token create LABEL --scope S`: the new token's line, then its text (shown this once only).
pub async fn create_token(store: &Store, label: &str, scope: &str) -> anyhow::Result<Vec<String>> {
    let scope = ApiScope::from_name(scope).with_context(|| {
        format!(
            "unknown scope {scope:?}; one of: {}",
            ApiScope::ALL.map(ApiScope::name).join(", ")
        )
    })?;
    let (token, text) = store.create_api_token(label, scope).await?;
    Ok(vec![
        token_line(&token),
        format!(
            "Token (shown once; use it as SENTRY_AUTH_TOKEN): {}",
            text.expose()
        ),
    ])
}

/// `splat token list`: every token, revoked ones marked.
pub async fn list_tokens(store: &Store) -> anyhow::Result<Vec<String>> {
    Ok(store.api_tokens().await?.iter().map(token_line).collect())
}

/// `splat token revoke ID`: refused from now on.
pub async fn revoke_token(store: &Store, id: i64) -> anyhow::Result<Vec<String>> {
    if !store.revoke_api_token(id).await? {
        bail!("no live token {id}");
    }
    list_tokens(store).await
}

/// `3  sntryu_1a2b3c4d…  project:releases  live  CI`.
fn token_line(token: &ApiToken) -> String {
    let state = if token.revoked_at.is_some() {
        "revoked"
    } else {
        "live"
    };
    format!(
        "{}  {}…  {}  {state}  {}",
        token.id,
        token.prefix,
        token.scope.name(),
        token.label
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_categories_and_off() {
        let (cats, n) = parse_limit("error, check_in", "50").unwrap();
        assert_eq!(cats, [DataCategory::Error, DataCategory::Monitor]);
        assert_eq!(n, Some(50));
        assert_eq!(parse_limit("span", "off").unwrap().1, None);
        assert!(parse_limit("bogus", "1").is_err());
        assert!(parse_limit("error", "-1").is_err());
        assert!(parse_limit("", "1").is_err());
    }

    #[tokio::test]
    async fn key_commands_print_dsns_and_states() {
        let store = Store::open_in_memory().await.unwrap();
        let p = store.create_project("Shop").await.unwrap();
        let base = ("http", "h:1");
        let added = add_key(&store, "shop", "ci", base).await.unwrap();
        assert!(added[0].contains("enabled") && added[0].contains("ci"));
        assert!(added[0].contains(&format!("@h:1/{}", p.id)));
        let old = p.keys[0].public_key.to_string();
        let rotated = rotate_key(&store, &old, base).await.unwrap();
        assert!(rotated[0].starts_with(&old) && rotated[0].contains("disabled"));
        assert!(rotated[1].contains("enabled"));
        limit_key(&store, &old, "error", "3", base).await.unwrap();
        let listed = list_keys(&store, Some(&p.id.to_string()), base)
            .await
            .unwrap();
        assert!(listed.iter().any(|l| l.contains("limit error 3/min (key)")));
        let listed = limit_project(&store, "shop", "span,monitor", "9", base)
            .await
            .unwrap();
        assert!(listed
            .iter()
            .any(|l| l.contains("limit monitor 9/min (project)")));
        assert!(
            set_key_enabled(&store, &PublicKey::generate().to_string(), false, base)
                .await
                .is_err()
        );
        assert!(find_project(&store, "nope").await.is_err());
    }

    #[tokio::test]
    async fn token_commands_show_the_text_once_and_revoke() {
        let store = Store::open_in_memory().await.unwrap();
        let created = create_token(&store, "CI", "project:releases")
            .await
            .unwrap();
        assert!(created[1].contains("sntryu_"), "{created:?}");
        assert!(create_token(&store, "x", "admin").await.is_err());
        let listed = list_tokens(&store).await.unwrap();
        assert!(listed[0].contains("live") && !listed[0].contains(&created[1][40..]));
        let revoked = revoke_token(&store, 1).await.unwrap();
        assert!(revoked[0].contains("revoked"));
        assert!(revoke_token(&store, 1).await.is_err());
    }
}
