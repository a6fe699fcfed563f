//! Issues on the write side: assigning each new event to its issue (or creating one), the counters and
//! facets that go with it, and the lifecycle rule that a resolved issue comes back when it happens again.
//! Everything here runs inside the processor's batch transaction.

use super::batch::EventRow;
use super::Result;

/// What an event did to its issue, for notifications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueChange {
    Created { issue_id: i64, project_id: i64 },
    Regressed { issue_id: i64, project_id: i64 },
}

/// What a release was seen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    Event,
    Transaction,
}

/// Tags longer than these are not facets anyone filters by; they stay in the payload only.
const MAX_TAG_KEY: usize = 64;
const MAX_TAG_VALUE: usize = 200;
const MAX_TAGS_PER_EVENT: usize = 50;

async fn one_i64(
    tx: &libsql::Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
) -> Result<Option<i64>> {
    let mut rows = tx.query(sql, params).await?;
    Ok(match rows.next().await? {
        Some(row) => Some(row.get::<i64>(0)?),
        None => None,
    })
}

/// Stores one event with its issue. A duplicate (same project and event id) changes nothing.
pub(super) async fn record_event(
    tx: &libsql::Connection,
    e: &EventRow,
) -> Result<Option<IssueChange>> {
    let project = e.project_id.value();
    let exists = one_i64(
        tx,
        "SELECT 1 FROM events WHERE project_id = ?1 AND event_id = ?2",
        (project, e.event_id.as_str()),
    )
    .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let (issue_id, change) = match find_issue(tx, project, &e.grouping.hashes).await? {
        Some(id) => (id, update_issue(tx, id, e).await?),
        None => {
            let id = create_issue(tx, e).await?;
            (
                id,
                Some(IssueChange::Created {
                    issue_id: id,
                    project_id: project,
                }),
            )
        }
    };
    for hash in &e.grouping.hashes {
        tx.execute(
            "INSERT OR IGNORE INTO issue_hashes (project_id, hash, issue_id) VALUES (?1, ?2, ?3)",
            (project, hash.as_str(), issue_id),
        )
        .await?;
    }
    insert_event(tx, e, issue_id).await?;
    record_facets(tx, e, issue_id).await?;
    if let Some(release) = e.summary.release.as_deref() {
        sight_release(tx, project, release, e.timestamp_us, Sighting::Event).await?;
    }
    let hour = e.timestamp_us.div_euclid(3_600_000_000) * 3_600;
    tx.execute(
        "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, 'event', ?2, 1)
         ON CONFLICT (project_id, item_type, hour) DO UPDATE SET count = count + 1",
        (project, hour),
    )
    .await?;
    Ok(change)
}

