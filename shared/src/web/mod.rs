//! The web UI: server-rendered pages (askama templates in `templates/`) for projects, issues and events.
//! Every page works without JavaScript; `assets/splat.js` only adds copy buttons, live refresh and a
//! no-reload theme switch.
//!
//! [`router`] is the one route table. Each page is a template struct next to its handler (`projects`,
//! `issues`, `events`); handlers return [`WebResult`], and [`WebError`] renders the error page. State
//! changes are POST forms guarded by [`csrf`]; every string from an event goes through the templates'
//! HTML escaping (nothing from an event is ever marked `|safe`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Request};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use crate::blob::BlobStore;
use crate::lake::LakeReader;
use crate::protocol::{Dsn, ProjectId};
use crate::queue::{Queue, QueueGauge};
use crate::store::{Project, Store};

mod alerts;
pub mod api;
mod assets;
pub mod auth;
mod chart;
pub mod csrf;
mod deletes;
mod error;
mod events;
mod feedback;
pub mod front_door;
pub mod health;
mod issues;
mod keys;
mod live;
mod logs;
mod monitors;
mod perf_chart;
mod performance;
mod projects;
mod scrubbing;
mod settings;
mod transactions;

pub use error::{WebError, WebResult};

/// Everything the UI needs, built once per process.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub queue: Arc<dyn Queue>,
    /// `SPLAT_PUBLIC_URL` (`scheme://host[:port]`): the DSN host SDKs outside use. Without it, the host the
    /// browser used to reach this page.
    pub public_url: Option<String>,
    /// Where SDKs on the same machine or network reach ingest (`splat serve`'s bound address, or
    /// `SPLAT_INTERNAL_URL`): the second DSN the UI offers.
    pub internal_url: Option<String>,
    /// Where the transaction page reads spans from (`None`: the waterfall says it cannot).
    pub lake: Option<Arc<dyn LakeReader>>,
    /// The retention horizons from the environment (or defaults), which the settings page can override.
    pub retention: crate::retention::Horizons,
    /// Who may see the UI (open unless OIDC sign-in is configured).
    pub auth: auth::Auth,
    /// The host names the UI answers to (`None`: any, for a platform that routes by Host itself).
    pub hosts: Option<front_door::HostPolicy>,
    /// The secret CloudFront adds to each request (`None`: not required).
    pub origin_secret: Option<crate::secret::Secret>,
    /// Where the key snapshot is published after a form changes keys, quotas or projects (`None`: never;
    /// see [`crate::ingest::snapshot`]).
    pub key_snapshot: Option<Arc<dyn BlobStore>>,
    /// Events in one hour at which an open issue is bursting (`SPLAT_BURST_THRESHOLD`): its badge.
    pub burst_threshold: u64,
    /// What sends test alerts and names the destinations alert rules pick (`None`: no channel configured).
    pub notifier: Option<crate::notify::Notifier>,
    queue_gauge: Arc<Mutex<Option<(Instant, QueueGauge)>>>,
}

/// How long the header's queue reading is reused before reading it again.
const QUEUE_GAUGE_TTL: Duration = Duration::from_secs(3);

impl WebState {
    pub fn new(
        store: Store,
        queue: Arc<dyn Queue>,
        public_url: Option<String>,
        internal_url: Option<String>,
    ) -> Self {
        let trim = |u: String| u.trim_end_matches('/').to_owned();
        Self {
            store,
            queue,
            public_url: public_url.map(trim),
            internal_url: internal_url.map(trim),
            lake: None,
            retention: crate::retention::Horizons::default(),
            auth: auth::Auth::default(),
            hosts: None,
            origin_secret: None,
            key_snapshot: None,
            burst_threshold: 1000,
            notifier: None,
            queue_gauge: Arc::default(),
        }
    }

    /// The same state publishing the key snapshot to `blobs` after each change to keys.
    pub fn with_key_snapshot(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.key_snapshot = Some(blobs);
        self
    }

