//! Log records: written by the processor with its batch, read by the logs page, the event and transaction
//! pages (the lines of their trace) and MCP.
//!
//! The database holds them in blocks ([`super::log_blocks`]): a read walks the project's blocks newest
//! first (along their ids, the time of their newest record), through the text index, a level's or a
//! trace's entries when the query names one, opens each block that may hold what it wants and checks its
//! records; it stops once no block left can hold a record newer than its page's last. A search so answers
//! exactly what a scan of the window would.

use std::cmp::Reverse;
use std::collections::HashSet;

use crate::lake::LogFact;

use super::cached::Cached;
use super::log_blocks::{self, RawRecord, SPAN_US};
use super::{Result, Store, StoreError};

/// One record to write: its lake row (every column the database keeps too), when it was received, the
/// item it came in and the text a search looks in.
#[derive(Debug, Clone)]
pub struct LogRow {
    pub log: LogFact,
    pub received_at_us: i64,
    /// The item that carried it (from its queue message: the same again on a redelivery); an item's rows
    /// are consecutive in a batch.
    pub origin: u64,
    /// [`crate::model::log::searchable_text`] of the record.
    pub text: Vec<String>,
}

impl LogRow {
    /// A row whose searchable text is read from its attributes' JSON (the processor has them parsed
    /// and fills [`LogRow::text`] itself).
    pub fn new(mut log: LogFact, received_at_us: i64, origin: u64) -> Self {
        // A block embeds its records' attributes as they are: text that is not a JSON object would spoil
        // the whole block, so it becomes an empty object.
        let attributes = serde_json::from_str(&log.attributes).unwrap_or_else(|_| {
            log.attributes = "{}".into();
            serde_json::Map::new()
        });
        let text = crate::model::log::searchable_text(&log.body, &attributes)
            .map(|t| t.into_owned())
            .collect();
        Self {
            log,
            received_at_us,
            origin,
            text,
        }
    }
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

/// A record's place in the newest-first order of every list: its time, then its block and its place in
/// it. Shown as `time.block.position`, the page's cursor for the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogCursor {
    timestamp_us: i64,
    block: i64,
    position: i64,
}

impl std::fmt::Display for LogCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.timestamp_us, self.block, self.position)
    }
}

impl std::str::FromStr for LogCursor {
    type Err = ();
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        let mut parts = s.splitn(3, '.').map(|p| p.parse::<i64>().map_err(|_| ()));
        let mut next = || parts.next().unwrap_or(Err(()));
        Ok(Self {
            timestamp_us: next()?,
            block: next()?,
            position: next()?,
        })
    }
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
    /// Records after this one in the list (the page's last), for the next page.
    pub before: Option<LogCursor>,
    pub limit: u32,
}

/// Most records one read returns.
pub const MAX_LOGS_PER_READ: u32 = 1_000;

/// About the most records a search for one or two characters (too short for a trigram) looks through.
pub const SHORT_TEXT_SCAN: u32 = 100_000;

/// Time keys per millisecond: a block's id is its newest record's millisecond times this, plus its arrival
/// within that millisecond.
const KEYS_PER_MS: i64 = 1 << 20;

/// Blocks a walk lists at a time.
const WALK_STEP: i64 = 64;

/// The first time key of `timestamp_us`'s millisecond: blocks before it have smaller ids.
fn time_key(timestamp_us: i64) -> i64 {
    timestamp_us.div_euclid(1_000).saturating_mul(KEYS_PER_MS)
}

/// Block ids below which every block's newest record is before `cutoff_us`, in whole milliseconds (a
/// block whose newest record is in the cutoff's millisecond is not below it).
pub(super) fn blocks_before(cutoff_us: i64) -> i64 {
    time_key(cutoff_us)
}

/// Block ids below which every block's newest record is before `until_us`.
fn keys_until(until_us: i64) -> i64 {
    time_key(until_us.saturating_sub(1)).saturating_add(KEYS_PER_MS)
}

/// The latest time a record of block `id` can have (the end of its id's millisecond).
fn newest_possible(id: i64) -> i64 {
    id.div_euclid(KEYS_PER_MS)
        .saturating_mul(1_000)
        .saturating_add(999)
}