async fn find_issue(
    tx: &libsql::Connection,
    project: i64,
    hashes: &[String],
) -> Result<Option<i64>> {
    // The most specific hash first: an app-variant match wins over a system-variant one.
    for hash in hashes {
        if let Some(id) = one_i64(
            tx,
            "SELECT issue_id FROM issue_hashes WHERE project_id = ?1 AND hash = ?2",
            (project, hash.as_str()),
        )
        .await?
        {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

async fn create_issue(tx: &libsql::Connection, e: &EventRow) -> Result<i64> {
    let s = &e.summary;
    tx.execute(
        "INSERT INTO issues (project_id, title, culprit, level, platform, exception_type, first_seen, last_seen, times_seen,
            first_release, last_release, grouping_config, last_event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8, ?8, ?9, ?10)",
        libsql::params![
            e.project_id.value(),
            s.title.as_str(),
            e.culprit.clone(),
            s.level.as_str(),
            s.platform.clone(),
            s.exception_type.clone(),
            e.timestamp_us,
            s.release.clone(),
            e.grouping.config,
            e.event_id.as_str(),
        ],
    )
    .await?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO issues_fts (rowid, title, body) VALUES (?1, ?2, ?3)",
        (id, s.title.as_str(), e.search_text.as_str()),
    )
    .await?;
    bump_issue(tx, id, e).await?;
    Ok(id)
}

/// Counts the event on an existing issue and applies the lifecycle: a resolved issue reopens (regressed);
/// one resolved "in the next release" reopens only for a release first seen after it was resolved; an
/// ignored issue stays ignored.
async fn update_issue(
    tx: &libsql::Connection,
    id: i64,
    e: &EventRow,
) -> Result<Option<IssueChange>> {
    bump_issue(tx, id, e).await?;
    let mut rows = tx
        .query("SELECT status, resolved_at FROM issues WHERE id = ?1", [id])
        .await?;
    let row = rows
        .next()
        .await?
        .ok_or_else(|| super::StoreError::Invalid(format!("issue {id} vanished")))?;
    let (status, resolved_at): (String, Option<i64>) = (row.get(0)?, row.get(1)?);
    drop(rows);
    let regressed = match status.as_str() {
        "resolved" => true,
        "resolved_next_release" => match (e.summary.release.as_deref(), resolved_at) {
            (Some(release), Some(resolved_at)) => {
                let first_seen = one_i64(
                    tx,
                    "SELECT first_seen FROM releases WHERE project_id = ?1 AND version = ?2",
                    (e.project_id.value(), release),
                )
                .await?;
                // A release unknown so far is new now, hence newer than the resolution.
                first_seen.is_none_or(|first| first > resolved_at)
            }
            _ => false,
        },
        _ => false,
    };
    if !regressed {
        return Ok(None);
    }
    tx.execute(
        "UPDATE issues SET status = 'open', regressed_at = ?2, resolved_at = NULL WHERE id = ?1",
        (id, super::now_us()),
    )
    .await?;
    Ok(Some(IssueChange::Regressed {
        issue_id: id,
        project_id: e.project_id.value(),
    }))
}

/// The counters every event moves. `last_seen` never goes backwards when events arrive out of order.
async fn bump_issue(tx: &libsql::Connection, id: i64, e: &EventRow) -> Result<()> {
    tx.execute(
        "UPDATE issues SET times_seen = times_seen + 1,
            first_seen = min(first_seen, ?2),
            last_release = CASE WHEN ?2 >= last_seen THEN coalesce(?3, last_release) ELSE last_release END,
            first_release = coalesce(first_release, ?3),
            last_event_id = CASE WHEN ?2 >= last_seen THEN ?4 ELSE last_event_id END,
            last_seen = max(last_seen, ?2)
         WHERE id = ?1",
        libsql::params![id, e.timestamp_us, e.summary.release.clone(), e.event_id.as_str()],
    )
    .await?;
    Ok(())
}

async fn insert_event(tx: &libsql::Connection, e: &EventRow, issue_id: i64) -> Result<()> {
    let s = &e.summary;
    tx.execute(
        "INSERT INTO events (project_id, event_id, issue_id, timestamp, received_at, level, platform, release, environment,
            server_name, transaction_name, title, exception_type, exception_value, message, sdk_name, sdk_version, trace_id, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        libsql::params![
            e.project_id.value(),
            e.event_id.as_str(),
            issue_id,
            e.timestamp_us,
            e.received_at_us,
            s.level.as_str(),
            s.platform.clone(),
            s.release.clone(),
            s.environment.clone(),
            s.server_name.clone(),
            s.transaction.clone(),
            s.title.as_str(),
            s.exception_type.clone(),
            s.exception_value.clone(),
            s.message.clone(),
            s.sdk_name.clone(),
            s.sdk_version.clone(),
            s.trace_id.clone(),
            e.payload.clone(),
        ],
    )
    .await?;
    Ok(())
}

async fn record_facets(tx: &libsql::Connection, e: &EventRow, issue_id: i64) -> Result<()> {
    let ts = e.timestamp_us;
    let tags = e
        .tags
        .iter()
        .filter(|(k, v)| !k.is_empty() && k.len() <= MAX_TAG_KEY && v.len() <= MAX_TAG_VALUE)
        .take(MAX_TAGS_PER_EVENT);
    for (key, value) in tags {
        tx.execute(
            "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, 1, ?4, ?4)
             ON CONFLICT (issue_id, key, value) DO UPDATE SET count = count + 1,
                first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
            (issue_id, key.as_str(), value.as_str(), ts),
        )
        .await?;
    }
    if let Some(user) = &e.user_key {
        let added = tx
            .execute(
                "INSERT OR IGNORE INTO issue_users (issue_id, user_key) VALUES (?1, ?2)",
                (issue_id, user.as_str()),
            )
            .await?;
        if added == 1 {
            tx.execute(
                "UPDATE issues SET users_seen = users_seen + 1 WHERE id = ?1",
                [issue_id],
            )
            .await?;
        }
    }
    tx.execute(
        "INSERT INTO issue_hours (issue_id, hour, count) VALUES (?1, ?2, 1)
         ON CONFLICT (issue_id, hour) DO UPDATE SET count = count + 1",
        (issue_id, ts.div_euclid(3_600_000_000) * 3_600),
    )
    .await?;
    Ok(())
}

/// Records that a release was seen at `at_us` in an event or a transaction.
pub(super) async fn sight_release(
    tx: &libsql::Connection,
    project: i64,
    version: &str,
    at_us: i64,
    what: Sighting,
) -> Result<()> {
    let (events, transactions) = match what {
        Sighting::Event => (1, 0),
        Sighting::Transaction => (0, 1),
    };
    tx.execute(
        "INSERT INTO releases (project_id, version, first_seen, last_seen, event_count, transaction_count) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
         ON CONFLICT (project_id, version) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
            last_seen = max(last_seen, excluded.last_seen), event_count = event_count + excluded.event_count,
            transaction_count = transaction_count + excluded.transaction_count",
        (project, version, at_us, events, transactions),
    )
    .await?;
    Ok(())
}
