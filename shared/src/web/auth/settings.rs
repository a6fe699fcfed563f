//! What sign-in is configured with (read by [`crate::config`] from the environment).

/// How the UI is guarded. Ingest, `/mcp` and `/_health` never are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInConfig {
    /// No sign-in variable is set: the UI is open to whoever reaches it (a VPN, a proxy in front).
    Open,
    /// Every variable is set: pages need an OpenID Connect sign-in by an allowed user.
    Oidc(OidcConfig),
    /// Some are set but not all: the UI refuses to serve (500 with this reason) rather than run open by
    /// mistake. The reason names the missing variables, never a value.
    Incomplete(String),
}

/// OpenID Connect sign-in (the seed's `OIDC_*` and `SPLAT_ALLOWED_*` variables).
#[derive(Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// `OIDC_DISCOVERY_URL`: the issuer (its `/.well-known/openid-configuration` suffix is optional).
    pub issuer: String,
    /// `OIDC_CLIENT_ID` and `OIDC_CLIENT_SECRET`: this Splat as a client of the provider.
    pub client_id: String,
    pub client_secret: String,
    /// `OIDC_REDIRECT_URI`: where the provider sends the browser back; default `<base>/auth/callback`,
    /// with `SPLAT_PUBLIC_URL` or else the host the browser used as the base.
    pub redirect_uri: Option<String>,
    /// `SPLAT_ALLOWED_USERS`: comma-separated email addresses.
    pub allowed_users: Vec<String>,
    /// `SPLAT_ALLOWED_DOMAINS`: comma-separated domains; `example.com` also allows its subdomains,
    /// `*.example.com` only its subdomains.
    pub allowed_domains: Vec<String>,
    /// `SPLAT_SESSION_SECRET` (32 characters or more): signs the session cookies. Required in Lambda,
    /// where any instance answers any request; `splat serve` makes one in its data directory when unset.
    pub session_secret: Option<String>,
    /// `OIDC_ALLOW_MISSING_EMAIL_VERIFIED=true`: accept an ID token without an `email_verified` claim, for
    /// providers that never send one (Entra ID). Off by default: the claim must be `true`.
    pub allow_missing_email_verified: bool,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("allowed_users", &self.allowed_users)
            .field("allowed_domains", &self.allowed_domains)
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "allow_missing_email_verified",
                &self.allow_missing_email_verified,
            )
            .finish()
    }
}
