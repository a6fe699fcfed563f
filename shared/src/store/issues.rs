//! Issues on the write side: assigning each new event to its issue (or creating one), the counters and
//! facets that go with it, and the lifecycle rule that a resolved issue comes back when it happens again.
//! Everything here runs inside the processor's batch transaction.

use std::collections::{HashMap, HashSet};

use super::cached::Cached;
use super::event_keys;
use super::rows::EventRow;
use super::Result;
use crate::model::time::Ts;

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

/// Writes events into issues for one batch. What the writes depend on (is the event new, which issue, its
/// status) is read once for the whole batch by [`IssueWriter::load_stored`] and kept up to date in memory,
/// so that per event there are only writes ([`Cached::write`]: one request per batch on a libSQL
/// server); counts that only accumulate (tags, hours, releases, events per project) are summed in memory
/// and written once per batch by [`IssueWriter::flush`].
#[derive(Default)]
pub(super) struct IssueWriter {
    /// (project, event id) of the events already stored, and of those stored by this batch so far.
    stored_events: HashSet<(i64, String)>,
    /// (project, grouping hash) → issue, for the batch's hashes: stored before, or added by this batch.
    issue_hashes: HashMap<(i64, String), i64>,
    /// Status and resolution time of those issues (`None`: the hash's issue is gone).
    statuses: HashMap<i64, Option<(String, Option<i64>)>>,
    /// The id the next new issue gets (SQLite's own choice for a rowid: one above the largest), read by
    /// `load_stored`.
    next_issue_id: i64,
    tags: HashMap<(i64, String, String), Seen>,
    issue_hours: HashMap<(i64, i64), i64>,
    project_hours: HashMap<(i64, i64), i64>,
    releases: HashMap<(i64, String), ReleaseSeen>,
}

#[derive(Default)]
struct Seen {
    count: i64,
    first: i64,
    last: i64,
}

#[derive(Default)]
struct ReleaseSeen {
    first: i64,
    last: i64,
    events: i64,
    transactions: i64,
}

/// Keys of a batch as one JSON array, for a statement that joins them with `json_each`.
fn json_keys(keys: &impl serde::Serialize) -> Result<libsql::Value> {
    serde_json::to_string(keys)
        .map(libsql::Value::Text)
        .map_err(|e| super::StoreError::Invalid(format!("batch keys: {e}")))
}

impl IssueWriter {
    /// Finds which of the batch's events are already stored, which issues (with their status) their
    /// grouping hashes belong to, and the next issue id: one statement each (the keys as a JSON array)
    /// rather than one per event, sent together (against a libSQL server, one round trip, or none when
    /// read ahead). The batch's transaction holds the write lock, so what is read here stays true until it
    /// commits, but for this writer's own changes.
    pub async fn load_stored(&mut self, tx: &mut Cached, events: &[EventRow]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut found = tx.reads(Self::stored_reads(events)?).await?.into_iter();
        use libsql::Value::{Integer, Text};
        for row in found.next().unwrap_or_default() {
            let (Integer(project), Text(hash), Integer(issue)) = (&row[0], &row[1], &row[2]) else {
                return Err(super::StoreError::Invalid("an issue hash row".into()));
            };
            self.issue_hashes.insert((*project, hash.clone()), *issue);
            let status = match (&row[3], &row[4]) {
                (Text(status), Integer(at)) => Some((status.clone(), Some(*at))),
                (Text(status), _) => Some((status.clone(), None)),
                _ => None,
            };
            self.statuses.insert(*issue, status);
        }
        for row in found.next().unwrap_or_default() {
            if let [Integer(project), Text(id)] = &row[..] {
                self.stored_events.insert((*project, id.clone()));
            }
        }
        let next = found.next().unwrap_or_default();
        self.next_issue_id = match next.first().map(|row| &row[..]) {
            Some([Integer(id)]) => *id,
            _ => return Err(super::StoreError::Invalid("no next issue id".into())),
        };
        Ok(())
    }

    /// The reads of [`IssueWriter::load_stored`] (none without events).
    pub fn stored_reads(events: &[EventRow]) -> Result<Vec<(&'static str, Vec<libsql::Value>)>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<(i64, &str)> = events
            .iter()
            .flat_map(|e| {
                let project = e.project_id.value();
                e.grouping.hashes.iter().map(move |h| (project, h.as_str()))
            })
            .collect();
        let keys: Vec<(i64, i64, &str)> = events
            .iter()
            .map(|e| {
                (
                    e.project_id.value(),
                    event_keys::hour(e.timestamp_us),
                    e.event_id.as_str(),
                )
            })
            .collect();
        Ok(vec![
            (
                "SELECT h.project_id, h.hash, h.issue_id, i.status, i.resolved_at FROM json_each(?1) j JOIN issue_hashes h
                 ON h.project_id = json_extract(j.value, '$[0]') AND h.hash = json_extract(j.value, '$[1]')
                 LEFT JOIN issues i ON i.id = h.issue_id",
                vec![json_keys(&hashes)?],
            ),
            (event_keys::STORED_EVENTS, vec![json_keys(&keys)?]),
            // Past deleted issues too: an id, once shown, never names another issue.
            (
                "SELECT max((SELECT coalesce(max(id), 0) FROM issues), (SELECT coalesce(max(id), 0) FROM deleted_issues)) + 1",
                Vec::new(),
            ),
        ])
    }

