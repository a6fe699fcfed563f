//! Alerts about issues: a new issue, a regression (a resolved issue seen again) and an event burst (an
//! issue seen at least `SPLAT_BURST_THRESHOLD` times in one hour), sent by email (SMTP), to a JSON webhook
//! and to an ntfy topic.
//!
//! Never on the ingest path and never in the writer's way: the processor hands each batch's
//! [`IssueChange`]s to a [`NotifyHandle`], which only `try_send`s them into a bounded channel (dropping
//! and logging when it is full). A background task ([`spawn`]) looks each issue up over its own database
//! connection, formats the alert ([`message`]) and delivers it to every channel ([`channels`]) with
//! retries; failures are logged, never raised. Every minute the same task looks for bursting issues
//! ([`Store::claim_bursting`], which records what it alerted in `notifications_sent`, so a restart does
//! not alert twice).
//!
//! In Lambda nothing survives between invocations, so the processor function calls
//! [`Notifier::deliver_changes`] right after the batch commit, under a short deadline, instead. There the
//! decisions (budget, bursts) are taken as everywhere, but the delivery is not: the processor's VPC has no
//! way to the internet, so each alert goes whole into the bucket's outbox ([`outbox`]), and the notify
//! function, outside the VPC, delivers it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::store::{Issue, IssueChange, IssueStatus, Project, Store, Verdict};

pub mod channels;
pub mod chat;
pub mod message;
pub mod outbox;
pub mod rules;
mod settings;

pub use channels::Channels;
pub use chat::Format;
pub use settings::{
    default_name as default_destination_name, free_name as free_destination_name,
    is_name as is_destination_name, NotifyConfig, SmtpAuth, SmtpConfig, SmtpTls, Webhook,
};

/// What happened to the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlertKind {
    Created,
    Regressed,
    /// `events` in the hour starting at `hour` (Unix seconds).
    Burst {
        events: i64,
        hour: i64,
    },
    /// The project's alert budget ran out in the hour starting at `hour`: `suppressed` alerts were held
    /// back (the issue is the latest of them). See [`Store::claim_alert`].
    Digest {
        suppressed: i64,
        hour: i64,
        limit: u64,
    },
    /// Sent from the project settings page's "Send a test alert" button.
    Test,
}

impl AlertKind {
    /// The webhook's `event` field.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Created => "issue.created",
            Self::Regressed => "issue.regressed",
            Self::Burst { .. } => "issue.burst",
            Self::Digest { .. } => "project.alerts_suppressed",
            Self::Test => "splat.test",
        }
    }
}

/// One alert, with everything a channel shows (and, as JSON, what an outbox object holds).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub issue: Issue,
    pub project: Project,
    /// The issue's page in the UI.
    pub url: String,
    /// The environment of the issue's latest event.
    #[serde(default)]
    pub environment: Option<String>,
    /// The destinations (channel names: `email`, `ntfy`, a webhook's name) the project's alert rules
    /// send this alert to; `None`: every one. Decided where the alert is, never by the sender.
    #[serde(default)]
    pub destinations: Option<Vec<String>>,
    /// The webhooks saved on the settings page, read where the alert is decided: they travel with it,
    /// since the notify function has no database.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

/// Looks issues up and delivers alerts about them. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sink: Sink,
    /// `scheme://host[:port]` of the UI, for links.
    ui_base: String,
    burst_threshold: u64,
    retry: RetryPolicy,
    /// Alerts per project and clock hour (0: no cap); see [`Store::claim_alert`].
    alert_cap: u64,
    /// Set when an alert was held back since the digests were last sent.
    suppressed: std::sync::atomic::AtomicBool,
}

/// Where a notifier's alerts go.
#[derive(Clone)]
pub enum Sink {
    /// Straight to the channels (`splat serve`, or a Lambda with a way to the internet).
    Channels(Box<Channels>),
    /// Into the bucket's outbox, for the notify function to deliver (the Lambda processor and monitor tick).
    Outbox(outbox::Outbox),
}

/// How often a failed delivery is tried and how long to wait between tries (doubling).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub backoff: Duration,
    /// Longest one attempt may take.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The `settings` key of the webhooks saved on the settings page: a list as `SPLAT_WEBHOOK_URLS` takes
