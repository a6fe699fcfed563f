//! Log records: written by the processor with its batch, read by the logs page, the event and transaction
//! pages (the lines of their trace) and MCP.
//!
//! A record's id is derived from the queue message that carried it (see `process::logs`), so a redelivered
//! batch inserts nothing twice; ids and trace ids are indexed after the hour of the record, as events' are
//! (see [`super::event_keys`]): a batch's index entries land together.
//!
//! A record's time key is its place in time ([`time_key`]): every list walks keys down, newest first, and
//! stops at its last line. Text is found through `logs_text` (migration 25), a trigram index of the
//! body and the attribute values the pages show; what it finds is checked against the record, so a search
//! answers exactly what a scan of the window would.

use std::collections::HashSet;

use crate::lake::LogFact;

use super::cached::Cached;
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
    /// Text the body or the value of an attribute (but `sentry.*`) contains (case-insensitive for ASCII);
    /// under three characters, only within the newest [`SHORT_TEXT_SCAN`] records of the window.
    pub text: Option<String>,
    pub trace_id: Option<String>,
    /// Records at or after this time.
    pub since_us: Option<i64>,
    /// Records before this time.
    pub until_us: Option<i64>,
    /// Records older than this one (its time key), for the next page; the key is the page's own cursor,
    /// never shown.
    pub before: Option<i64>,
    pub limit: u32,
}

/// Most records one read returns.
pub const MAX_LOGS_PER_READ: u32 = 1_000;

/// Most records a search for one or two characters (too short for a trigram) looks through.
pub const SHORT_TEXT_SCAN: u32 = 100_000;

/// Time keys per millisecond: a record's key is its timestamp's millisecond times this, plus its arrival
/// within that millisecond.
const KEYS_PER_MS: i64 = 1 << 20;

/// The first time key of `timestamp_us`'s millisecond: records before it have smaller ones.
fn time_key(timestamp_us: i64) -> i64 {
    timestamp_us.div_euclid(1_000).saturating_mul(KEYS_PER_MS)
}

/// Time keys at or above which every record is at or after `since_us`'s millisecond.
fn keys_since(since_us: i64) -> i64 {
    time_key(since_us)
}

/// Time keys below which every record before `until_us` lies (the end of the millisecond before it).
pub(super) fn keys_until(until_us: i64) -> i64 {
    time_key(until_us.saturating_sub(1)).saturating_add(KEYS_PER_MS)
}

/// Whether the body or an attribute value the pages show (`sentry.*` left out; a string as itself, any
/// other value as its JSON) is LIKE `?`: the text `logs_text` indexes, as its insert trigger reads it.
const TEXT_LIKE: &str = " AND (l.body LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM json_each(l.attributes) a
    WHERE a.key NOT LIKE 'sentry.%' AND a.type = 'object' AND iif(json_type(a.value, '$.value') = 'text',
    a.value ->> '$.value', a.value -> '$.value') LIKE ? ESCAPE '\\'))";

/// Every hour of project `?1`'s records, newest first, found from its first and last time keys (one seek
/// each of `logs_project`: the key holds the millisecond).
macro_rules! log_hours {
    () => {
        "WITH RECURSIVE hours(h) AS (
            SELECT (SELECT max(time_key) FROM logs WHERE project_id = ?1) / 1048576 / 3600000
            UNION ALL
            SELECT h - 1 FROM hours
            WHERE h > (SELECT min(time_key) FROM logs WHERE project_id = ?1) / 1048576 / 3600000
        ) "
    };
}

