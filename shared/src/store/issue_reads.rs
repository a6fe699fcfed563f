//! Issues on the read side, for the UI and MCP: lists with filters, search and sorts; one issue with its
//! facets; its events; status changes made by people.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crate::protocol::ProjectId;

use super::issue_search::{
    fts_match, placeholders, statuses, Cmp, Conditions, Filter, IsState, IssueQuery, SeenField,
    Term,
};
use super::issue_text::{TextMatch, TextPath, CHECK_COST_IN_READS};
use super::{now_us, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    Open,
    Resolved,
    /// Resolved, but only events from a release first seen later reopen it.
    ResolvedNextRelease,
    Ignored,
}

impl IssueStatus {
    pub const ALL: [IssueStatus; 4] = [
        Self::Open,
        Self::Resolved,
        Self::ResolvedNextRelease,
        Self::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::ResolvedNextRelease => "resolved_next_release",
            Self::Ignored => "ignored",
        }
    }
}

impl FromStr for IssueStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StoreError::Invalid(format!("unknown issue status {s:?}")))
    }
}

impl fmt::Display for IssueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssueSort {
    #[default]
    LastSeen,
    FirstSeen,
    Count,
}

impl IssueSort {
    pub fn parse(s: &str) -> Self {
        match s {
            "first_seen" => Self::FirstSeen,
            "count" | "times_seen" => Self::Count,
            _ => Self::LastSeen,
        }
    }

    fn order_by(self) -> &'static str {
        match self {
            Self::LastSeen => "i.last_seen DESC, i.id DESC",
            Self::FirstSeen => "i.first_seen DESC, i.id DESC",
            Self::Count => "i.times_seen DESC, i.id DESC",
        }
    }
}

/// A filtered issue list's count makes at most this many index reads (a few milliseconds): each row
/// its indexes seek is one, and each check of a row against another index (a tag, a list of full-text
/// matches) one more; a check of full text by rowid costs [`CHECK_COST_IN_READS`] per term.
/// Past it, the count is a floor. See [`Store::list_issues`].
const COUNT_BUDGET_READS: i64 = 6_000;

/// How many issues a list matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueTotal {
    Exact(i64),
    /// At least this many: the count stopped at its budget of rows read.
    AtLeast(i64),
}

impl IssueTotal {
    /// The count, or its floor.
    pub fn count(self) -> i64 {
        match self {
            Self::Exact(n) | Self::AtLeast(n) => n,
        }
    }

    pub fn is_exact(self) -> bool {
        matches!(self, Self::Exact(_))
    }
}

/// Up to this many issues with a tag value, a filter on it reads those issues by id (a few ms); past
/// it, walking the list in page order finds a page sooner.
const RARE_TAG_ISSUES: i64 = 5_000;

/// What a list of issues is narrowed to. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct IssueFilter {
    pub status: Option<IssueStatus>,
    /// What was typed in the search (see [`IssueQuery`]).
    pub query: IssueQuery,
    pub environment: Option<String>,
    pub release: Option<String>,
    pub level: Option<String>,
    pub sort: IssueSort,
    /// Zero-based.
    pub page: u32,
    pub per_page: u32,
}

impl IssueFilter {
    /// The typed terms, then the dropdowns' choices as terms of their own.
    fn terms(&self) -> Vec<Term> {
        let mut query = self.query.clone();
        let chosen = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        for (key, value) in [
            ("environment", &self.environment),
            ("release", &self.release),
        ] {
            if let Some(value) = chosen(value) {
                query.push_tag(key, &value);
            }
        }
        if let Some(level) = chosen(&self.level) {
            query.terms.push(Term {
                negated: false,
                filter: Filter::Level(vec![level]),
            });
        }
        query.terms
    }
}

/// Serialized whole in an alert of the outbox ([`crate::notify::outbox`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Issue {
    pub id: i64,
    pub project_id: ProjectId,
    pub status: IssueStatus,
    pub title: String,
    pub culprit: Option<String>,
    pub level: String,
    pub platform: Option<String>,
    pub exception_type: Option<String>,
    pub first_seen: i64,
    pub last_seen: i64,
    pub times_seen: i64,
    pub users_seen: i64,
    pub first_release: Option<String>,
    pub last_release: Option<String>,
    pub grouping_config: String,
    pub resolved_at: Option<i64>,
    pub regressed_at: Option<i64>,
    pub last_event_id: Option<String>,
}

const ISSUE_COLUMNS: &str = "i.id, i.project_id, i.status, i.title, i.culprit, i.level, i.platform, i.exception_type, i.first_seen,
    i.last_seen, i.times_seen, i.users_seen, i.first_release, i.last_release, i.grouping_config, i.resolved_at, i.regressed_at, i.last_event_id";