/// Which of a batch's blocks are stored: `?1` is a JSON array of `[project, origin]`.
const STORED_BLOCKS: &str = "SELECT b.project_id, b.origin FROM json_each(?1) j JOIN log_blocks b
    ON b.project_id = j.value ->> 0 AND b.origin = j.value ->> 1";

/// A block, its id the next free one of its newest record's millisecond `?1` (one seek down from the
/// next millisecond). Not `OR IGNORE`: a block already stored is left out before, and a full millisecond
/// must fail the batch, never drop a record. Its trigger indexes its text.
const INSERT_BLOCK: &str =
    "INSERT INTO log_blocks (id, project_id, origin, oldest, count, text, records)
     VALUES (coalesce((SELECT id + 1 FROM log_blocks WHERE id >= ?1 AND id < ?1 + 1048576
            ORDER BY id DESC LIMIT 1), ?1), ?2, ?3, ?4, ?5, ?6, ?7)";

/// Block `(?1, ?2)`'s levels, `?3` a JSON array.
const INSERT_LEVELS: &str = "INSERT INTO log_levels (project_id, level, block_id)
    SELECT ?1, j.value, b.id FROM log_blocks b, json_each(?3) j WHERE b.project_id = ?1 AND b.origin = ?2";

/// Block `(?1, ?2)`'s traces, `?3` a JSON array of `[hour, trace id]`.
const INSERT_TRACES: &str = "INSERT INTO log_traces (project_id, hour, trace_id, block_id)
    SELECT ?1, j.value ->> 0, j.value ->> 1, b.id FROM log_blocks b, json_each(?3) j
    WHERE b.project_id = ?1 AND b.origin = ?2";

/// Writes the records of the blocks not stored yet (one read for all of them, then a few statements per
/// block); returns the indexes and ids of the records written, which alone go to the lake.
pub(super) async fn insert(cached: &mut Cached, rows: &[LogRow]) -> Result<Vec<(usize, String)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let blocks = log_blocks::blocks_of(rows);
    let keys: Vec<(i64, i64)> = blocks.iter().map(|b| (b.project_id, b.origin)).collect();
    let json =
        serde_json::to_string(&keys).map_err(|e| StoreError::Invalid(format!("log keys: {e}")))?;
    let mut stored: HashSet<(i64, i64)> = cached
        .rows(STORED_BLOCKS, [json])
        .await?
        .into_iter()
        .filter_map(|row| match row[..] {
            [libsql::Value::Integer(project), libsql::Value::Integer(origin)] => {
                Some((project, origin))
            }
            _ => None,
        })
        .collect();
    let mut written = Vec::with_capacity(rows.len());
    for block in &blocks {
        // Stored before, or the same item twice in this batch.
        if !stored.insert((block.project_id, block.origin)) {
            continue;
        }
        write_block(cached, rows, block).await?;
        let ids = (0..).map(|position| log_blocks::log_id(block.origin, position));
        written.extend(block.rows.iter().copied().zip(ids));
    }
    written.sort_unstable();
    Ok(written)
}

async fn write_block(
    cached: &mut Cached,
    rows: &[LogRow],
    block: &log_blocks::Block,
) -> Result<()> {
    let at = |n: usize| rows[block.rows[n]].log.timestamp_us;
    let (oldest, newest) = (at(0), at(block.rows.len() - 1));
    let (project, origin) = (block.project_id, block.origin);
    cached
        .write(
            INSERT_BLOCK,
            libsql::params![
                time_key(newest),
                project,
                origin,
                oldest,
                block.rows.len() as i64,
                log_blocks::text(rows, block),
                log_blocks::records_json(rows, block),
            ],
        )
        .await?;
    let levels = log_blocks::levels_json(rows, block);
    cached
        .write(INSERT_LEVELS, libsql::params![project, origin, levels])
        .await?;
    let traces = log_blocks::traces_json(rows, block);
    if traces != "[]" {
        cached
            .write(INSERT_TRACES, libsql::params![project, origin, traces])
            .await?;
    }
    Ok(())
}

