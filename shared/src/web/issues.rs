//! The issues list (status tabs, search, filters, sort, paging, a sparkline per row, resolve / ignore /
//! reopen per row), the issue page (stats, 7-day sparkline, tags, the latest event's stack trace, its
//! events), and the status change both pages post.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::format::Count;
use crate::model::time::Ts;
use crate::store::{
    EventListItem, Issue, IssueFilter, IssueQuery, IssueSort, IssueStatus, IssueTotal, StoredEvent,
    TagBreakdown,
};

use super::chart::Sparkline;
use super::events::EventView;
use super::feedback::FeedbackSection;
use super::{project_or_404, redirect_local, render, Chrome, WebError, WebResult, WebState};

pub const PER_PAGE: u32 = 25;
const LEVELS: [&str; 5] = ["fatal", "error", "warning", "info", "debug"];
const SORTS: [(&str, &str); 3] = [
    ("last_seen", "Last seen"),
    ("first_seen", "First seen"),
    ("count", "Events"),
];

/// A button that changes an issue's status.
#[derive(Debug, Clone)]
pub struct Action {
    pub status: &'static str,
    pub label: &'static str,
    pub class: &'static str,
}

/// What a person can do to an issue in its current status.
pub fn actions(status: IssueStatus, with_next_release: bool) -> Vec<Action> {
    let action = |status: IssueStatus, label, class| Action {
        status: status.as_str(),
        label,
        class,
    };
    match status {
        IssueStatus::Open => {
            let mut out = vec![action(IssueStatus::Resolved, "Resolve", "resolve")];
            if with_next_release {
                out.push(action(
                    IssueStatus::ResolvedNextRelease,
                    "Resolve in next release",
                    "resolve",
                ));
            }
            out.push(action(IssueStatus::Ignored, "Ignore", "ignore"));
            out
        }
        IssueStatus::Resolved | IssueStatus::ResolvedNextRelease | IssueStatus::Ignored => {
            vec![action(IssueStatus::Open, "Reopen", "reopen")]
        }
    }
}

pub fn status_label(status: IssueStatus) -> &'static str {
    match status {
        IssueStatus::Open => "Open",
        IssueStatus::Resolved => "Resolved",
        IssueStatus::ResolvedNextRelease => "Resolved in next release",
        IssueStatus::Ignored => "Ignored",
    }
}

/// An open issue seen at least the burst threshold's events in the current or the previous clock hour,
/// as burst alerts count them (`🚨` from twice the threshold, as the seed showed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstBadge {
    pub events: i64,
    pub severe: bool,
}

impl BurstBadge {
    /// From an issue's hourly counts (`(hour in Unix seconds, events)`).
    pub fn of(issue: &Issue, hours: &[(i64, i64)], threshold: u64, now_us: i64) -> Option<Self> {
        let hour = Ts(now_us).hour_secs();
        let events = hours
            .iter()
            .filter(|(h, _)| *h == hour || *h == hour - 3_600)
            .map(|(_, n)| *n)
            .max()?;
        let threshold = threshold as i64;
        (issue.status == IssueStatus::Open && events >= threshold).then_some(Self {
            events,
            severe: events >= threshold.saturating_mul(2),
        })
    }
}

/// An issue as a row of a list (the issues list, the dashboard's recent issues).
#[derive(Debug, Clone)]
pub struct IssueView {
    pub issue: Issue,
    pub url: String,
    pub status_label: &'static str,
    pub regressed: bool,
    pub count: Count,
    pub users: Count,
    pub first_seen: Ts,
    pub last_seen: Ts,
    pub spark: Sparkline,
    pub actions: Vec<Action>,
    pub burst: Option<BurstBadge>,
}