    /// The same state sending test alerts through `notifier`.
    pub fn with_notifier(mut self, notifier: Option<crate::notify::Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// The same state reading spans from `lake`.
    pub fn with_lake(mut self, lake: Arc<dyn LakeReader>) -> Self {
        self.lake = Some(lake);
        self
    }

    /// The same state with the burst alerts' threshold, for the issues' burst badges.
    pub fn with_burst_threshold(mut self, threshold: u64) -> Self {
        self.burst_threshold = threshold.max(1);
        self
    }

    /// The same state with the configured retention horizons.
    pub fn with_retention(mut self, horizons: crate::retention::Horizons) -> Self {
        self.retention = horizons;
        self
    }

    /// The same state behind `auth`'s sign-in.
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The same state answering only to the names `hosts` allows (see [`front_door`]).
    pub fn with_hosts(mut self, hosts: front_door::HostPolicy) -> Self {
        self.hosts = Some(hosts);
        self
    }

    /// The same state requiring CloudFront's origin secret on every request.
    pub fn with_origin_secret(mut self, secret: Option<crate::secret::Secret>) -> Self {
        self.origin_secret = secret;
        self
    }

    /// The queue's depth, or on SQS the processor's last batch; cached for a few seconds.
    pub async fn queue_gauge(&self) -> QueueGauge {
        if let Some((at, gauge)) = *self.queue_gauge.lock().expect("not poisoned") {
            if at.elapsed() < QUEUE_GAUGE_TTL {
                return gauge;
            }
        }
        let gauge = QueueGauge::read(&*self.queue, &self.store).await;
        *self.queue_gauge.lock().expect("not poisoned") = Some((Instant::now(), gauge));
        gauge
    }
}

/// The UI's routes. Merged next to the ingest router in `splat serve`; served alone by the UI Lambda.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(projects::list))
        .route("/projects", post(projects::create))
        .route("/projects/{slug}", get(projects::dashboard))
        .route("/projects/{slug}/settings", get(projects::settings))
        .route("/projects/{slug}/rename", post(projects::rename))
        .route("/projects/{slug}/delete", post(projects::delete))
        .route("/projects/{slug}/keys", post(keys::add))
        .route("/projects/{slug}/keys/{key}/limits", post(keys::key_limits))
        .route("/projects/{slug}/keys/{key}/{action}", post(keys::act))
        .route("/projects/{slug}/limits", post(keys::project_limits))
        .route("/projects/{slug}/scrubbing", post(scrubbing::save))
        .route("/projects/{slug}/alerts", post(alerts::save_rules))
        .route("/projects/{slug}/alerts/test", post(alerts::send_test))
        .route("/projects/{slug}/issues/{id}/mute", post(alerts::mute))
        .route("/projects/{slug}/issues", get(issues::list))
        .route("/projects/{slug}/issues/{id}", get(issues::detail))
        .route(
            "/projects/{slug}/issues/{id}/status",
            post(issues::set_status),
        )
        .route("/projects/{slug}/issues/{id}/delete", post(deletes::issue))
        .route("/projects/{slug}/events/{event_id}", get(events::detail))
        .route(
            "/projects/{slug}/events/{event_id}/delete",
            post(deletes::event),
        )
        .route(
            "/projects/{slug}/events/{event_id}/json",
            get(events::raw_json),
        )
        .route("/projects/{slug}/monitors", get(monitors::list))
        .route("/projects/{slug}/feedback", get(feedback::list))
        .route("/projects/{slug}/logs", get(logs::list))
        .route("/projects/{slug}/traces/{trace_id}", get(logs::trace))
        .route("/projects/{slug}/performance", get(performance::index))
        .route(
            "/projects/{slug}/performance/endpoint",
            get(performance::endpoint),
        )
        .route(
            "/projects/{slug}/performance/n-plus-one",
            get(performance::n_plus_one),
        )
        .route(
            "/projects/{slug}/transactions/{id}",
            get(transactions::detail),
        )
        .route("/settings", get(settings::page))
        .route("/settings/retention", post(settings::save_retention))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route(
            "/settings/alert-destinations",
            post(alerts::save_destination),
        )
        .route("/live.json", get(live::stamp))
        .route("/theme", post(set_theme))
        .route("/static/{name}", get(assets::serve))
        .route("/login", get(auth::login))
        .route("/login/start", get(auth::start))
        .route("/auth/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        // Only matched routes pass the CSRF check: an SDK posting to an unknown ingest path gets a 404.
        .route_layer(from_fn_with_state(state.clone(), publish_key_changes))
        .route_layer(from_fn_with_state(state.clone(), csrf::protect))
        .fallback(not_found)
        // Sign-in (when configured) wraps every UI route and the 404; never ingest, /mcp or /_health,
        // which are other routers.
        .layer(from_fn_with_state(state.clone(), auth::require))
        // Before sign-in and CSRF: a request through the wrong door gets no page, cookie or token at all.
        .layer(from_fn_with_state(state.clone(), front_door::guard))
        .layer(from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

async fn not_found() -> WebError {
    WebError::NotFound("page")
}

/// After a form that changed keys, quotas or projects, the key snapshot ingest reads is published again
/// (reads are left alone: they change nothing).
async fn publish_key_changes(
    State(state): State<WebState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    match &state.key_snapshot {
        Some(blobs) if !req.method().is_safe() => {
            crate::ingest::snapshot::publishing(&state.store, &**blobs, next.run(req)).await
        }
        _ => next.run(req).await,
    }
}

/// Scripts and styles only from this origin (so injected markup could not run even if it got through),
/// no framing, no sniffing, pages that are never cached, and, once reached over https, https only (HSTS)
/// so a later plain-http visit cannot be intercepted to read or plant cookies.
async fn security_headers(
    State(state): State<WebState>,
    req: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let https = csrf::is_https(req.headers(), state.public_url.as_deref());
    let mut response = next.run(req).await;
    add_security_headers(response.headers_mut(), https);
    response
}

/// What [`security_headers`] adds to a response (also the sign-in function's, [`auth::router`]).
pub(crate) fn add_security_headers(headers: &mut HeaderMap, https: bool) {
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "cache-control", "no-store");
}

/// Renders a page as `text/html`.
pub(crate) fn render<T: Template>(page: &T) -> WebResult<Response> {
    Ok(Html(page.render()?).into_response())
}

/// A `303 See Other` to a path inside the UI: `next` values from forms are only ever local paths.
pub(crate) fn redirect_local(next: Option<&str>, fallback: &str) -> Response {
    let target = next.filter(|n| is_local_path(n)).unwrap_or(fallback);
    Redirect::to(target).into_response()
}

/// `/x?y` yes; `//evil.example`, `/\evil`, `https://…` and anything with control characters no.
fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && !p.chars().any(|c| c.is_control())
}

/// The colour scheme: `auto` follows the system (`prefers-color-scheme`), the others override it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Auto,
    Light,
    Dark,
}