fn issue_from_row(row: &libsql::Row) -> Result<Issue> {
    Ok(Issue {
        id: row.get(0)?,
        project_id: ProjectId::new(row.get(1)?),
        status: row.get::<String>(2)?.parse()?,
        title: row.get(3)?,
        culprit: row.get(4)?,
        level: row.get(5)?,
        platform: row.get(6)?,
        exception_type: row.get(7)?,
        first_seen: row.get(8)?,
        last_seen: row.get(9)?,
        times_seen: row.get(10)?,
        users_seen: row.get(11)?,
        first_release: row.get(12)?,
        last_release: row.get(13)?,
        grouping_config: row.get(14)?,
        resolved_at: row.get(15)?,
        regressed_at: row.get(16)?,
        last_event_id: row.get(17)?,
    })
}

/// An event as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventListItem {
    pub event_id: String,
    pub timestamp: i64,
    pub title: String,
    pub level: String,
    pub release: Option<String>,
    pub environment: Option<String>,
}

impl EventListItem {
    /// Rows of `event_id, timestamp, title, level, release, environment`, in their order.
    pub(super) async fn read_all(mut rows: libsql::Rows) -> Result<Vec<Self>> {
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(Self {
                event_id: row.get(0)?,
                timestamp: row.get(1)?,
                title: row.get(2)?,
                level: row.get(3)?,
                release: row.get(4)?,
                environment: row.get(5)?,
            });
        }
        Ok(out)
    }
}

/// One stored event: its promoted columns and the full payload as the SDK sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub project_id: ProjectId,
    pub event_id: String,
    pub issue_id: Option<i64>,
    pub timestamp: i64,
    pub received_at: i64,
    pub title: String,
    pub level: String,
    pub payload: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub event_count: i64,
    pub transaction_count: i64,
}

/// The `WHERE` of an issue list: the project, the status tab, then each term. `rare[i]` says the `i`th
/// term is a tag few issues carry: those issues are read by id (`+` keeps SQLite from walking the
/// project's whole index instead). `full_text` is the positive words' and phrases' one match and its path
/// (see [`TextPath`]). Any other term keeps the walk in page order on the list's indexes. What an
/// index seeks is pushed as sought, the rest as checked (see [`Conditions`]).
fn list_conditions(
    project: ProjectId,
    status: Option<IssueStatus>,
    sort: IssueSort,
    terms: &[Term],
    rare: &[bool],
    full_text: Option<&TextMatch>,
    now_us: i64,
) -> Conditions {
    let rare_of = |i: usize| rare.get(i).copied().unwrap_or(false);
    let rare_tag =
        (0..terms.len()).any(|i| rare_of(i) && matches!(terms[i].filter, Filter::Tag { .. }));
    let plus = if rare_tag { "+" } else { "" };
    let mut c = Conditions::default();
    c.push(&format!("{plus}i.project_id = ?"), [project.value().into()]);
    if let Some(status) = status {
        c.push(&format!("{plus}i.status = ?"), [status.as_str().into()]);
    }
    let text = |v: &[String]| {
        v.iter()
            .map(|s| libsql::Value::from(s.clone()))
            .collect::<Vec<_>>()
    };
    for (i, term) in terms.iter().enumerate() {
        let rare = rare_of(i);
        let not = if term.negated { "NOT " } else { "" };
        match &term.filter {
            Filter::Is(state) => {
                let list = statuses(*state);
                let values = list.iter().map(|s| libsql::Value::from(*s));
                let sql = format!("{plus}i.status IN ({})", placeholders(list.len()));
                // Issues that came back are few: a partial index (migration 26) holds only them.
                let regressed = "i.regressed_at IS NOT NULL";
                match (state, term.negated) {
                    (IsState::Regressed, false) => {
                        c.push(&sql, values);
                        c.push(regressed, []);
                    }
                    (IsState::Regressed, true) => {
                        c.push_checked(&format!("NOT ({sql} AND {regressed})"), values)
                    }
                    (_, false) => c.push(&sql, values),
                    (_, true) => c.push_checked(&format!("NOT ({sql})"), values),
                }
            }
            Filter::Level(levels) => c.push_checked(
                &format!("i.level {not}IN ({})", placeholders(levels.len())),
                text(levels),
            ),
            Filter::Tag { key, values } => {
                let mut params = text(std::slice::from_ref(key));
                params.extend(text(values));
                let v = placeholders(values.len());
                if rare {
                    // Few issues carry it: read those by id, then sort them.
                    c.push(&format!("i.id IN (SELECT t.issue_id FROM issue_tags t WHERE t.key = ? AND t.value IN ({v}))"), params);
                } else {
                    // Many do, or it is negated: walk the issues in page order, checking each.
                    c.push_lookup(&format!("{not}EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = ? AND t.value IN ({v}))"), params);
                }
            }
            Filter::Seen { field, cmp, when } => {
                let op = match (cmp, term.negated) {
                    (Cmp::Since, false) | (Cmp::Before, true) => ">=",
                    (Cmp::Before, false) | (Cmp::Since, true) => "<",
                };
                let at = [when.micros(now_us).into()];
                // Only the sort's own column is sought by range; on another column, a range seek would
                // trade the walk in page order for a sort of every match.
                match (field, sort) {
                    (SeenField::First, IssueSort::FirstSeen) => {
                        c.push(&format!("i.first_seen {op} ?"), at)
                    }
                    (SeenField::Last, IssueSort::LastSeen) => {
                        c.push(&format!("i.last_seen {op} ?"), at)
                    }
                    (SeenField::First, _) => c.push_checked(&format!("+i.first_seen {op} ?"), at),
                    (SeenField::Last, _) => c.push_checked(&format!("+i.last_seen {op} ?"), at),
                }
            }
            Filter::Text { words, phrase } if term.negated => c.push_lookup(
                "i.id NOT IN (SELECT rowid FROM issues_fts WHERE issues_fts MATCH ?)",
                [fts_match(words, *phrase).into()],
            ),
            Filter::Text { .. } => {}
        }
    }
    // Every positive word and phrase in one full-text match. Few matches are read by id and sorted;
    // many are a list built once that the walk in page order looks each issue up in (`+` keeps SQLite
    // from reading every match by id and sorting them all), or, when the page reads few issues, each
    // issue the walk reads is checked against the full-text index by its rowid.
    if let Some(text) = full_text {
        let sql = "i.id IN (SELECT rowid FROM issues_fts WHERE issues_fts MATCH ?)";
        let fts = [text.fts.clone().into()];
        match text.path {
            TextPath::Rare => c.push(sql, fts),
            TextPath::Listed => c.push_lookup(&format!("+{sql}"), fts),
            TextPath::Walked { terms } => c.push_lookups(
                "EXISTS (SELECT 1 FROM issues_fts f WHERE f.issues_fts MATCH ? AND f.rowid = i.id)",
                fts,
                terms * CHECK_COST_IN_READS,
            ),
        }
    }
    c
}

