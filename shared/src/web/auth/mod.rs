//! UI sign-in. Open by default; with OpenID Connect configured ([`SignInConfig::Oidc`]) every UI page
//! needs a signed-in user on the allowlist. Ingest (`/api/…`), `/mcp` and `/_health` are routers of their
//! own and never pass through here. Half a configuration ([`SignInConfig::Incomplete`]) makes every UI
//! page a 500 that names what is missing, rather than a UI left open by mistake.
//!
//! The flow: a page without a valid session → `303 /login/start?next=<page>` → the provider, with PKCE
//! (S256), state and nonce, whose secrets wait in the signed `splat_oidc` cookie (10 minutes) →
//! `/auth/callback` checks the state, exchanges the code with the verifier, verifies the ID token against
//! the provider's JWKS and the nonce, and checks the email against the allowlist → the signed
//! `splat_session` cookie (12 hours) → back to the page. `POST /logout` deletes the session cookie.
//!
//! Stateless on purpose: any instance (a Lambda, a restarted `splat serve`) checks both cookies with
//! `SPLAT_SESSION_SECRET` alone, and there is no table to clean. The price: signing out deletes the
//! cookie from the browser, but a copy taken before stays valid until it expires.
//!
//! So the routes that talk to the provider need no database: in AWS they are a function of their own
//! ([`router`], `splat-signin`) outside the VPC, where the provider is reachable, and CloudFront sends
//! `/login/*` and `/auth/*` there. The UI function, in the VPC with no way out, only checks cookies: the
//! provider is contacted (discovery, keys, token exchange) by `/login/start` and `/auth/callback` alone,
//! never when a guard is built or a page is checked.

mod allowlist;
mod cookie;
#[cfg(feature = "oidc")]
mod oidc;
#[cfg(not(feature = "oidc"))]
#[path = "no_oidc.rs"]
mod oidc;
mod settings;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use askama::Template;
use axum::extract::{FromRef, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub use allowlist::Allowlist;
pub use cookie::Signer;
pub use settings::{OidcConfig, SignInConfig};

use super::{assets, csrf, front_door, is_local_path, request_base, WebError, WebState};
use crate::secret::Secret;

/// The cookies' names, and the labels their signatures are bound to. Over https the browser gets them
/// with the `__Host-` prefix ([`cookie_name`]).
const SESSION_COOKIE: &str = "splat_session";
const FLOW_COOKIE: &str = "splat_oidc";
const SESSION_SECS: i64 = 12 * 3600;
const FLOW_SECS: i64 = 10 * 60;
/// Where `splat serve` keeps the secret it made when `SPLAT_SESSION_SECRET` is unset.
const SECRET_FILE: &str = "session-secret";

/// How the UI is guarded; cheap to clone.
#[derive(Clone)]
pub struct Auth(Arc<Mode>);

enum Mode {
    Open,
    Refused(String),
    Oidc(Box<SignIn>),
}

struct SignIn {
    provider: oidc::Provider,
    signer: Signer,
    allowlist: Allowlist,
    redirect_uri: Option<String>,
    allow_missing_email_verified: bool,
}

/// What the sign-in routes need, and nothing of the database or the queue: the UI's state gives it
/// ([`FromRef`]), and the sign-in function builds it from the configuration alone.
#[derive(Clone)]
pub struct SignInState {
    pub auth: Auth,
    /// `SPLAT_PUBLIC_URL`, for `https` and the default redirect URI.
    pub public_url: Option<String>,
    /// `SPLAT_ORIGIN_SECRET`: the header CloudFront adds (see [`front_door`]).
    pub origin_secret: Option<Secret>,
}

impl FromRef<WebState> for SignInState {
    fn from_ref(state: &WebState) -> Self {
        Self {
            auth: state.auth.clone(),
            public_url: state.public_url.clone(),
            origin_secret: state.origin_secret.clone(),
        }
    }
}

/// The routes that talk to the provider, served alone (the sign-in function): `/login/start` and
/// `/auth/callback`, behind the origin secret and with the UI's security headers. The session cookie they
/// set is the one the UI checks: same names, same secret.
pub fn router(state: SignInState) -> Router {
    Router::new()
        .route("/login/start", get(start))
        .route("/auth/callback", get(callback))
        .fallback(|| async { WebError::NotFound("page") })
        .layer(from_fn_with_state(state.clone(), door))
        .with_state(state)
}

/// The sign-in function's door: CloudFront's origin secret, then the security headers on the answer.
async fn door(State(state): State<SignInState>, req: Request, next: Next) -> Response {
    if let Some(refused) =
        front_door::without_origin_secret(state.origin_secret.as_ref(), req.headers())
    {
        return refused;
    }
    let https = csrf::is_https(req.headers(), state.public_url.as_deref());
    let mut response = next.run(req).await;
    super::add_security_headers(response.headers_mut(), https);
    response
}

/// Who is signed in: a request extension on every page behind sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignedIn {
    pub email: String,
    pub name: Option<String>,
}