impl Theme {
    const COOKIE: &'static str = "splat_theme";

    fn parse(s: &str) -> Self {
        match s {
            "light" => Self::Light,
            "dark" => Self::Dark,
            _ => Self::Auto,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }

    /// What the toggle switches to: auto → light → dark → auto.
    pub fn next(self) -> Self {
        match self {
            Self::Auto => Self::Light,
            Self::Light => Self::Dark,
            Self::Dark => Self::Auto,
        }
    }
}

#[derive(Deserialize)]
struct ThemeForm {
    theme: String,
    next: Option<String>,
}

/// `POST /theme`: the toggle without JavaScript (with it, the script sets the same cookie itself).
async fn set_theme(Form(form): Form<ThemeForm>) -> Response {
    let theme = Theme::parse(&form.theme);
    let mut response = redirect_local(form.next.as_deref(), "/");
    let cookie = format!(
        "{}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        Theme::COOKIE,
        theme.as_str()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The project a page belongs to, for the header's name and nav pills.
#[derive(Debug, Clone)]
pub struct NavProject {
    pub name: String,
    pub slug: String,
}

/// The header's queue pill. For a depth: green when empty, yellow under 10, red otherwise (as the seed).
/// On SQS, the processor's last lag: green under a minute, yellow under five, red past that.
#[derive(Debug, Clone)]
pub struct QueuePill {
    pub depth: Option<u64>,
    /// What the pill shows: the depth, or the lag (`2 s`).
    pub label: String,
    /// What it means, for its tooltip and the dashboard.
    pub caption: String,
    pub class: &'static str,
}

impl QueuePill {
    fn new(gauge: QueueGauge) -> Self {
        use crate::queue::gauge::Level;
        let (label, caption) = match gauge {
            QueueGauge::Depth(depth) => (depth.to_string(), "envelopes waiting".to_owned()),
            QueueGauge::Lag(batch) => (
                crate::format::ms(batch.lag_ms as f64),
                format!(
                    "the oldest envelope's wait in the processor's last batch, {}",
                    crate::model::time::Ts(batch.at_us).ago()
                ),
            ),
            QueueGauge::NoBatchYet => ("–".to_owned(), "no batch processed yet".to_owned()),
            QueueGauge::Unavailable => ("?".to_owned(), "the queue could not be read".to_owned()),
        };
        let class = match gauge.level(1, 10) {
            Level::Calm => "ok",
            Level::Busy => "warn",
            Level::Behind => "bad",
            Level::Unknown => "unknown",
        };
        Self {
            depth: gauge.depth(),
            label,
            caption,
            class,
        }
    }
}

/// What every page's frame (`templates/base.html`) shows: title, header, nav, theme, queue pill, the CSRF
/// token for its forms and the live-update hook. Extracted from the request; handlers add the project.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub title: String,
    pub csrf: String,
    pub theme: Theme,
    pub queue: QueuePill,
    /// The path and query of this page: where forms come back to.
    pub here: String,
    pub project: Option<NavProject>,
    /// Which nav pill is current: `projects`, `overview`, `issues`, `performance`,
    /// `monitors`, `settings`.
    pub section: &'static str,
    /// What the page polls for live updates, and the change stamp it was rendered at.
    pub live_url: String,
    pub stamp: String,
    /// `scheme://host` SDKs outside reach us at (public URL, else this request's host).
    pub external_base: (String, String),
    pub internal_base: Option<(String, String)>,
    pub css: &'static str,
    pub js: &'static str,
    pub favicon: &'static str,
    /// The signed-in user's email (`None` when sign-in is off): shown with a sign-out button.
    pub user: Option<String>,
}

impl FromRequestParts<WebState> for Chrome {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let csrf::CsrfToken(csrf) = csrf::CsrfToken::from_request_parts(parts, state).await?;
        let theme = csrf::cookie(&parts.headers, Theme::COOKIE).map_or(Theme::Auto, Theme::parse);
        let here = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        let split = |u: &str| {
            u.split_once("://")
                .map(|(s, h)| (s.to_owned(), h.to_owned()))
        };
        let external_base = state
            .public_url
            .as_deref()
            .and_then(split)
            .unwrap_or_else(|| request_base(&parts.headers));
        let internal_base = state
            .internal_url
            .as_deref()
            .and_then(split)
            .filter(|b| *b != external_base);
        Ok(Self {
            title: "Splat".into(),
            csrf,
            theme,
            queue: QueuePill::new(state.queue_gauge().await),
            here,
            project: None,
            section: "projects",
            live_url: "/live.json".into(),
            stamp: String::new(),
            external_base,
            internal_base,
            css: assets::css_url(),
            js: assets::js_url(),
            favicon: assets::favicon_url(),
            user: parts
                .extensions
                .get::<auth::SignedIn>()
                .map(|u| u.email.clone()),
        })
    }
}

/// `(scheme, host)` as the browser addressed this server.
pub(crate) fn request_base(headers: &HeaderMap) -> (String, String) {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let scheme = value("x-forwarded-proto")
        .filter(|s| s == "https" || s == "http")
        .unwrap_or_else(|| "http".into());
    let host = value("x-forwarded-host")
        .or_else(|| value("host"))
        .unwrap_or_else(|| "localhost".into());
    (scheme, host)
}

impl Chrome {
    /// A page of one project: nav pills, title, and live updates scoped to it.
    pub async fn for_project(
        mut self,
        state: &WebState,
        project: &Project,
        section: &'static str,
        title: impl Into<String>,
    ) -> WebResult<Self> {
        self.project = Some(NavProject {
            name: project.name.clone(),
            slug: project.slug.clone(),
        });
        self.section = section;
        self.title = title.into();
        self.live_url = format!("/live.json?project={}", project.slug);
        self.stamp = state.store.change_stamp(Some(project.id)).await?;
        Ok(self)
    }