/// What a search asks of each record, prepared once.
struct Wanted<'q> {
    query: &'q LogQuery,
    /// The text, lowercased for ASCII (as LIKE compares).
    text: Option<String>,
}

impl Wanted<'_> {
    /// Whether the record is one the query wants (the text, the costliest check, last).
    fn holds(&self, record: &RawRecord<'_>, cursor: &LogCursor) -> bool {
        let q = self.query;
        q.before.is_none_or(|b| *cursor < b)
            && q.since_us.is_none_or(|s| record.timestamp >= s)
            && q.until_us.is_none_or(|u| record.timestamp < u)
            && (q.levels.is_empty() || q.levels.iter().any(|l| *l == record.level))
            && q.trace_id
                .as_deref()
                .is_none_or(|t| record.trace_id.as_deref() == Some(t))
            && self
                .text
                .as_deref()
                .is_none_or(|text| record.holds_text(text))
    }

    /// Whether a block may hold a record the query wants, from its oldest record's time.
    fn may_hold(&self, oldest: i64) -> bool {
        let q = self.query;
        q.until_us.is_none_or(|u| oldest < u) && q.before.is_none_or(|b| oldest <= b.timestamp_us)
    }
}

/// Where a walk finds its blocks: a statement listing `(id, oldest)` of project `?1`'s blocks newest first,
/// ids below `?2` and at or above `?3`, at most `?4`; its own parameters follow.
struct Source {
    sql: String,
    params: Vec<libsql::Value>,
}

/// Block `?1`'s origin and records.
const BLOCK_BY_ID: &str = "SELECT origin, records FROM log_blocks WHERE id = ?1";

impl Store {
    /// Records of a project matching `query`, newest first, each with its cursor.
    pub async fn search_logs(
        &self,
        project: i64,
        query: &LogQuery,
    ) -> Result<Vec<(StoredLog, LogCursor)>> {
        let text = query.text.as_deref().filter(|t| !t.is_empty());
        let source = source(query, text);
        // Text too short for the index is looked for among a bounded number of the newest records.
        let short_text =
            query.trace_id.is_none() && text.is_some_and(|t| trigram_query(t).is_none());
        let wanted = Wanted {
            query,
            text: text.map(str::to_ascii_lowercase),
        };
        let limit = query.limit.clamp(1, MAX_LOGS_PER_READ) as usize;
        let scan = short_text.then_some(SHORT_TEXT_SCAN as usize);
        self.walk(project, &source, &wanted, limit, scan).await
    }