/// The secrets of one sign-in between `/login/start` and `/auth/callback`, and the page to return to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
}

/// What the verified ID token says about the person.
#[derive(Debug, Clone)]
pub struct Identity {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

impl Default for Auth {
    fn default() -> Self {
        Self(Arc::new(Mode::Open))
    }
}

impl Auth {
    /// The guard for `config`. `data_dir` is where `splat serve` may keep a generated session secret;
    /// `None` (Lambda) makes `SPLAT_SESSION_SECRET` required. A bad configuration never fails here: the
    /// UI refuses with the reason, while ingest and the rest keep working.
    pub fn from_config(config: &SignInConfig, data_dir: Option<&Path>) -> Self {
        let mode = match config {
            SignInConfig::Open => Mode::Open,
            SignInConfig::Incomplete(why) => Mode::Refused(why.clone()),
            SignInConfig::Oidc(oidc) => match SignIn::new(oidc, data_dir) {
                Ok(sign_in) => Mode::Oidc(Box::new(sign_in)),
                Err(e) => Mode::Refused(format!("{e:#}")),
            },
        };
        Self(Arc::new(mode))
    }

    /// One line for the startup log.
    pub fn describe(&self) -> String {
        match &*self.0 {
            Mode::Open => "UI sign-in: off (the UI is open; set OIDC_* to require sign-in)".into(),
            Mode::Refused(why) => format!(
                "UI sign-in is misconfigured, so the UI refuses to serve (ingest, /mcp and /_health still \
                 answer): {why}"
            ),
            Mode::Oidc(s) => format!("UI sign-in: OpenID Connect via {}", s.provider.issuer()),
        }
    }

    /// Logs [`Self::describe`] at start: an error when the UI refuses to serve.
    pub fn log(&self) {
        if self.is_refused() {
            tracing::error!("{}", self.describe());
        } else {
            tracing::info!("{}", self.describe());
        }
    }

    /// Whether the UI refuses to serve because of its configuration.
    pub fn is_refused(&self) -> bool {
        matches!(&*self.0, Mode::Refused(_))
    }
}

impl SignIn {
    fn new(config: &OidcConfig, data_dir: Option<&Path>) -> anyhow::Result<Self> {
        let secret = match (&config.session_secret, data_dir) {
            (Some(secret), _) => secret.clone().into_bytes(),
            (None, Some(dir)) => persisted_secret(dir)?,
            (None, None) => anyhow::bail!(
                "SPLAT_SESSION_SECRET is not set (32 characters or more; every UI instance needs the same one)"
            ),
        };
        Ok(Self {
            provider: oidc::Provider::new(config)?,
            signer: Signer::new(&secret),
            allowlist: Allowlist::new(&config.allowed_users, &config.allowed_domains),
            redirect_uri: config.redirect_uri.clone(),
            allow_missing_email_verified: config.allow_missing_email_verified,
        })
    }

    /// The session in the request's cookie, if it is genuine, unexpired and its user still allowed.
    fn session(&self, headers: &HeaderMap, https: bool) -> Option<SignedIn> {
        let sealed = csrf::cookie(headers, &cookie_name(SESSION_COOKIE, https))?;
        let user: SignedIn = self.signer.open(SESSION_COOKIE, sealed, now())?;
        self.allowlist.allows(&user.email).then_some(user)
    }

