//! Log records: written by the processor with its batch, read by the logs page, the event and transaction
//! pages (the lines of their trace) and MCP.
//!
//! A record's id is derived from the queue message that carried it (see `process::logs`), so a redelivered
//! batch inserts nothing twice; ids and trace ids are indexed after the hour of the record, as events' are
//! (see [`super::event_keys`]): a batch's index entries land together.

use std::collections::HashSet;

use crate::lake::LogFact;

use super::cached::Cached;
use super::event_keys::project_hours;
use super::{Result, Store, StoreError};

/// One record to write: its lake row (every column the database keeps too) and when it was received.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub log: LogFact,
    pub received_at_us: i64,
}

/// One stored record, as the pages and tools show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredLog {
    pub log_id: String,
    pub timestamp: i64,
    pub level: String,
    pub severity_number: Option<i64>,
    pub body: String,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
    pub environment: Option<String>,
    pub release: Option<String>,
    /// The typed attributes' JSON text.
    pub attributes: String,
}

/// What a logs query asks for; every part is optional but the project.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only these levels (none: every level).
    pub levels: Vec<String>,
    /// Text the body or an attribute contains (case-insensitive for ASCII).
    pub text: Option<String>,
    pub trace_id: Option<String>,
    /// Records at or after this time.
    pub since_us: Option<i64>,
    /// Records before this time.
    pub until_us: Option<i64>,
    /// Records older than this one (`(timestamp, row id)`), for the next page; the row id is the page's
    /// own cursor, never shown.
    pub before: Option<(i64, i64)>,
    pub limit: u32,
}

/// Most records one read returns.
pub const MAX_LOGS_PER_READ: u32 = 1_000;

/// The columns [`Store::logs_of`] reads, in its order.
macro_rules! columns {
    () => {
        "SELECT l.log_id, l.timestamp, l.level, l.severity_number, l.body, l.trace_id, l.span_id,
            l.environment, l.release, l.attributes, l.id "
    };
}

/// Trace `?2`'s records in project `?1` between `?5` and `?6` (hours `?3` to `?4`), at most `?7`: one seek
/// per hour (a range of hours would walk every record of those hours in the index).
const TRACE_LOGS_WITHIN: &str = concat!(
    "WITH RECURSIVE hours(h) AS (SELECT ?3 UNION ALL SELECT h + 1 FROM hours WHERE h < ?4) ",
    columns!(),
    "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
     AND l.trace_id = ?2 WHERE +l.timestamp BETWEEN ?5 AND ?6 ORDER BY l.timestamp, l.id LIMIT ?7"
);

/// Trace `?2`'s records in project `?1`, at most `?3`.
const TRACE_LOGS: &str = concat!(
    project_hours!("logs"),
    columns!(),
    "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
     AND l.trace_id = ?2 ORDER BY l.timestamp, l.id LIMIT ?3"
);

/// Record `?2` of project `?1`.
const LOG_BY_ID: &str = concat!(
    project_hours!("logs"),
    columns!(),
    "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
     AND l.log_id = ?2 LIMIT 1"
);

/// Which of a batch's records are stored: `?1` is a JSON array of `[project, hour, log id]`.
const STORED_LOGS: &str = "SELECT l.log_id FROM json_each(?1) j JOIN logs l
    ON l.project_id = json_extract(j.value, '$[0]') AND l.timestamp / 3600000000 = json_extract(j.value, '$[1]')
    AND l.log_id = json_extract(j.value, '$[2]')";

const INSERT_LOG: &str =
    "INSERT OR IGNORE INTO logs (project_id, log_id, timestamp, received_at, level,
        severity_number, body, trace_id, span_id, environment, release, attributes)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Writes the records not stored yet (one read for all of them, then one prepared insert each); returns