/// Rows for `issues`, each with its last-24-hours sparkline and the project's deploy markers.
pub async fn issue_rows(
    state: &WebState,
    slug: &str,
    issues: Vec<Issue>,
    deploys: &[(i64, String)],
) -> WebResult<Vec<IssueView>> {
    let now = Ts::now().0;
    let since = Ts(now).hour_secs() - 23 * 3_600;
    let ids: Vec<i64> = issues.iter().map(|i| i.id).collect();
    let mut hours = state.store.issue_hours(&ids, since).await?;
    Ok(issues
        .into_iter()
        .map(|issue| {
            let hours = hours.remove(&issue.id).unwrap_or_default();
            IssueView {
                burst: BurstBadge::of(&issue, &hours, state.burst_threshold, now),
                url: format!("/projects/{slug}/issues/{}", issue.id),
                status_label: status_label(issue.status),
                regressed: issue.regressed_at.is_some() && issue.status == IssueStatus::Open,
                count: Count(issue.times_seen),
                users: Count(issue.users_seen),
                first_seen: Ts(issue.first_seen),
                last_seen: Ts(issue.last_seen),
                spark: Sparkline::hourly(&hours, deploys, 24, now),
                actions: actions(issue.status, false),
                issue,
            }
        })
        .collect())
}

/// The project's releases as `(first_seen, version)`: the deploy markers of its sparklines.
pub async fn deploys(
    state: &WebState,
    project: crate::protocol::ProjectId,
) -> WebResult<Vec<(i64, String)>> {
    Ok(state
        .store
        .releases(project)
        .await?
        .into_iter()
        .map(|r| (r.first_seen, r.version))
        .collect())
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    environment: Option<String>,
    release: Option<String>,
    level: Option<String>,
    sort: Option<String>,
    /// One-based; anything unparsable is the first page.
    page: Option<String>,
}

impl ListQuery {
    fn status_key(&self) -> &str {
        match self.status.as_deref() {
            Some(s @ ("resolved" | "resolved_next_release" | "ignored" | "all")) => s,
            _ => "open",
        }
    }

    fn page(&self) -> u32 {
        self.page
            .as_deref()
            .and_then(|p| p.parse::<u32>().ok())
            .unwrap_or(1)
            .clamp(1, 100_000)
    }

    fn text(v: &Option<String>) -> String {
        v.as_deref().unwrap_or("").trim().to_owned()
    }

    /// This list's URL with the status and page replaced.
    fn url(&self, slug: &str, status: &str, page: u32) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("status", status);
        for (key, value) in [
            ("q", &self.q),
            ("environment", &self.environment),
            ("release", &self.release),
            ("level", &self.level),
            ("sort", &self.sort),
        ] {
            let value = Self::text(value);
            if !value.is_empty() {
                q.append_pair(key, &value);
            }
        }
        if page > 1 {
            q.append_pair("page", &page.to_string());
        }
        format!("/projects/{slug}/issues?{}", q.finish())
    }
}

#[derive(Debug, Clone)]
pub struct Tab {
    pub label: &'static str,
    pub count: Count,
    pub url: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "issues/list.html")]