    /// `OIDC_REDIRECT_URI`, or `/auth/callback` on the public URL or the host the browser used.
    fn redirect_uri(&self, state: &SignInState, headers: &HeaderMap) -> String {
        if let Some(uri) = &self.redirect_uri {
            return uri.clone();
        }
        let base = match &state.public_url {
            Some(url) => url.clone(),
            None => {
                let (scheme, host) = request_base(headers);
                format!("{scheme}://{host}")
            }
        };
        format!("{base}/auth/callback")
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The secret in `<data dir>/session-secret`, made (random, 0600) on first use. A second process
/// starting at the same moment reads the one the first wrote.
fn persisted_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let path = dir.join(SECRET_FILE);
    crate::private_files::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(secret.into_bytes())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let secret =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            anyhow::ensure!(
                secret.len() >= 32,
                "{} is shorter than 32 bytes",
                path.display()
            );
            Ok(secret)
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// Paths reachable without a session: the sign-in pages themselves and the stylesheet they use.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/login/start" | "/auth/callback" | "/logout"
    ) || path.starts_with("/static/")
}

/// The middleware in front of every UI route (and the UI's 404).
pub async fn require(State(state): State<WebState>, mut req: Request, next: Next) -> Response {
    let sign_in = match &*state.auth.0 {
        Mode::Open => return next.run(req).await,
        Mode::Refused(_) if req.uri().path().starts_with("/static/") => return next.run(req).await,
        Mode::Refused(why) => return WebError::Misconfigured(why.clone()).into_response(),
        Mode::Oidc(sign_in) => sign_in,
    };
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let https = csrf::is_https(req.headers(), state.public_url.as_deref());
    if let Some(user) = sign_in.session(req.headers(), https) {
        req.extensions_mut().insert(user);
        return next.run(req).await;
    }
    let stale = csrf::cookie(req.headers(), &cookie_name(SESSION_COOKIE, https)).is_some();
    let mut response = if matches!(*req.method(), Method::GET | Method::HEAD) {
        let here = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        Redirect::to(&format!("/login/start?next={next}")).into_response()
    } else {
        WebError::SignInRequired.into_response()
    };
    if stale {
        // A forged, expired or no longer allowed session: drop it.
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear(SESSION_COOKIE, https));
    }
    response
}

/// `__Host-<name>` over https: the browser then takes the cookie only from a secure page of this exact
/// host (no `Domain`, `Path=/`), so a sibling subdomain or a plain-http page cannot plant or overwrite it.
/// Over plain http the prefix is not allowed, and the bare name is used.
fn cookie_name(name: &str, https: bool) -> String {
    if https {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

fn set(name: &str, value: &str, max_age_secs: i64, https: bool) -> HeaderValue {
    cookie::set(&cookie_name(name, https), value, max_age_secs, https)
}

fn clear(name: &str, https: bool) -> HeaderValue {
    cookie::clear(&cookie_name(name, https), https)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    css: &'static str,
    /// What happened (signed out, refused, expired), shown above the button.
    message: Option<String>,
    /// Whether the message is a refusal (styled as an error).
    refused: bool,
    /// The button's target.
    start: String,
}

fn login_page(
    status: StatusCode,
    message: Option<String>,
    refused: bool,
    start: String,
) -> Response {
    let page = LoginPage {
        css: assets::css_url(),
        message,
        refused,
        start,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
}

/// `GET /login`: a page with a sign-in button (where signing out lands, so the provider's own session
/// does not sign the person straight back in).
pub async fn login(State(state): State<SignInState>, Query(q): Query<LoginQuery>) -> Response {
    if !matches!(&*state.auth.0, Mode::Oidc(_)) {
        return Redirect::to("/").into_response();
    }
    let next = q
        .next
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
    let next: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let message = q.signed_out.map(|_| "You are signed out.".to_owned());
    login_page(
        StatusCode::OK,
        message,
        false,
        format!("/login/start?next={next}"),
    )
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
    prompt: Option<String>,
}

/// `GET /login/start`: to the provider, with the flow's secrets in a signed cookie.
pub async fn start(
    State(state): State<SignInState>,
    Query(q): Query<StartQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Mode::Oidc(sign_in) = &*state.auth.0 else {
        return Ok(Redirect::to("/").into_response());
    };
    let redirect = sign_in.redirect_uri(&state, &headers);
    let (url, mut flow) = sign_in
        .provider
        .begin(&redirect, q.prompt.as_deref() == Some("login"))
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    flow.next = q
        .next
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/".into());
    let sealed = sign_in.signer.seal(FLOW_COOKIE, &flow, now() + FLOW_SECS);
    let https = csrf::is_https(&headers, state.public_url.as_deref());
    let mut response = Redirect::to(&url).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set(FLOW_COOKIE, &sealed, FLOW_SECS, https),
    );
    Ok(response)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: the provider's answer. Checks it, and on success sets the session.
pub async fn callback(
    State(state): State<SignInState>,
    Query(q): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Mode::Oidc(sign_in) = &*state.auth.0 else {
        return Ok(Redirect::to("/").into_response());
    };
    let https = csrf::is_https(&headers, state.public_url.as_deref());
    let again = |status, message: String| {
        let mut response = login_page(
            status,
            Some(message),
            true,
            "/login/start?prompt=login".into(),
        );
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear(FLOW_COOKIE, https));
        response
    };
    let flow: Option<Flow> = csrf::cookie(&headers, &cookie_name(FLOW_COOKIE, https))
        .and_then(|sealed| sign_in.signer.open(FLOW_COOKIE, sealed, now()));
    let Some(flow) = flow else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was started in another browser. Please sign in again.".into(),
        ));
    };
    if let Some(error) = q.error {
        let detail = q
            .error_description
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Ok(again(
            StatusCode::FORBIDDEN,
            format!("The sign-in provider refused: {error}{detail}."),
        ));
    }
    let state_matches = q
        .state
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(flow.state.as_bytes())));
    let (true, Some(code)) = (state_matches, q.code) else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "This sign-in answer does not belong to the sign-in this browser started. Please sign in again."
                .into(),
        ));
    };
    let redirect = sign_in.redirect_uri(&state, &headers);
    let identity = sign_in
        .provider
        .finish(&redirect, &code, &flow)
        .await
        .map_err(|e| WebError::Provider(e.to_string()))?;
    let Some(email) = identity.email.filter(|e| !e.trim().is_empty()) else {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "The provider's ID token has no email address, so this Splat cannot tell who you are. \
             Ask your administrator to include the email claim."
                .into(),
        ));
    };
    let verified = email_is_verified(
        identity.email_verified,
        sign_in.allow_missing_email_verified,
    );
    if !verified || !sign_in.allowlist.allows(&email) {
        tracing::info!(%email, "sign-in refused: not on the allowlist or unverified");
        return Ok(again(
            StatusCode::FORBIDDEN,
            format!(
                "{email} may not use this Splat. Sign in with another account, or ask an administrator \
                 to add it to SPLAT_ALLOWED_USERS or SPLAT_ALLOWED_DOMAINS."
            ),
        ));
    }
    tracing::info!(%email, "signed in");
    let user = SignedIn {
        email,
        name: identity.name,
    };
    let sealed = sign_in
        .signer
        .seal(SESSION_COOKIE, &user, now() + SESSION_SECS);
    let mut response = Redirect::to(&flow.next).into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set(SESSION_COOKIE, &sealed, SESSION_SECS, https),
    );
    cookies.append(header::SET_COOKIE, clear(FLOW_COOKIE, https));
    Ok(response)
}

