//! The per-minute evaluation: every monitor's missed slots, failed and overrunning runs become incident
//! events (and so issues), and a monitor whose latest runs are ok again gets its issues resolved.
//!
//! Everything it concludes comes back as a [`Judgement`]: the marks as a [`WriteBatch`] and the incidents as
//! event payloads, which the processor adds to that batch and commits ([`crate::process::monitors`]), so
//! the incident events get issues, tags, notifications and lake rows exactly as SDK events do. It is safe to
//! run at any time and more than once: each incident's event id is derived from the monitor, the kind and
//! the run (or slot), so a second evaluation of the same incident finds the event stored and changes
//! nothing, and the runs it judged are marked so they are not judged again.

use std::time::Duration;

use bytes::Bytes;
use md5::Digest;
use serde_json::json;

use super::Incident;
use crate::model::check_in::RunStatus;
use crate::protocol::ProjectId;
use crate::store::{IssueChange, Monitor, MonitorMark, Run, Store, StoreError, WriteBatch};

/// How often `splat serve` evaluates (and how often the AWS schedule should).
pub const EVALUATE_EVERY: Duration = Duration::from_secs(60);

use crate::model::time::MINUTE_US;
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

/// One incident to file as an error event (see [`add_incident`]).
#[derive(Debug, Clone)]
pub struct IncidentEvent {
    pub project_id: ProjectId,
    pub event_id: String,
    pub payload: Bytes,
}

/// What an evaluation concluded: the marks to write (in `batch`), the incident events to add to it, and
/// the counts so far (`issue_changes` is filled once the batch is committed).
#[derive(Debug, Default)]
pub struct Judgement {
    pub batch: WriteBatch,
    pub incidents: Vec<IncidentEvent>,
    pub outcome: Evaluation,
}

/// Judges every monitor at `now_us` (µs since the epoch); writes nothing.
pub async fn judge(store: &Store, now_us: i64) -> Result<Judgement, StoreError> {
    let mut judgement = Judgement::default();
    for monitor in store.monitors(None).await? {
        judge_monitor(store, &monitor, now_us, &mut judgement).await?;
    }
    Ok(judgement)
}

async fn judge_monitor(
    store: &Store,
    m: &Monitor,
    now: i64,
    judgement: &mut Judgement,
) -> Result<(), StoreError> {
    let Judgement {
        batch,
        incidents,
        outcome,
    } = judgement;
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
            incidents.push(incident_event(m, incident, &run.check_in_id, now, &detail));
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
                incidents.push(incident_event(
                    m,
                    Incident::Missed,
                    &due.to_string(),
                    now,
                    &detail,
                ));
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

/// One incident as an error event: its fingerprint puts every incident of this kind and monitor in one
/// issue; its id (from the monitor, kind and `key`) makes filing it again a no-op.
fn incident_event(
    m: &Monitor,
    incident: Incident,
    key: &str,
    now: i64,
    detail: &str,
) -> IncidentEvent {
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
    IncidentEvent {
        project_id: m.project_id,
        event_id,
        payload: Bytes::from(payload.to_string()),
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