/// The statuses a list is narrowed to, when nothing else narrows it: a status tab, or one `is:` term
/// (not `is:regressed`, which the counters do not know).
fn only_statuses(status: Option<IssueStatus>, terms: &[Term]) -> Option<Vec<IssueStatus>> {
    match (status, terms) {
        (Some(status), []) => Some(vec![status]),
        (None, []) => Some(IssueStatus::ALL.to_vec()),
        (
            None,
            [Term {
                negated: false,
                filter: Filter::Is(state),
            }],
        ) if *state != IsState::Regressed => {
            statuses(*state).iter().map(|s| s.parse().ok()).collect()
        }
        _ => None,
    }
}

/// One page of the issues that meet `c`, in the sort's order.
fn page_sql(c: &Conditions, sort: IssueSort, per_page: i64, offset: i64) -> String {
    format!(
        "SELECT {ISSUE_COLUMNS} FROM issues i WHERE {} ORDER BY {} LIMIT {per_page} OFFSET {offset}",
        c.joined(),
        sort.order_by(),
    )
}

/// The rows a count reads of those the sought conditions yield: as many as [`COUNT_BUDGET_READS`]
/// pays for, each costing a read and one per lookup it is checked against.
fn count_budget_rows(c: &Conditions) -> i64 {
    COUNT_BUDGET_READS / (1 + c.lookups() as i64)
}

/// The rows read (at most [`count_budget_rows`] of those the sought conditions yield) and how many of
/// them meet the checked ones.
fn count_sql(c: &Conditions) -> String {
    format!(
        "SELECT count(*), coalesce(sum(m), 0) FROM (SELECT {} AS m FROM issues i WHERE {} LIMIT {})",
        c.checked(),
        c.sought(),
        count_budget_rows(c),
    )
}

