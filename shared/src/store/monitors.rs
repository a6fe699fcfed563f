//! Cron monitors in the database: the check-ins the processor records and the marks the evaluation makes
//! (both inside a batch transaction, see [`super::WriteBatch`]), and the reads behind the monitors page,
//! MCP and the evaluation.
//!
//! Every write is idempotent: a run is keyed by `(monitor, check_in_id)`, a missed slot by its time, and
//! a closed run is never reopened, so a batch applied twice leaves the same rows.

use std::collections::{HashMap, HashSet};

use crate::model::check_in::{
    CheckIn, CheckInStatus, RunStatus, Schedule, DEFAULT_MARGIN_MINUTES,
    DEFAULT_MAX_RUNTIME_MINUTES, DEFAULT_THRESHOLD,
};
use crate::protocol::ProjectId;

use super::cached::Cached;
use super::{Result, Store, StoreError};

/// A check-in to record, stamped with when ingest received it (check-ins carry no time of their own).
#[derive(Debug, Clone)]
pub struct CheckInRow {
    pub project_id: ProjectId,
    pub check_in: CheckIn,
    pub received_at_us: i64,
}

/// What an evaluation concluded, written in its batch's transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorMark {
    /// A run judged: its incident is recorded so it is never judged again; an overrunning run is
    /// closed as `timeout` (a late `ok` or `error` still closes it with its real status).
    Judged {
        monitor_id: i64,
        check_in_id: String,
        incident: &'static str,
        timed_out: bool,
    },
    /// Nothing came for the slot due at `slot_us`: a `missed` run is recorded there, and the next slot
    /// expected is `next_us`.
    Missed {
        monitor_id: i64,
        slot_us: i64,
        next_us: Option<i64>,
    },
    /// The monitor recovered: its open issues (found by their grouping hashes) are resolved.
    Resolve {
        project_id: i64,
        hashes: Vec<String>,
    },
    /// Runs that started before `before_us` are forgotten, except the latest (the monitor's state).
    Prune { monitor_id: i64, before_us: i64 },
}

/// A monitor with its configuration and latest run.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub id: i64,
    pub project_id: ProjectId,
    pub slug: String,
    pub created_at: i64,
    /// `None` until a check-in brings a `monitor_config`: such a monitor is never missed.
    pub schedule: Option<Schedule>,
    pub checkin_margin: i64,
    pub max_runtime: i64,
    pub failure_issue_threshold: i64,
    pub recovery_threshold: i64,
    pub environment: Option<String>,
    /// When the latest real check-in's run started (µs).
    pub last_checkin_at: Option<i64>,
    pub next_expected_at: Option<i64>,
    /// The latest run (missed slots included): what the monitor's state is.
    pub last_status: Option<RunStatus>,
    pub last_duration_ms: Option<f64>,
}

impl Monitor {
    /// `ok`, `failed`, `missed`, `overrun`, `in progress`, or `waiting` before the first check-in.
    pub fn state(&self) -> &'static str {
        self.last_status.map_or("waiting", RunStatus::monitor_state)
    }
}

/// One run of a monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub check_in_id: String,
    pub status: RunStatus,
    pub started_at: i64,
    pub duration_ms: Option<f64>,
    pub environment: Option<String>,
    pub incident: Option<String>,
}

const MONITOR_COLUMNS: &str = "m.id, m.project_id, m.slug, m.created_at, m.schedule_type, m.schedule_value,
    m.schedule_unit, m.timezone, m.checkin_margin, m.max_runtime, m.failure_issue_threshold, m.recovery_threshold,
    m.environment, m.last_checkin_at, m.next_expected_at,
    (SELECT c.status FROM monitor_checkins c WHERE c.monitor_id = m.id ORDER BY c.started_at DESC LIMIT 1),
    (SELECT c.duration_ms FROM monitor_checkins c WHERE c.monitor_id = m.id AND c.status <> 'missed'
        ORDER BY c.started_at DESC LIMIT 1)";

