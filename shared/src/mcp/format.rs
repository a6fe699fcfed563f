//! Markdown for the tools' `content` (what a person, or a model, reads), from store rows and the lenient
//! event model; what a program reads, `structuredContent`, is the tools' answer types
//! ([`super::tools`]).

use crate::model::{Breadcrumb, Event, Frame, Stacktrace};
use crate::store::{Issue, Project};

pub use crate::format::{ms, opt_ms};

/// Microseconds since the epoch as ISO 8601 UTC, to the second (as the UI writes it).
pub fn iso(us: i64) -> String {
    crate::model::time::Ts(us).iso()
}

/// Text from an SDK inside inline code: backticks and newlines cannot break out of it.
pub fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c == '`' {
                '\''
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    format!("`{s}`")
}

/// One line of SDK text, shortened to `max` characters.
pub fn line(s: &str, max: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one.chars().count() > max {
        format!("{}…", one.chars().take(max).collect::<String>())
    } else {
        one
    }
}

/// A fenced block that SDK text cannot close early.
pub fn fenced(body: &str) -> String {
    let fence = if body.contains("```") { "~~~~" } else { "```" };
    format!("{fence}\n{body}\n{fence}\n")
}

/// `**Issue #id** — title` and its facts, as the issue lists show each issue.
pub fn issue_item(i: &Issue, project: &Project) -> String {
    let mut s = format!("- **Issue #{}** — {}\n", i.id, line(&i.title, 200));
    if let Some(t) = &i.exception_type {
        s.push_str(&format!("  - Type: {}\n", code(t)));
    }
    if let Some(c) = &i.culprit {
        s.push_str(&format!("  - Culprit: {}\n", code(&line(c, 200))));
    }
    s.push_str(&format!(
        "  - Status: {}{} · Level: {} · Count: {} · Users: {}\n  - Last seen: {} · First seen: {} · Project: {}\n",
        i.status,
        if i.regressed_at.is_some() && i.status == crate::store::IssueStatus::Open {
            " (regressed)"
        } else {
            ""
        },
        i.level,
        i.times_seen,
        i.users_seen,
        iso(i.last_seen),
        iso(i.first_seen),
        project.slug
    ));
    s
}

fn frame_location(f: &Frame) -> String {
    let file = f
        .filename
        .as_deref()
        .or(f.abs_path.as_deref())
        .or(f.module.as_deref())
        .unwrap_or("?");
    match (f.lineno, f.colno) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_owned(),
    }
}

fn frame_function(f: &Frame) -> &str {
    f.function
        .as_deref()
        .or(f.raw_function.as_deref())
        .unwrap_or("?")
}

/// Whether a stack trace has at least one in-app frame.
pub fn has_in_app(event: &Event) -> bool {
    event
        .main_stacktrace()
        .is_some_and(|s| s.frames.iter().any(|f| f.in_app == Some(true)))
}

/// The stack innermost (most recent call) first, as the seed printed it; in-app frames get their source
/// context (with `with_context`) and are marked, library frames are one line each.
pub fn stack_markdown(stack: &Stacktrace, with_context: bool, max_frames: usize) -> String {
    let mut out = String::new();
    let total = stack.frames.len();
    for (n, f) in stack.frames.iter().rev().take(max_frames).enumerate() {
        let in_app = f.in_app == Some(true);
        out.push_str(&format!(
            "{}. {}at {} ({})\n",
            n + 1,
            if in_app { "[in-app] " } else { "" },
            code(&line(frame_function(f), 200)),
            code(&line(&frame_location(f), 300)),
        ));
        if with_context && in_app && f.context_line.is_some() {
            let start = f.lineno.unwrap_or(0) - f.pre_context.len() as i64;
            let mut src = String::new();
            let lines = f
                .pre_context
                .iter()
                .chain(f.context_line.iter())
                .chain(f.post_context.iter());
            for (k, text) in lines.enumerate() {
                let no = start + k as i64;
                let mark = if k == f.pre_context.len() { ">" } else { " " };
                src.push_str(&format!("{mark}{no:>5} | {}\n", line(text, 300)));
            }
            out.push_str(&indent(&fenced(src.trim_end_matches('\n')), "   "));
            if let Some(vars) = f
                .vars
                .as_ref()
                .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
            {
                out.push_str(&format!(
                    "   Local variables: {}\n",
                    code(&line(&vars.to_string(), 500))
                ));
            }
        }
    }
    if total > max_frames {
        out.push_str(&format!("… {} more frames\n", total - max_frames));
    }
    out
}

fn indent(s: &str, by: &str) -> String {
    s.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The last `max` breadcrumbs as `[HH:MM:SS] category: message`.
pub fn breadcrumbs_markdown(crumbs: &[Breadcrumb], max: usize) -> String {
    let skip = crumbs.len().saturating_sub(max);
    let mut out = String::new();
    for b in &crumbs[skip..] {
        let time = b
            .timestamp_us
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_else(|| "--:--:--".into());
        let what = b
            .message
            .clone()
            .or_else(|| b.data.as_ref().map(|d| d.to_string()))
            .unwrap_or_default();
        out.push_str(&format!(
            "- [{time}] {}: {}\n",
            b.category
                .as_deref()
                .or(b.ty.as_deref())
                .unwrap_or("default"),
            line(&what, 300)
        ));
    }
    out
}

pub fn pct(v: f64) -> String {
    format!("{v:.1}%")
}

/// A table cell from SDK text.
pub fn cell(s: &str, max: usize) -> String {
    code(&line(s, max)).replace('|', "\\|")
}

/// The issue's facts as markdown lines.
pub fn issue_facts(issue: &Issue, project: &Project) -> String {
    let mut md = String::new();
    if let Some(t) = &issue.exception_type {
        md.push_str(&format!("- Type: {}\n", code(t)));
    }
    if let Some(c) = &issue.culprit {
        md.push_str(&format!("- Culprit: {}\n", code(&line(c, 300))));
    }
    md.push_str(&format!(
        "- Status: {}{}\n- Level: {}\n- Occurrences: {} · Users: {}\n- First seen: {}{}\n- Last seen: {}{}\n- Project: {} (id {})\n",
        issue.status,
        issue.regressed_at.map(|r| format!(" (regressed {})", iso(r))).unwrap_or_default(),
        issue.level,
        issue.times_seen,
        issue.users_seen,
        iso(issue.first_seen),
        issue.first_release.as_deref().map(|r| format!(" in {}", code(r))).unwrap_or_default(),
        iso(issue.last_seen),
        issue.last_release.as_deref().map(|r| format!(" in {}", code(r))).unwrap_or_default(),
        project.slug,
        project.id.value(),
    ));
    md
}