    /// Walks `source`'s blocks newest first and keeps the newest `limit` records `wanted` holds; stops
    /// once no block left can hold a newer one (or, with `scan`, after about that many records).
    async fn walk(
        &self,
        project: i64,
        source: &Source,
        wanted: &Wanted<'_>,
        limit: usize,
        scan: Option<usize>,
    ) -> Result<Vec<(StoredLog, LogCursor)>> {
        let q = wanted.query;
        // Blocks whose newest record is at most a block's span after the latest record wanted.
        let latest = [
            q.until_us.map(|u| u.saturating_sub(1)),
            q.before.map(|b| b.timestamp_us),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut below = latest.map_or(i64::MAX, |t| keys_until(t.saturating_add(SPAN_US + 1)));
        let lowest = q.since_us.map_or(i64::MIN, time_key);
        let mut found: Vec<(LogCursor, StoredLog)> = Vec::new();
        let mut examined = 0;
        loop {
            let mut params = vec![
                project.into(),
                below.into(),
                lowest.into(),
                WALK_STEP.into(),
            ];
            params.extend(source.params.iter().cloned());
            let heads: Vec<(i64, i64)> = self.id_pairs(&source.sql, params).await?;
            let Some(&(last, _)) = heads.last() else {
                break;
            };
            below = last;
            let mut done = false;
            for &(id, oldest) in &heads {
                let full =
                    found.len() >= limit && found[limit - 1].0.timestamp_us > newest_possible(id);
                if full || scan.is_some_and(|s| examined >= s) {
                    done = true;
                    break;
                }
                if !wanted.may_hold(oldest) {
                    continue;
                }
                let Some((origin, json)) = self.block(id).await? else {
                    continue;
                };
                let records = log_blocks::decode(origin, &json)?;
                examined += records.len();
                for (position, record) in records.iter().enumerate() {
                    let cursor = LogCursor {
                        timestamp_us: record.timestamp,
                        block: id,
                        position: position as i64,
                    };
                    // A record the page has no room for is not even checked.
                    let room = found.len() < limit || cursor > found[limit - 1].0;
                    if room && wanted.holds(record, &cursor) {
                        found.push((cursor, record.to_stored(origin, position)));
                    }
                }
                found.sort_unstable_by_key(|(cursor, _)| Reverse(*cursor));
                found.truncate(limit);
            }
            if done || heads.len() < WALK_STEP as usize {
                break;
            }
        }
        Ok(found.into_iter().map(|(c, log)| (log, c)).collect())
    }

    /// `(id, oldest)` pairs `sql` lists.
    async fn id_pairs(&self, sql: &str, params: Vec<libsql::Value>) -> Result<Vec<(i64, i64)>> {
        let mut rows = self.conn().query(sql, params).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?));
        }
        Ok(out)
    }

    /// Block `id`'s origin and records' JSON (none if it is gone since it was listed).
    async fn block(&self, id: i64) -> Result<Option<(i64, String)>> {
        let mut rows = self.conn().query(BLOCK_BY_ID, [id]).await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        Ok(Some((row.get(0)?, row.get(1)?)))
    }

    /// The records of trace `trace_id`, earliest first (at most `limit`, the earliest of its newest
    /// [`MAX_LOGS_PER_READ`]): within `around` (a time window) when the caller knows when the trace
    /// happened, else over every hour the project's logs span.
    pub async fn trace_logs(
        &self,
        project: i64,
        trace_id: &str,
        around: Option<(i64, i64)>,
        limit: u32,
    ) -> Result<Vec<StoredLog>> {
        let query = LogQuery {
            trace_id: Some(trace_id.to_owned()),
            since_us: around.map(|(from, _)| from),
            until_us: around.map(|(_, to)| to.saturating_add(1)),
            ..LogQuery::default()
        };
        let wanted = Wanted {
            query: &query,
            text: None,
        };
        let source = trace_source(trace_id, around);
        let most = MAX_LOGS_PER_READ as usize;
        let mut found = self.walk(project, &source, &wanted, most, None).await?;
        found.reverse();
        found.truncate(limit.clamp(1, MAX_LOGS_PER_READ) as usize);
        Ok(found.into_iter().map(|(log, _)| log).collect())
    }

    /// One record by its id.
    pub async fn log_by_id(&self, project: i64, log_id: &str) -> Result<Option<StoredLog>> {
        let Some((origin, position)) = log_blocks::parse_log_id(log_id) else {
            return Ok(None);
        };
        let mut rows = self
            .conn()
            .query(
                "SELECT records FROM log_blocks WHERE project_id = ?1 AND origin = ?2",
                libsql::params![project, origin],
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let records: String = row.get(0)?;
        let records = log_blocks::decode(origin, &records)?;
        Ok(records.get(position).map(|r| r.to_stored(origin, position)))
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
}

/// The project's blocks, newest first.
const ALL_BLOCKS: &str = "SELECT id, oldest FROM log_blocks
    WHERE project_id = ?1 AND id < ?2 AND id >= ?3 ORDER BY id DESC LIMIT ?4";

/// Blocks whose text holds every trigram `?5` asks for.
const TEXT_BLOCKS: &str =
    "SELECT b.id, b.oldest FROM logs_text t CROSS JOIN log_blocks b ON b.id = t.rowid
    WHERE logs_text MATCH ?5 AND t.rowid < ?2 AND t.rowid >= ?3 AND b.project_id = ?1
    ORDER BY t.rowid DESC LIMIT ?4";

/// Every hour of project `?1`'s blocks, newest first, from its first and last ids (one seek each of
/// `log_blocks_project`), and the hour before the first (a block's records may start in it).
macro_rules! block_hours {
    () => {
        "WITH RECURSIVE hours(h) AS (
            SELECT (SELECT max(id) FROM log_blocks WHERE project_id = ?1) / 1048576 / 3600000
            UNION ALL
            SELECT h - 1 FROM hours
            WHERE h >= (SELECT min(id) FROM log_blocks WHERE project_id = ?1) / 1048576 / 3600000
        ) "
    };
}