/// the indexes of the ones written now, which alone go to the lake.
pub(super) async fn insert(cached: &mut Cached, rows: &[LogRow]) -> Result<Vec<usize>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(i64, i64, &str)> = rows
        .iter()
        .map(|r| {
            let l = &r.log;
            (
                l.project_id,
                super::event_keys::hour(l.timestamp_us),
                l.log_id.as_str(),
            )
        })
        .collect();
    let json =
        serde_json::to_string(&keys).map_err(|e| StoreError::Invalid(format!("log keys: {e}")))?;
    let stored: HashSet<String> = cached
        .rows(STORED_LOGS, [json])
        .await?
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(libsql::Value::Text(id)) => Some(id),
            _ => None,
        })
        .collect();
    let mut written = Vec::with_capacity(rows.len());
    let mut seen = HashSet::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let l = &row.log;
        if stored.contains(&l.log_id) || !seen.insert(l.log_id.as_str()) {
            continue;
        }
        cached
            .write(
                INSERT_LOG,
                libsql::params![
                    l.project_id,
                    l.log_id.as_str(),
                    l.timestamp_us,
                    row.received_at_us,
                    l.level.as_str(),
                    l.severity_number,
                    l.body.as_str(),
                    l.trace_id.as_deref(),
                    l.span_id.as_deref(),
                    l.environment.as_deref(),
                    l.release.as_deref(),
                    l.attributes.as_str(),
                ],
            )
            .await?;
        written.push(i);
    }
    Ok(written)
}

impl Store {
    /// Records of a project matching `query`, newest first.
    pub async fn search_logs(
        &self,
        project: i64,
        query: &LogQuery,
    ) -> Result<Vec<(StoredLog, i64)>> {
        let (sql, params) = search_sql(project, query);
        self.logs_of(&sql, params).await
    }

    /// The records of trace `trace_id`, earliest first (at most `limit`): within `around` (a time window)
    /// when the caller knows when the trace happened, else over every hour the project's logs span.
    pub async fn trace_logs(
        &self,
        project: i64,
        trace_id: &str,
        around: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredLog>> {
        let limit = i64::from(limit.clamp(1, MAX_LOGS_PER_READ));
        let (sql, params): (&str, Vec<libsql::Value>) = match around {
            Some((from, to)) => (
                TRACE_LOGS_WITHIN,
                vec![
                    project.into(),
                    trace_id.into(),
                    super::event_keys::hour(from).into(),
                    super::event_keys::hour(to).into(),
                    from.into(),
                    to.into(),
                    limit.into(),
                ],
            ),
            None => (
                TRACE_LOGS,
                vec![project.into(), trace_id.into(), limit.into()],
            ),
        };
        Ok(self
            .logs_of(sql, params)
            .await?
            .into_iter()
            .map(|(log, _)| log)
            .collect())
    }

    /// One record by its id.
    pub async fn log_by_id(&self, project: i64, log_id: &str) -> Result<Option<StoredLog>> {
        let found = self
            .logs_of(LOG_BY_ID, vec![project.into(), log_id.into()])
            .await?;
        Ok(found.into_iter().next().map(|(log, _)| log))
    }

    /// What the logs page's live updates compare: the project's records counted so far.
    pub async fn logs_stamp(&self, project: i64) -> Result<String> {
        let mut rows = self
            .conn()
            .query(
                "SELECT total(count) FROM item_counts WHERE project_id = ?1 AND item_type = 'log'",
                [project],
            )
            .await?;
        let n: f64 = match rows.next().await? {
            Some(row) => row.get(0)?,
            None => 0.0,
        };
        Ok(format!("logs:{n}"))
    }

    /// Records of the rows `sql` selects (`columns!`), each with its row id.
    async fn logs_of(
        &self,
        sql: &str,
        params: Vec<libsql::Value>,
    ) -> Result<Vec<(StoredLog, i64)>> {
        let mut rows = self.conn().query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((
                StoredLog {
                    log_id: row.get(0)?,
                    timestamp: row.get(1)?,
                    level: row.get(2)?,
                    severity_number: row.get(3)?,
                    body: row.get(4)?,
                    trace_id: row.get(5)?,
                    span_id: row.get(6)?,
                    environment: row.get(7)?,
                    release: row.get(8)?,
                    attributes: row.get(9)?,
                },
                row.get(10)?,
            ));
        }
        Ok(out)
    }
}