impl Store {
    /// One page of a project's issues, and how many match in all. The page is exact; the total is
    /// exact when the sought rows (see [`Conditions`]) are within the count's budget of reads
    /// ([`COUNT_BUDGET_READS`]), and otherwise a floor: the matches among the rows it read (or the rows
    /// up to this page's last, if
    /// more), as Sentry's issue search shows "100+". An exact count of a filter most issues match would
    /// read every issue, a hundred milliseconds and more at 100,000 issues.
    pub async fn list_issues(
        &self,
        project: ProjectId,
        filter: &IssueFilter,
    ) -> Result<(Vec<Issue>, IssueTotal)> {
        let terms = filter.terms();
        let per_page = filter.per_page.clamp(1, 100) as i64;
        let offset = filter.page as i64 * per_page;
        // A tag or text filter is fast one of two (text: three) ways, depending on how many issues match.
        let text = self.text_match(&terms, offset + per_page).await?;
        let mut rare = Vec::with_capacity(terms.len());
        for term in &terms {
            rare.push(match term {
                Term {
                    negated: false,
                    filter: Filter::Tag { key, values },
                } => self.is_rare_tag(key, values).await?,
                _ => false,
            });
        }
        let conditions = list_conditions(
            project,
            filter.status,
            filter.sort,
            &terms,
            &rare,
            text.as_ref(),
            now_us(),
        );
        let sql = page_sql(&conditions, filter.sort, per_page, offset);
        let mut rows = self.conn().query(&sql, conditions.params.clone()).await?;
        let mut issues = Vec::new();
        while let Some(row) = rows.next().await? {
            issues.push(issue_from_row(&row)?);
        }
        drop(rows);
        let total = match only_statuses(filter.status, &terms) {
            // Narrowed only by status (a tab, or `is:`): the trigger-kept counters answer without a scan.
            Some(statuses) => {
                let counts = self.issue_status_counts(project).await?;
                IssueTotal::Exact(statuses.iter().map(|s| counts[s]).sum())
            }
            None => match self.bounded_count(conditions).await? {
                IssueTotal::AtLeast(n) => IssueTotal::AtLeast(n.max(offset + issues.len() as i64)),
                exact => exact,
            },
        };
        Ok((issues, total))
    }

    /// Reads at most [`count_budget_rows`] of the rows the sought conditions yield, counting those
    /// that meet the checked ones: exact if there were no more rows, a floor otherwise.
    async fn bounded_count(&self, conditions: Conditions) -> Result<IssueTotal> {
        let budget = count_budget_rows(&conditions);
        let sql = count_sql(&conditions);
        let mut rows = self.conn().query(&sql, conditions.params).await?;
        let row = rows
            .next()
            .await?
            .ok_or_else(|| StoreError::Invalid("no row from an issue count".into()))?;
        let (read, matched): (i64, i64) = (row.get(0)?, row.get(1)?);
        Ok(match read < budget {
            true => IssueTotal::Exact(matched),
            false => IssueTotal::AtLeast(matched),
        })
    }