    /// A page about every project.
    pub async fn global(mut self, state: &WebState, title: impl Into<String>) -> WebResult<Self> {
        self.title = title.into();
        self.stamp = state.store.change_stamp(None).await?;
        Ok(self)
    }

    /// The project's DSNs: `(label, dsn)` for the external and (when different) internal host.
    pub fn dsns(&self, project: &Project) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut add = |label, (scheme, host): &(String, String)| {
            if let Some(dsn) = project.dsn(scheme, host) {
                out.push((label, dsn.to_string()));
            }
        };
        add("External DSN", &self.external_base);
        if let Some(internal) = &self.internal_base {
            add("Internal DSN", internal);
        }
        out
    }
}

/// A project by slug, or the 404 page.
pub(crate) async fn project_or_404(state: &WebState, slug: &str) -> WebResult<Project> {
    state
        .store
        .project_by_slug(slug)
        .await?
        .ok_or(WebError::NotFound("project"))
}

/// A DSN for a key of a project, for pages listing every key.
pub(crate) fn key_dsn(
    base: &(String, String),
    project: ProjectId,
    key: &crate::protocol::PublicKey,
) -> String {
    Dsn::new(&base.0, key.clone(), &base.1, project).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert!(is_local_path("/projects/a/issues?status=open"));
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/a\nb",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    #[test]
    fn queue_pill_colours() {
        let class = |g| QueuePill::new(g).class;
        let lag = |ms| {
            QueueGauge::Lag(crate::store::QueueBatch {
                at_us: chrono::Utc::now().timestamp_micros() - 120_000_000,
                lag_ms: ms,
            })
        };
        assert_eq!(
            [0, 9, 10].map(|d| class(QueueGauge::Depth(d))),
            ["ok", "warn", "bad"]
        );
        assert_eq!(class(QueueGauge::Unavailable), "unknown");
        // On SQS: the processor's last lag, by its own thresholds.
        assert_eq!(
            [1_500, 90_000, 600_000].map(|ms| class(lag(ms))),
            ["ok", "warn", "bad"]
        );
        let pill = QueuePill::new(lag(1_500));
        assert_eq!((pill.depth, pill.label.as_str()), (None, "1.50 s"));
        assert!(pill.caption.contains("2 min ago"), "{}", pill.caption);
        assert_eq!(QueuePill::new(QueueGauge::NoBatchYet).class, "ok");
    }
}