    /// The issue the first known hash points to (the most specific hash wins: app before system), and the
    /// hashes not yet recorded, which will point to it too (known: stored, see `load_stored`, or added by
    /// this batch).
    fn find_issue(&self, project: i64, hashes: &[String]) -> (Option<i64>, Vec<String>) {
        let (mut found, mut missing) = (None, Vec::new());
        for hash in hashes {
            match self.issue_hashes.get(&(project, hash.clone())) {
                Some(id) => found = found.or(Some(*id)),
                None => missing.push(hash.clone()),
            }
        }
        (found, missing)
    }

    /// Stores one event with its issue. A duplicate (same project and event id) changes nothing.
    /// Files the event under its issue. `None` when the event is already stored; else its issue and
    /// whether that issue is new or came back.
    pub async fn record_event(
        &mut self,
        tx: &mut Cached,
        e: &EventRow,
    ) -> Result<Option<(i64, Option<IssueChange>)>> {
        let project = e.project_id.value();
        // Stored before (see `load_stored`, which the batch runs first) or earlier in this batch.
        if !self.stored_events.insert((project, e.event_id.clone())) {
            return Ok(None);
        }
        let (found, missing) = self.find_issue(project, &e.grouping.hashes);
        let (issue_id, change) = match found {
            Some(id) => {
                let first_seen = e
                    .summary
                    .release
                    .as_deref()
                    .and_then(|r| self.releases.get(&(project, r.to_owned())))
                    .map(|r| r.first);
                let status = self.statuses.get_mut(&id).and_then(Option::as_mut);
                let status = status
                    .ok_or_else(|| super::StoreError::Invalid(format!("issue {id} vanished")))?;
                (id, update_issue(tx, id, e, first_seen, status).await?)
            }
            None => {
                let id = self.next_issue_id;
                self.next_issue_id += 1;
                create_issue(tx, e, id).await?;
                self.statuses.insert(id, Some(("open".into(), None)));
                (
                    id,
                    Some(IssueChange::Created {
                        issue_id: id,
                        project_id: project,
                    }),
                )
            }
        };
        for hash in missing {
            tx.write("INSERT OR IGNORE INTO issue_hashes (project_id, hash, issue_id) VALUES (?1, ?2, ?3)", (project, hash.as_str(), issue_id)).await?;
            self.issue_hashes.insert((project, hash), issue_id);
        }
        insert_event(tx, e, issue_id).await?;
        if let Some(user) = &e.user_key {
            tx.write(
                "INSERT OR IGNORE INTO issue_users (issue_id, user_key) VALUES (?1, ?2)",
                (issue_id, user.as_str()),
            )
            .await?;
            // changes(): the rows the insert just above added (one for a new user), without reading it back.
            tx.write(
                "UPDATE issues SET users_seen = users_seen + changes() WHERE id = ?1",
                [issue_id],
            )
            .await?;
        }
        let ts = e.timestamp_us;
        for (key, value) in recorded_tags(&e.tags) {
            let seen = self
                .tags
                .entry((issue_id, key.clone(), value.clone()))
                .or_insert(Seen {
                    count: 0,
                    first: ts,
                    last: ts,
                });
            (seen.count, seen.first, seen.last) =
                (seen.count + 1, seen.first.min(ts), seen.last.max(ts));
        }
        *self
            .issue_hours
            .entry((issue_id, Ts(ts).hour_secs()))
            .or_default() += 1;
        *self
            .project_hours
            .entry((project, Ts(ts).hour_secs()))
            .or_default() += 1;
        if let Some(release) = e.summary.release.as_deref() {
            self.sight_release(project, release, ts, Sighting::Event);
        }
        Ok(Some((issue_id, change)))
    }

    /// Records that a release was seen at `at_us` in an event or a transaction.
    pub fn sight_release(&mut self, project: i64, version: &str, at_us: i64, what: Sighting) {
        let r = self
            .releases
            .entry((project, version.to_owned()))
            .or_insert(ReleaseSeen {
                first: at_us,
                last: at_us,
                ..Default::default()
            });
        (r.first, r.last) = (r.first.min(at_us), r.last.max(at_us));
        match what {
            Sighting::Event => r.events += 1,
            Sighting::Transaction => r.transactions += 1,
        }
    }