struct IssueListPage {
    chrome: Chrome,
    slug: String,
    tabs: Vec<Tab>,
    status_key: String,
    q: String,
    environment: String,
    release: String,
    level: String,
    sort: String,
    environments: Vec<String>,
    releases: Vec<String>,
    levels: [&'static str; 5],
    sorts: [(&'static str, &'static str); 3],
    rows: Vec<IssueView>,
    /// "1,234", or "1,234+" when the count stopped at its budget.
    total: String,
    first: u64,
    last: u64,
    prev_url: Option<String>,
    next_url: Option<String>,
    filtered: bool,
    /// Why the search could not be read, shown above the (empty) list.
    error: Option<String>,
}

/// `GET /projects/{slug}/issues`.
pub async fn list(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let status_key = query.status_key().to_owned();
    let page = query.page();
    let q = ListQuery::text(&query.q);
    let environment = ListQuery::text(&query.environment);
    let release = ListQuery::text(&query.release);
    let level = ListQuery::text(&query.level);
    let sort = IssueSort::parse(query.sort.as_deref().unwrap_or(""));
    let sort_key = match sort {
        IssueSort::LastSeen => "last_seen",
        IssueSort::FirstSeen => "first_seen",
        IssueSort::Count => "count",
    };
    let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
    // A query that cannot be read lists nothing and says why, rather than listing what it did not ask for.
    let (search, error) = match IssueQuery::parse(&q) {
        Ok(search) => (search, None),
        Err(e) => (IssueQuery::default(), Some(e.to_string())),
    };
    let filter = IssueFilter {
        // An `is:` in the search picks the statuses itself; the tab does not narrow it further.
        status: status_key.parse().ok().filter(|_| !search.has_status()),
        query: search,
        environment: non_empty(&environment),
        release: non_empty(&release),
        level: non_empty(&level),
        sort,
        page: page - 1,
        per_page: PER_PAGE,
    };
    let (issues, total) = match error {
        None => state.store.list_issues(project.id, &filter).await?,
        Some(_) => (Vec::new(), IssueTotal::Exact(0)),
    };
    let counts = state.store.issue_status_counts(project.id).await?;
    let count = |s: IssueStatus| counts.get(&s).copied().unwrap_or(0);
    let mut tabs = Vec::new();
    for (label, key, n) in [
        ("Open", "open", count(IssueStatus::Open)),
        ("Resolved", "resolved", count(IssueStatus::Resolved)),
        (
            "Next release",
            "resolved_next_release",
            count(IssueStatus::ResolvedNextRelease),
        ),
        ("Ignored", "ignored", count(IssueStatus::Ignored)),
        ("All", "all", counts.values().sum()),
    ] {
        // "Next release" is a tab only while something waits for a release.
        if key == "resolved_next_release" && n == 0 && status_key != key {
            continue;
        }
        tabs.push(Tab {
            label,
            count: Count(n),
            url: query.url(&project.slug, key, 1),
            current: key == status_key,
        });
    }
    let deploys = deploys(&state, project.id).await?;
    let rows = issue_rows(&state, &project.slug, issues, &deploys).await?;
    let offset = u64::from(page - 1) * u64::from(PER_PAGE);
    let shown = rows.len() as u64;
    // A floor of a total: a full page means there may be another.
    let more = offset + shown < total.count() as u64
        || (!total.is_exact() && shown == u64::from(PER_PAGE));
    let filtered = [&q, &environment, &release, &level]
        .iter()
        .any(|s| !s.is_empty());
    let title = format!("Issues · {}", project.name);
    let chrome = chrome
        .for_project(&state, &project, "issues", title)
        .await?;
    render(&IssueListPage {
        chrome,
        slug: project.slug.clone(),
        tabs,
        prev_url: (page > 1).then(|| query.url(&project.slug, &status_key, page - 1)),
        next_url: more.then(|| query.url(&project.slug, &status_key, page + 1)),
        status_key,
        q,
        environment,
        release,
        level,
        sort: sort_key.to_owned(),
        environments: state
            .store
            .recent_tag_values(project.id, "environment", 50)
            .await?,
        releases: deploys.iter().take(50).map(|(_, v)| v.clone()).collect(),
        levels: LEVELS,
        sorts: SORTS,
        rows,
        total: match total {
            IssueTotal::Exact(n) => Count(n).to_string(),
            IssueTotal::AtLeast(n) => format!("{}+", Count(n)),
        },
        first: if shown == 0 { 0 } else { offset + 1 },
        last: offset + shown,
        filtered,
        error,
    })
}

/// One tag key's most common values on an issue.
#[derive(Debug, Clone)]
pub struct TagGroup {
    pub key: String,
    pub values: Vec<TagValue>,
    /// Distinct values not shown.
    pub more: usize,
}

#[derive(Debug, Clone)]
pub struct TagValue {
    pub value: String,
    pub count: Count,
    pub percent: u32,
    /// Bar width out of 100.
    pub width: f64,
}

const TAG_VALUES_SHOWN: u32 = 5;

fn tag_groups(keys: Vec<TagBreakdown>) -> Vec<TagGroup> {
    keys.into_iter()
        .map(|key| {
            let total = key.events.max(1);
            TagGroup {
                more: usize::try_from(key.values)
                    .unwrap_or(0)
                    .saturating_sub(key.top.len()),
                key: key.key,
                values: key
                    .top
                    .into_iter()
                    .map(|(value, count)| TagValue {
                        value,
                        count: Count(count),
                        percent: (count * 100 / total) as u32,
                        width: (count as f64 / total as f64 * 100.0).max(1.0),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The event an issue page shows in full.
pub struct ShownEvent {
    pub event: StoredEvent,
    pub view: EventView,
    pub timestamp: Ts,
    pub older: Option<String>,
    pub newer: Option<String>,
    pub is_latest: bool,
}

/// A line of the issue page's event list: an [`EventListItem`] as the page shows it.
pub struct EventItemView {
    pub item: EventListItem,
    /// The first 8 hex digits, as Sentry shows event ids in lists.
    pub short: String,
    pub timestamp: Ts,
    pub url: String,
}

#[derive(Template)]
#[template(path = "issues/detail.html")]
struct IssueDetailPage {
    chrome: Chrome,
    slug: String,
    issue: Issue,
    status_label: &'static str,
    regressed: bool,
    count: Count,
    users: Count,
    first_seen: Ts,
    last_seen: Ts,
    spark: Sparkline,
    actions: Vec<Action>,
    burst: Option<BurstBadge>,
    tags: Vec<TagGroup>,
    /// How many releases the issue was seen in.
    releases: i64,
    /// Deploys CI recorded in the chart's week (`sentry-cli deploys new`): `(when, version, environment)`.
    ci_deploys: Vec<(Ts, String, String)>,
    shown: Option<ShownEvent>,
    events: Vec<EventItemView>,
    prev_url: Option<String>,
    next_url: Option<String>,
    feedback: FeedbackSection,
    mute: super::alerts::MuteView,
}

#[derive(Debug, Default, Deserialize)]
pub struct DetailQuery {
    /// Show this event instead of the latest.
    event: Option<String>,
    page: Option<String>,
}

pub(super) async fn issue_of_project(
    state: &WebState,
    project: &crate::store::Project,
    id: &str,
) -> WebResult<Issue> {
    let id: i64 = id.parse().map_err(|_| WebError::NotFound("issue"))?;
    state
        .store
        .issue(id)
        .await?
        .filter(|i| i.project_id == project.id)
        .ok_or(WebError::NotFound("issue"))
}

/// `GET /projects/{slug}/issues/{id}`.
pub async fn detail(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((slug, id)): Path<(String, String)>,
    Query(query): Query<DetailQuery>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let issue = issue_of_project(&state, &project, &id).await?;
    let now = Ts::now().0;
    let since = Ts(now).hour_secs() - 167 * 3_600;
    let hours = state
        .store
        .issue_hours(&[issue.id], since)
        .await?
        .remove(&issue.id)
        .unwrap_or_default();
    let deploys = deploys(&state, project.id).await?;
    let tags = state
        .store
        .issue_tag_breakdown(issue.id, TAG_VALUES_SHOWN)
        .await?;
    let releases = tags
        .iter()
        .find(|t| t.key == "release")
        .map_or(0, |t| t.values);
    let wanted = query
        .event
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .or_else(|| issue.last_event_id.clone());
    let shown = match wanted {
        Some(event_id) => match state.store.event(project.id, &event_id).await? {
            Some(event) if event.issue_id == Some(issue.id) => {
                let (older, newer) = state.store.event_neighbours_of(&event).await?;
                Some(ShownEvent {
                    is_latest: issue.last_event_id.as_deref() == Some(event_id.as_str()),
                    view: EventView::from_payload(&event.payload),
                    timestamp: Ts(event.timestamp),
                    event,
                    older,
                    newer,
                })
            }
            _ => None,
        },
        None => None,
    };
    let page = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 100_000);
    let events = state
        .store
        .issue_events_page(issue.id, page - 1, PER_PAGE)
        .await?;
    let base = format!("/projects/{}/issues/{}", project.slug, issue.id);
    let page_url = |p: u32| format!("{base}?page={p}#events");
    let offset = u64::from(page - 1) * u64::from(PER_PAGE);
    let more = offset + (events.len() as u64) < issue.times_seen as u64;
    let (feedback, feedback_count) = state.store.issue_feedback(project.id, issue.id).await?;
    let title = format!("{} · {}", issue.title, project.name);
    let chrome = chrome
        .for_project(&state, &project, "issues", title)
        .await?;
    let mute = super::alerts::MuteView::load(&state, &project.slug, issue.id).await?;
    let ci_deploys: Vec<(Ts, String, String)> = state
        .store
        .deploys_between(project.id, since * 1_000_000, now + 1)
        .await?
        .into_iter()
        .map(|d| (Ts(d.finished_at), d.version, d.environment))
        .collect();
    let mut spark = Sparkline::hourly(&hours, &deploys, 168, now);
    for (at, version, environment) in &ci_deploys {
        spark.mark(
            at.0,
            format!("Deploy {version} to {environment}, {}", at.utc()),
        );
    }
    render(&IssueDetailPage {
        mute,
        feedback: FeedbackSection::new(&project.slug, feedback, feedback_count),
        chrome,
        slug: project.slug.clone(),
        status_label: status_label(issue.status),
        regressed: issue.regressed_at.is_some() && issue.status == IssueStatus::Open,
        count: Count(issue.times_seen),
        users: Count(issue.users_seen),
        first_seen: Ts(issue.first_seen),
        last_seen: Ts(issue.last_seen),
        spark,
        burst: BurstBadge::of(&issue, &hours, state.burst_threshold, now),
        ci_deploys,
        actions: actions(issue.status, true),
        tags: tag_groups(tags),
        releases,
        shown,
        events: events
            .into_iter()
            .map(|item| EventItemView {
                short: item.event_id.chars().take(8).collect(),
                timestamp: Ts(item.timestamp),
                url: format!("/projects/{}/events/{}", project.slug, item.event_id),
                item,
            })
            .collect(),
        prev_url: (page > 1).then(|| page_url(page - 1)),
        next_url: more.then(|| page_url(page + 1)),
        issue,
    })
}

#[derive(Debug, Deserialize)]
pub struct StatusForm {
    status: String,
    next: Option<String>,
}

/// `POST /projects/{slug}/issues/{id}/status`: resolve, resolve in next release, ignore or reopen, then
/// back to where the form was (`next`) or the issue.
pub async fn set_status(
    State(state): State<WebState>,
    Path((slug, id)): Path<(String, String)>,
    Form(form): Form<StatusForm>,
) -> WebResult<Response> {
    let project = project_or_404(&state, &slug).await?;
    let issue = issue_of_project(&state, &project, &id).await?;
    let status: IssueStatus = form
        .status
        .parse()
        .map_err(|_| WebError::BadRequest(format!("unknown status {:?}", form.status)))?;
    state.store.set_issue_status(issue.id, status).await?;
    tracing::info!(issue = issue.id, status = %status, "issue status changed");
    let fallback = format!("/projects/{}/issues/{}", project.slug, issue.id);
    Ok(redirect_local(form.next.as_deref(), &fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_show_shares_of_the_key_and_how_many_more() {
        let key = |key: &str, top: &[(&str, i64)], values, events| TagBreakdown {
            key: key.into(),
            top: top.iter().map(|(v, n)| (v.to_string(), *n)).collect(),
            values,
            events,
        };
        let groups = tag_groups(vec![
            key("browser", &[("Firefox", 3), ("Chrome", 1)], 2, 4),
            key("user.id", &[("1", 2)], 1_000, 1_002),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            (
                groups[0].values[0].percent,
                groups[0].values[1].percent,
                groups[0].more
            ),
            (75, 25, 0)
        );
        assert_eq!((groups[1].values[0].percent, groups[1].more), (0, 999));
    }

    #[test]
    fn list_urls_keep_filters() {
        let q = ListQuery {
            q: Some("Key Error".into()),
            level: Some("error".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            q.url("web", "resolved", 2),
            "/projects/web/issues?status=resolved&q=Key+Error&level=error&page=2"
        );
    }
}
