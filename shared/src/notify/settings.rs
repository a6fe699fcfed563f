//! What alerts are sent with (read by [`crate::config`] from the environment).

use crate::secret::Secret;

/// Notification channels; each one is on when its variables are set.
#[derive(Debug, Clone, Default)]
pub struct NotifyConfig {
    /// `SPLAT_ADMIN_EMAILS`: comma-separated recipients of email alerts.
    pub admin_emails: Vec<String>,
    /// `SPLAT_EMAIL_FROM`, default `splat@localhost`.
    pub email_from: String,
    /// `SMTP_ADDRESS` and the other `SMTP_*`: email is sent when this and `SPLAT_ADMIN_EMAILS` are set.
    pub smtp: Option<SmtpConfig>,
    /// `SPLAT_WEBHOOK_URL`: every alert is POSTed there as JSON.
    pub webhook_url: Option<Secret>,
    /// `SPLAT_NTFY_URL`: the full ntfy topic URL (`https://ntfy.sh/my-topic`).
    pub ntfy_url: Option<Secret>,
    /// `SPLAT_NTFY_TOKEN`: sent as `Authorization: Bearer` to ntfy.
    pub ntfy_token: Option<Secret>,
    /// `SPLAT_NTFY_PRIORITY`: min, low, default (default), high or max.
    pub ntfy_priority: String,
    /// `SPLAT_BURST_THRESHOLD`, default 1000 (the seed's): events in one hour at which an issue is bursting.
    pub burst_threshold: u64,
    /// `SPLAT_MAX_ALERTS_PER_PROJECT_HOUR`, default 20: alerts per project and clock hour; past it one
    /// digest says how many more were held back.
    pub max_alerts_per_project_hour: u64,
    /// `SPLAT_ALERT_OUTBOX=true`: the Lambda processor and monitor tick put each alert in the bucket's
    /// `alerts/` outbox for the notify function instead of delivering it (see [`crate::notify::outbox`]).
    pub alert_outbox: bool,
}

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn any_channel(&self) -> bool {
        (self.smtp.is_some() && !self.admin_emails.is_empty())
            || self.webhook_url.is_some()
            || self.ntfy_url.is_some()
    }
}

/// How to reach the SMTP server (the seed's Rails `SMTP_*` variables).
#[derive(Clone)]
pub struct SmtpConfig {
    /// `SMTP_ADDRESS`: host name.
    pub host: String,
    /// `SMTP_PORT`, default 25 (465 means TLS from the first byte).
    pub port: u16,
    /// `SMTP_DOMAIN`: the name this client gives in `EHLO`.
    pub domain: Option<String>,
    /// `SMTP_USER_NAME` (or `SMTP_USERNAME`) and `SMTP_PASSWORD`: log in when set.
    pub username: Option<String>,
    pub password: Option<String>,
    /// `SMTP_AUTHENTICATION`: `plain` (default) or `login`.
    pub authentication: SmtpAuth,
    /// `SMTP_STARTTLS_AUTO`: `true` (default: STARTTLS when the server offers it), `false` (never), or
    /// `always` (refuse a server without it). Port 465 always uses TLS from the start.
    pub tls: SmtpTls,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("authentication", &self.authentication)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpAuth {
    Plain,
    Login,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    Opportunistic,
    Required,
    Wrapper,
}