/// (`name=format:url`, comma-separated).
pub const SAVED_WEBHOOKS: &str = "alerts.webhooks";
/// At most this many saved webhooks (each travels in every outbox alert, which is capped in size).
pub const MAX_SAVED_WEBHOOKS: usize = 10;

/// The webhooks saved on the settings page (by any process with the database: the UI saves them, the
/// processor's notifier reads them); none when they cannot be read (logged).
pub async fn saved_webhooks(store: &Store) -> Vec<Webhook> {
    match store.settings_with_prefix(SAVED_WEBHOOKS).await {
        Ok(saved) => saved
            .into_iter()
            .filter(|(key, _)| key == SAVED_WEBHOOKS)
            .flat_map(|(_, list)| {
                Webhook::parse_list(&list, &[]).unwrap_or_else(|e| {
                    tracing::error!(error = format!("{e:#}"), "saved webhooks unreadable");
                    Vec::new()
                })
            })
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the saved webhooks");
            Vec::new()
        }
    }
}

/// Alerts waiting for the background task; beyond this they are dropped (and logged).
const CHANNEL_CAPACITY: usize = 1024;
/// How often the background task looks for bursting issues.
pub const BURST_CHECK_EVERY: Duration = Duration::from_secs(60);
/// How long after the first alert held back the digest goes out: the rest of a flood is counted in it.
pub const DIGEST_DELAY: Duration = Duration::from_secs(5);

impl Notifier {
    /// A notifier for the channels `config` turns on, or `None` when none is. `store` must be a connection
    /// of its own (it reads issues, records burst alerts in `notifications_sent`, and is set never to wait
    /// inside SQLite for a lock); `ui_base` is where links point.
    pub fn from_config(
        config: &NotifyConfig,
        store: Store,
        ui_base: &str,
    ) -> anyhow::Result<Option<Self>> {
        if !config.any_channel() {
            return Ok(None);
        }
        Self::with_channels(config, store, ui_base).map(Some)
    }

    /// A notifier delivering to the channels `config` turns on, if any, and to the webhooks saved on the
    /// settings page (`splat serve`'s: it has both).
    pub fn with_channels(
        config: &NotifyConfig,
        store: Store,
        ui_base: &str,
    ) -> anyhow::Result<Self> {
        let channels = Channels::from_config(config)?;
        Ok(Self::with_sink(
            config,
            store,
            Sink::Channels(Box::new(channels)),
            ui_base,
        ))
    }

    /// A notifier deciding alerts as `config` says (burst threshold, alert budget) and handing them to `sink`.
    pub fn with_sink(config: &NotifyConfig, store: Store, sink: Sink, ui_base: &str) -> Self {
        Self::new(
            store,
            sink,
            ui_base,
            config.burst_threshold,
            RetryPolicy::default(),
        )
        .with_alert_cap(config.max_alerts_per_project_hour)
    }

    pub fn new(
        store: Store,
        sink: Sink,
        ui_base: &str,
        burst_threshold: u64,
        retry: RetryPolicy,
    ) -> Self {
        store.never_wait_in_sqlite();
        Self {
            inner: Arc::new(Inner {
                store,
                sink,
                ui_base: ui_base.trim_end_matches('/').to_owned(),
                burst_threshold: burst_threshold.max(1),
                retry,
                alert_cap: 0,
                suppressed: Default::default(),
            }),
        }
    }

