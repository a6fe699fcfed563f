//! The per-minute evaluation: every monitor's missed slots, failed and overrunning runs become incident
//! events (and so issues), and a monitor whose latest runs are ok again gets its issues resolved.
//!
//! Everything it concludes is written as one [`WriteBatch`] through the processor's own commit, so the
//! incident events get issues, tags, notifications and lake rows exactly as SDK events do. It is safe to
//! run at any time and more than once: each incident's event id is derived from the monitor, the kind and
//! the run (or slot), so a second evaluation of the same incident finds the event stored and changes
//! nothing, and the runs it judged are marked so they are not judged again.

use std::time::Duration;

use bytes::Bytes;
use md5::Digest;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Incident, RunStatus};
use crate::lake::LakeWriter;
use crate::notify::NotifyHandle;
use crate::store::{IssueChange, Monitor, MonitorMark, Run, Store, StoreError, WriteBatch};

/// How often `splat serve` evaluates (and how often the AWS schedule should).
pub const EVALUATE_EVERY: Duration = Duration::from_secs(60);

const MINUTE_US: i64 = 60_000_000;
/// Runs are kept this long; the latest one always stays.
const KEEP_RUNS_US: i64 = 30 * 24 * 60 * MINUTE_US;

/// What one evaluation did.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Incidents found (each one an event; an issue opens once a monitor's threshold is reached).
    pub missed: usize,
    pub failed: usize,
    pub overrun: usize,
    /// Monitors whose open issues were resolved because they are ok again.
    pub recovered: usize,
    /// Issues created or regressed: hand them to the notifier.
    pub issue_changes: Vec<IssueChange>,
}

/// Evaluates every monitor at `now_us` (µs since the epoch) and commits what it concluded. `store` must
/// be a writer's connection; `lake`, when given, receives the incident events like any event. Call it
/// about once a minute; the caller sends `issue_changes` to the notifier.
pub async fn evaluate(
    store: &Store,
    lake: Option<&LakeWriter>,
    now_us: i64,
) -> Result<Evaluation, StoreError> {
    let mut batch = WriteBatch::default();
    let mut outcome = Evaluation::default();
    for monitor in store.monitors(None).await? {
        judge(store, &monitor, now_us, &mut batch, &mut outcome).await?;
    }
    if !batch.events.is_empty() || !batch.monitor_marks.is_empty() {
        outcome.issue_changes = store.commit_with_lake(&batch, lake).await?;
    }
    Ok(outcome)
}

async fn judge(
    store: &Store,
    m: &Monitor,
    now: i64,
    batch: &mut WriteBatch,
    outcome: &mut Evaluation,
) -> Result<(), StoreError> {
    for run in store.unjudged_runs(m.id).await? {
        let incident = match run.status {
            RunStatus::Error => Incident::Failed,
            RunStatus::InProgress if now > run.started_at + m.max_runtime * MINUTE_US => {
                Incident::Overrun
            }
            _ => continue,
        };
        batch.monitor_marks.push(MonitorMark::Judged {
            monitor_id: m.id,
            check_in_id: run.check_in_id.clone(),
            incident: incident.as_str(),
            timed_out: incident == Incident::Overrun,
        });
        match incident {
            Incident::Failed => outcome.failed += 1,
            _ => outcome.overrun += 1,
        }
        if threshold_reached(store, m, run.started_at, true).await? {
            let detail = run_detail(m, incident, &run);
            add_incident(batch, m, incident, &run.check_in_id, now, &detail);
        }
    }
    if let (Some(schedule), Some(due)) = (&m.schedule, m.next_expected_at) {
        let deadline = due + m.checkin_margin * MINUTE_US;
        if now > deadline {
            // After a long silence (or downtime), one missed run, then the next slot still ahead.
            let next = schedule.next_after(due.max(now - m.checkin_margin * MINUTE_US));
            batch.monitor_marks.push(MonitorMark::Missed {
                monitor_id: m.id,
                slot_us: due,
                next_us: next,
            });
            outcome.missed += 1;
            if threshold_reached(store, m, due, false).await? {
                let detail = format!(
                    "Expected a check-in at {} ({}), with a margin of {} min; none came.",
                    iso(due),
                    schedule.describe(),
                    m.checkin_margin
                );
                add_incident(batch, m, Incident::Missed, &due.to_string(), now, &detail);
            }
        }
    }
    let latest = store
        .run_statuses_until(m.id, i64::MAX, m.recovery_threshold)
        .await?;
    let recovered = latest.len() as i64 >= m.recovery_threshold.max(1)
        && latest.iter().all(|s| *s == RunStatus::Ok);
    if recovered {
        let hashes = incident_hashes(&m.slug);
        if store
            .open_issue_count(m.project_id.value(), &hashes)
            .await?
            > 0
        {
            batch.monitor_marks.push(MonitorMark::Resolve {
                project_id: m.project_id.value(),
                hashes,
            });
            outcome.recovered += 1;
        }
    }
    if store
        .monitor_has_runs_before(m.id, now - KEEP_RUNS_US)
        .await?
    {
        batch.monitor_marks.push(MonitorMark::Prune {
            monitor_id: m.id,
            before_us: now - KEEP_RUNS_US,
        });
    }
    Ok(())
}