    /// Whether at most [`RARE_TAG_ISSUES`] issues (of any project) carry one of these values of a tag: a
    /// bounded read of the tag index that tells which way a filter on it is fast.
    async fn is_rare_tag(&self, key: &str, values: &[String]) -> Result<bool> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM issue_tags WHERE key = ? AND value IN ({}) LIMIT {})",
            placeholders(values.len()),
            RARE_TAG_ISSUES + 1
        );
        let params: Vec<libsql::Value> = std::iter::once(key)
            .chain(values.iter().map(String::as_str))
            .map(|v| v.to_owned().into())
            .collect();
        Ok(self.scalar(&sql, params).await? <= RARE_TAG_ISSUES)
    }

    /// Issues per status, for the tabs of the issue list (kept by triggers, so this is a point read).
    pub async fn issue_status_counts(
        &self,
        project: ProjectId,
    ) -> Result<HashMap<IssueStatus, i64>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT status, count FROM issue_status_counts WHERE project_id = ?1",
                [project.value()],
            )
            .await?;
        let mut counts: HashMap<IssueStatus, i64> =
            IssueStatus::ALL.iter().map(|s| (*s, 0)).collect();
        while let Some(row) = rows.next().await? {
            counts.insert(row.get::<String>(0)?.parse()?, row.get(1)?);
        }
        Ok(counts)
    }

    pub async fn issue(&self, id: i64) -> Result<Option<Issue>> {
        let mut rows = self
            .conn()
            .query(
                &format!("SELECT {ISSUE_COLUMNS} FROM issues i WHERE i.id = ?1"),
                [id],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(issue_from_row(&row)?)),
            None => Ok(None),
        }
    }

    /// A person's decision about an issue. Resolving stamps the time (which "resolved in next release"
    /// compares new releases against); reopening clears it.
    pub async fn set_issue_status(&self, id: i64, status: IssueStatus) -> Result<bool> {
        let resolved_at = matches!(
            status,
            IssueStatus::Resolved | IssueStatus::ResolvedNextRelease
        )
        .then(now_us);
        let n = self
            .conn()
            .execute(
                "UPDATE issues SET status = ?2, resolved_at = ?3 WHERE id = ?1",
                libsql::params![id, status.as_str(), resolved_at],
            )
            .await?;
        Ok(n > 0)
    }

    /// Events per hour for each issue, from `since_hour` (Unix seconds at an hour boundary) on.
    pub async fn issue_hours(
        &self,
        issue_ids: &[i64],
        since_hour: i64,
    ) -> Result<HashMap<i64, Vec<(i64, i64)>>> {
        let mut out: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        let stmt = self.conn().prepare("SELECT hour, count FROM issue_hours WHERE issue_id = ?1 AND hour >= ?2 ORDER BY hour").await?;
        for id in issue_ids {
            let mut rows = stmt.query((*id, since_hour)).await?;
            let hours = out.entry(*id).or_default();
            while let Some(row) = rows.next().await? {
                hours.push((row.get(0)?, row.get(1)?));
            }
            drop(rows);
            stmt.reset();
        }
        Ok(out)
    }

    /// Tag values of an issue, most frequent first within each key.
    pub async fn issue_tags(&self, id: i64) -> Result<Vec<(String, String, i64)>> {
        let mut rows = self.conn().query("SELECT key, value, count FROM issue_tags WHERE issue_id = ?1 ORDER BY key, count DESC, value", [id]).await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push((row.get(0)?, row.get(1)?, row.get(2)?));
        }
        Ok(out)
    }

    /// An issue's events, newest first.
    pub async fn issue_events(
        &self,
        id: i64,
        page: u32,
        per_page: u32,
    ) -> Result<Vec<EventListItem>> {
        let per_page = per_page.clamp(1, 100) as i64;
        let rows = self
            .conn()
            .query(
                "SELECT event_id, timestamp, title, level, release, environment FROM events WHERE issue_id = ?1
                 ORDER BY timestamp DESC, id DESC LIMIT ?2 OFFSET ?3",
                (id, per_page, page as i64 * per_page),
            )
            .await?;
        EventListItem::read_all(rows).await
    }

    /// One event with its payload decompressed.
    pub async fn event(&self, project: ProjectId, event_id: &str) -> Result<Option<StoredEvent>> {
        let mut rows = self
            .conn()
            .query(super::event_keys::EVENT_BY_ID, (project.value(), event_id))
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok(None);
        };
        let compressed: Vec<u8> = row.get(5)?;
        let json = self
            .payload_bytes(&compressed, super::MAX_PAYLOAD_BYTES)
            .await?;
        Ok(Some(StoredEvent {
            project_id: project,
            event_id: event_id.to_owned(),
            issue_id: row.get(0)?,
            timestamp: row.get(1)?,
            received_at: row.get(2)?,
            title: row.get(3)?,
            level: row.get(4)?,
            payload: serde_json::from_slice(&json).unwrap_or(serde_json::Value::Null),
        }))
    }

    /// The events just older and just newer than `event_id` within its issue, for previous/next links.
    pub async fn event_neighbours(
        &self,
        issue_id: i64,
        event_id: &str,
    ) -> Result<(Option<String>, Option<String>)> {
        let mut rows = self
            .conn()
            .query(
                "SELECT timestamp, id FROM events WHERE issue_id = ?1 AND event_id = ?2",
                (issue_id, event_id),
            )
            .await?;
        let Some(row) = rows.next().await? else {
            return Ok((None, None));
        };
        let (ts, id): (i64, i64) = (row.get(0)?, row.get(1)?);
        drop(rows);
        let pick = |sql: &'static str| async move {
            let mut rows = self.conn().query(sql, (issue_id, ts, id)).await?;
            Ok::<_, StoreError>(match rows.next().await? {
                Some(row) => Some(row.get::<String>(0)?),
                None => None,
            })
        };
        let older = pick("SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp, id) < (?2, ?3) ORDER BY timestamp DESC, id DESC LIMIT 1").await?;
        let newer = pick("SELECT event_id FROM events WHERE issue_id = ?1 AND (timestamp, id) > (?2, ?3) ORDER BY timestamp, id LIMIT 1").await?;
        Ok((older, newer))
    }

    /// A project's releases, newest first.
    pub async fn releases(&self, project: ProjectId) -> Result<Vec<Release>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT version, first_seen, last_seen, event_count, transaction_count FROM releases WHERE project_id = ?1 ORDER BY first_seen DESC",
                [project.value()],
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            out.push(Release {
                version: row.get(0)?,
                first_seen: row.get(1)?,
                last_seen: row.get(2)?,
                event_count: row.get(3)?,
                transaction_count: row.get(4)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::issue_text::prefix_match;
    use super::*;

    /// A list's conditions with every tag rare or none, and its full text read by `path`.
    fn conditions_on(
        query: &str,
        status: Option<IssueStatus>,
        rare: bool,
        path: TextPath,
    ) -> Conditions {
        let query = IssueQuery::parse(query).unwrap();
        let text = prefix_match(&query.terms).map(|fts| TextMatch { fts, path });
        let rare = vec![rare; query.terms.len()];
        list_conditions(
            ProjectId::new(1),
            status,
            IssueSort::LastSeen,
            &query.terms,
            &rare,
            text.as_ref(),
            0,
        )
    }

    fn conditions(query: &str, status: Option<IssueStatus>, rare: bool) -> Conditions {
        let path = match rare {
            true => TextPath::Rare,
            false => TextPath::Listed,
        };
        conditions_on(query, status, rare, path)
    }

    /// The plans of a list's page and count: every table is reached through an index (a walk of an index
    /// in page order, or a seek), never a scan of the table itself, whatever the terms.
    async fn plans(
        store: &Store,
        query: &str,
        status: Option<IssueStatus>,
        rare: bool,
    ) -> (Vec<String>, Vec<String>) {
        plans_of(store, conditions(query, status, rare)).await
    }

    async fn plans_of(store: &Store, c: Conditions) -> (Vec<String>, Vec<String>) {
        let page = page_sql(&c, IssueSort::LastSeen, 25, 0);
        let page = store.query_plan(&page, c.params.clone()).await;
        let count = store.query_plan(&count_sql(&c), c.params).await;
        (page, count)
    }

    fn full_scan(plan: &[String]) -> Option<&String> {
        plan.iter().find(|line| {
            // A scan of the count's own subquery reads only the rows that subquery yields.
            line.starts_with("SCAN ")
                && !line.starts_with("SCAN (subquery")
                && !line.contains(" USING ")
                && !line.contains("VIRTUAL TABLE")
        })
    }

    #[tokio::test]
    async fn every_kind_of_term_keeps_to_the_indexes() {
        let store = Store::open_in_memory().await.unwrap();
        for (query, status) in [
            ("level:error browser:Firefox", Some(IssueStatus::Open)),
            ("!level:info !browser:Firefox", None),
            ("is:unresolved lastSeen:-24h", None),
            ("is:regressed firstSeen:+7d", Some(IssueStatus::Open)),
            ("!is:regressed !is:resolved", None),
            (
                "user.email:a@b.c \"connection reset\" timeout !KeyError",
                None,
            ),
            ("release:[1.0,2.0] environment:production", None),
        ] {
            let (page, count) = plans(&store, query, status, false).await;
            for plan in [&page, &count] {
                assert!(full_scan(plan).is_none(), "{query}\n{plan:#?}");
            }
            // Walked in page order: no sort of every match (common full text included).
            let sorted = page.iter().any(|l| l.contains("TEMP B-TREE FOR ORDER BY"));
            assert!(!sorted, "{query}\n{page:#?}");
        }
        // A rare tag value: its issues are read through the tag index and by id.
        let (page, count) = plans(&store, "browser:Firefox", Some(IssueStatus::Open), true).await;
        for plan in [page, count] {
            assert!(
                plan.iter().any(|l| l.starts_with(
                    "SEARCH t USING COVERING INDEX issue_tags_value (key=? AND value=?)"
                )),
                "{plan:#?}"
            );
            assert!(
                plan.iter()
                    .any(|l| l.starts_with("SEARCH i USING INTEGER PRIMARY KEY")),
                "{plan:#?}"
            );
        }
    }

    /// `is:regressed` reads the few issues that came back, through the index that holds only them, for
    /// the page and its count alike.
    #[tokio::test]
    async fn regressed_issues_are_read_from_their_own_index() {
        let store = Store::open_in_memory().await.unwrap();
        for query in ["is:regressed", "is:regressed level:error browser:Firefox"] {
            let (page, count) = plans(&store, query, None, false).await;
            for plan in [page, count] {
                assert!(
                    plan.iter()
                        .any(|l| l.starts_with("SEARCH i USING INDEX issues_regressed")),
                    "{query}\n{plan:#?}"
                );
            }
        }
    }

    /// The count checks only what no index sought: the project and status are the walk, the level and a
    /// common tag are checked on each row it yields.
    #[test]
    fn the_count_seeks_what_indexes_hold_and_checks_the_rest() {
        let c = conditions(
            "is:unresolved level:error !browser:Opera",
            Some(IssueStatus::Open),
            false,
        );
        let sql = count_sql(&c);
        let (select, from) = sql.split_once(" FROM issues i WHERE ").unwrap();
        assert!(
            select.contains("i.level IN") && select.contains("NOT EXISTS"),
            "{sql}"
        );
        // One lookup per row (the tag) halves the rows read.
        assert!(
            from.ends_with(&format!("LIMIT {})", COUNT_BUDGET_READS / 2)),
            "{sql}"
        );
        assert!(
            from.contains("i.project_id = ?1 AND i.status = ?2 AND i.status IN (?3) LIMIT"),
            "{sql}"
        );
        assert!(!from.contains("level") && !from.contains("EXISTS"), "{sql}");
    }

    /// 8,000 open issues, every other an error, every 100th regressed, `production` on all and `canary`
    /// on every 500th.
    async fn many_issues() -> Store {
        let store = Store::open_in_memory().await.unwrap();
        store
            .conn()
            .execute_batch(
                "INSERT INTO projects (id, slug, name, created_at) VALUES (1, 'p', 'p', 0);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)
                 INSERT INTO issues (id, project_id, title, level, first_seen, last_seen, grouping_config, regressed_at)
                   SELECT i, 1, 'issue ' || i, CASE i % 2 WHEN 0 THEN 'error' ELSE 'warning' END, i, i, 't',
                          CASE WHEN i % 100 = 0 THEN i END FROM n;
                 INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
                   SELECT id, 'environment', 'production', 1, 0, 0 FROM issues;
                 INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen)
                   SELECT id, 'environment', 'canary', 1, 0, 0 FROM issues WHERE id % 500 = 0;",
            )
            .await
            .unwrap();
        store
    }

    async fn search(store: &Store, query: &str, page: u32) -> (Vec<i64>, IssueTotal) {
        let filter = IssueFilter {
            query: IssueQuery::parse(query).unwrap(),
            page,
            per_page: 25,
            ..Default::default()
        };
        let (issues, total) = store.list_issues(ProjectId::new(1), &filter).await.unwrap();
        (issues.iter().map(|i| i.id).collect(), total)
    }

    #[tokio::test]
    async fn a_broad_search_counts_a_floor_and_a_narrow_one_counts_exactly() {
        let store = many_issues().await;
        // 4,000 errors among 8,000 issues: more rows than the count reads. The pages are exact.
        let (first, total) = search(&store, "level:error environment:production", 0).await;
        assert_eq!(first, (0..25).map(|k| 8000 - 2 * k).collect::<Vec<_>>());
        let (second, _) = search(&store, "level:error environment:production", 1).await;
        assert_eq!(second, (25..50).map(|k| 8000 - 2 * k).collect::<Vec<_>>());
        let IssueTotal::AtLeast(floor) = total else {
            panic!("{total:?}")
        };
        assert!((1_000..4_000).contains(&floor), "{floor}");
        // A deep page past the rows counted: the floor is at least the issues up to it.
        let (deep, total) = search(&store, "level:error", 150).await;
        assert_eq!(deep.first(), Some(&(8000 - 2 * 3750)));
        assert!(total.count() >= 3775 && !total.is_exact(), "{total:?}");
        // Narrow ones are counted exactly: through their own index, a rare tag, or every row read.
        for (query, n) in [
            ("is:regressed", 80),
            ("is:regressed level:error", 80),
            ("environment:canary level:error", 16),
            ("!is:regressed environment:canary", 0),
            // Or by the status counters.
            ("is:unresolved", 8000),
            ("is:resolved", 0),
        ] {
            let (_, total) = search(&store, query, 0).await;
            assert_eq!(total, IssueTotal::Exact(n), "{query}");
        }
    }

    /// A common full-text match checked issue by issue: the walk in page order asks the index about each
    /// issue's rowid (a correlated subquery), for the page and its count; no list of matches is built.
    #[tokio::test]
    async fn a_walked_text_match_is_checked_by_rowid_on_the_walk() {
        let store = Store::open_in_memory().await.unwrap();
        let walked = TextPath::Walked { terms: 1 };
        for query in ["timeout", "timeout level:error browser:Firefox"] {
            let c = conditions_on(query, Some(IssueStatus::Open), false, walked);
            let (page, count) = plans_of(&store, c).await;
            for plan in [&page, &count] {
                assert!(full_scan(plan).is_none(), "{query}\n{plan:#?}");
                // FTS5's plan: `=` a rowid, `M` a match.
                assert!(
                    plan.iter()
                        .any(|l| l.starts_with("SCAN f VIRTUAL TABLE INDEX 0:=M")),
                    "{query}\n{plan:#?}"
                );
                assert!(
                    !plan.iter().any(|l| l.contains("LIST SUBQUERY")),
                    "{query}\n{plan:#?}"
                );
            }
            let sorted = page.iter().any(|l| l.contains("TEMP B-TREE FOR ORDER BY"));
            assert!(!sorted, "{query}\n{page:#?}");
        }
        // A listed one is built once as a list the walk looks issues up in.
        let (page, _) = plans(&store, "timeout", Some(IssueStatus::Open), false).await;
        assert!(
            page.iter().any(|l| l.contains("LIST SUBQUERY")),
            "{page:#?}"
        );
    }

    /// [`many_issues`] with full text: `timeout` in every other issue, `TimeoutError` in every third,
    /// `rare` in every 1,000th, and every title `issue N`.
    async fn issues_with_text() -> Store {
        let store = many_issues().await;
        store
            .conn()
            .execute_batch(
                "INSERT INTO issues_fts (rowid, title, body)
                   SELECT id, title, CASE WHEN id % 2 = 0 THEN 'timeout ' ELSE '' END
                     || CASE WHEN id % 3 = 0 THEN 'TimeoutError ' ELSE '' END
                     || CASE WHEN id % 1000 = 0 THEN 'rare' ELSE '' END FROM issues;",
            )
            .await
            .unwrap();
        store
    }

    /// A page of `c` and its bounded count, as [`Store::list_issues`] reads them, and the exact count.
    async fn read(store: &Store, c: Conditions, page: i64) -> (Vec<i64>, IssueTotal, i64) {
        let mut rows = store
            .conn()
            .query(
                &page_sql(&c, IssueSort::LastSeen, 25, page * 25),
                c.params.clone(),
            )
            .await
            .unwrap();
        let mut ids = Vec::new();
        while let Some(row) = rows.next().await.unwrap() {
            ids.push(row.get::<i64>(0).unwrap());
        }
        drop(rows);
        let all = format!("SELECT count(*) FROM issues i WHERE {}", c.joined());
        let exact = store.scalar(&all, c.params.clone()).await.unwrap();
        let total = store.bounded_count(c).await.unwrap();
        (ids, total, exact)
    }

    /// A full-text match read by id, listed, or checked issue by issue: the same pages, and counts
    /// that are the exact total or a floor under it (exact whenever the count reads every sought row).
    #[tokio::test]
    async fn every_text_path_gives_the_same_issues_and_totals() {
        let store = issues_with_text().await;
        let walked = TextPath::Walked { terms: 2 };
        for query in [
            "timeout",
            "timeouterror",
            "rare",
            "timeout rare",
            "\"issue 42\"",
            "timeout !rare level:error",
            "timeout environment:canary",
            "is:regressed timeout",
            "is:regressed timeouterror level:error",
        ] {
            let terms = IssueQuery::parse(query).unwrap().terms;
            let fts = store.exact_match(&terms).await.unwrap().unwrap().0;
            for page in [0, 3] {
                let mut answers = Vec::new();
                for path in [TextPath::Rare, TextPath::Listed, walked] {
                    let text = TextMatch {
                        fts: fts.clone(),
                        path,
                    };
                    let c = list_conditions(
                        ProjectId::new(1),
                        None,
                        IssueSort::LastSeen,
                        &terms,
                        &[],
                        Some(&text),
                        0,
                    );
                    let (ids, total, exact) = read(&store, c, page).await;
                    match total {
                        IssueTotal::Exact(n) => assert_eq!(n, exact, "{query} {path:?}"),
                        IssueTotal::AtLeast(n) => assert!(n <= exact, "{query} {path:?}"),
                    }
                    if query.starts_with("is:regressed") {
                        assert!(total.is_exact(), "{query} {path:?}: {total:?}");
                    }
                    answers.push(ids);
                }
                assert!(!answers[0].is_empty() || page > 0, "{query}");
                assert!(
                    answers.iter().all(|a| a == &answers[0]),
                    "{query}: {answers:?}"
                );
            }
        }
    }

    /// The path follows the matches: few are read by id; many that fill a page within a few dozen
    /// checks are walked; a deep page of them, or words FTS5 folds its own way, are listed.
    #[tokio::test]
    async fn the_text_path_follows_how_many_issues_match() {
        let store = issues_with_text().await;
        let path = |query: &'static str, rows: i64| {
            let store = &store;
            async move {
                let terms = IssueQuery::parse(query).unwrap().terms;
                store.text_match(&terms, rows).await.unwrap().unwrap()
            }
        };
        // A word is a prefix: `timeout` checks both terms that begin with it.
        let timeout = path("timeout", 25).await;
        assert_eq!(timeout.fts, "(\"timeout\" OR \"timeouterror\")");
        assert_eq!(timeout.path, TextPath::Walked { terms: 2 });
        assert_eq!(path("timeout", 25 * 21).await.path, TextPath::Listed);
        assert_eq!(path("rare", 25).await.path, TextPath::Rare);
        assert_eq!(path("timeout rare", 25).await.path, TextPath::Rare);
        assert_eq!(path("issue", 25).await.path, TextPath::Walked { terms: 1 });
        let phrase = path("\"Issue 42\" timeouterror", 25).await;
        assert_eq!(phrase.fts, "\"issue 42\" AND (\"timeouterror\")");
        // Not plain ASCII: FTS5 folds it (to `issue`, in every issue) and reads the prefix itself.
        let folded = path("Issué", 25).await;
        assert_eq!(folded.fts, "\"Issué\"*");
        assert_eq!(folded.path, TextPath::Listed);
    }
}