    /// A copy with `retry` and `alert_cap`.
    fn rebuilt(&self, retry: RetryPolicy, alert_cap: u64) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                sink: inner.sink.clone(),
                ui_base: inner.ui_base.clone(),
                burst_threshold: inner.burst_threshold,
                retry,
                alert_cap,
                suppressed: Default::default(),
            }),
        }
    }

    /// The same notifier with other retries (the Lambda processor keeps them short).
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        self.rebuilt(retry, self.inner.alert_cap)
    }

    /// The same notifier sending at most `cap` alerts per project and hour (0: no cap).
    pub fn with_alert_cap(self, cap: u64) -> Self {
        self.rebuilt(self.inner.retry, cap)
    }

    /// The channels that are on (`email`, each webhook's name, `ntfy`), or `outbox`.
    pub fn channel_names(&self) -> Vec<String> {
        match &self.inner.sink {
            Sink::Channels(channels) => channels.names(),
            Sink::Outbox(_) => vec!["outbox".to_owned()],
        }
    }

    /// The environment's channels alert rules can pick (besides the saved webhooks): none known when
    /// alerts go to the outbox (the notify function holds them).
    pub fn environment_destinations(&self) -> Vec<String> {
        match &self.inner.sink {
            Sink::Channels(channels) => channels.names(),
            Sink::Outbox(_) => Vec::new(),
        }
    }

    /// Builds the alert for an issue (`None` when it is gone, or its project is).
    pub async fn alert(&self, kind: AlertKind, issue_id: i64) -> anyhow::Result<Option<Alert>> {
        let Some(issue) = self.inner.store.issue(issue_id).await? else {
            return Ok(None);
        };
        let Some(project) = self.inner.store.project(issue.project_id).await? else {
            return Ok(None);
        };
        let url = match kind {
            // A digest is about the project's issues, not one of them.
            AlertKind::Digest { .. } => {
                format!("{}/projects/{}/issues", self.inner.ui_base, project.slug)
            }
            AlertKind::Test => format!(
                "{}/projects/{}/settings#alerts",
                self.inner.ui_base, project.slug
            ),
            AlertKind::Created | AlertKind::Regressed | AlertKind::Burst { .. } => format!(
                "{}/projects/{}/issues/{}",
                self.inner.ui_base, project.slug, issue.id
            ),
        };
        let environment = self.latest_environment(&issue).await;
        Ok(Some(Alert {
            kind,
            issue,
            project,
            url,
            environment,
            destinations: None,
            webhooks: self.saved_webhooks().await,
        }))
    }

    /// Whether an alert could reach anything: a channel, a saved webhook, or the outbox. `splat serve`
    /// always runs its notifier; with nowhere to send, it looks nothing up.
    async fn has_destinations(&self) -> bool {
        match &self.inner.sink {
            Sink::Outbox(_) => true,
            Sink::Channels(channels) => {
                !channels.names().is_empty() || !self.saved_webhooks().await.is_empty()
            }
        }
    }

    /// The webhooks saved on the settings page.
    pub async fn saved_webhooks(&self) -> Vec<Webhook> {
        saved_webhooks(&self.inner.store).await
    }

    /// The environment the issue's latest event names (`None` when it names none or is gone).
    async fn latest_environment(&self, issue: &Issue) -> Option<String> {
        let event_id = issue.last_event_id.as_deref()?;
        match self.inner.store.event(issue.project_id, event_id).await {
            Ok(event) => event?.payload["environment"]
                .as_str()
                .map(|e| e.chars().take(200).collect()),
            Err(e) => {
                tracing::warn!(issue = issue.id, error = %e, "could not read the issue's latest event");
                None
            }
        }
    }

    /// Looks the issue up and sends the alert to every channel, each retried on its own, unless the
    /// project's alert budget for the hour is spent. Returns how many channels took it; errors are logged.
    pub async fn notify(&self, kind: AlertKind, issue_id: i64) -> usize {
        if !self.has_destinations().await {
            return 0;
        }
        match self.alert(kind, issue_id).await {
            Ok(Some(mut alert)) => {
                if self.apply_rules(&mut alert).await && self.within_budget(&alert).await {
                    self.deliver(&alert).await
                } else {
                    0
                }
            }
            Ok(None) => {
                tracing::debug!(issue_id, "issue gone before its alert was sent");
                0
            }
            Err(e) => {
                tracing::error!(issue_id, error = %e, "could not look up the issue to alert about");
                0
            }
        }
    }

    /// Applies the project's alert rule and the issue's mute ([`rules::decide`]): `false` when the alert is
    /// held back; otherwise it names its destinations. Rules that cannot be read let the alert through to
    /// every destination, as the budget does: better one alert too many than none.
    async fn apply_rules(&self, alert: &mut Alert) -> bool {
        let store = &self.inner.store;
        let now_us = chrono::Utc::now().timestamp_micros();
        let read = async {
            let rule = store.alert_rule(alert.project.id.value()).await?;
            let muted = match alert.kind {
                AlertKind::Test => false,
                _ => store.issue_mute(alert.issue.id, now_us).await?.is_some(),
            };
            Ok::<_, crate::store::StoreError>((rule, muted))
        };
        let (rule, muted) = match read.await {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "could not read the alert rules; sending everywhere");
                return true;
            }
        };
        match rules::decide(&rule, muted, alert) {
            rules::Decision::Send(destinations) => {
                alert.destinations = destinations;
                true
            }
            rules::Decision::Skip(why) => {
                tracing::info!(
                    issue = alert.issue.id,
                    event = alert.kind.event_name(),
                    why,
                    "alert not sent"
                );
                false
            }
        }
    }

    /// Sends a test alert about `project` to the destinations its rule names, past every filter and the
    /// budget: what the settings page's button does. It links to the settings page at `ui_base`, where
    /// the button was pressed (the UI function's own public URL is ingest's, for the DSNs it prints).
    /// Returns how many destinations took it.
    pub async fn send_test(&self, project: &Project, ui_base: &str) -> usize {
        let now = chrono::Utc::now().timestamp_micros();
        let mut alert = Alert {
            kind: AlertKind::Test,
            issue: Issue {
                id: 0,
                project_id: project.id,
                status: IssueStatus::Open,
                title: format!("Alerts from {} reach this destination", project.name),
                culprit: None,
                level: "info".into(),
                platform: None,
                exception_type: None,
                first_seen: now,
                last_seen: now,
                times_seen: 0,
                users_seen: 0,
                first_release: None,
                last_release: None,
                grouping_config: String::new(),
                resolved_at: None,
                regressed_at: None,
                last_event_id: None,
            },
            project: project.clone(),
            url: format!(
                "{}/projects/{}/settings#alerts",
                ui_base.trim_end_matches('/'),
                project.slug
            ),
            environment: None,
            destinations: None,
            webhooks: self.saved_webhooks().await,
        };
        self.apply_rules(&mut alert).await;
        self.deliver(&alert).await
    }

    /// Takes an alert from the project's hourly budget; `false` (and counted for the digest) when it is
    /// spent. A budget that cannot be read lets the alert through: better one alert too many than none.
    async fn within_budget(&self, alert: &Alert) -> bool {
        let cap = self.inner.alert_cap;
        if cap == 0 {
            return true;
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        let project = alert.project.id.value();
        match self
            .inner
            .store
            .claim_alert(project, alert.issue.id, cap, now_us)
            .await
        {
            Ok(Verdict::Send) => true,
            Ok(Verdict::Suppress) => {
                tracing::info!(
                    project,
                    issue_id = alert.issue.id,
                    "alert budget spent; alert held back for the digest"
                );
                self.inner
                    .suppressed
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "could not read the alert budget; sending the alert");
                true
            }
        }
    }

    /// Whether an alert was held back since the last call (the background task then sends the digests
    /// after [`DIGEST_DELAY`]).
    fn take_suppressed(&self) -> bool {
        self.inner
            .suppressed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one digest per project and hour whose budget ran out: "N more alerts suppressed this hour".
    /// Returns how many went out.
    pub async fn send_digests(&self) -> usize {
        let now_us = chrono::Utc::now().timestamp_micros();
        let due = match self.inner.store.claim_digests(now_us).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "could not look for alert digests");
                return 0;
            }
        };
        let mut sent = 0;
        for digest in due {
            let kind = AlertKind::Digest {
                suppressed: digest.suppressed,
                hour: digest.hour,
                limit: self.inner.alert_cap,
            };
            match self.alert(kind, digest.issue_id).await {
                Ok(Some(mut alert)) => {
                    if self.apply_rules(&mut alert).await && self.deliver(&alert).await > 0 {
                        sent += 1;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "could not build an alert digest"),
            }
        }
        sent
    }

    /// Sends one alert to every channel at once, each with its own retries, or puts it in the outbox.
    /// Returns how many channels took it (1 for the outbox once the object is written).
    pub async fn deliver(&self, alert: &Alert) -> usize {
        match &self.inner.sink {
            Sink::Channels(channels) => channels.deliver(alert, self.inner.retry).await,
            Sink::Outbox(outbox) => match outbox.put(alert).await {
                Ok(key) => {
                    tracing::info!(%key, issue = alert.issue.id, event = alert.kind.event_name(), "alert put in the outbox");
                    1
                }
                Err(e) => {
                    tracing::error!(issue = alert.issue.id, error = %e, "alert not put in the outbox; dropped");
                    0
                }
            },
        }
    }

    /// Alerts for a batch's changes, one after another: what the Lambda processor calls after a commit.
    /// Bounded by `deadline` overall; whatever is left is logged and dropped. Never fails.
    pub async fn deliver_changes(&self, changes: &[IssueChange], deadline: Duration) {
        let work = async {
            for change in changes {
                let (kind, issue_id) = change_kind(change);
                self.notify(kind, issue_id).await;
            }
            self.check_bursts().await;
            self.send_digests().await;
        };
        if tokio::time::timeout(deadline, work).await.is_err() {
            tracing::warn!(
                changes = changes.len(),
                "notifications did not finish within {deadline:?}; the rest are dropped"
            );
        }
    }

    /// Alerts about every issue bursting now that has not had a burst alert in the last hour. Returns
    /// how many alerts were sent.
    pub async fn check_bursts(&self) -> usize {
        // Nothing is claimed while alerts could go nowhere, as when no notifier ran.
        if !self.has_destinations().await {
            return 0;
        }
        let now_us = chrono::Utc::now().timestamp_micros();
        let due = match self
            .inner
            .store
            .claim_bursting(self.inner.burst_threshold, now_us)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "could not look for bursting issues");
                return 0;
            }
        };
        let mut sent = 0;
        for burst in due {
            let kind = AlertKind::Burst {
                events: burst.events,
                hour: burst.hour,
            };
            if self.notify(kind, burst.issue_id).await > 0 {
                sent += 1;
            }
        }
        sent
    }
}

