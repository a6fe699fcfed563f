//! What each channel says about an alert: the email's subject and text, the webhook's JSON, ntfy's
//! headers and body. Pure functions over an [`Alert`], so they are tested without a server.

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use super::{Alert, AlertKind};

/// Longest title put in a subject or a header; the body carries it whole.
const MAX_TITLE_CHARS: usize = 160;

/// `New Issue`, `Issue Reopened`, `Issue Burst`: the seed's words.
pub fn headline(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::Created => "New Issue",
        AlertKind::Regressed => "Issue Reopened",
        AlertKind::Burst { .. } => "Issue Burst",
        AlertKind::Digest { .. } => "Alerts Suppressed",
        AlertKind::Test => "Test Alert",
    }
}

/// One labelled value a chat message shows (`Project: Shop API`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact(pub &'static str, pub String);

/// What every message says about the issue besides its title: project, level, environment, release and
/// count, and the burst's or digest's figures.
pub fn facts(alert: &Alert) -> Vec<Fact> {
    let issue = &alert.issue;
    let mut facts = vec![Fact(
        "Project",
        one_line(&alert.project.name, MAX_TITLE_CHARS),
    )];
    if let AlertKind::Digest { suppressed, .. } = alert.kind {
        facts.push(Fact("Held back", suppressed.to_string()));
        return facts;
    }
    if alert.kind == AlertKind::Test {
        return facts;
    }
    facts.push(Fact("Level", one_line(&issue.level, 40)));
    if let Some(env) = alert.environment.as_deref().filter(|e| !e.is_empty()) {
        facts.push(Fact("Environment", one_line(env, MAX_TITLE_CHARS)));
    }
    if let Some(release) = issue.last_release.as_deref().filter(|r| !r.is_empty()) {
        facts.push(Fact("Release", one_line(release, MAX_TITLE_CHARS)));
    }
    facts.push(Fact("Events", issue.times_seen.to_string()));
    if let AlertKind::Burst { events, hour } = alert.kind {
        facts.push(Fact(
            "Burst",
            format!(
                "{events} events in the hour from {}",
                time(hour * 1_000_000)
            ),
        ));
    }
    facts
}

/// `New issue in Shop API`, `Regressed issue in …`, `Issue burst in …: 1500 events in one hour`.
pub fn what_happened(alert: &Alert) -> String {
    let project = one_line(&alert.project.name, MAX_TITLE_CHARS);
    match alert.kind {
        AlertKind::Created => format!("New issue in {project}"),
        AlertKind::Regressed => format!("Regressed issue in {project}"),
        AlertKind::Burst { events, .. } => {
            format!("Issue burst in {project}: {events} events in one hour")
        }
        AlertKind::Digest { suppressed, .. } => {
            format!("{suppressed} more alerts suppressed this hour in {project}")
        }
        AlertKind::Test => format!("Test alert from Splat for {project}"),
    }
}

/// The issue's title on one bounded line.
pub fn short_title(alert: &Alert) -> String {
    one_line(&alert.issue.title, MAX_TITLE_CHARS)
}

/// The issue's culprit on one bounded line, when it has one.
pub fn culprit(alert: &Alert) -> Option<String> {
    let culprit = alert.issue.culprit.as_deref().filter(|c| !c.is_empty())?;
    Some(one_line(culprit, 300))
}

/// One line saying what happened to which issue: a chat's notification text.
pub fn summary(alert: &Alert) -> String {
    match alert.kind {
        AlertKind::Digest { .. } => what_happened(alert),
        _ => format!("{}: {}", what_happened(alert), short_title(alert)),
    }
}

/// The words on the button to [`Alert::url`].
pub fn link_label(alert: &Alert) -> &'static str {
    match alert.kind {
        AlertKind::Digest { .. } => "Open the issue list",
        AlertKind::Test => "Open the alert settings",
        _ => "Open issue",
    }
}

/// `[Splat] New Issue: ValueError: bad input`, on one line and of bounded length; a digest names its
/// count and project instead of an issue.
pub fn subject(alert: &Alert) -> String {
    if let AlertKind::Digest { suppressed, .. } = alert.kind {
        return format!(
            "[Splat] {}: {suppressed} more alerts suppressed this hour in {}",
            headline(alert.kind),
            one_line(&alert.project.name, MAX_TITLE_CHARS)
        );
    }
    format!(
        "[Splat] {}: {}",
        headline(alert.kind),
        one_line(&alert.issue.title, MAX_TITLE_CHARS)
    )
}