/// Blocks holding trace `?5`'s records: one seek of `log_traces` per hour.
const TRACE_BLOCKS: &str = concat!(
    block_hours!(),
    "SELECT DISTINCT t.block_id, b.oldest FROM hours CROSS JOIN log_traces t
        ON t.project_id = ?1 AND t.hour = hours.h AND t.trace_id = ?5
     CROSS JOIN log_blocks b ON b.id = t.block_id
     WHERE t.block_id < ?2 AND t.block_id >= ?3 ORDER BY t.block_id DESC LIMIT ?4"
);

/// The same within hours `?6` to `?7`.
const TRACE_BLOCKS_WITHIN: &str =
    "WITH RECURSIVE hours(h) AS (SELECT ?6 UNION ALL SELECT h + 1 FROM hours WHERE h < ?7)
     SELECT DISTINCT t.block_id, b.oldest FROM hours CROSS JOIN log_traces t
        ON t.project_id = ?1 AND t.hour = hours.h AND t.trace_id = ?5
     CROSS JOIN log_blocks b ON b.id = t.block_id
     WHERE t.block_id < ?2 AND t.block_id >= ?3 ORDER BY t.block_id DESC LIMIT ?4";

fn trace_source(trace_id: &str, around: Option<(i64, i64)>) -> Source {
    let mut params = vec![trace_id.into()];
    let sql = match around {
        Some((from, to)) => {
            params.push(super::event_keys::hour(from).into());
            params.push(super::event_keys::hour(to).into());
            TRACE_BLOCKS_WITHIN
        }
        None => TRACE_BLOCKS,
    };
    Source {
        sql: sql.to_owned(),
        params,
    }
}

/// Where [`Store::search_logs`] finds its blocks: a trace's entries, the text index's matches (three
/// characters or more), the levels' entries (one walk per level, merged: a level rare in the window costs
/// no walk of the others'), or every block of the project.
fn source(query: &LogQuery, text: Option<&str>) -> Source {
    if let Some(trace) = &query.trace_id {
        return trace_source(trace, None);
    }
    if let Some(matching) = text.and_then(trigram_query) {
        return Source {
            sql: TEXT_BLOCKS.to_owned(),
            params: vec![matching.into()],
        };
    }
    if query.levels.is_empty() || text.is_some() {
        return Source {
            sql: ALL_BLOCKS.to_owned(),
            params: Vec::new(),
        };
    }
    let arms: Vec<String> = (0..query.levels.len())
        .map(|n| {
            format!(
                "SELECT * FROM (SELECT block_id FROM log_levels WHERE project_id = ?1 AND level = ?{}
                 AND block_id < ?2 AND block_id >= ?3 ORDER BY block_id DESC LIMIT ?4)",
                n + 5
            )
        })
        .collect();
    Source {
        sql: format!(
            "SELECT b.id, b.oldest FROM ({}) v CROSS JOIN log_blocks b ON b.id = v.block_id
             ORDER BY b.id DESC LIMIT ?4",
            arms.join(" UNION ")
        ),
        params: query.levels.iter().map(|l| l.clone().into()).collect(),
    }
}

/// Most trigrams of a search term the index is asked for: more only narrow candidates a check rules out.
const MAX_TRIGRAMS: usize = 8;

/// The `logs_text` query for blocks holding every trigram of `text` (at most [`MAX_TRIGRAMS`], spread
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

/// Records migration 32 moves into blocks per read.
const MOVED_PER_READ: i64 = 5_000;

