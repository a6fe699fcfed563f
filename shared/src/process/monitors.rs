//! The cron monitors' evaluation as the processor runs it: [`crate::monitors::judge`] concludes, and this
//! files the incidents as events in the same batch as the marks and commits it, through the processor's
//! own commit, so the incident events get issues, tags, notifications and lake rows as SDK events do.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::lake::LakeWriter;
use crate::monitors::{Evaluation, Judgement};
use crate::notify::NotifyHandle;
use crate::store::{Store, StoreError};

use super::time::Clock;

/// Evaluates every monitor at `now_us` (µs since the epoch) and commits what it concluded. `store` must
/// be a writer's connection; `lake`, when given, receives the incident events like any event. Call it
/// about once a minute; the caller sends `issue_changes` to the notifier.
pub async fn evaluate(
    store: &Store,
    lake: Option<&LakeWriter>,
    now_us: i64,
) -> Result<Evaluation, StoreError> {
    let Judgement {
        mut batch,
        incidents,
        mut outcome,
    } = crate::monitors::judge(store, now_us).await?;
    let clock = Clock::at(now_us);
    for incident in incidents {
        let (project, id) = (incident.project_id, &incident.event_id);
        if let Err(e) = super::add_event(
            &mut batch,
            project,
            id,
            &clock,
            &incident.payload,
            &crate::scrub::Scrubber::off(),
            &mut crate::store::Packer::default(),
        ) {
            // Built by the evaluation from known fields: a failure is a bug, not input.
            tracing::error!(error = %e, event_id = %id, "could not build a monitor incident event");
        }
    }
    if !batch.events.is_empty() || !batch.monitor_marks.is_empty() {
        outcome.issue_changes = super::batch::commit(store, &batch, lake).await?;
    }
    Ok(outcome)
}

/// Evaluates every `every` (normally [`crate::monitors::EVALUATE_EVERY`]) until `shutdown`, over its own
/// writer connection (so it never waits inside the processor's transaction, and ingest never waits on
/// it); new and regressed issues go to `notify`. Failures are logged and retried at the next tick.
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
