//! Delivery: email over SMTP (`lettre`), webhooks (chats' or Splat's JSON, see [`super::chat`]) and an
//! ntfy topic (both over hyper's client with rustls). Each channel is tried on its own, with retries; one
//! failing never keeps another from sending. An alert naming its destinations goes to those only.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{message, Alert, RetryPolicy};
use super::{NotifyConfig, SmtpAuth, SmtpConfig, SmtpTls, Webhook};
use crate::secret::{redact_url, Secret};

/// hyper's client over rustls; also what UI sign-in talks to its OpenID provider with.
pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The configured channels.
#[derive(Clone, Default)]
pub struct Channels {
    email: Option<Email>,
    webhooks: Vec<Webhook>,
    ntfy: Option<Ntfy>,
    http: Option<HttpClient>,
}

#[derive(Clone)]
struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

#[derive(Clone)]
struct Ntfy {
    url: Secret,
    token: Option<Secret>,
    priority: String,
}

impl Channels {
    /// Builds every channel the config turns on. Bad addresses are an error here, at start, not at the
    /// first alert.
    pub fn from_config(config: &NotifyConfig) -> anyhow::Result<Self> {
        let email = match (&config.smtp, config.admin_emails.is_empty()) {
            (Some(smtp), false) => Some(Email {
                transport: smtp_transport(smtp)?,
                from: config.email_from.parse().with_context(|| {
                    format!(
                        "SPLAT_EMAIL_FROM is not an address: {:?}",
                        config.email_from
                    )
                })?,
                to: config
                    .admin_emails
                    .iter()
                    .map(|a| {
                        a.parse()
                            .with_context(|| format!("SPLAT_ADMIN_EMAILS: {a:?} is not an address"))
                    })
                    .collect::<anyhow::Result<_>>()?,
            }),
            (Some(_), true) => {
                tracing::warn!(
                    "SMTP_ADDRESS is set but SPLAT_ADMIN_EMAILS is not: no email alerts"
                );
                None
            }
            (None, _) => None,
        };
        let ntfy = config.ntfy_url.as_ref().map(|url| Ntfy {
            url: url.clone(),
            token: config.ntfy_token.clone(),
            priority: config.ntfy_priority.clone(),
        });
        let webhooks = config.webhooks.clone();
        // Always: webhooks saved on the settings page may come with any alert.
        let http = Some(http_client()?);
        Ok(Self {
            email,
            webhooks,
            ntfy,
            http,
        })
    }

    /// The names of the channels that are on (`email`, each webhook's, `ntfy`): what alert rules pick
    /// destinations by, and the start-up log.
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.email.is_some() {
            names.push("email".to_owned());
        }
        names.extend(self.webhooks.iter().map(|w| w.name.clone()));
        if self.ntfy.is_some() {
            names.push("ntfy".to_owned());
        }
        names
    }

    /// Sends to every channel the alert is for, concurrently; returns how many took it.
    pub async fn deliver(&self, alert: &Alert, retry: RetryPolicy) -> usize {
        let wanted = |name: &str| {
            alert
                .destinations
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == name))
        };
        let email = async {
            match &self.email {
                Some(email) if wanted("email") => {
                    with_retries("email", alert, retry, || send_email(email, alert)).await
                }
                _ => false,
            }
        };
        let webhooks = futures_util::future::join_all(
            self.webhooks
                .iter()
                .chain(&alert.webhooks)
                .filter(|hook| wanted(&hook.name))
                .filter_map(|hook| Some((hook, self.http.as_ref()?)))
                .map(|(hook, http)| {
                    with_retries(&hook.name, alert, retry, move || {
                        send_webhook(http, hook, alert)
                    })
                }),
        );
        let ntfy = async {
            match (&self.ntfy, &self.http) {
                (Some(ntfy), Some(http)) if wanted("ntfy") => {
                    with_retries("ntfy", alert, retry, || send_ntfy(http, ntfy, alert)).await
                }
                _ => false,
            }
        };
        let (email, webhooks, ntfy) = tokio::join!(email, webhooks, ntfy);
        [email, ntfy]
            .into_iter()
            .chain(webhooks)
            .filter(|ok| *ok)
            .count()
    }
}