/// Migration 32's step: the records stored so far move into blocks (each project's in time order, up to
/// [`MOVED_PER_READ`] read at a time, a block's origin from its first record's old id), then their old
/// table goes. Their ids change with them: the lake keeps the old ones.
pub(super) fn move_records_into_blocks(
    conn: &libsql::Connection,
) -> futures_util::future::BoxFuture<'_, Result<()>> {
    Box::pin(async move {
        let mut cached = Cached::new(conn);
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let mut rows = conn
                .query(
                    "SELECT project_id, log_id, timestamp, received_at, level, severity_number, body,
                        trace_id, span_id, environment, release, attributes, time_key
                     FROM logs_before_32 WHERE (project_id, time_key) > (?1, ?2)
                     ORDER BY project_id, time_key LIMIT ?3",
                    libsql::params![after.0, after.1, MOVED_PER_READ],
                )
                .await?;
            let mut moved: Vec<LogRow> = Vec::new();
            let mut origin = 0;
            while let Some(row) = rows.next().await? {
                let log = LogFact {
                    project_id: row.get(0)?,
                    log_id: row.get(1)?,
                    timestamp_us: row.get(2)?,
                    level: row.get(4)?,
                    severity_number: row.get::<Option<i64>>(5)?.map(|n| n as i32),
                    body: row.get(6)?,
                    trace_id: row.get(7)?,
                    span_id: row.get(8)?,
                    environment: row.get(9)?,
                    release: row.get(10)?,
                    sdk_name: None,
                    attributes: row.get(11)?,
                };
                let first_of_block = moved.last().is_none_or(|last| {
                    last.log.project_id != log.project_id || moved.len().is_multiple_of(500)
                });
                if first_of_block {
                    let hex = log.log_id.get(..16).unwrap_or("0");
                    origin = u64::from_str_radix(hex, 16).unwrap_or(moved.len() as u64);
                }
                after = (log.project_id, row.get(12)?);
                moved.push(LogRow::new(log, row.get(3)?, origin));
            }
            if moved.is_empty() {
                break;
            }
            insert(&mut cached, &moved).await?;
        }
        conn.execute("DROP TABLE logs_before_32", ()).await?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000_000;
    const HOUR: i64 = 3_600_000_000;

    /// The statements that find blocks seek their indexes (a plan that lost them would still answer,
    /// only by walking every block).
    #[tokio::test]
    async fn every_walk_seeks_the_index_that_serves_it() {
        let store = Store::open_in_memory().await.unwrap();
        let levels = LogQuery {
            levels: vec!["warn".into(), "error".into()],
            ..LogQuery::default()
        };
        let text = LogQuery {
            text: Some("checked".into()),
            ..LogQuery::default()
        };
        for (sql, seek) in [
            (ALL_BLOCKS.to_owned(), "SEARCH log_blocks USING COVERING INDEX log_blocks_project (project_id=? AND id>? AND id<?)"),
            (source(&levels, None).sql, "SEARCH log_levels USING PRIMARY KEY (project_id=? AND level=? AND block_id>? AND block_id<?)"),
            (source(&text, Some("checked")).sql, "SCAN t VIRTUAL TABLE INDEX"),
            (TRACE_BLOCKS.to_owned(), "SEARCH t USING PRIMARY KEY (project_id=? AND hour=? AND trace_id=? AND block_id>? AND block_id<?)"),
            (TRACE_BLOCKS_WITHIN.to_owned(), "SEARCH t USING PRIMARY KEY (project_id=? AND hour=? AND trace_id=? AND block_id>? AND block_id<?)"),
            (STORED_BLOCKS.to_owned(), "SEARCH b USING COVERING INDEX log_blocks_origin (project_id=? AND origin=?)"),
        ] {
            let plan = store.query_plan(&sql, ()).await;
            assert!(plan.iter().any(|l| l.starts_with(seek)), "{sql}\n{plan:#?}");
            assert!(
                !plan.iter().any(|l| l.starts_with("SCAN b") || l.starts_with("SCAN log_blocks")),
                "{sql}\n{plan:#?}"
            );
        }
    }

    /// A deterministic corpus: two projects, items of 25 records a few minutes wide (so that some are cut
    /// into several blocks), many records in the same millisecond, bodies and typed attribute values with
    /// mixed case, LIKE's wildcards and quotes, a trace per few records, and a `sentry.*` value no search
    /// may find.
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
        let mut item_time = NOW;
        let mut project = 1;
        (0..3_000u64)
            .map(|i| {
                if i % 25 == 0 {
                    item_time = NOW - next(3 * 3_600) as i64 * 1_000_000;
                    project = 1 + (next(5) == 0) as i64;
                }
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
                let log = LogFact {
                    project_id: project,
                    // Whole milliseconds, few of them: records share them.
                    timestamp_us: item_time - next(100) as i64 * 1_000_000 - next(3) as i64 * 1_000,
                    log_id: String::new(),
                    trace_id: Some(format!("{:032x}", i / 7)),
                    span_id: None,
                    level: ["info", "warn", "error"][next(3) as usize].into(),
                    severity_number: None,
                    body,
                    environment: None,
                    release: None,
                    sdk_name: None,
                    attributes: attributes.to_string(),
                };
                LogRow::new(log, NOW, i / 25)
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

    /// The corpus stored in two batches, the second partly redelivering the first: nothing is written
    /// twice, and the rows get their ids.
    async fn stored(rows: &mut [LogRow]) -> Store {
        let store = Store::open_in_memory().await.unwrap();
        store.create_project("one").await.unwrap();
        store.create_project("two").await.unwrap();
        for (from, to, new) in [(0, 2_000, 2_000), (1_000, 3_000, 1_000)] {
            let mut tx = store.begin_batch().await.unwrap();
            let written = tx.write_logs(&rows[from..to]).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(written.len(), new);
            for (i, id) in written {
                rows[from + i].log.log_id = id;
            }
        }
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

    /// Through the index, a level's or a trace's entries, or the short scan, a search answers what
    /// checking every record would, newest first, page after page.
    #[tokio::test]
    async fn searches_answer_what_a_scan_of_every_record_would() {
        let mut rows = corpus();
        let store = stored(&mut rows).await;
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
        let trace = Some(format!("{:032x}", 2_100 / 7));
        for text in terms {
            for (project, levels, since, trace) in [
                (1, vec![], None, None),
                (
                    2,
                    vec!["warn".to_owned(), "error".to_owned()],
                    Some(NOW - HOUR),
                    None,
                ),
                (1, vec![], Some(NOW - 2 * HOUR), trace.clone()),
            ] {
                let query = LogQuery {
                    text: Some(text.into()),
                    levels: levels.clone(),
                    since_us: since,
                    trace_id: trace.clone(),
                    limit: 37,
                    ..LogQuery::default()
                };
                let found = all_pages(&store, project, query).await;
                let mut expected: Vec<&str> = rows
                    .iter()
                    .filter(|r| r.log.project_id == project && holds(r, text))
                    .filter(|r| levels.is_empty() || levels.contains(&r.log.level))
                    .filter(|r| since.is_none_or(|s| r.log.timestamp_us >= s))
                    .filter(|r| trace.is_none() || r.log.trace_id == trace)
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

    /// A record is found by its id, its trace's lines by the trace, and SQL reads the same records with
    /// the same ids through the `logs` view.
    #[tokio::test]
    async fn records_are_found_by_id_and_trace_and_read_by_sql_alike() {
        let mut rows = corpus();
        let store = stored(&mut rows).await;
        for row in rows.iter().step_by(97) {
            let found = store
                .log_by_id(row.log.project_id, &row.log.log_id)
                .await
                .unwrap();
            let found = found.expect("stored");
            assert_eq!(
                (found.timestamp, &found.body),
                (row.log.timestamp_us, &row.log.body)
            );
            let other = 3 - row.log.project_id;
            assert_eq!(store.log_by_id(other, &row.log.log_id).await.unwrap(), None);
        }
        let trace = format!("{:032x}", 700 / 7);
        let mut expected: Vec<(i64, &str)> = rows
            .iter()
            .filter(|r| r.log.trace_id.as_deref() == Some(&*trace))
            .map(|r| (r.log.timestamp_us, r.log.log_id.as_str()))
            .collect();
        expected.sort_unstable();
        let project = rows[700].log.project_id;
        let lines = store.trace_logs(project, &trace, None, 100).await.unwrap();
        let got: Vec<(i64, &str)> = lines
            .iter()
            .map(|l| (l.timestamp, l.log_id.as_str()))
            .collect();
        let times: Vec<i64> = got.iter().map(|g| g.0).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "earliest first");
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected);
        let (from, to) = (expected[0].0, expected[expected.len() - 1].0);
        let within = store
            .trace_logs(project, &trace, Some((from, to)), 100)
            .await
            .unwrap();
        assert_eq!(within.len(), expected.len());
        let mut r = store
            .conn()
            .query(
                "SELECT log_id, body, timestamp, attributes ->> '$.\"user.id\".value' FROM logs",
                (),
            )
            .await
            .unwrap();
        let mut by_sql = Vec::new();
        while let Some(row) = r.next().await.unwrap() {
            by_sql.push((
                row.get::<String>(0).unwrap(),
                row.get::<String>(1).unwrap(),
                row.get::<i64>(2).unwrap(),
                row.get::<i64>(3).unwrap(),
            ));
        }
        by_sql.sort_unstable();
        let mut written: Vec<(String, String, i64, i64)> = rows
            .iter()
            .map(|r| {
                let a: serde_json::Value = serde_json::from_str(&r.log.attributes).unwrap();
                let user = a["user.id"]["value"].as_i64().unwrap();
                (
                    r.log.log_id.clone(),
                    r.log.body.clone(),
                    r.log.timestamp_us,
                    user,
                )
            })
            .collect();
        written.sort_unstable();
        assert_eq!(by_sql, written);
    }

    /// Retention's deletes and a project's deletion take the blocks' text, levels and traces with them.
    #[tokio::test]
    async fn deleted_records_leave_nothing_behind() {
        let mut rows = corpus();
        let store = stored(&mut rows).await;
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
        let blocks = "SELECT count(*) FROM log_blocks";
        let indexed = "SELECT coalesce(max(doc), 0) FROM temp.terms";
        let orphans = "SELECT (SELECT count(*) FROM log_levels WHERE block_id NOT IN (SELECT id FROM log_blocks))
            + (SELECT count(*) FROM log_traces WHERE block_id NOT IN (SELECT id FROM log_blocks))";
        let payment = "SELECT count(*) FROM logs_text('\"pay\" AND \"ent\"')";
        assert_eq!(
            count(indexed).await,
            count(blocks).await,
            "every block holds \"evt\""
        );
        assert!(count(payment).await > 0);
        assert_eq!(count("SELECT count(*) FROM logs").await, 3_000);
        let deleted = store.delete_logs_before(NOW - HOUR).await.unwrap();
        assert!(deleted > 1_000, "{deleted}");
        assert_eq!(
            count("SELECT count(*) FROM logs").await,
            3_000 - deleted as i64
        );
        assert_eq!(
            count("SELECT count(*) FROM logs WHERE timestamp < 1779996340000000").await,
            0,
            "every record a block's span before the cutoff went"
        );
        assert_eq!(count(indexed).await, count(blocks).await);
        assert_eq!(count(orphans).await, 0);
        assert!(count("SELECT count(*) FROM log_traces").await > 0);
        for project in [2, 1] {
            let project = crate::protocol::ProjectId::new(project);
            store.delete_project(project).await.unwrap();
        }
        assert_eq!(count(blocks).await, 0);
        assert_eq!(count("SELECT count(*) FROM temp.terms").await, 0);
        assert_eq!(count(payment).await, 0);
        assert_eq!(count("SELECT count(*) FROM log_levels").await, 0);
        assert_eq!(count("SELECT count(*) FROM log_traces").await, 0);
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
    fn block_ids_keep_time_order_by_millisecond() {
        assert_eq!(time_key(1_999), KEYS_PER_MS);
        assert_eq!(keys_until(2_000), 2 * KEYS_PER_MS);
        assert_eq!(keys_until(2_001), 3 * KEYS_PER_MS);
        assert_eq!(newest_possible(KEYS_PER_MS + 5), 1_999);
        assert!(time_key(-1) < 0);
        let cursor = LogCursor {
            timestamp_us: 5,
            block: -3,
            position: 2,
        };
        assert_eq!(cursor.to_string().parse(), Ok(cursor));
        assert_eq!("1.2".parse::<LogCursor>(), Err(()));
    }
}