fn change_kind(change: &IssueChange) -> (AlertKind, i64) {
    match change {
        IssueChange::Created { issue_id, .. } => (AlertKind::Created, *issue_id),
        IssueChange::Regressed { issue_id, .. } => (AlertKind::Regressed, *issue_id),
    }
}

/// The writer's side of the channel: hands changes over without ever waiting.
#[derive(Debug, Clone)]
pub struct NotifyHandle {
    tx: mpsc::Sender<IssueChange>,
}

impl NotifyHandle {
    /// Queues the changes for the background task; when its channel is full they are dropped and logged,
    /// so a slow mail server never slows the processor.
    pub fn offer(&self, changes: &[IssueChange]) {
        for change in changes {
            match self.tx.try_send(change.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(change)) => {
                    tracing::warn!(?change, "notification queue full; alert dropped")
                }
                Err(mpsc::error::TrySendError::Closed(change)) => {
                    tracing::warn!(?change, "notifier stopped; alert dropped")
                }
            }
        }
    }
}

/// Starts the background task: alerts for changes as they come, and a burst check every
/// `burst_every`. It stops when `shutdown` turns true or every handle is dropped.
pub fn spawn(
    notifier: Notifier,
    burst_every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> (NotifyHandle, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<IssueChange>(CHANNEL_CAPACITY);
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(burst_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut digest_at: Option<tokio::time::Instant> = None;
        loop {
            let digest_due = async move {
                match digest_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                change = rx.recv() => match change {
                    Some(change) => {
                        let (kind, issue_id) = change_kind(&change);
                        notifier.notify(kind, issue_id).await;
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    notifier.check_bursts().await;
                }
                _ = digest_due => {
                    digest_at = None;
                    notifier.send_digests().await;
                }
                _ = shutdown.changed() => break,
            }
            if notifier.take_suppressed() && digest_at.is_none() {
                digest_at = Some(tokio::time::Instant::now() + DIGEST_DELAY);
            }
        }
    });
    (NotifyHandle { tx }, task)
}