fn monitor_from_row(row: &libsql::Row) -> Result<Monitor> {
    let text = |i| row.get::<Option<String>>(i);
    let schedule = match (text(4)?, text(5)?) {
        (Some(ty), Some(value)) => {
            Schedule::parse(&ty, &value, text(6)?.as_deref(), text(7)?.as_deref()).ok()
        }
        _ => None,
    };
    Ok(Monitor {
        id: row.get(0)?,
        project_id: ProjectId::new(row.get(1)?),
        slug: row.get(2)?,
        created_at: row.get(3)?,
        schedule,
        checkin_margin: row.get(8)?,
        max_runtime: row.get(9)?,
        failure_issue_threshold: row.get(10)?,
        recovery_threshold: row.get(11)?,
        environment: text(12)?,
        last_checkin_at: row.get(13)?,
        next_expected_at: row.get(14)?,
        last_status: text(15)?.as_deref().and_then(RunStatus::parse),
        last_duration_ms: row.get(16)?,
    })
}

fn run_from_row(row: &libsql::Row) -> Result<Run> {
    let status: String = row.get(1)?;
    Ok(Run {
        check_in_id: row.get(0)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Invalid(format!("unknown run status {status:?}")))?,
        started_at: row.get(2)?,
        duration_ms: row.get(3)?,
        environment: row.get(4)?,
        incident: row.get(5)?,
    })
}

const RUN_COLUMNS: &str = "check_in_id, status, started_at, duration_ms, environment, incident";