/// The columns [`Store::logs_of`] reads, in its order.
macro_rules! columns {
    () => {
        "SELECT l.log_id, l.timestamp, l.level, l.severity_number, l.body, l.trace_id, l.span_id,
            l.environment, l.release, l.attributes, l.time_key "
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
    log_hours!(),
    columns!(),
    "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
     AND l.trace_id = ?2 ORDER BY l.timestamp, l.id LIMIT ?3"
);

/// Record `?2` of project `?1`.
const LOG_BY_ID: &str = concat!(
    log_hours!(),
    columns!(),
    "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
     AND l.log_id = ?2 LIMIT 1"
);

/// Which of a batch's records are stored: `?1` is a JSON array of `[project, hour, log id]`.
const STORED_LOGS: &str = "SELECT l.log_id FROM json_each(?1) j JOIN logs l
    ON l.project_id = json_extract(j.value, '$[0]') AND l.timestamp / 3600000000 = json_extract(j.value, '$[1]')
    AND l.log_id = json_extract(j.value, '$[2]')";

/// A record, its time key the next free one of its millisecond `?13` (one seek of `logs_time` down from
/// the next millisecond). Not `OR IGNORE`: a record already stored is left out before, and a full millisecond must
/// fail the batch, never drop a record.
const INSERT_LOG: &str = "INSERT INTO logs (time_key, project_id, log_id, timestamp, received_at, level,
        severity_number, body, trace_id, span_id, environment, release, attributes)
     VALUES (coalesce((SELECT time_key + 1 FROM logs WHERE time_key >= ?13 AND time_key < ?13 + 1048576
            ORDER BY time_key DESC LIMIT 1), ?13),
        ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Writes the records not stored yet (one read for all of them, then one prepared insert each, in time
/// order: the text index then appends, where a key below the last one would make it write out what
/// it holds); returns the indexes of the ones written now, which alone go to the lake.
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
    let mut in_time_order: Vec<usize> = (0..rows.len()).collect();
    in_time_order.sort_by_key(|&i| rows[i].log.timestamp_us);
    let mut written = Vec::with_capacity(rows.len());
    let mut seen = HashSet::with_capacity(rows.len());
    for i in in_time_order {
        let row = &rows[i];
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
                    time_key(l.timestamp_us),
                ],
            )
            .await?;
        written.push(i);
    }
    written.sort_unstable();
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

    /// Records of the rows `sql` selects (`columns!`), each with its time key.
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

/// The statement of [`Store::search_logs`] and its parameters, newest first by time key. With a trace, the
/// records are found by one seek of `logs_trace` per hour of the project's records (as [`TRACE_LOGS`]);
/// with text of three characters or more, by walking `logs_text`'s matches down from the window's end,
/// each checked against its record; with levels, along `logs_level`, one walk per level, merged; else
/// along `logs_project`.
fn search_sql(project: i64, query: &LogQuery) -> (String, Vec<libsql::Value>) {
    let text = query.text.as_deref().filter(|t| !t.is_empty());
    let trigrams = text.and_then(trigram_query);
    let mut params: Vec<libsql::Value> = vec![project.into()];
    let mut bind = |value: libsql::Value| {
        params.push(value);
        format!("?{}", params.len())
    };
    // Where the records come from, and the time key that walk follows (`+` keeps SQLite seeking the
    // trace's index rather than a range of keys).
    let (from, key) = match (&query.trace_id, &trigrams) {
        (Some(trace), _) => (
            format!(
                "FROM hours CROSS JOIN logs l ON l.project_id = ?1 AND l.timestamp / 3600000000 = hours.h
                 AND l.trace_id = {} WHERE 1",
                bind(trace.clone().into())
            ),
            "+l.time_key",
        ),
        (None, Some(matching)) => (
            format!(
                "FROM logs_text t CROSS JOIN logs l ON l.time_key = t.rowid
                 WHERE logs_text MATCH {} AND l.project_id = ?1",
                bind(matching.clone().into())
            ),
            "t.rowid",
        ),
        (None, None) => ("FROM logs l WHERE l.project_id = ?1".to_owned(), "l.time_key"),
    };
    // The window in time keys (whole milliseconds, for the walk), then exactly.
    let mut filters = String::new();
    if let Some(since) = query.since_us {
        let (key_since, since) = (bind(keys_since(since).into()), bind(since.into()));
        filters += &format!(" AND {key} >= {key_since} AND l.timestamp >= {since}");
    }
    if let Some(until) = query.until_us {
        let (key_until, until) = (bind(keys_until(until).into()), bind(until.into()));
        filters += &format!(" AND {key} < {key_until} AND l.timestamp < {until}");
    }
    if let Some(id) = query.before {
        filters += &format!(" AND {key} < {}", bind(id.into()));
    }
    let limit = query.limit.clamp(1, MAX_LOGS_PER_READ);
    // A text too short for the index is looked for among a bounded number of the newest records.
    let short_text = text.is_some() && trigrams.is_none() && query.trace_id.is_none();
    let walk = if short_text { SHORT_TEXT_SCAN } else { limit };
    let (mut sql, key) = if key == "l.time_key" && !query.levels.is_empty() {
        // One walk down `logs_level` per level, merged: a level rare in the window costs no walk of
        // the others' records.
        let arms: Vec<String> = query
            .levels
            .iter()
            .map(|level| {
                let level = bind(level.clone().into());
                format!(
                    "SELECT * FROM ({} {from} AND l.level = {level}{filters} ORDER BY l.time_key DESC LIMIT {walk})",
                    columns!()
                )
            })
            .collect();
        let union = format!("SELECT * FROM ({}) l WHERE 1", arms.join(" UNION ALL "));
        (union, "l.time_key")
    } else {
        if !query.levels.is_empty() {
            let levels = serde_json::to_string(&query.levels).unwrap_or_else(|_| "[]".into());
            let levels = bind(levels.into());
            filters += &format!(" AND l.level IN (SELECT value FROM json_each({levels}))");
        }
        let hours = if query.trace_id.is_some() {
            log_hours!()
        } else {
            ""
        };
        let found = format!("{hours}{} {from}{filters}", columns!());
        if short_text {
            let newest =
                format!("SELECT * FROM ({found} ORDER BY l.time_key DESC LIMIT {walk}) l WHERE 1");
            (newest, "l.time_key")
        } else {
            (found, key)
        }
    };
    if let Some(text) = text {
        // Every `?` of the clause is its one parameter: both sides match the same pattern.
        let pattern = bind(format!("%{}%", like_escaped(text)).into());
        sql += &TEXT_LIKE.replace('?', &pattern);
    }
    sql += &format!(" ORDER BY {key} DESC LIMIT {limit}");
    (sql, params)
}

