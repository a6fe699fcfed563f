//! The OpenID Connect client (`openidconnect`): discovery, the authorization request with PKCE (S256),
//! state and nonce, the code exchange, and the ID token checked against the provider's JWKS (signature,
//! issuer, audience, expiry, nonce), with the email from userinfo when the ID token leaves it out. HTTP
//! goes through our own hyper client (rustls), which never follows redirects, as the crate asks of it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::RwLock;

use super::OidcConfig;
use super::{Flow, Identity};
use crate::notify::channels::{http_client, HttpClient};

/// How long discovery (endpoints and signing keys) is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);
/// A provider slower than this is treated as down.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Discovery documents, key sets and token responses are small.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One provider, discovered lazily (so a provider that is down keeps only sign-in from working, not the
/// start of the process) and cached.
pub struct Provider {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    http: HttpClient,
    discovered: RwLock<Option<(Instant, CoreProviderMetadata)>>,
}

/// Why talking to the provider failed; shown as a 502, logged in full.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(String);

impl ProviderError {
    fn chain(context: &str, e: &dyn std::error::Error) -> Self {
        let mut text = format!("{context}: {e}");
        let mut source = e.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        Self(text)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct HttpError(String);

impl Provider {
    pub fn new(config: &OidcConfig) -> anyhow::Result<Self> {
        Ok(Self {
            issuer: IssuerUrl::new(config.issuer.clone())
                .map_err(|e| anyhow::anyhow!("OIDC_DISCOVERY_URL is not a URL: {e}"))?,
            client_id: ClientId::new(config.client_id.clone()),
            client_secret: ClientSecret::new(config.client_secret.clone()),
            http: http_client()?,
            discovered: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// The crate's HTTP client: each request's future owns its handle on the connection pool, so the
    /// handlers' futures stay `Send` (a future borrowing the client trips the compiler's lifetime check).
    fn http_fn(
        &self,
    ) -> impl Fn(
        openidconnect::HttpRequest,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send,
        >,
    > {
        let http = self.http.clone();
        move |request| {
            let http = http.clone();
            Box::pin(async move { send(&http, request).await })
        }
    }

    /// The provider's metadata and keys, from the cache or fetched again.
    async fn metadata(&self) -> Result<CoreProviderMetadata, ProviderError> {
        if let Some((at, metadata)) = &*self.discovered.read().await {
            if at.elapsed() < DISCOVERY_TTL {
                return Ok(metadata.clone());
            }
        }
        let http = self.http_fn();
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &http)
            .await
            .map_err(|e| ProviderError::chain("discovery", &e))?;
        *self.discovered.write().await = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(&self, redirect: &str) -> Result<ClientFor, ProviderError> {
        let redirect = RedirectUrl::new(redirect.to_owned())
            .map_err(|e| ProviderError::chain("redirect URI", &e))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser, and the secrets the callback must be checked against.
    pub async fn begin(
        &self,
        redirect: &str,
        prompt_login: bool,
    ) -> Result<(String, Flow), ProviderError> {
        let client = self.client(redirect).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if prompt_login {
            request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
        }
        let (url, state, nonce) = request.url();
        let flow = Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            next: String::new(),
        };
        Ok((url.to_string(), flow))
    }

    /// Exchanges the code (with the PKCE verifier) and returns who signed in, from the verified ID token.
    pub async fn finish(
        &self,
        redirect: &str,
        code: &str,
        flow: &Flow,
    ) -> Result<Identity, ProviderError> {
        let client = self.client(redirect).await?;
        let http = self.http_fn();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::chain("token endpoint", &e))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| ProviderError::chain("code exchange", &e))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderError("the token response has no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(flow.nonce.clone()))
            .map_err(|e| ProviderError::chain("ID token", &e))?;
        let mut identity = Identity {
            email: claims.email().map(|e| e.as_str().to_owned()),
            email_verified: claims.email_verified(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
                .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned())),
        };
        // Some providers keep scope claims out of the ID token and serve them from userinfo only; ask
        // there, for the same subject, with the access token that came with this very ID token.
        if identity.email.is_none() {
            if let Ok(request) = client.user_info(
                tokens.access_token().clone(),
                Some(claims.subject().clone()),
            ) {
                let info: CoreUserInfoClaims = request
                    .request_async(&http)
                    .await
                    .map_err(|e| ProviderError::chain("userinfo", &e))?;
                identity.email = info.email().map(|e| e.as_str().to_owned());
                identity.email_verified = info.email_verified();
                identity.name = identity.name.or_else(|| {
                    info.name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned())
                });
            }
        }
        Ok(identity)
    }
}

type ClientFor = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// One request of the OIDC crate over hyper: bounded in time and size, redirects not followed.
async fn send(
    http: &HttpClient,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    let response = tokio::time::timeout(HTTP_TIMEOUT, http.request(request))
        .await
        .map_err(|_| HttpError("timed out".into()))?
        .map_err(|e| HttpError(format!("{e:?}")))?;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(
        HTTP_TIMEOUT,
        Limited::new(body, MAX_RESPONSE_BYTES).collect(),
    )
    .await
    .map_err(|_| HttpError("timed out reading the body".into()))?
    .map_err(|e| HttpError(format!("reading the body: {e}")))?
    .to_bytes();
    Ok(http::Response::from_parts(parts, body.to_vec()))
}