/// Whether the failure at `at_us` and the failures right before it reach the monitor's
/// `failure_issue_threshold`. `stored`: the failing run is already a row (a missed slot is not yet).
async fn threshold_reached(
    store: &Store,
    m: &Monitor,
    at_us: i64,
    stored: bool,
) -> Result<bool, StoreError> {
    let need = m.failure_issue_threshold.max(1);
    if need == 1 {
        return Ok(true);
    }
    let runs = store.run_statuses_until(m.id, at_us, need).await?;
    let earlier = runs.iter().skip(usize::from(stored && !runs.is_empty()));
    let in_a_row = 1 + earlier
        .take(need as usize - 1)
        .take_while(|s| s.is_failure())
        .count();
    Ok(in_a_row as i64 >= need)
}

fn run_detail(m: &Monitor, incident: Incident, run: &Run) -> String {
    match incident {
        Incident::Overrun => format!(
            "Run {} has been in progress since {}, longer than the max runtime of {} min.",
            run.check_in_id,
            iso(run.started_at),
            m.max_runtime
        ),
        _ => {
            let took = run
                .duration_ms
                .map(|ms| format!(" after {:.1} s", ms / 1000.0))
                .unwrap_or_default();
            format!(
                "Run {} started at {} reported an error{took}.",
                run.check_in_id,
                iso(run.started_at)
            )
        }
    }
}

/// Files one incident as an error event: its fingerprint puts every incident of this kind and monitor in
/// one issue; its id (from the monitor, kind and `key`) makes filing it again a no-op.
fn add_incident(
    batch: &mut WriteBatch,
    m: &Monitor,
    incident: Incident,
    key: &str,
    now: i64,
    detail: &str,
) {
    let seed = format!(
        "monitor|{}|{}|{}|{key}",
        m.project_id,
        m.slug,
        incident.as_str()
    );
    let event_id = hex::encode(md5::Md5::digest(seed.as_bytes()));
    let title = incident.title(&m.slug);
    let payload = json!({
        "event_id": event_id,
        "timestamp": now as f64 / 1e6,
        "level": "error",
        "platform": "other",
        "logger": "splat.monitors",
        "message": format!("{title}\n{detail}"),
        "fingerprint": fingerprint(&m.slug, incident),
        "environment": m.environment,
        "tags": { "monitor.slug": m.slug, "monitor.incident": incident.as_str() },
        "contexts": { "monitor": {
            "slug": m.slug,
            "incident": incident.as_str(),
            "schedule": m.schedule.as_ref().map(|s| s.describe()),
            "checkin_margin": m.checkin_margin,
            "max_runtime": m.max_runtime,
        } },
    });
    let bytes = Bytes::from(payload.to_string());
    if let Err(e) = crate::process::add_event(
        batch,
        m.project_id,
        &event_id,
        &crate::process::time::Clock::at(now),
        &bytes,
    ) {
        // Built here from known fields: a failure is a bug, not input.
        tracing::error!(error = %e, slug = %m.slug, "could not build a monitor incident event");
    }
}

fn fingerprint(slug: &str, incident: Incident) -> [&str; 3] {
    ["monitor", slug, incident.as_str()]
}

/// The grouping hashes of a monitor's three incident issues.
fn incident_hashes(slug: &str) -> Vec<String> {
    Incident::ALL
        .iter()
        .filter_map(|i| {
            let payload = json!({ "fingerprint": fingerprint(slug, *i) }).to_string();
            crate::model::Event::from_payload(payload.as_bytes()).ok()
        })
        .flat_map(|event| crate::grouping::group(&event).hashes)
        .collect()
}

fn iso(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M UTC")
        .to_string()
}

/// Evaluates every `every` (normally [`EVALUATE_EVERY`]) until `shutdown`, over its own writer connection (so it never waits
/// inside the processor's transaction, and ingest never waits on it); new and regressed issues go to
/// `notify`. Failures are logged and retried at the next tick.
pub fn spawn(
    store: Store,
    lake: Option<LakeWriter>,
    notify: Option<NotifyHandle>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => break,
            }
            let now = chrono::Utc::now().timestamp_micros();
            match evaluate(&store, lake.as_ref(), now).await {
                Ok(e) => {
                    if e.missed + e.failed + e.overrun + e.recovered > 0 {
                        tracing::info!(
                            missed = e.missed,
                            failed = e.failed,
                            overrun = e.overrun,
                            recovered = e.recovered,
                            "evaluated cron monitors"
                        );
                    }
                    if let Some(notify) = &notify {
                        notify.offer(&e.issue_changes);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cron monitor evaluation failed"),
            }
        }
    })
}
