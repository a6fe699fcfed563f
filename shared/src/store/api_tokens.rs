//! API tokens for `/api/0/…` (the sentry-cli API): created with a scope, shown once, kept only as the
//! SHA-256 of their text, revoked but never deleted (a list says which token did what and when it died).
//!
//! A token is `sntryu_` and 64 hex digits (32 random bytes), the shape of a Sentry user token, so
//! sentry-cli takes it without warning about an unknown format.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{now_us, Result, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiScope {
    /// CI: create and finalize releases, record deploys, upload artifact bundles (and read).
    Releases,
    /// Read only.
    Read,
}

impl ApiScope {
    pub const ALL: [Self; 2] = [Self::Releases, Self::Read];

    /// Sentry's scope name (`project:releases`) or `read`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Releases => "project:releases",
            Self::Read => "read",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name.trim())
    }

    /// Whether a token of this scope may make changes.
    pub fn may_write(self) -> bool {
        match self {
            Self::Releases => true,
            Self::Read => false,
        }
    }
}

/// A token as lists show it: never its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub label: String,
    pub scope: ApiScope,
    /// The token's first characters (`sntryu_1a2b…`), to tell it apart.
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const TOKEN_PREFIX: &str = "sntryu_";
/// How many characters of a token its listing shows: the marker and 8 hex digits (32 bits: tells tokens
/// apart, gives nothing away).
const SHOWN_CHARS: usize = TOKEN_PREFIX.len() + 8;
/// `last_used_at` is written at most this often per token, not on every request.
const LAST_USED_EVERY_US: i64 = 60_000_000;

fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn valid_label(label: &str) -> Result<&str> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a token label is 1 to 100 characters on one line".into(),
        ));
    }
    Ok(label)
}

impl Store {
    /// A new token: its listing, and its text (shown once, never stored).
    pub async fn create_api_token(
        &self,
        label: &str,
        scope: ApiScope,
    ) -> Result<(ApiToken, crate::secret::Secret)> {
        let label = valid_label(label)?;
        let text = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
        let prefix = text[..SHOWN_CHARS].to_owned();
        let created_at = now_us();
        let mut rows = self
            .conn()
            .query(
                "INSERT INTO api_tokens (label, scope, token_sha256, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
                (label, scope.name(), sha256_hex(&text), prefix.as_str(), created_at),
            )
            .await?;
        let id = match rows.next().await? {
            Some(row) => row.get::<i64>(0)?,
            None => return Err(StoreError::Invalid("no id for the new token".into())),
        };
        let token = ApiToken {
            id,
            label: label.to_owned(),
            scope,
            prefix,
            created_at,
            last_used_at: None,
            revoked_at: None,
        };
        Ok((token, text.into()))
    }

    /// Every token, newest first, revoked ones included.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT id, label, scope, prefix, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id DESC",
                (),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            let scope: String = row.get(2)?;
            out.push(ApiToken {
                id: row.get(0)?,
                label: row.get(1)?,
                scope: ApiScope::from_name(&scope).unwrap_or(ApiScope::Read),
                prefix: row.get(3)?,
                created_at: row.get(4)?,
                last_used_at: row.get(5)?,
                revoked_at: row.get(6)?,
            });
        }
        Ok(out)
    }

    /// Revokes a token: refused from now on. `false` when there is no such token or it was revoked
    /// already.
    pub async fn revoke_api_token(&self, id: i64) -> Result<bool> {
        let changed = self
            .conn()
            .execute(
                "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                (id, now_us()),
            )
            .await?;
        Ok(changed > 0)
    }

    /// The live token whose text this is, if any (revoked tokens are not). The stored hash is compared
    /// in constant time; the lookup itself is by the hash, which says nothing about the text.
    pub async fn api_token_by_text(&self, text: &str) -> Result<Option<ApiToken>> {
        let text = text.trim();
        if !text.starts_with(TOKEN_PREFIX) || text.len() > 200 {
            return Ok(None);
        }
        let hash = sha256_hex(text);
        let mut rows = self
            .conn()
            .query(
                "SELECT id, token_sha256 FROM api_tokens WHERE token_sha256 = ?1 AND revoked_at IS NULL",
                [hash.as_str()],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let (id, stored): (i64, String) = (row.get(0)?, row.get(1)?);
        if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
            return Ok(None);
        }
        let now = now_us();
        self.conn()
            .execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?3)",
                (id, now, now - LAST_USED_EVERY_US),
            )
            .await?;
        Ok(self.api_tokens().await?.into_iter().find(|t| t.id == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_works_until_revoked_and_only_its_hash_is_kept() {
        let store = Store::open_in_memory().await.unwrap();
        let (token, text) = store
            .create_api_token("CI", ApiScope::Releases)
            .await
            .unwrap();
        let text = text.expose().to_owned();
        assert!(
            text.starts_with("sntryu_") && text.len() == 7 + 64,
            "{text}"
        );
        assert!(text.starts_with(&token.prefix));
        let found = store.api_token_by_text(&text).await.unwrap().unwrap();
        assert_eq!((found.id, found.scope), (token.id, ApiScope::Releases));
        assert!(found.last_used_at.is_some());
        // The text is nowhere in the database.
        let stored = store
            .scalar(
                "SELECT count(*) FROM api_tokens WHERE token_sha256 = ?1 OR prefix = ?1",
                [text.as_str()],
            )
            .await
            .unwrap();
        assert_eq!(stored, 0);
        // Near misses and revoked tokens are refused.
        let mut other = text.clone();
        other.pop();
        other.push(if text.ends_with('0') { '1' } else { '0' });
        assert!(store.api_token_by_text(&other).await.unwrap().is_none());
        assert!(store.api_token_by_text("").await.unwrap().is_none());
        assert!(store.revoke_api_token(token.id).await.unwrap());
        assert!(!store.revoke_api_token(token.id).await.unwrap());
        assert!(store.api_token_by_text(&text).await.unwrap().is_none());
        let listed = store.api_tokens().await.unwrap();
        assert!(listed[0].revoked_at.is_some());
    }

    #[test]
    fn scopes_by_name() {
        for scope in ApiScope::ALL {
            assert_eq!(ApiScope::from_name(scope.name()), Some(scope));
        }
        assert_eq!(ApiScope::from_name("admin"), None);
        assert!(ApiScope::Releases.may_write() && !ApiScope::Read.may_write());
    }
}