    /// Writes the counts gathered over the batch.
    pub async fn flush(self, tx: &mut Cached) -> Result<()> {
        for ((issue, key, value), seen) in &self.tags {
            tx.write(
                "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (issue_id, key, value) DO UPDATE SET count = count + excluded.count,
                    first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
                libsql::params![*issue, key.as_str(), value.as_str(), seen.count, seen.first, seen.last],
            )
            .await?;
        }
        for ((issue, hour), n) in &self.issue_hours {
            tx.write(
                "INSERT INTO issue_hours (issue_id, hour, count) VALUES (?1, ?2, ?3)
                 ON CONFLICT (issue_id, hour) DO UPDATE SET count = count + excluded.count",
                (*issue, *hour, *n),
            )
            .await?;
        }
        for ((project, hour), n) in &self.project_hours {
            tx.write(
                "INSERT INTO item_counts (project_id, item_type, hour, count) VALUES (?1, 'event', ?2, ?3)
                 ON CONFLICT (project_id, item_type, hour) DO UPDATE SET count = count + excluded.count",
                (*project, *hour, *n),
            )
            .await?;
        }
        for ((project, version), r) in &self.releases {
            tx.write(
                "INSERT INTO releases (project_id, version, first_seen, last_seen, event_count, transaction_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (project_id, version) DO UPDATE SET first_seen = min(first_seen, excluded.first_seen),
                    last_seen = max(last_seen, excluded.last_seen), event_count = event_count + excluded.event_count,
                    transaction_count = transaction_count + excluded.transaction_count",
                libsql::params![*project, version.as_str(), r.first, r.last, r.events, r.transactions],
            )
            .await?;
        }
        Ok(())
    }
}

/// The tags of an event its issue counts: the empty, the overlong and those past the cap are not.
pub(super) fn recorded_tags(tags: &[(String, String)]) -> impl Iterator<Item = &(String, String)> {
    tags.iter()
        .filter(|(k, v)| !k.is_empty() && k.len() <= MAX_TAG_KEY && v.len() <= MAX_TAG_VALUE)
        .take(MAX_TAGS_PER_EVENT)
}

/// Creates the issue `id` for its first event.
async fn create_issue(tx: &mut Cached, e: &EventRow, id: i64) -> Result<()> {
    let s = &e.summary;
    tx.write(
        "INSERT INTO issues (project_id, title, culprit, level, platform, exception_type, first_seen, last_seen, times_seen,
            first_release, last_release, grouping_config, last_event_id, id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 0, ?8, ?8, ?9, ?10, ?11)",
        libsql::params![
            e.project_id.value(),
            s.title.as_str(),
            e.grouping.culprit.clone(),
            s.level.as_str(),
            s.platform.clone(),
            s.exception_type.clone(),
            e.timestamp_us,
            s.release.clone(),
            e.grouping.config,
            e.event_id.as_str(),
            id,
        ],
    )
    .await?;
    tx.write(
        "INSERT INTO issues_fts (rowid, title, body) VALUES (?1, ?2, ?3)",
        (id, s.title.as_str(), e.search_text.as_str()),
    )
    .await?;
    bump_issue(tx, id, e).await
}

/// Counts the event on an existing issue and applies the lifecycle: a resolved issue reopens (regressed);
/// one resolved "in the next release" reopens only for a release first seen after it was resolved; an
/// ignored issue stays ignored. `status` is the issue's (status, resolved_at), kept up to date here.
async fn update_issue(
    tx: &mut Cached,
    id: i64,
    e: &EventRow,
    first_seen_in_batch: Option<i64>,
    status: &mut (String, Option<i64>),
) -> Result<Option<IssueChange>> {
    bump_issue(tx, id, e).await?;
    let resolved_at = status.1;
    let regressed = match status.0.as_str() {
        "resolved" => true,
        "resolved_next_release" => match (e.summary.release.as_deref(), resolved_at) {
            (Some(release), Some(resolved_at)) => {
                let stored = tx
                    .first_i64(
                        "SELECT first_seen FROM releases WHERE project_id = ?1 AND version = ?2",
                        (e.project_id.value(), release),
                    )
                    .await?;
                // Releases seen earlier in this batch are not written yet.
                let first_seen = match (stored, first_seen_in_batch) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
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
    tx.write(
        "UPDATE issues SET status = 'open', regressed_at = ?2, resolved_at = NULL WHERE id = ?1",
        (id, super::now_us()),
    )
    .await?;
    *status = ("open".into(), None);
    Ok(Some(IssueChange::Regressed {
        issue_id: id,
        project_id: e.project_id.value(),
    }))
}

/// The counters every event moves. `last_seen` never goes backwards when events arrive out of order.
async fn bump_issue(tx: &mut Cached, id: i64, e: &EventRow) -> Result<()> {
    tx.write(
        "UPDATE issues SET times_seen = times_seen + 1,
            first_seen = min(first_seen, ?2),
            last_release = CASE WHEN ?2 >= last_seen THEN coalesce(?3, last_release) ELSE last_release END,
            first_release = coalesce(first_release, ?3),
            last_event_id = CASE WHEN ?2 >= last_seen THEN ?4 ELSE last_event_id END,
            last_seen = max(last_seen, ?2)
         WHERE id = ?1",
        libsql::params![id, e.timestamp_us, e.summary.release.clone(), e.event_id.as_str()],
    )
    .await
}

async fn insert_event(tx: &mut Cached, e: &EventRow, issue_id: i64) -> Result<()> {
    let s = &e.summary;
    tx.write(
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
    // Feedback processed before its event waits for the event's issue.
    tx.write(
        event_keys::FEEDBACK_OF_EVENT,
        libsql::params![e.project_id.value(), e.event_id.as_str(), issue_id],
    )
    .await
}