/// The statement of [`Store::search_logs`] and its parameters. With a trace, the records are found by one
/// seek of `logs_trace` per hour the project's logs span (as [`TRACE_LOGS`]); else along
/// `logs_project_time`, newest first.
fn search_sql(project: i64, query: &LogQuery) -> (String, Vec<libsql::Value>) {
    let (mut sql, mut params): (String, Vec<libsql::Value>) = match &query.trace_id {
        Some(trace) => (
            concat!(
                project_hours!("logs"),
                columns!(),
                "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
                 AND l.trace_id = ?2 WHERE 1"
            )
            .to_owned(),
            vec![project.into(), trace.clone().into()],
        ),
        None => (
            concat!(columns!(), "FROM logs l WHERE l.project_id = ?1").to_owned(),
            vec![project.into()],
        ),
    };
    let mut param = |sql: &mut String, clause: &str, value: libsql::Value| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    // With a trace, `+` keeps SQLite from walking the time index instead of seeking the trace's.
    let time = match query.trace_id {
        Some(_) => "+l.timestamp",
        None => "l.timestamp",
    };
    if let Some(since) = query.since_us {
        param(&mut sql, &format!(" AND {time} >= ?"), since.into());
    }
    if let Some(until) = query.until_us {
        param(&mut sql, &format!(" AND {time} < ?"), until.into());
    }
    if let Some((ts, id)) = query.before {
        let clause = format!(" AND ({time} < ? OR ({time} = ?");
        param(&mut sql, &clause, ts.into());
        param(&mut sql, " AND l.id < ?))", id.into());
    }
    if !query.levels.is_empty() {
        let levels = serde_json::to_string(&query.levels).unwrap_or_else(|_| "[]".into());
        param(
            &mut sql,
            " AND l.level IN (SELECT value FROM json_each(?))",
            levels.into(),
        );
    }
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", like_escaped(text));
        // Every `?` of a clause is its one parameter: both sides match the same pattern.
        param(
            &mut sql,
            " AND (l.body LIKE ? ESCAPE '\\' OR l.attributes LIKE ? ESCAPE '\\')",
            pattern.into(),
        );
    }
    let limit = query.limit.clamp(1, MAX_LOGS_PER_READ);
    sql.push_str(&format!(
        " ORDER BY l.timestamp DESC, l.id DESC LIMIT {limit}"
    ));
    (sql, params)
}

/// `text` with LIKE's wildcards and the escape character escaped.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement by id or trace seeks the hour indexes (a plan that lost them would still answer,
    /// only by walking every record of the project).
    #[tokio::test]
    async fn lookups_by_id_and_trace_seek_the_hour_indexes() {
        let store = Store::open_in_memory().await.unwrap();
        let trace = LogQuery {
            trace_id: Some("ab".repeat(16)),
            since_us: Some(0),
            text: Some("x".into()),
            levels: vec!["warn".into()],
            ..LogQuery::default()
        };
        let (by_trace, _) = search_sql(1, &trace);
        for (sql, index) in [
            (by_trace.as_str(), "logs_trace"),
            (STORED_LOGS, "logs_id"),
            (LOG_BY_ID, "logs_id"),
            (TRACE_LOGS, "logs_trace"),
            (TRACE_LOGS_WITHIN, "logs_trace"),
        ] {
            let plan = store.query_plan(sql, ()).await;
            let seek = format!("SEARCH l USING INDEX {index} (project_id=? AND <expr>");
            assert!(
                plan.iter().any(|l| l.starts_with(&seek)),
                "{sql}\n{plan:#?}"
            );
            assert!(
                !plan.iter().any(|l| l.starts_with("SCAN l")),
                "{sql}\n{plan:#?}"
            );
        }
    }

    #[test]
    fn like_wildcards_are_searched_for_literally() {
        assert_eq!(like_escaped("50%_off\\"), "50\\%\\_off\\\\");
    }
}