/// Runs `send` until it succeeds, at most `retry.attempts` times, waiting `backoff`, then twice that, …
/// between tries. Failures are logged; the last one at error level.
async fn with_retries<F, Fut>(channel: &str, alert: &Alert, retry: RetryPolicy, send: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let attempts = retry.attempts.max(1);
    for attempt in 1..=attempts {
        let error = match tokio::time::timeout(retry.timeout, send()).await {
            Ok(Ok(())) => {
                tracing::info!(
                    channel,
                    issue = alert.issue.id,
                    event = alert.kind.event_name(),
                    "alert sent"
                );
                return true;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(_) => format!("timed out after {:?}", retry.timeout),
        };
        if attempt < attempts {
            tracing::warn!(channel, issue = alert.issue.id, attempt, %error, "alert not delivered; retrying");
            tokio::time::sleep(retry.backoff * 2u32.pow(attempt - 1)).await;
        } else {
            tracing::error!(channel, issue = alert.issue.id, attempts, %error, "alert not delivered; giving up");
        }
    }
    false
}

fn smtp_transport(smtp: &SmtpConfig) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls = |host: &str| {
        TlsParameters::builder(host.to_owned())
            .dangerous_accept_invalid_certs(!smtp.verify_certificate)
            .build()
            .context("SMTP TLS setup")
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host).port(smtp.port);
    builder = match smtp.tls {
        SmtpTls::None => builder.tls(Tls::None),
        SmtpTls::Opportunistic => builder.tls(Tls::Opportunistic(tls(&smtp.host)?)),
        SmtpTls::Required => builder.tls(Tls::Required(tls(&smtp.host)?)),
        SmtpTls::Wrapper => builder.tls(Tls::Wrapper(tls(&smtp.host)?)),
    };
    if let Some(user) = &smtp.username {
        builder = builder
            .credentials(Credentials::new(
                user.clone(),
                smtp.password.clone().unwrap_or_default(),
            ))
            .authentication(vec![match smtp.authentication {
                SmtpAuth::Plain => Mechanism::Plain,
                SmtpAuth::Login => Mechanism::Login,
            }]);
    }
    if let Some(domain) = &smtp.domain {
        builder = builder.hello_name(ClientId::Domain(domain.clone()));
    }
    Ok(builder.timeout(Some(Duration::from_secs(10))).build())
}

async fn send_email(email: &Email, alert: &Alert) -> anyhow::Result<()> {
    let mut builder = Message::builder()
        .from(email.from.clone())
        .subject(message::subject(alert));
    for to in &email.to {
        builder = builder.to(to.clone());
    }
    let mail = builder
        .header(ContentType::TEXT_PLAIN)
        .body(message::text(alert))
        .context("building the email")?;
    email.transport.send(mail).await.context("SMTP")?;
    Ok(())
}

/// A client for http and https URLs: rustls with the aws-lc-rs provider and the system's roots (none
/// when the system has none: https then fails per request, http still works).
pub(crate) fn http_client() -> anyhow::Result<HttpClient> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(e) => {
            tracing::warn!(error = %e, "no system root certificates: https requests will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .context("TLS setup")?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

async fn post(
    http: &HttpClient,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> anyhow::Result<()> {
    let mut request =
        http::Request::post(url).header("user-agent", concat!("splat/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    // The URL itself is a credential (a webhook's path, an ntfy topic): errors name its host only.
    let response = http
        .request(request)
        .await
        .with_context(|| format!("posting to {}", redact_url(url)))?;
    let status = response.status();
    // Read (a little of) the body so the connection can be reused, and for the error message.
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        anyhow::bail!("{} answered {status}: {text}", redact_url(url));
    }
    Ok(())
}

async fn send_webhook(http: &HttpClient, hook: &Webhook, alert: &Alert) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&hook.format.body(alert))?;
    post(
        http,
        hook.url.expose(),
        &[("content-type", "application/json".to_owned())],
        body,
    )
    .await
}

async fn send_ntfy(http: &HttpClient, ntfy: &Ntfy, alert: &Alert) -> anyhow::Result<()> {
    let mut headers = message::ntfy_headers(alert);
    headers.push(("Priority", ntfy.priority.clone()));
    headers.push(("content-type", "text/plain; charset=utf-8".to_owned()));
    if let Some(token) = &ntfy.token {
        headers.push(("Authorization", format!("Bearer {}", token.expose())));
    }
    post(
        http,
        ntfy.url.expose(),
        &headers,
        message::text(alert).into_bytes(),
    )
    .await
}
