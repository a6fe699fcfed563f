//! Every setting, read from the environment once at start. Command-line flags override some of them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::protocol::Limits;
use crate::secret::{is_loopback_url, Secret};
use crate::store::Journal;

// Settings types live with the modules that use them (config is the last layer); read here.
pub use crate::http_server::EdgeLimits;
pub use crate::notify::{NotifyConfig, SmtpAuth, SmtpConfig, SmtpTls, Webhook};
pub use crate::web::auth::{OidcConfig, SignInConfig};

#[derive(Debug, Clone)]
pub struct Config {
    /// `SPLAT_BIND`, default `127.0.0.1:3030`.
    pub bind: SocketAddr,
    /// `SPLAT_DATA_DIR`, default `./data`: holds `splat.db`, `queue.db` and `lake/`.
    pub data_dir: PathBuf,
    /// `SPLAT_DATABASE_PATH`, default `<data-dir>/splat.db`.
    pub database_path: PathBuf,
    /// `SPLAT_SQLITE_JOURNAL`: `wal` or `delete` (for a database on EFS or NFS). Unset: an existing file
    /// keeps the journal it has, a new one gets WAL ([`crate::store::Store::open_writer`]).
    pub journal: Option<Journal>,
    /// `SPLAT_DATABASE_URL` and `SPLAT_DATABASE_TOKEN`: the database on a libSQL server instead of
    /// `database_path` (the local queue, when used, stays a file in the data directory).
    pub remote_database: Option<crate::store::RemoteDatabase>,
    /// `SPLAT_PUBLIC_URL`: scheme and host SDKs reach us at, for printed DSNs (default from the bind address).
    pub public_url: Option<String>,
    /// `SPLAT_ALLOWED_HOSTS`: comma-separated host names the UI answers to besides `localhost`, loopback,
    /// the bound address and `SPLAT_PUBLIC_URL`'s host (see [`crate::web::front_door`]).
    pub allowed_hosts: Vec<String>,
    /// `SPLAT_ORIGIN_SECRET`: when set, every UI request must carry it in `x-splat-origin-secret` (CloudFront
    /// adds it; the function URL alone is refused).
    pub origin_secret: Option<Secret>,
    /// `SPLAT_INTERNAL_URL`: scheme and host SDKs on the same machine or network use; the UI shows a second
    /// DSN with it (`splat serve` defaults it to the bound address).
    pub internal_url: Option<String>,
    /// `SPLAT_QUEUE_URL`: use this SQS queue instead of the local one.
    pub queue_url: Option<String>,
    /// `SPLAT_BUCKET`: use this S3 bucket instead of the local blob folder.
    pub bucket: Option<String>,
    /// `SPLAT_S3_FORCE_PATH_STYLE`: needed for emulators reached by host name.
    pub s3_force_path_style: bool,
    /// `SPLAT_MAX_BODY_BYTES`, `SPLAT_MAX_ENVELOPE_BYTES`, `SPLAT_MAX_EVENT_BYTES`.
    pub limits: Limits,
    /// `SPLAT_BATCH_SIZE`, default 100: messages per processor transaction.
    pub batch_size: usize,
    /// `SPLAT_BATCH_WINDOW_MS`, default 200: how long `splat serve`'s processor waits to fill a batch.
    pub batch_window: Duration,
    /// `SPLAT_KEY_CACHE_SECS`, default 30: how long ingest trusts a cached key lookup.
    pub key_cache_ttl: Duration,
    /// `SPLAT_QUEUE_VISIBILITY_SECS` (default 60) and `SPLAT_QUEUE_MAX_RECEIVES` (default 5), local queue.
    pub queue_visibility: Duration,
    pub queue_max_receives: u32,
    /// `SPLAT_QUEUE_MAX_BYTES`: the local queue file's cap; past it ingest answers 503 (default: the disk).
    pub queue_max_bytes: Option<u64>,
    /// `MCP_AUTH_TOKEN`: the bearer token `/mcp` requires; unset (or empty), `/mcp` refuses every request.
    pub mcp_auth_token: Option<Secret>,
    /// `QUEUE_WARNING_THRESHOLD` (default 50) and `QUEUE_CRITICAL_THRESHOLD` (default 100): messages waiting
    /// at which `/_health` calls the queue `warning`, then `critical` (and answers 503).
    pub queue_warning_threshold: u64,
    pub queue_critical_threshold: u64,
    /// Where alerts about new, regressed and bursting issues go (see [`crate::notify`]).
    pub notify: NotifyConfig,
    /// How long data is kept (`SPLAT_MAX_*_LIFE_DAYS`; see [`crate::retention::Horizons`]).
    pub retention: crate::retention::Horizons,
    /// Who may use the UI (see [`crate::web::auth`]).
    pub sign_in: SignInConfig,
    /// `SPLAT_MONITOR_EVALUATE_SECS`, default 60: how often `splat serve` evaluates cron monitors.
    pub monitor_evaluate_every: Duration,
    /// `SPLAT_SPAN_SETTLE_SECS`, default 3600: how long a streamed segment's spans stay in the database
    /// after its last span arrived (a late child still corrects its figures); the lake alone holds them after.
    pub span_settle: Duration,
    /// `SPLAT_MAX_MONITORS_PER_PROJECT`, default 100: check-ins for a new monitor past it are dropped.
    pub max_monitors_per_project: usize,
    /// `SPLAT_TEST_PANIC_ON_MARKER`, for tests only: the processor panics on any envelope containing
    /// this text (the tests prove a panic loses nothing). Never set it in production.
    pub test_panic_marker: Option<String>,
    /// What the network edge may hold: ingest memory, connections and their timeouts.
    pub edge: EdgeLimits,
    /// `SPLAT_MAX_ARTIFACT_FILE_BYTES` and `SPLAT_MAX_BUNDLE_BYTES`: what a source map upload may hold.
    pub artifacts: crate::artifacts::ArtifactLimits,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the config from any variable source; tests pass a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let parse = |name: &str, default: u64| -> anyhow::Result<u64> {
            get(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .with_context(|| format!("{name} must be a whole number, got {v:?}"))
            })
        };
        let bind = get("SPLAT_BIND").unwrap_or_else(|| "127.0.0.1:3030".into());
        let bind = bind
            .parse()
            .with_context(|| format!("SPLAT_BIND must be host:port, got {bind:?}"))?;
        let data_dir = PathBuf::from(get("SPLAT_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let defaults = Limits::default();
        let limits = Limits {
            max_body_bytes: parse("SPLAT_MAX_BODY_BYTES", defaults.max_body_bytes as u64)? as usize,
            max_envelope_bytes: parse(
                "SPLAT_MAX_ENVELOPE_BYTES",
                defaults.max_envelope_bytes as u64,
            )? as usize,
            max_event_bytes: parse("SPLAT_MAX_EVENT_BYTES", defaults.max_event_bytes as u64)?
                as usize,
            ..defaults
        };
        Ok(Self {
            bind,
            database_path: get("SPLAT_DATABASE_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| data_dir.join("splat.db")),
            data_dir,
            journal: match get("SPLAT_SQLITE_JOURNAL") {
                None => None,
                Some(v) => Some(Journal::parse(&v).with_context(|| {
                    format!("SPLAT_SQLITE_JOURNAL must be wal or delete, got {v:?}")
                })?),
            },
            remote_database: crate::store::RemoteDatabase::from_lookup(&get)?,
            public_url: public_url(&get),
            allowed_hosts: get("SPLAT_ALLOWED_HOSTS")
                .map(|list| {
                    list.split(',')
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            origin_secret: get("SPLAT_ORIGIN_SECRET")
                .filter(|s| !s.trim().is_empty())
                .map(Secret::from),
            internal_url: internal_url(&get),
            queue_url: get("SPLAT_QUEUE_URL").filter(|s| !s.is_empty()),
            bucket: get("SPLAT_BUCKET").filter(|s| !s.is_empty()),
            s3_force_path_style: get("SPLAT_S3_FORCE_PATH_STYLE")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            limits,
            batch_size: parse("SPLAT_BATCH_SIZE", 100)?.clamp(1, 10_000) as usize,
            batch_window: Duration::from_millis(parse("SPLAT_BATCH_WINDOW_MS", 200)?.min(60_000)),
            key_cache_ttl: Duration::from_secs(parse("SPLAT_KEY_CACHE_SECS", 30)?),
            span_settle: Duration::from_secs(parse(
                "SPLAT_SPAN_SETTLE_SECS",
                crate::process::DEFAULT_SPAN_SETTLE_SECS,
            )?),
            queue_visibility: Duration::from_secs(parse("SPLAT_QUEUE_VISIBILITY_SECS", 60)?),
            queue_max_receives: parse("SPLAT_QUEUE_MAX_RECEIVES", 5)?.max(1) as u32,
            queue_max_bytes: get("SPLAT_QUEUE_MAX_BYTES")
                .map(|_| parse("SPLAT_QUEUE_MAX_BYTES", 0))
                .transpose()?,
            mcp_auth_token: get("MCP_AUTH_TOKEN")
                .filter(|t| !t.trim().is_empty())
                .map(Secret::from),
            queue_warning_threshold: parse("QUEUE_WARNING_THRESHOLD", 50)?,
            queue_critical_threshold: parse("QUEUE_CRITICAL_THRESHOLD", 100)?,
            notify: notify_config(&get, &parse)?,
            retention: crate::retention::Horizons::from_lookup(&get)?,
            sign_in: sign_in_config(&get),
            monitor_evaluate_every: Duration::from_secs(
                parse("SPLAT_MONITOR_EVALUATE_SECS", 60)?.max(1),
            ),
            max_monitors_per_project: parse(
                "SPLAT_MAX_MONITORS_PER_PROJECT",
                crate::monitors::DEFAULT_MAX_MONITORS_PER_PROJECT as u64,
            )? as usize,
            test_panic_marker: get("SPLAT_TEST_PANIC_ON_MARKER").filter(|m| !m.is_empty()),
            edge: EdgeLimits {
                ingest_memory_bytes: parse(
                    "SPLAT_INGEST_MEMORY_BYTES",
                    default_ingest_memory(get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")),
                )?
                .max(1 << 20) as usize,
                max_connections: parse("SPLAT_MAX_CONNECTIONS", 512)?.max(1) as usize,
                header_timeout: Duration::from_secs(parse("SPLAT_HEADER_TIMEOUT_SECS", 30)?.max(1)),
                request_timeout: Duration::from_secs(
                    parse("SPLAT_REQUEST_TIMEOUT_SECS", 60)?.max(1),
                ),
            },
            artifacts: {
                let defaults = crate::artifacts::ArtifactLimits::default();
                crate::artifacts::ArtifactLimits {
                    max_file_bytes: parse(
                        "SPLAT_MAX_ARTIFACT_FILE_BYTES",
                        defaults.max_file_bytes as u64,
                    )?
                    .max(1) as usize,
                    max_bundle_bytes: parse(
                        "SPLAT_MAX_BUNDLE_BYTES",
                        defaults.max_bundle_bytes as u64,
                    )?
                    .max(1) as usize,
                }
            },
        })
    }

    /// Points the data directory (and the database inside it) somewhere else, as `--data-dir` does.
    pub fn with_data_dir(mut self, dir: PathBuf) -> Self {
        if self.database_path == self.data_dir.join("splat.db") {
            self.database_path = dir.join("splat.db");
        }
        self.data_dir = dir;
        self
    }

    pub fn queue_path(&self) -> PathBuf {
        self.data_dir.join("queue.db")
    }

    pub fn lake_dir(&self) -> PathBuf {
        self.data_dir.join("lake")
    }

    /// `scheme://host[:port]` for DSNs, given the address actually bound.
    pub fn public_base(&self, bound: SocketAddr) -> (String, String) {
        if let Some(url) = &self.public_url {
            if let Some((scheme, host)) = url.split_once("://") {
                return (scheme.to_owned(), host.to_owned());
            }
        }
        let host = if bound.ip().is_unspecified() {
            format!("127.0.0.1:{}", bound.port())
        } else {
            bound.to_string()
        };
        ("http".to_owned(), host)
    }
}

fn notify_config(
    get: &impl Fn(&str) -> Option<String>,
    parse: &impl Fn(&str, u64) -> anyhow::Result<u64>,
) -> anyhow::Result<NotifyConfig> {
    let set = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let url = |name: &str| -> anyhow::Result<Option<String>> {
        match set(name) {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u)),
            Some(u) => anyhow::bail!("{name} must be an http:// or https:// URL, got {u:?}"),
            None => Ok(None),
        }
    };
    let smtp = match set("SMTP_ADDRESS") {
        None => None,
        Some(host) => {
            let port = parse("SMTP_PORT", 587)?;
            let port =
                u16::try_from(port).with_context(|| format!("SMTP_PORT {port} is out of range"))?;
            let authentication = match set("SMTP_AUTHENTICATION")
                .as_deref()
                .map(str::to_ascii_lowercase)
            {
                None => SmtpAuth::Plain,
                Some(a) if a == "plain" => SmtpAuth::Plain,
                Some(a) if a == "login" => SmtpAuth::Login,
                Some(a) => anyhow::bail!("SMTP_AUTHENTICATION must be plain or login, got {a:?}"),
            };
            let tls = if port == 465 {
                SmtpTls::Wrapper
            } else {
                match set("SMTP_STARTTLS_AUTO")
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                {
                    None => SmtpTls::Opportunistic,
                    Some(v) if v == "true" || v == "1" => SmtpTls::Opportunistic,
                    Some(v) if v == "false" || v == "0" => SmtpTls::None,
                    Some(v) if v == "always" || v == "required" => SmtpTls::Required,
                    Some(v) => {
                        anyhow::bail!("SMTP_STARTTLS_AUTO must be true, false or always, got {v:?}")
                    }
                }
            };
            Some(SmtpConfig {
                host,
                port,
                domain: set("SMTP_DOMAIN"),
                username: set("SMTP_USER_NAME").or_else(|| set("SMTP_USERNAME")),
                password: get("SMTP_PASSWORD").filter(|p| !p.is_empty()),
                authentication,
                tls,
                verify_certificate: match set("SMTP_OPENSSL_VERIFY_MODE")
                    .map(|v| v.to_ascii_lowercase())
                    .as_deref()
                {
                    None | Some("peer" | "client_once" | "fail_if_no_peer_cert") => true,
                    Some("none") => false,
                    Some(v) => {
                        anyhow::bail!("SMTP_OPENSSL_VERIFY_MODE must be peer or none, got {v:?}")
                    }
                },
            })
        }
    };
    let ntfy_priority = set("SPLAT_NTFY_PRIORITY")
        .unwrap_or_else(|| "default".into())
        .to_ascii_lowercase();
    if ![
        "min", "low", "default", "high", "max", "1", "2", "3", "4", "5",
    ]
    .contains(&ntfy_priority.as_str())
    {
        anyhow::bail!(
            "SPLAT_NTFY_PRIORITY must be min, low, default, high or max, got {ntfy_priority:?}"
        );
    }
    Ok(NotifyConfig {
        admin_emails: set("SPLAT_ADMIN_EMAILS")
            .map(|list| {
                list.split(',')
                    .map(|a| a.trim().to_owned())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        email_from: set("SPLAT_EMAIL_FROM").unwrap_or_else(|| "splat@localhost".into()),
        smtp,
        webhooks: webhooks(&set)?,
        ntfy_url: url("SPLAT_NTFY_URL")?.map(Secret::from),
        ntfy_token: set("SPLAT_NTFY_TOKEN").map(Secret::from),
        ntfy_priority,
        burst_threshold: parse("SPLAT_BURST_THRESHOLD", 1000)?.max(1),
        max_alerts_per_project_hour: parse("SPLAT_MAX_ALERTS_PER_PROJECT_HOUR", 20)?.max(1),
        alert_outbox: set("SPLAT_ALERT_OUTBOX")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
    })
}

/// `SPLAT_PUBLIC_URL`, or the seed's `SPLAT_HOST` (a host and maybe a port): https, or http when it names
/// localhost, as the seed's DSNs were.
fn public_url(get: &impl Fn(&str) -> Option<String>) -> Option<String> {
    url_or_seed_host(get, "SPLAT_PUBLIC_URL", "SPLAT_HOST", |host| {
        if host.contains("localhost") {
            "http"
        } else {
            "https"
        }
    })
}

/// `SPLAT_INTERNAL_URL`, or the seed's `SPLAT_INTERNAL_HOST` (a host and port, always over http there).
fn internal_url(get: &impl Fn(&str) -> Option<String>) -> Option<String> {
    url_or_seed_host(get, "SPLAT_INTERNAL_URL", "SPLAT_INTERNAL_HOST", |_| "http")
}

/// The URL in `url_var`, else the host in the seed's `host_var` with the scheme `scheme` picks for it;
/// without a trailing slash.
fn url_or_seed_host(
    get: &impl Fn(&str) -> Option<String>,
    url_var: &str,
    host_var: &str,
    scheme: impl Fn(&str) -> &'static str,
) -> Option<String> {
    let set = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let url = set(url_var).or_else(|| {
        let host = set(host_var)?;
        Some(match host.contains("://") {
            true => host,
            false => format!("{}://{host}", scheme(&host)),
        })
    })?;
    Some(url.trim_end_matches('/').to_owned())
}

/// `SPLAT_WEBHOOK_URL` (with `SPLAT_WEBHOOK_FORMAT`), then the list in `SPLAT_WEBHOOK_URLS`.
fn webhooks(set: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Vec<Webhook>> {
    let mut hooks = Vec::new();
    if let Some(url) = set("SPLAT_WEBHOOK_URL") {
        let format = match set("SPLAT_WEBHOOK_FORMAT") {
            Some(f) => Some(crate::notify::Format::parse(&f).with_context(|| {
                format!("SPLAT_WEBHOOK_FORMAT must be json, slack, discord, teams or google_chat, got {f:?}")
            })?),
            None => None,
        };
        hooks.push(Webhook::new("webhook", format, &url).context("SPLAT_WEBHOOK_URL")?);
    }
    if let Some(list) = set("SPLAT_WEBHOOK_URLS") {
        let taken: Vec<String> = hooks.iter().map(|h| h.name.clone()).collect();
        hooks.extend(Webhook::parse_list(&list, &taken).context("SPLAT_WEBHOOK_URLS")?);
    }
    Ok(hooks)
}

/// The sign-in mode. Any sign-in variable set turns it on, so a typo or a forgotten variable can never leave
/// the UI open by accident: it is `Incomplete` until every required one is there.
fn sign_in_config(get: &impl Fn(&str) -> Option<String>) -> SignInConfig {
    let set = |name: &str| {
        get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let list = |name: &str| -> Vec<String> {
        set(name)
            .map(|v| {
                v.split(',')
                    .map(|x| x.trim().to_ascii_lowercase())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    const REQUIRED: [&str; 3] = ["OIDC_DISCOVERY_URL", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"];
    // SPLAT_SESSION_SECRET alone does not turn sign-in on: a deployment may always set it.
    const OPTIONAL: [&str; 3] = [
        "OIDC_REDIRECT_URI",
        "SPLAT_ALLOWED_USERS",
        "SPLAT_ALLOWED_DOMAINS",
    ];
    let present: Vec<&str> = REQUIRED
        .iter()
        .chain(OPTIONAL.iter())
        .copied()
        .filter(|name| set(name).is_some())
        .collect();
    if present.is_empty() {
        return SignInConfig::Open;
    }
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|name| set(name).is_none())
        .collect();
    let (allowed_users, allowed_domains) =
        (list("SPLAT_ALLOWED_USERS"), list("SPLAT_ALLOWED_DOMAINS"));
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} {} not set (sign-in is on because {} {})",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            present.join(", "),
            if present.len() == 1 { "is" } else { "are" },
        ));
    }
    if allowed_users.is_empty() && allowed_domains.is_empty() {
        problems.push(
            "neither SPLAT_ALLOWED_USERS nor SPLAT_ALLOWED_DOMAINS is set, so nobody could sign in"
                .into(),
        );
    }
    let session_secret = set("SPLAT_SESSION_SECRET");
    if session_secret.as_ref().is_some_and(|s| s.len() < 32) {
        problems.push("SPLAT_SESSION_SECRET is shorter than 32 characters".into());
    }
    let discovery = set("OIDC_DISCOVERY_URL").unwrap_or_default();
    let is_url = discovery.starts_with("https://") || discovery.starts_with("http://");
    if !discovery.is_empty() && !is_url {
        problems.push("OIDC_DISCOVERY_URL must be an http:// or https:// URL".into());
    }
    if discovery.starts_with("http://") && !is_loopback_url(&discovery) {
        // Over plain http anyone on the path could swap the provider's keys and sign in as anybody.
        problems.push(
            "OIDC_DISCOVERY_URL must be https:// (http:// only for a provider on this machine)"
                .into(),
        );
    }
    if !problems.is_empty() {
        return SignInConfig::Incomplete(problems.join("; "));
    }
    let issuer = discovery
        .trim_end_matches('/')
        .trim_end_matches("/.well-known/openid-configuration")
        .to_owned();
    SignInConfig::Oidc(OidcConfig {
        issuer,
        client_id: set("OIDC_CLIENT_ID").unwrap_or_default(),
        client_secret: set("OIDC_CLIENT_SECRET").unwrap_or_default(),
        redirect_uri: set("OIDC_REDIRECT_URI"),
        allowed_users,
        allowed_domains,
        session_secret,
        allow_missing_email_verified: get("OIDC_ALLOW_MISSING_EMAIL_VERIFIED")
            .is_some_and(|v| v.trim() == "1" || v.trim().eq_ignore_ascii_case("true")),
    })
}

/// The ingest memory budget when none is set: 128 MiB, or in Lambda half the function's memory
/// (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB) when that is less. The other half is the process itself:
/// at 128 MB with a 64 MiB budget, ingest peaked at 105 MB on an envelope refused for the budget
/// (BENCHMARKS.md, "Cost per million").
fn default_ingest_memory(function_memory_mb: Option<String>) -> u64 {
    let process = 128 << 20;
    match function_memory_mb.and_then(|mb| mb.trim().parse::<u64>().ok()) {
        Some(mb) => process.min((mb << 20) / 2),
        None => process,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.bind.to_string(), c.database_path.clone()),
            ("127.0.0.1:3030".into(), PathBuf::from("./data/splat.db"))
        );
        let c = c.with_data_dir("/tmp/x".into());
        assert_eq!(
            (c.database_path.clone(), c.queue_path()),
            (
                PathBuf::from("/tmp/x/splat.db"),
                PathBuf::from("/tmp/x/queue.db")
            )
        );
        let c = config(&[("SPLAT_BIND", "0.0.0.0:9"), ("SPLAT_MAX_EVENT_BYTES", "10")]).unwrap();
        assert_eq!(c.limits.max_event_bytes, 10);
        assert_eq!(c.public_base(c.bind), ("http".into(), "127.0.0.1:9".into()));
        assert!(config(&[("SPLAT_BIND", "nope")])
            .unwrap_err()
            .to_string()
            .contains("SPLAT_BIND"));
        assert!(config(&[("SPLAT_BATCH_SIZE", "x")]).is_err());
        assert_eq!(c.span_settle, Duration::from_secs(3600));
        let settle = config(&[("SPLAT_SPAN_SETTLE_SECS", "60")]).unwrap();
        assert_eq!(settle.span_settle, Duration::from_secs(60));
        assert_eq!(
            config(&[("SPLAT_SQLITE_JOURNAL", "delete")])
                .unwrap()
                .journal,
            Some(Journal::Delete)
        );
        assert!(config(&[("SPLAT_SQLITE_JOURNAL", "off")]).is_err());
    }

    /// A Lambda function's budget for request bodies is half its memory (at most the default's 128 MiB),
    /// so that a small ingest function refuses a body rather than run out of memory.
    #[test]
    fn the_ingest_memory_budget_follows_the_function_memory() {
        let budget = |vars: &[(&str, &str)]| config(vars).unwrap().edge.ingest_memory_bytes;
        assert_eq!(budget(&[]), 128 << 20);
        assert_eq!(
            budget(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]),
            64 << 20
        );
        assert_eq!(
            budget(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]),
            128 << 20
        );
        assert_eq!(
            budget(&[
                ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
                ("SPLAT_INGEST_MEMORY_BYTES", "5000000")
            ]),
            5_000_000
        );
    }

    #[test]
    fn health_thresholds_and_notification_channels() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.queue_warning_threshold, c.queue_critical_threshold),
            (50, 100)
        );
        assert_eq!(c.notify.burst_threshold, 1000);
        assert!(!c.notify.any_channel());
        let c = config(&[
            ("SMTP_ADDRESS", "mail.example.com"),
            ("SMTP_PORT", "587"),
            ("SMTP_USER_NAME", "me"),
            ("SMTP_PASSWORD", "secret"),
            ("SMTP_AUTHENTICATION", "login"),
            ("SPLAT_ADMIN_EMAILS", "a@example.com, b@example.com,"),
            ("QUEUE_CRITICAL_THRESHOLD", "7"),
        ])
        .unwrap();
        let smtp = c.notify.smtp.clone().unwrap();
        assert_eq!(
            (smtp.port, smtp.authentication, smtp.tls),
            (587, SmtpAuth::Login, SmtpTls::Opportunistic)
        );
        assert!(
            !format!("{smtp:?}").contains("secret"),
            "the password never reaches a log"
        );
        assert_eq!(c.notify.admin_emails, ["a@example.com", "b@example.com"]);
        assert_eq!(c.queue_critical_threshold, 7);
        assert!(c.notify.any_channel());
        let tls = |vars: &[(&str, &str)]| config(vars).unwrap().notify.smtp.unwrap().tls;
        assert_eq!(
            tls(&[("SMTP_ADDRESS", "h"), ("SMTP_PORT", "465")]),
            SmtpTls::Wrapper
        );
        assert_eq!(
            tls(&[("SMTP_ADDRESS", "h"), ("SMTP_STARTTLS_AUTO", "false")]),
            SmtpTls::None
        );
        assert_eq!(
            tls(&[("SMTP_ADDRESS", "h"), ("SMTP_STARTTLS_AUTO", "always")]),
            SmtpTls::Required
        );
        assert!(config(&[("SPLAT_WEBHOOK_URL", "ftp://x")]).is_err());
        assert!(config(&[("SPLAT_NTFY_PRIORITY", "urgent")]).is_err());
        assert!(config(&[("SPLAT_NTFY_URL", "https://ntfy.sh/t")])
            .unwrap()
            .notify
            .any_channel());
    }

    #[test]
    fn smtp_defaults_to_587_with_starttls_and_a_verified_certificate() {
        let smtp = |vars: &[(&str, &str)]| config(vars).unwrap().notify.smtp.unwrap();
        let default = smtp(&[("SMTP_ADDRESS", "h")]);
        assert_eq!(
            (default.port, default.tls, default.verify_certificate),
            (587, SmtpTls::Opportunistic, true)
        );
        let relay = smtp(&[("SMTP_ADDRESS", "h"), ("SMTP_OPENSSL_VERIFY_MODE", "none")]);
        assert!(!relay.verify_certificate);
        assert!(
            smtp(&[("SMTP_ADDRESS", "h"), ("SMTP_OPENSSL_VERIFY_MODE", "PEER")]).verify_certificate
        );
        assert!(config(&[("SMTP_ADDRESS", "h"), ("SMTP_OPENSSL_VERIFY_MODE", "maybe")]).is_err());
    }

    #[test]
    fn the_seeds_host_variables_are_aliases() {
        let urls = |vars: &[(&str, &str)]| {
            let c = config(vars).unwrap();
            (c.public_url, c.internal_url)
        };
        assert_eq!(
            urls(&[
                ("SPLAT_HOST", "splat.example.com"),
                ("SPLAT_INTERNAL_HOST", "100.64.0.7:3030")
            ]),
            (
                Some("https://splat.example.com".into()),
                Some("http://100.64.0.7:3030".into())
            )
        );
        assert_eq!(
            urls(&[("SPLAT_HOST", "localhost:3030")]).0.as_deref(),
            Some("http://localhost:3030")
        );
        // The new names win.
        assert_eq!(
            urls(&[
                ("SPLAT_HOST", "old.example.com"),
                ("SPLAT_PUBLIC_URL", "https://new.example.com/"),
                ("SPLAT_INTERNAL_HOST", "10.0.0.1:1"),
                ("SPLAT_INTERNAL_URL", "http://127.0.0.1:3030"),
            ]),
            (
                Some("https://new.example.com".into()),
                Some("http://127.0.0.1:3030".into())
            )
        );
        assert_eq!(urls(&[]), (None, None));
    }

    #[test]
    fn plain_http_issuers_only_on_this_machine() {
        let with = |issuer: &str| {
            config(&[
                ("OIDC_DISCOVERY_URL", issuer),
                ("OIDC_CLIENT_ID", "splat"),
                ("OIDC_CLIENT_SECRET", "s3cret"),
                ("SPLAT_ALLOWED_USERS", "a@example.com"),
            ])
            .unwrap()
            .sign_in
        };
        for local in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/realms/x",
            "http://[::1]:9000",
        ] {
            assert!(matches!(with(local), SignInConfig::Oidc(_)), "{local}");
        }
        for remote in [
            "http://id.example.com",
            "http://localhost.evil.example",
            "http://127.0.0.1@id.example.com",
        ] {
            let SignInConfig::Incomplete(why) = with(remote) else {
                panic!("{remote} is refused")
            };
            assert!(why.contains("must be https://"), "{why}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = config(&[
            ("MCP_AUTH_TOKEN", "mcp-tk"),
            ("SPLAT_WEBHOOK_URL", "https://hooks.example/T0/secret-path"),
            ("SPLAT_NTFY_URL", "https://ntfy.example/secret-topic"),
            ("SPLAT_NTFY_TOKEN", "ntfy-tk"),
            ("SPLAT_ORIGIN_SECRET", "origin-tk"),
        ])
        .unwrap();
        let printed = format!("{c:?}");
        for secret in [
            "mcp-tk",
            "secret-path",
            "secret-topic",
            "ntfy-tk",
            "origin-tk",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
    }

    #[test]
    fn sign_in_is_open_complete_or_refused() {
        let sign_in = |vars: &[(&str, &str)]| config(vars).unwrap().sign_in;
        assert_eq!(sign_in(&[]), SignInConfig::Open);
        assert_eq!(
            sign_in(&[("SPLAT_SESSION_SECRET", "x")]),
            SignInConfig::Open,
            "a session secret alone is not a sign-in setting"
        );
        let full = [
            (
                "OIDC_DISCOVERY_URL",
                "https://id.example.com/.well-known/openid-configuration",
            ),
            ("OIDC_CLIENT_ID", "splat"),
            ("OIDC_CLIENT_SECRET", "s3cret"),
            ("SPLAT_ALLOWED_DOMAINS", "Example.com, *.corp.example"),
        ];
        let SignInConfig::Oidc(oidc) = sign_in(&full) else {
            panic!("complete settings turn OIDC on")
        };
        assert_eq!(oidc.issuer, "https://id.example.com");
        assert_eq!(oidc.allowed_domains, ["example.com", "*.corp.example"]);
        assert!(!format!("{oidc:?}").contains("s3cret"));
        let SignInConfig::Incomplete(why) = sign_in(&full[1..]) else {
            panic!("a missing discovery URL refuses")
        };
        assert!(why.contains("OIDC_DISCOVERY_URL is not set"), "{why}");
        let SignInConfig::Incomplete(why) = sign_in(&[("SPLAT_ALLOWED_USERS", "a@b.c")]) else {
            panic!("an allowlist alone refuses")
        };
        assert!(
            why.contains("OIDC_DISCOVERY_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET are not set"),
            "{why}"
        );
        let SignInConfig::Incomplete(why) = sign_in(&full[..3]) else {
            panic!("no allowlist refuses")
        };
        assert!(why.contains("SPLAT_ALLOWED_USERS"), "{why}");
        let mut short = full.to_vec();
        short.push(("SPLAT_SESSION_SECRET", "short"));
        assert!(matches!(sign_in(&short), SignInConfig::Incomplete(_)));
    }
}