/// Most trigrams of a search term the index is asked for: more only narrow candidates a check rules out.
const MAX_TRIGRAMS: usize = 8;

/// The `logs_text` query for records holding every trigram of `text` (at most [`MAX_TRIGRAMS`], spread
/// over it), each a quoted string; none under three characters.
fn trigram_query(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut seen = HashSet::new();
    let trigrams: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .collect();
    let last = trigrams.len().checked_sub(1)?;
    let picks = MAX_TRIGRAMS.min(trigrams.len());
    let quoted: Vec<String> = (0..picks)
        .map(|i| &trigrams[i * last / (picks - 1).max(1)])
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    Some(quoted.join(" AND "))
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

    /// A text search of three characters or more walks the trigram index down from the window's end;
    /// without text, the project's or a level's records in time key order; never the whole table.
    #[tokio::test]
    async fn text_search_walks_the_trigram_index_and_lists_walk_the_project() {
        let store = Store::open_in_memory().await.unwrap();
        let query = |text: Option<&str>, levels: &[&str]| LogQuery {
            text: text.map(str::to_owned),
            since_us: Some(NOW - HOUR),
            levels: levels.iter().map(|l| l.to_string()).collect(),
            before: Some(time_key(NOW)),
            ..LogQuery::default()
        };
        let (by_text, _) = search_sql(1, &query(Some("checked out"), &["warn"]));
        let plan = store.query_plan(&by_text, ()).await;
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SCAN t VIRTUAL TABLE INDEX")),
            "{plan:#?}"
        );
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH l USING INDEX logs_time (time_key=?)")),
            "{plan:#?}"
        );
        assert!(!plan.iter().any(|l| l.contains("TEMP B-TREE")), "{plan:#?}");
        let project =
            "SEARCH l USING INDEX logs_project (project_id=? AND time_key>? AND time_key<?)";
        let level =
            "SEARCH l USING INDEX logs_level (project_id=? AND level=? AND time_key>? AND time_key<?)";
        for (list, seek, seeks) in [
            (query(None, &[]), project, 1),
            (query(Some("ch"), &[]), project, 1),
            (query(None, &["warn", "error", "fatal"]), level, 3),
            (query(Some("ch"), &["error"]), level, 1),
        ] {
            let (sql, _) = search_sql(1, &list);
            let plan = store.query_plan(&sql, ()).await;
            let found = plan.iter().filter(|l| l.starts_with(seek)).count();
            assert_eq!(found, seeks, "{sql}\n{plan:#?}");
            // A scan of `l` is only of the newest records a seek found (the wrapping query's).
            let wrapped = plan.iter().any(|l| l == "CO-ROUTINE l");
            let scanned = plan.iter().any(|l| l == "SCAN l");
            assert!(!scanned || wrapped, "{sql}\n{plan:#?}");
        }
    }

    const NOW: i64 = 1_780_000_000_000_000;
    const HOUR: i64 = 3_600_000_000;

    /// A deterministic corpus: two projects, three hours, many records in the same millisecond, bodies
    /// and typed attribute values with mixed case, LIKE's wildcards and quotes, and a `sentry.*` value
    /// no search may find.
    fn corpus() -> Vec<LogRow> {
        let words = [
            "checked",
            "Out",
            "cart",
            "50%_off",
            "\"quoted\"",
            "naïve",
            "ÉCOLE",
            "x",
            "payment",
            "retry",
        ];
        let mut seed = 7u64;
        let mut next = move |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        (0..3_000)
            .map(|i| {
                let mut pick = || words[next(words.len() as u64) as usize];
                let body = format!("evt {} {} {}", pick(), pick(), pick());
                let route = format!("/{}/{}", pick(), pick());
                let attributes = serde_json::json!({
                    "http.route": {"type": "string", "value": route},
                    "user.id": {"type": "integer", "value": next(100)},
                    "cart.total": {"type": "double", "value": next(40) as f64 / 4.0},
                    "cart.express": {"type": "boolean", "value": next(2) == 1},
                    "sentry.release": {"type": "string", "value": "shop@2.4.1 zzsecret"},
                });
                LogRow {
                    log: LogFact {
                        project_id: 1 + (next(5) == 0) as i64,
                        // Whole milliseconds, few of them: records share them.
                        timestamp_us: NOW
                            - (next(3 * 3_600) as i64 * 1_000_000)
                            - next(3) as i64 * 1_000,
                        log_id: format!("{i:032x}"),
                        trace_id: None,
                        span_id: None,
                        level: ["info", "warn", "error"][next(3) as usize].into(),
                        severity_number: None,
                        body,
                        environment: None,
                        release: None,
                        sdk_name: None,
                        attributes: attributes.to_string(),
                    },
                    received_at_us: NOW,
                }
            })
            .collect()
    }

    /// Whether a record holds `text` as the pages show it: its body or an attribute value (a string as
    /// itself, anything else as JSON), `sentry.*` left out, case-insensitive for ASCII as LIKE.
    fn holds(row: &LogRow, text: &str) -> bool {
        let text = text.to_ascii_lowercase();
        let attributes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.log.attributes).unwrap();
        std::iter::once(row.log.body.clone())
            .chain(
                attributes
                    .iter()
                    .filter(|(k, _)| !k.starts_with("sentry."))
                    .map(|(_, v)| match &v["value"] {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }),
            )
            .any(|t| t.to_ascii_lowercase().contains(&text))
    }

    async fn stored(rows: &[LogRow]) -> Store {
        let store = Store::open_in_memory().await.unwrap();
        store.create_project("one").await.unwrap();
        store.create_project("two").await.unwrap();
        let mut tx = store.begin_batch().await.unwrap();
        // Two batches, the second partly redelivering the first: nothing is written twice.
        assert_eq!(tx.write_logs(&rows[..2_000]).await.unwrap().len(), 2_000);
        tx.commit().await.unwrap();
        let mut tx = store.begin_batch().await.unwrap();
        assert_eq!(tx.write_logs(&rows[1_000..]).await.unwrap().len(), 1_000);
        tx.commit().await.unwrap();
        store
    }

    /// Every page of a search, followed to its end.
    async fn all_pages(store: &Store, project: i64, mut query: LogQuery) -> Vec<StoredLog> {
        let mut found = Vec::new();
        loop {
            let page = store.search_logs(project, &query).await.unwrap();
            let Some((_, last)) = page.last() else {
                return found;
            };
            query.before = Some(*last);
            found.extend(page.into_iter().map(|(log, _)| log));
        }
    }

    /// Through the index or the short scan, a search answers what checking every record would, newest
    /// first, page after page.
    #[tokio::test]
    async fn searches_answer_what_a_scan_of_every_record_would() {
        let rows = corpus();
        let store = stored(&rows).await;
        let terms = [
            "",
            "ch",
            "x",
            "%",
            "checked",
            "CHECKED OUT",
            "ut c",
            "50%_off",
            "%_o",
            "\"quoted",
            "naïve",
            "ÉCOLE",
            "école",
            "/cart/",
            "12.5",
            "true",
            "fals",
            "shop@2",
            "zzsecret",
            "retry payment",
            "nothing like this",
        ];
        for text in terms {
            for (project, levels, since) in [
                (1, vec![], None),
                (
                    2,
                    vec!["warn".to_owned(), "error".to_owned()],
                    Some(NOW - HOUR),
                ),
            ] {
                let query = LogQuery {
                    text: Some(text.into()),
                    levels: levels.clone(),
                    since_us: since,
                    limit: 37,
                    ..LogQuery::default()
                };
                let found = all_pages(&store, project, query).await;
                let mut expected: Vec<&str> = rows
                    .iter()
                    .filter(|r| r.log.project_id == project && holds(r, text))
                    .filter(|r| levels.is_empty() || levels.contains(&r.log.level))
                    .filter(|r| since.is_none_or(|s| r.log.timestamp_us >= s))
                    .map(|r| r.log.log_id.as_str())
                    .collect();
                expected.sort_unstable();
                let mut ids: Vec<&str> = found.iter().map(|l| l.log_id.as_str()).collect();
                ids.sort_unstable();
                assert_eq!(ids, expected, "{text:?} in project {project}");
                let times: Vec<i64> = found.iter().map(|l| l.timestamp).collect();
                assert!(
                    times.windows(2).all(|w| w[0] >= w[1]),
                    "{text:?}: newest first"
                );
            }
        }
        let none = ["zzsecret", "shop@2"].map(|t| holds(&rows[0], t));
        assert_eq!(none, [false, false], "sentry.* values are not searched");
    }

    /// Retention's deletes and a project's deletion take the records' text out of the index with them.
    #[tokio::test]
    async fn deleted_records_leave_nothing_in_the_text_index() {
        let rows = corpus();
        let store = stored(&rows).await;
        let count = |sql: &'static str| {
            let store = &store;
            async move {
                let mut r = store.conn().query(sql, ()).await.unwrap();
                r.next().await.unwrap().unwrap().get::<i64>(0).unwrap()
            }
        };
        store
            .conn()
            .execute(
                "CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, logs_text, row)",
                (),
            )
            .await
            .unwrap();
        let (records, indexed) = (
            "SELECT count(*) FROM logs",
            "SELECT coalesce(max(doc), 0) FROM temp.terms",
        );
        let payment = "SELECT count(*) FROM logs_text('\"pay\" AND \"ent\"')";
        assert_eq!(count(indexed).await, 3_000, "every body holds \"evt\"");
        assert!(count(payment).await > 0);
        let deleted = store.delete_logs_before(NOW - HOUR).await.unwrap();
        assert!(deleted > 1_000, "{deleted}");
        assert_eq!(count(indexed).await, count(records).await);
        for project in [2, 1] {
            let project = crate::protocol::ProjectId::new(project);
            store.delete_project(project).await.unwrap();
        }
        assert_eq!(count(records).await, 0);
        assert_eq!(count("SELECT count(*) FROM temp.terms").await, 0);
        assert_eq!(count(payment).await, 0);
    }

    #[test]
    fn long_terms_ask_for_a_spread_of_their_trigrams_quoted() {
        assert_eq!(trigram_query("ab"), None);
        assert_eq!(
            trigram_query("a\"bc").as_deref(),
            Some("\"a\"\"b\" AND \"\"\"bc\"")
        );
        let long = trigram_query(&"abcdefghij".repeat(10)).unwrap();
        assert_eq!(long.matches(" AND ").count(), MAX_TRIGRAMS - 1, "{long}");
    }

    #[test]
    fn row_ids_keep_time_order_by_millisecond() {
        assert_eq!(time_key(1_999), KEYS_PER_MS);
        assert_eq!(keys_since(1_000), KEYS_PER_MS);
        assert_eq!(keys_until(2_000), 2 * KEYS_PER_MS);
        assert_eq!(keys_until(2_001), 3 * KEYS_PER_MS);
        assert!(time_key(-1) < 0);
    }

    #[test]
    fn like_wildcards_are_searched_for_literally() {
        assert_eq!(like_escaped("50%_off\\"), "50\\%\\_off\\\\");
    }
}