/// The plain-text body of the email and of the ntfy message.
pub fn text(alert: &Alert) -> String {
    let issue = &alert.issue;
    if let AlertKind::Digest {
        suppressed,
        hour,
        limit,
    } = alert.kind
    {
        return format!(
            "{suppressed} more alerts suppressed this hour for project {}: the limit is {limit} alerts per hour \
             (SPLAT_MAX_ALERTS_PER_PROJECT_HOUR). Further alerts are held back until {}; the issue list has them all.\n\
             Latest held back: {}\n\n{}\n",
            alert.project.name,
            time((hour + 3_600) * 1_000_000),
            one_line(&issue.title, MAX_TITLE_CHARS),
            alert.url
        );
    }
    let mut out = String::new();
    let mut line = |label: &str, value: &str| {
        out.push_str(label);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    };
    line("Issue", &issue.title);
    line("Project", &alert.project.name);
    if let Some(ty) = &issue.exception_type {
        line("Exception", ty);
    }
    if let Some(culprit) = issue.culprit.as_deref().filter(|c| !c.is_empty()) {
        line("Culprit", culprit);
    }
    line("Level", &issue.level);
    if let Some(env) = alert.environment.as_deref().filter(|e| !e.is_empty()) {
        line("Environment", env);
    }
    if let Some(release) = issue.last_release.as_deref().filter(|r| !r.is_empty()) {
        line("Release", release);
    }
    match alert.kind {
        AlertKind::Created => line("First seen", &time(issue.first_seen)),
        AlertKind::Regressed => line(
            "Seen again",
            &time(issue.regressed_at.unwrap_or(issue.last_seen)),
        ),
        AlertKind::Burst { events, hour } => line(
            "Burst",
            &format!(
                "{events} events in the hour from {}",
                time(hour * 1_000_000)
            ),
        ),
        // Said above, in a text of its own; a test alert has nothing more to say.
        AlertKind::Digest { .. } | AlertKind::Test => {}
    }
    line("Last seen", &time(issue.last_seen));
    line("Events", &issue.times_seen.to_string());
    out.push('\n');
    out.push_str(&alert.url);
    out.push('\n');
    out
}

/// The webhook's JSON body: `{event, issue, project, url}`.
pub fn webhook_json(alert: &Alert) -> Value {
    let issue = &alert.issue;
    let mut body = json!({
        "event": alert.kind.event_name(),
        "issue": {
            "id": issue.id,
            "title": issue.title,
            "culprit": issue.culprit,
            "level": issue.level,
            "status": issue.status.as_str(),
            "exception_type": issue.exception_type,
            "platform": issue.platform,
            "count": issue.times_seen,
            "users": issue.users_seen,
            "first_seen": time(issue.first_seen),
            "last_seen": time(issue.last_seen),
            "first_release": issue.first_release,
            "last_release": issue.last_release,
        },
        "project": {
            "id": alert.project.id.value(),
            "name": alert.project.name,
            "slug": alert.project.slug,
        },
        "url": alert.url,
    });
    match alert.kind {
        AlertKind::Burst { events, hour } => {
            body["burst"] = json!({ "events": events, "hour_start": time(hour * 1_000_000) });
        }
        AlertKind::Digest {
            suppressed,
            hour,
            limit,
        } => {
            body["digest"] = json!({
                "suppressed": suppressed,
                "limit_per_hour": limit,
                "hour_start": time(hour * 1_000_000),
                "text": format!("{suppressed} more alerts suppressed this hour"),
            });
        }
        AlertKind::Created | AlertKind::Regressed | AlertKind::Test => {}
    }
    body["environment"] = json!(alert.environment);
    body
}

/// ntfy's headers: `Title`, `Tags` (emoji short codes), `Click`. Header values must be visible ASCII;
/// a title with anything else is sent RFC 2047-encoded, which ntfy decodes.
pub fn ntfy_headers(alert: &Alert) -> Vec<(&'static str, String)> {
    let tags = match alert.kind {
        AlertKind::Created => "boom",
        AlertKind::Regressed => "recycle",
        AlertKind::Burst { .. } => "fire,warning",
        AlertKind::Digest { .. } => "mute",
        AlertKind::Test => "test_tube",
    };
    vec![
        ("Title", header_value(&subject(alert))),
        ("Tags", tags.to_owned()),
        ("Click", header_value(&alert.url)),
    ]
}

/// A header-safe value: as is when it is printable ASCII, else `=?UTF-8?B?…?=`.
pub fn header_value(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.to_owned()
    } else {
        use base64::Engine;
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }
}

