//! What alerts are sent with (read by [`crate::config`] from the environment).

use anyhow::Context;

use super::chat::Format;
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
    /// `SPLAT_WEBHOOK_URL` (named `webhook`, its format from its host or `SPLAT_WEBHOOK_FORMAT`) and the
    /// comma-separated `SPLAT_WEBHOOK_URLS` (`[name=][format:]url` each): every alert is POSTed to each.
    pub webhooks: Vec<Webhook>,
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
            || !self.webhooks.is_empty()
            || self.ntfy_url.is_some()
    }
}

/// One webhook destination: a chat's incoming webhook or any JSON receiver.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    /// What alert rules and logs call it (`slack`, `ops-discord`).
    pub name: String,
    pub format: Format,
    /// The URL is the credential (a Slack webhook's path, Google Chat's key and token): never logged.
    #[serde(with = "crate::secret::exposed")]
    pub url: Secret,
}

/// Longest destination name.
const MAX_NAME_CHARS: usize = 40;
/// Longest webhook URL (Teams Workflows URLs, the longest, are about 300).
const MAX_URL_BYTES: usize = 1000;

impl Webhook {
    /// `url` under `name`, in `format` or the one its host calls for.
    pub fn new(name: &str, format: Option<Format>, url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        anyhow::ensure!(
            url.starts_with("http://") || url.starts_with("https://"),
            "a webhook must be an http:// or https:// URL, got {}",
            crate::secret::redact_url(url)
        );
        anyhow::ensure!(
            url.len() <= MAX_URL_BYTES && !url.contains(|c: char| c == ',' || c.is_whitespace()),
            "a webhook URL has at most {MAX_URL_BYTES} bytes and no comma or space: {}",
            crate::secret::redact_url(url)
        );
        anyhow::ensure!(
            is_name(name),
            "a destination's name is 1 to {MAX_NAME_CHARS} of a-z, 0-9, - and _, got {name:?}"
        );
        Ok(Self {
            name: name.to_owned(),
            format: format.unwrap_or_else(|| Format::detect(url)),
            url: Secret::from(url),
        })
    }

    /// This webhook as an entry of a list [`Webhook::parse_list`] reads back.
    pub fn to_entry(&self) -> String {
        format!(
            "{}={}:{}",
            self.name,
            self.format.as_str(),
            self.url.expose()
        )
    }

    /// A comma-separated list of `[name=][format:]url` (`ops=slack:https://…`, `https://discord.com/…`).
    /// A name left out is the format's (`slack`, `discord`, … or `webhook` for Splat's JSON), numbered
    /// when taken (`slack-2`); `taken` are the names already in use.
    pub fn parse_list(list: &str, taken: &[String]) -> anyhow::Result<Vec<Self>> {
        let mut names: Vec<String> = taken.to_vec();
        let mut out = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, rest) = match entry.split_once('=') {
                Some((name, rest)) if is_name(name.trim()) => (Some(name.trim()), rest.trim()),
                _ => (None, entry),
            };
            let (format, url) = match rest.split_once(':') {
                Some((f, url)) if !url.starts_with("//") => (
                    Some(Format::parse(f).with_context(|| {
                        format!("unknown webhook format {f:?} (json, slack, discord, teams or google_chat)")
                    })?),
                    url,
                ),
                _ => (None, rest),
            };
            let format = format.unwrap_or_else(|| Format::detect(url));
            let name = match name {
                Some(name) => {
                    anyhow::ensure!(
                        !names.iter().any(|n| n == name),
                        "two destinations are named {name:?}"
                    );
                    name.to_owned()
                }
                None => free_name(default_name(format), &names),
            };
            names.push(name.clone());
            out.push(Self::new(&name, Some(format), url)?);
        }
        Ok(out)
    }
}

/// The name a webhook of `format` gets when none is given.
pub fn default_name(format: Format) -> &'static str {
    match format {
        Format::Json => "webhook",
        other => other.as_str(),
    }
}

/// `base`, or `base-2`, `base-3`, … when that is taken.
pub fn free_name(base: &str, taken: &[String]) -> String {
    (1..)
        .map(|i| match i {
            1 => base.to_owned(),
            i => format!("{base}-{i}"),
        })
        .find(|n| !taken.contains(n))
        .unwrap_or_default()
}

/// Whether `name` may name a destination.
pub fn is_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// How to reach the SMTP server (the seed's Rails `SMTP_*` variables).
#[derive(Clone)]
pub struct SmtpConfig {
    /// `SMTP_ADDRESS`: host name.
    pub host: String,
    /// `SMTP_PORT`, default 587 (the seed's: submission with STARTTLS; 465 means TLS from the first byte).
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
    /// `SMTP_OPENSSL_VERIFY_MODE` (the seed's Rails name): `peer` (default) verifies the server's
    /// certificate; `none` accepts any, a self-signed one included (a local relay; open to interception).
    pub verify_certificate: bool,
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
            .field("verify_certificate", &self.verify_certificate)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_lists_name_and_shape_each_destination() {
        let list = "https://hooks.slack.com/services/a, ops=discord:https://proxy.example/d?x=1,\
                    https://hooks.slack.com/services/b, teams:http://127.0.0.1:9/t";
        let hooks = Webhook::parse_list(list, &["webhook".into()]).unwrap();
        let got: Vec<_> = hooks
            .iter()
            .map(|h| (h.name.as_str(), h.format, h.url.expose()))
            .collect();
        assert_eq!(
            got,
            [
                ("slack", Format::Slack, "https://hooks.slack.com/services/a"),
                ("ops", Format::Discord, "https://proxy.example/d?x=1"),
                (
                    "slack-2",
                    Format::Slack,
                    "https://hooks.slack.com/services/b"
                ),
                ("teams", Format::Teams, "http://127.0.0.1:9/t"),
            ]
        );
        assert_eq!(
            Webhook::parse_list("https://x.example/a", &["webhook".into()]).unwrap()[0].name,
            "webhook-2"
        );
        for bad in [
            "irc:https://x.example",
            "ftp://x.example",
            "a=https://x.example,a=https://y.example",
        ] {
            assert!(Webhook::parse_list(bad, &[]).is_err(), "{bad}");
        }
        let back = Webhook::parse_list(
            &hooks
                .iter()
                .map(Webhook::to_entry)
                .collect::<Vec<_>>()
                .join(","),
            &[],
        )
        .unwrap();
        assert_eq!(back, hooks, "a saved list reads back the same");
        let error = Webhook::parse_list("ftp://h.example/secret-path", &[]).unwrap_err();
        assert!(!format!("{error:#}").contains("secret-path"));
    }
}