impl Store {
    /// A project's monitors by slug; every project's when `project` is `None` (the evaluation).
    pub async fn monitors(&self, project: Option<ProjectId>) -> Result<Vec<Monitor>> {
        let sql = format!(
            "SELECT {MONITOR_COLUMNS} FROM monitors m WHERE ?1 IS NULL OR m.project_id = ?1 ORDER BY m.project_id, m.slug"
        );
        let mut rows = self
            .conn()
            .query(&sql, [project.map(|p| p.value())])
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(monitor_from_row(&row)?);
        }
        Ok(out)
    }

    /// A monitor's runs, newest first.
    pub async fn monitor_runs(&self, monitor_id: i64, limit: u32) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM monitor_checkins WHERE monitor_id = ?1 ORDER BY started_at DESC LIMIT ?2"
        );
        self.runs(&sql, (monitor_id, limit)).await
    }

    /// Runs the evaluation has not judged yet that may need it: failed ones and those still in progress.
    pub async fn unjudged_runs(&self, monitor_id: i64) -> Result<Vec<Run>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM monitor_checkins
             WHERE monitor_id = ?1 AND incident IS NULL AND status IN ('in_progress', 'error') ORDER BY started_at"
        );
        self.runs(&sql, [monitor_id]).await
    }

    /// The statuses of the `n` runs that started at or before `at_us`, newest first.
    pub async fn run_statuses_until(
        &self,
        monitor_id: i64,
        at_us: i64,
        n: i64,
    ) -> Result<Vec<RunStatus>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM monitor_checkins WHERE monitor_id = ?1 AND started_at <= ?2
             ORDER BY started_at DESC LIMIT ?3"
        );
        let runs = self.runs(&sql, (monitor_id, at_us, n)).await?;
        Ok(runs.into_iter().map(|r| r.status).collect())
    }

    /// Whether the monitor has runs older than `before_us` besides its latest (what pruning would remove).
    pub async fn monitor_has_runs_before(&self, monitor_id: i64, before_us: i64) -> Result<bool> {
        let n = self
            .scalar(
                "SELECT EXISTS (SELECT 1 FROM monitor_checkins WHERE monitor_id = ?1
                    AND started_at < min(?2, (SELECT max(started_at) FROM monitor_checkins WHERE monitor_id = ?1)))",
                (monitor_id, before_us),
            )
            .await?;
        Ok(n == 1)
    }

    /// How many of these issues are open.
    pub async fn open_issue_count(&self, project_id: i64, hashes: &[String]) -> Result<i64> {
        let mut open = 0;
        for hash in hashes {
            open += self
                .scalar(
                    "SELECT count(*) FROM issue_hashes h JOIN issues i ON i.id = h.issue_id
                     WHERE h.project_id = ?1 AND h.hash = ?2 AND i.status = 'open'",
                    (project_id, hash.as_str()),
                )
                .await?;
        }
        Ok(open)
    }

    async fn runs(&self, sql: &str, params: impl libsql::params::IntoParams) -> Result<Vec<Run>> {
        let mut rows = self.conn().query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(run_from_row(&row)?);
        }
        Ok(out)
    }

    /// Drops the check-ins that would create a monitor past `cap` monitors in their project (in order:
    /// the first new slugs fill what room is left); check-ins of existing monitors always pass. Returns
    /// how many were dropped. The processor is the only writer that creates monitors, so counting before
    /// its commit is exact.
    pub async fn drop_monitors_past_cap(
        &self,
        check_ins: &mut Vec<CheckInRow>,
        cap: usize,
    ) -> Result<usize> {
        let mut known: HashMap<ProjectId, HashSet<String>> = HashMap::new();
        for row in check_ins.iter() {
            if known.contains_key(&row.project_id) {
                continue;
            }
            let mut rows = self
                .conn()
                .query(
                    "SELECT slug FROM monitors WHERE project_id = ?1",
                    [row.project_id.value()],
                )
                .await?;
            let mut slugs = HashSet::new();
            while let Some(r) = rows.next().await? {
                slugs.insert(r.get::<String>(0)?);
            }
            known.insert(row.project_id, slugs);
        }
        let mut dropped: HashMap<ProjectId, usize> = HashMap::new();
        check_ins.retain(|row| {
            let slugs = known.entry(row.project_id).or_default();
            let slug = &row.check_in.monitor_slug;
            if slugs.contains(slug) {
                return true;
            }
            if slugs.len() >= cap {
                *dropped.entry(row.project_id).or_default() += 1;
                return false;
            }
            slugs.insert(slug.clone());
            true
        });
        // One line per project and batch, however many were dropped: the log is no flood target either.
        for (project, n) in &dropped {
            tracing::warn!(%project, dropped = n, cap, "monitor cap reached: check-ins for new monitors dropped");
        }
        Ok(dropped.values().sum())
    }
}

/// Writes a batch's check-ins and marks (inside its transaction).
pub(super) async fn apply(
    tx: &mut Cached,
    check_ins: &[CheckInRow],
    marks: &[MonitorMark],
) -> Result<()> {
    for row in check_ins {
        record_check_in(tx, row).await?;
    }
    for mark in marks {
        apply_mark(tx, mark).await?;
    }
    Ok(())
}

