//! Built without the `oidc` feature (the ingest, processor and MCP functions): sign-in cannot be
//! offered, so a UI configured for it refuses to serve rather than run open. [`Provider`] has no values.

use super::OidcConfig;
use super::{Flow, Identity};

pub enum Provider {}

#[derive(Debug, thiserror::Error)]
#[error("no OpenID Connect support in this build")]
pub struct ProviderError;

impl Provider {
    pub fn new(_: &OidcConfig) -> anyhow::Result<Self> {
        anyhow::bail!(
            "this binary was built without OpenID Connect support (feature `oidc` of splat-shared)"
        )
    }

    pub fn issuer(&self) -> &str {
        match *self {}
    }

    pub async fn begin(&self, _: &str, _: bool) -> Result<(String, Flow), ProviderError> {
        match *self {}
    }

    pub async fn finish(&self, _: &str, _: &str, _: &Flow) -> Result<Identity, ProviderError> {
        match *self {}
    }
}