/// An address the provider has not verified could be anybody's: `email_verified` must be `true`, or absent
/// only where the operator said the provider never sends it (`OIDC_ALLOW_MISSING_EMAIL_VERIFIED`).
fn email_is_verified(claim: Option<bool>, allow_missing: bool) -> bool {
    claim.unwrap_or(allow_missing)
}

/// `POST /logout` (a CSRF-checked form): deletes the session cookie.
pub async fn logout(State(state): State<SignInState>, headers: HeaderMap) -> Response {
    let https = csrf::is_https(&headers, state.public_url.as_deref());
    let mut response = Redirect::to("/login?signed_out=1").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear(SESSION_COOKIE, https));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_secret_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = persisted_secret(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(persisted_secret(dir.path()).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn sign_in_pages_and_assets_are_public_and_nothing_else() {
        for public in [
            "/login",
            "/login/start",
            "/auth/callback",
            "/logout",
            "/static/splat.css",
        ] {
            assert!(is_public(public), "{public}");
        }
        for private in [
            "/",
            "/projects/default",
            "/login/x",
            "/loginx",
            "/live.json",
        ] {
            assert!(!is_public(private), "{private}");
        }
    }

    #[test]
    fn an_email_counts_as_verified_only_when_the_provider_says_so() {
        assert!(email_is_verified(Some(true), false));
        assert!(!email_is_verified(None, false));
        assert!(!email_is_verified(Some(false), true));
        assert!(email_is_verified(None, true));
    }

    #[test]
    fn session_cookies_carry_the_host_prefix_over_https() {
        assert_eq!(cookie_name(SESSION_COOKIE, true), "__Host-splat_session");
        assert_eq!(cookie_name(SESSION_COOKIE, false), "splat_session");
        let set = set(SESSION_COOKIE, "v", 60, true);
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-splat_session=v; Path=/;") && set.contains("; Secure"));
        assert!(!set.contains("Domain"));
    }

    #[test]
    fn half_a_configuration_refuses_and_lambda_needs_a_secret() {
        let auth = Auth::from_config(
            &SignInConfig::Incomplete("OIDC_CLIENT_ID is not set".into()),
            None,
        );
        assert!(auth.is_refused());
        assert!(auth.describe().contains("OIDC_CLIENT_ID is not set"));
        let oidc = OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "splat".into(),
            client_secret: "secret".into(),
            redirect_uri: None,
            allowed_users: vec![],
            allowed_domains: vec!["example.com".into()],
            session_secret: None,
            allow_missing_email_verified: false,
        };
        let auth = Auth::from_config(&SignInConfig::Oidc(oidc), None);
        assert!(auth.is_refused());
        assert!(
            auth.describe().contains("SPLAT_SESSION_SECRET"),
            "{}",
            auth.describe()
        );
        assert!(!Auth::default().is_refused());
    }
}
