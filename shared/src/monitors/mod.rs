//! Cron monitors: jobs that check in on a schedule, and the alerts when one does not.
//!
//! Path of a check-in: an SDK sends a `check_in` envelope item, or a script calls the HTTP endpoint
//! `/api/{project}/cron/{slug}/{key}/?status=…` ([`crate::ingest`] turns it into the same item). Ingest
//! refuses a malformed one ([`crate::model::check_in::CheckIn::from_payload`], a 400 with the reason)
//! and queues the rest; the processor upserts the monitor from the `monitor_config` it carries and
//! records the run, keyed by `check_in_id` ([`crate::store`]): a second delivery of the same check-in
//! changes nothing, and an `ok` or `error` with the id of an earlier `in_progress` closes that run.
//!
//! Once a minute the evaluation (inside `splat serve`; from the scheduled function in AWS) [`judge`]s
//! every monitor, and the processor ([`crate::process::monitors`]) opens an issue for each incident: a
//! **missed** check-in (the schedule was due, the margin has passed, nothing came), a **failed** run
//! (`error`) and an **overrunning** run (in progress longer than `max_runtime`). An incident is a
//! synthetic error event with the fingerprint `monitor / <slug> / <kind>`, so it lands in the ordinary
//! issue list and the ordinary lifecycle applies: a new issue alerts, one seen again after it was resolved
//! regresses and alerts again. When the monitor's latest runs are ok again (`recovery_threshold` of
//! them), its open issues are resolved.

mod evaluate;

pub use evaluate::{judge, Evaluation, IncidentEvent, Judgement, EVALUATE_EVERY};

/// Monitors a project may have unless `SPLAT_MAX_MONITORS_PER_PROJECT` says otherwise: any DSN can create
/// monitors (each can open alerting issues), so a leaked one must not create them without end. Check-ins
/// for a new slug past the cap are dropped by the processor (and logged); existing monitors keep working.
pub const DEFAULT_MAX_MONITORS_PER_PROJECT: usize = 100;

/// The three kinds of incident, each its own issue per monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incident {
    Missed,
    Failed,
    Overrun,
}

impl Incident {
    pub const ALL: [Incident; 3] = [Self::Missed, Self::Failed, Self::Overrun];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missed => "missed",
            Self::Failed => "failed",
            Self::Overrun => "overrun",
        }
    }

    /// The title.
    pub fn title(self, slug: &str) -> String {
        match self {
            Self::Missed => format!("Monitor `{slug}` missed a check-in"),
            Self::Failed => format!("Monitor `{slug}` reported a failed run"),
            Self::Overrun => format!("Monitor `{slug}` exceeded its max runtime"),
        }
    }
}