/// Control characters (newlines included) become spaces; long text is cut at a character boundary.
fn one_line(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect();
    if s.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// Microseconds since the epoch as RFC 3339 UTC (`2026-11-25T10:58:00Z`).
pub(super) fn time(us: i64) -> String {
    Utc.timestamp_micros(us)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::protocol::ProjectId;
    use crate::store::{Issue, IssueStatus, Project};

    pub(crate) fn alert(kind: AlertKind, title: &str) -> Alert {
        Alert {
            kind,
            issue: Issue {
                id: 42,
                project_id: ProjectId::new(1),
                status: IssueStatus::Open,
                title: title.to_owned(),
                culprit: Some("app.views in checkout".into()),
                level: "error".into(),
                platform: Some("python".into()),
                exception_type: Some("ValueError".into()),
                first_seen: 1_764_064_680_000_000,
                last_seen: 1_764_068_280_000_000,
                times_seen: 7,
                users_seen: 2,
                first_release: None,
                last_release: Some("1.2.0".into()),
                grouping_config: "test".into(),
                resolved_at: None,
                regressed_at: None,
                last_event_id: None,
            },
            project: Project {
                id: ProjectId::new(1),
                name: "Shop API".into(),
                slug: "shop-api".into(),
                keys: Vec::new(),
            },
            url: "https://splat.example.com/projects/shop-api/issues/42".into(),
            environment: Some("production".into()),
            destinations: None,
            webhooks: Vec::new(),
        }
    }

    #[test]
    fn a_digest_says_how_many_alerts_were_held_back() {
        let digest = alert(
            AlertKind::Digest {
                suppressed: 7,
                hour: 1_764_064_800,
                limit: 20,
            },
            "ValueError: bad input",
        );
        assert_eq!(
            subject(&digest),
            "[Splat] Alerts Suppressed: 7 more alerts suppressed this hour in Shop API"
        );
        assert!(
            text(&digest).starts_with("7 more alerts suppressed this hour for project Shop API")
        );
        let body = webhook_json(&digest);
        assert_eq!(body["event"], "project.alerts_suppressed");
        assert_eq!(body["digest"]["suppressed"], 7);
    }

    #[test]
    fn subjects_and_bodies_say_what_happened_where() {
        let created = alert(AlertKind::Created, "ValueError: bad input");
        assert_eq!(
            subject(&created),
            "[Splat] New Issue: ValueError: bad input"
        );
        let body = text(&created);
        for part in [
            "Issue: ValueError: bad input\n",
            "Project: Shop API\n",
            "Exception: ValueError\n",
            "Culprit: app.views in checkout\n",
            "First seen: 2025-11-25T09:58:00Z\n",
            "Events: 7\n",
            "\nhttps://splat.example.com/projects/shop-api/issues/42\n",
        ] {
            assert!(body.contains(part), "{part:?} missing from\n{body}");
        }
        let regressed = alert(AlertKind::Regressed, "x");
        assert_eq!(subject(&regressed), "[Splat] Issue Reopened: x");
        let burst = alert(
            AlertKind::Burst {
                events: 1500,
                hour: 1_764_064_800,
            },
            "x",
        );
        assert_eq!(subject(&burst), "[Splat] Issue Burst: x");
        assert!(text(&burst).contains("Burst: 1500 events in the hour from 2025-11-25T10:00:00Z\n"));
    }

    #[test]
    fn titles_are_one_bounded_line_in_subjects_and_headers() {
        let long = format!("Error:\r\nline two {}", "é".repeat(300));
        let s = subject(&alert(AlertKind::Created, &long));
        assert!(!s.contains('\n') && !s.contains('\r'));
        assert!(s.chars().count() <= "[Splat] New Issue: ".len() + MAX_TITLE_CHARS + 1);
        assert!(s.ends_with('…'));
        let headers = ntfy_headers(&alert(AlertKind::Created, "Ünïcode fails"));
        let title = &headers[0].1;
        assert!(title.starts_with("=?UTF-8?B?") && title.is_ascii());
        assert_eq!(
            header_value("[Splat] New Issue: plain"),
            "[Splat] New Issue: plain"
        );
    }

    #[test]
    fn webhook_json_names_the_event_issue_and_project() {
        let body = webhook_json(&alert(AlertKind::Regressed, "KeyError: 'id'"));
        assert_eq!(body["event"], "issue.regressed");
        assert_eq!(body["issue"]["id"], 42);
        assert_eq!(body["issue"]["title"], "KeyError: 'id'");
        assert_eq!(body["issue"]["count"], 7);
        assert_eq!(body["issue"]["culprit"], "app.views in checkout");
        assert_eq!(body["project"]["slug"], "shop-api");
        assert_eq!(
            body["url"],
            "https://splat.example.com/projects/shop-api/issues/42"
        );
        assert!(body.get("burst").is_none());
        let burst = webhook_json(&alert(
            AlertKind::Burst {
                events: 1000,
                hour: 1_764_064_800,
            },
            "x",
        ));
        assert_eq!(burst["event"], "issue.burst");
        assert_eq!(burst["burst"]["events"], 1000);
        assert_eq!(
            ntfy_headers(&alert(AlertKind::Created, "x"))
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>(),
            [
                "Title: [Splat] New Issue: x",
                "Tags: boom",
                "Click: https://splat.example.com/projects/shop-api/issues/42"
            ]
        );
    }
}