/// Upserts the monitor (and its config, unless a newer one is stored), then records the run: a new
/// check-in id is a new run; an `ok` or `error` for an open run closes it; anything else is a repeat.
async fn record_check_in(tx: &mut Cached, row: &CheckInRow) -> Result<()> {
    let (c, at) = (&row.check_in, row.received_at_us);
    let project = row.project_id.value();
    tx.execute(
        "INSERT INTO monitors (project_id, slug, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (project_id, slug) DO NOTHING",
        (project, c.monitor_slug.as_str(), at),
    )
    .await?;
    let id = tx
        .first_i64(
            "SELECT id FROM monitors WHERE project_id = ?1 AND slug = ?2",
            (project, c.monitor_slug.as_str()),
        )
        .await?
        .ok_or_else(|| StoreError::Invalid(format!("monitor {} vanished", c.monitor_slug)))?;
    if let Some(config) = &c.config {
        let (ty, value, unit, timezone) = config.schedule.parts();
        tx.execute(
            "UPDATE monitors SET schedule_type = ?2, schedule_value = ?3, schedule_unit = ?4, timezone = ?5,
                checkin_margin = ?6, max_runtime = ?7, failure_issue_threshold = ?8, recovery_threshold = ?9, config_at = ?10
             WHERE id = ?1 AND coalesce(config_at, 0) <= ?10",
            libsql::params![
                id,
                ty,
                value,
                unit,
                timezone,
                config.checkin_margin.unwrap_or(DEFAULT_MARGIN_MINUTES).max(1),
                config.max_runtime.unwrap_or(DEFAULT_MAX_RUNTIME_MINUTES).max(1),
                config.failure_issue_threshold.unwrap_or(DEFAULT_THRESHOLD).max(1),
                config.recovery_threshold.unwrap_or(DEFAULT_THRESHOLD).max(1),
                at,
            ],
        )
        .await?;
    }
    let duration_ms = c.duration_secs.map(|s| s * 1000.0);
    // A run reported only at its end started `duration` before it.
    let (started, finished) = match c.status {
        CheckInStatus::InProgress => (at, None),
        CheckInStatus::Ok | CheckInStatus::Error => (
            at - duration_ms.map_or(0, |ms| (ms * 1000.0) as i64),
            Some(at),
        ),
    };
    let inserted = tx
        .execute(
            "INSERT OR IGNORE INTO monitor_checkins (monitor_id, check_in_id, status, started_at, finished_at, duration_ms, environment, release)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            libsql::params![
                id,
                c.check_in_id.as_str(),
                c.status.as_str(),
                started,
                finished,
                duration_ms,
                c.environment.clone(),
                c.release.clone(),
            ],
        )
        .await?;
    if inserted == 0 && c.status != CheckInStatus::InProgress {
        tx.execute(
            "UPDATE monitor_checkins SET status = ?3, finished_at = ?4,
                duration_ms = coalesce(?5, max(?4 - started_at, 0) / 1000.0), environment = coalesce(environment, ?6)
             WHERE monitor_id = ?1 AND check_in_id = ?2 AND status IN ('in_progress', 'timeout')",
            libsql::params![
                id,
                c.check_in_id.as_str(),
                c.status.as_str(),
                at,
                duration_ms,
                c.environment.clone(),
            ],
        )
        .await?;
    }
    tx.execute(
        "UPDATE monitors SET environment = coalesce(?2, environment),
            last_checkin_at = (SELECT max(started_at) FROM monitor_checkins WHERE monitor_id = ?1 AND status <> 'missed')
         WHERE id = ?1",
        (id, c.environment.clone()),
    )
    .await?;
    refresh_next_expected(tx, id).await
}

/// The next slot: the first one due after the latest run (missed slots included, so that a monitor that
/// stays silent is missed once per slot, not once per minute).
async fn refresh_next_expected(tx: &mut Cached, id: i64) -> Result<()> {
    let row = tx
        .first_row(
            "SELECT schedule_type, schedule_value, schedule_unit, timezone,
                (SELECT max(started_at) FROM monitor_checkins WHERE monitor_id = ?1)
             FROM monitors WHERE id = ?1",
            [id],
        )
        .await?
        .unwrap_or_default();
    let text = |i: usize| match row.get(i) {
        Some(libsql::Value::Text(s)) => Some(s.as_str()),
        _ => None,
    };
    let schedule = match (text(0), text(1)) {
        (Some(ty), Some(value)) => Schedule::parse(ty, value, text(2), text(3)).ok(),
        _ => None,
    };
    let latest = match row.get(4) {
        Some(libsql::Value::Integer(t)) => Some(*t),
        _ => None,
    };
    let next = schedule.zip(latest).and_then(|(s, t)| s.next_after(t));
    tx.execute(
        "UPDATE monitors SET next_expected_at = ?2 WHERE id = ?1",
        (id, next),
    )
    .await?;
    Ok(())
}

