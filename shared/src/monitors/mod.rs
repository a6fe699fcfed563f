//! Cron monitors: jobs that check in on a schedule, and the alerts when one does not.
//!
//! Path of a check-in: an SDK sends a `check_in` envelope item, or a script calls the HTTP endpoint
//! `/api/{project}/cron/{slug}/{key}/?status=…` ([`crate::ingest`] turns it into the same item). Ingest
//! refuses a malformed one ([`CheckIn::from_payload`], a 400 with the reason) and queues the rest; the
//! processor upserts the monitor from the `monitor_config` it carries and records the run, keyed by
//! `check_in_id` ([`crate::store`]): a second delivery of the same check-in changes nothing, and an `ok` or
//! `error` with the id of an earlier `in_progress` closes that run.
//!
//! Once a minute [`evaluate`] (inside `splat serve`; from the scheduled function in AWS) looks at every
//! monitor and opens an issue for each incident: a **missed** check-in (the schedule was due, the margin
//! has passed, nothing came), a **failed** run (`error`) and an **overrunning** run (in progress longer
//! than `max_runtime`). An incident is a synthetic error event with the fingerprint
//! `monitor / <slug> / <kind>`, so it lands in the ordinary issue list and the ordinary lifecycle applies:
//! a new issue alerts, one seen again after it was resolved regresses and alerts again. When the monitor's
//! latest runs are ok again (`recovery_threshold` of them), its open issues are resolved.

mod check_in;
mod evaluate;
mod schedule;

pub use check_in::{slugify, CheckIn, CheckInError, CheckInStatus, MonitorConfig};
pub use evaluate::{evaluate, spawn, Evaluation, EVALUATE_EVERY};
pub use schedule::{IntervalUnit, Schedule, ScheduleError};

/// Defaults of an unset `monitor_config` field, as Sentry's: minutes of margin and of runtime, and runs in a
/// row that open and resolve an issue.
pub const DEFAULT_MARGIN_MINUTES: i64 = 1;
pub const DEFAULT_MAX_RUNTIME_MINUTES: i64 = 30;
pub const DEFAULT_THRESHOLD: i64 = 1;

/// Monitors a project may have unless `SPLAT_MAX_MONITORS_PER_PROJECT` says otherwise: any DSN can create
/// monitors (each can open alerting issues), so a leaked one must not create them without end. Check-ins
/// for a new slug past the cap are dropped by the processor (and logged); existing monitors keep working.
pub const DEFAULT_MAX_MONITORS_PER_PROJECT: usize = 100;

/// What became of one run, as stored: what the client said (`in_progress`, `ok`, `error`), or what the
/// evaluation concluded (`missed`: a slot without a check-in; `timeout`: in progress past `max_runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    InProgress,
    Ok,
    Error,
    Missed,
    Timeout,
}

impl RunStatus {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_progress" => Some(Self::InProgress),
            "ok" => Some(Self::Ok),
            "error" => Some(Self::Error),
            "missed" => Some(Self::Missed),
            "timeout" => Some(Self::Timeout),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Missed => "missed",
            Self::Timeout => "timeout",
        }
    }

    /// What the monitor is, when this is its latest run: the word the UI and MCP show.
    pub fn monitor_state(self) -> &'static str {
        match self {
            Self::InProgress => "in progress",
            Self::Ok => "ok",
            Self::Error => "failed",
            Self::Missed => "missed",
            Self::Timeout => "overrun",
        }
    }

    /// Counts toward `failure_issue_threshold`.
    pub fn is_failure(self) -> bool {
        match self {
            Self::Error | Self::Missed | Self::Timeout => true,
            Self::InProgress | Self::Ok => false,
        }
    }
}

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