async fn apply_mark(tx: &mut Cached, mark: &MonitorMark) -> Result<()> {
    match mark {
        MonitorMark::Judged {
            monitor_id,
            check_in_id,
            incident,
            timed_out,
        } => {
            tx.execute(
                "UPDATE monitor_checkins SET incident = ?3,
                    status = CASE WHEN ?4 AND status = 'in_progress' THEN 'timeout' ELSE status END
                 WHERE monitor_id = ?1 AND check_in_id = ?2 AND incident IS NULL",
                libsql::params![*monitor_id, check_in_id.as_str(), *incident, *timed_out],
            )
            .await?;
        }
        MonitorMark::Missed {
            monitor_id,
            slot_us,
            next_us,
        } => {
            tx.execute(
                "INSERT OR IGNORE INTO monitor_checkins (monitor_id, check_in_id, status, started_at, incident)
                 VALUES (?1, ?2, 'missed', ?3, 'missed')",
                (*monitor_id, format!("missed-{slot_us}"), *slot_us),
            )
            .await?;
            // Only if no check-in moved the expectation meanwhile.
            tx.execute(
                "UPDATE monitors SET next_expected_at = ?3 WHERE id = ?1 AND next_expected_at = ?2",
                (*monitor_id, *slot_us, *next_us),
            )
            .await?;
        }
        MonitorMark::Resolve { project_id, hashes } => {
            for hash in hashes {
                tx.execute(
                    "UPDATE issues SET status = 'resolved', resolved_at = ?3
                     WHERE status = 'open' AND id = (SELECT issue_id FROM issue_hashes WHERE project_id = ?1 AND hash = ?2)",
                    (*project_id, hash.as_str(), super::now_us()),
                )
                .await?;
            }
        }
        MonitorMark::Prune {
            monitor_id,
            before_us,
        } => {
            tx.execute(
                "DELETE FROM monitor_checkins WHERE monitor_id = ?1 AND started_at < ?2
                 AND started_at < (SELECT max(started_at) FROM monitor_checkins WHERE monitor_id = ?1)",
                (*monitor_id, *before_us),
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteBatch;

    fn row(project: ProjectId, slug: &str) -> CheckInRow {
        let payload = format!(r#"{{"monitor_slug":"{slug}","status":"ok"}}"#);
        CheckInRow {
            project_id: project,
            check_in: CheckIn::from_payload(payload.as_bytes()).unwrap(),
            received_at_us: 1_700_000_000_000_000,
        }
    }

    #[tokio::test]
    async fn new_monitors_past_the_cap_are_dropped_and_existing_ones_pass() {
        let store = Store::open_in_memory().await.unwrap();
        let p = store.create_project("p").await.unwrap().id;
        let q = store.create_project("q").await.unwrap().id;
        let mut batch = WriteBatch {
            check_ins: vec![
                row(p, "a"),
                row(p, "b"),
                row(p, "c"),
                row(p, "a"),
                row(q, "c"),
            ],
            ..WriteBatch::default()
        };
        assert_eq!(
            store
                .drop_monitors_past_cap(&mut batch.check_ins, 2)
                .await
                .unwrap(),
            1,
            "only p's third slug"
        );
        crate::process::batch::commit(&store, &batch, None)
            .await
            .unwrap();
        assert_eq!(store.monitors(Some(p)).await.unwrap().len(), 2);
        let mut next = vec![row(p, "b"), row(p, "d"), row(q, "d")];
        assert_eq!(store.drop_monitors_past_cap(&mut next, 2).await.unwrap(), 1);
        let kept: Vec<(ProjectId, &str)> = next
            .iter()
            .map(|r| (r.project_id, r.check_in.monitor_slug.as_str()))
            .collect();
        assert_eq!(kept, [(p, "b"), (q, "d")]);
    }
}
