//! Sentry's issue search syntax, as people type it in the issue list and agents pass it to MCP's
//! `search_issues`: `is:unresolved level:error environment:production release:1.4.2 user.email:x@y.z
//! browser:Firefox "connection reset" timeout !level:info firstSeen:-24h lastSeen:+7d`.
//!
//! [`IssueQuery::parse`] is pure: it turns the text into typed terms, or names what is wrong with it.
//! [`Conditions`] turns terms into SQL conditions whose every value is a bound parameter.
//!
//! - `is:` — `unresolved` (open), `resolved` (either kind), `ignored` (or `archived`), `regressed` (open
//!   again after a resolution).
//! - `level:` — fatal, error, warning, info, debug. `key:[a,b]` matches either value.
//! - `firstSeen:` / `lastSeen:` (or `first_seen`, `last_seen`, and `age` for first seen) — a relative time,
//!   as Sentry writes it: `-24h` (within the last 24 hours), `+7d` (longer ago than 7 days); also
//!   `>24h` / `>=24h` (within) and `<7d` / `<=7d` (longer ago), and absolute dates or times with an
//!   operator (`>2026-01-31`, `<=2026-01-31T12:00:00Z`). Units: `m`, `h`, `d`, `w`.
//! - Any other `key:value` is a tag: `environment`, `release`, `user.id`, `user.email`, and every tag an
//!   SDK sent (`browser:Firefox`); a value with spaces is quoted (`browser:"Mobile Safari"`).
//! - Other words, and `"quoted phrases"`, are full text over titles, messages, exceptions and frames.
//! - `!` before a term negates it.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// Longer input is refused: a search box, not a document.
const MAX_QUERY_LEN: usize = 1_000;
/// More terms are refused: each is a condition of the list's query.
const MAX_TERMS: usize = 24;
/// Values of one `key:[a,b,…]` list.
const MAX_VALUES: usize = 20;
/// A relative time goes back at most ten years.
const MAX_AGE_US: i64 = 10 * 366 * 86_400_000_000;

pub const LEVELS: [&str; 5] = ["fatal", "error", "warning", "info", "debug"];

/// A parsed search: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueQuery {
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub filter: Filter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Is(IsState),
    /// One of these levels.
    Level(Vec<String>),
    /// The issue has an event tagged `key` with one of these values.
    Tag {
        key: String,
        values: Vec<String>,
    },
    Seen {
        field: SeenField,
        cmp: Cmp,
        when: When,
    },
    /// Full text: a word (matched as a prefix) or a phrase (its words in order).
    Text {
        words: Vec<String>,
        phrase: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsState {
    Unresolved,
    Resolved,
    Ignored,
    Regressed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenField {
    First,
    Last,
}

/// Which side of the time the issue's time falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// At or after it: more recent.
    Since,
    /// Before it: longer ago.
    Before,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// This many microseconds before the query runs.
    Ago(i64),
    /// Microseconds since the Unix epoch.
    At(i64),
}

impl When {
    pub fn micros(self, now_us: i64) -> i64 {
        match self {
            Self::Ago(us) => now_us - us,
            Self::At(us) => us,
        }
    }
}

/// What is wrong with a query, said so the person can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseQueryError(pub String);

fn bad<T>(message: String) -> Result<T, ParseQueryError> {
    Err(ParseQueryError(message))
}

impl IssueQuery {
    pub fn parse(input: &str) -> Result<Self, ParseQueryError> {
        if input.len() > MAX_QUERY_LEN {
            return bad(format!(
                "the search is {} characters long; at most {MAX_QUERY_LEN} are allowed",
                input.len()
            ));
        }
        let mut terms = Vec::new();
        for token in tokens(input)? {
            if let Some(term) = term(&token)? {
                terms.push(term);
            }
        }
        if terms.len() > MAX_TERMS {
            return bad(format!(
                "the search has {} terms; at most {MAX_TERMS} are allowed",
                terms.len()
            ));
        }
        Ok(Self { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the query says which statuses it wants (`is:`), so a status tab should not narrow it more.
    pub fn has_status(&self) -> bool {
        self.terms.iter().any(|t| matches!(t.filter, Filter::Is(_)))
    }

    /// Adds a tag filter (a dropdown's choice) to what was typed.
    pub fn push_tag(&mut self, key: &str, value: &str) {
        self.terms.push(Term {
            negated: false,
            filter: Filter::Tag {
                key: key.to_owned(),
                values: vec![value.to_owned()],
            },
        });
    }
}

/// One token as typed: `!`, then either a bare or quoted word, or `key:value` (the value maybe quoted).
#[derive(Debug, PartialEq, Eq)]
struct Token {
    negated: bool,
    key: Option<String>,
    value: String,
    quoted: bool,
}

fn tokens(input: &str) -> Result<Vec<Token>, ParseQueryError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        let negated = first == '!';
        if negated {
            chars.next();
        }
        let mut head = String::new();
        let mut key = None;
        let mut quoted = false;
        // Inside a value's `[a, b]` list, spaces do not end the token.
        let mut in_list = false;
        while let Some(c) = chars.next_if(|c| in_list || !c.is_whitespace()) {
            match c {
                '"' => {
                    head.push_str(&quoted_text(&mut chars)?);
                    quoted = true;
                }
                ':' if key.is_none() && !quoted && is_key(&head) => {
                    key = Some(std::mem::take(&mut head));
                }
                '[' if key.is_some() && head.is_empty() && !quoted => {
                    in_list = true;
                    head.push(c);
                }
                ']' if in_list => {
                    in_list = false;
                    head.push(c);
                }
                c => head.push(c),
            }
        }
        if in_list {
            return bad(format!("a `[` is not closed: {head}"));
        }
        if let Some(k) = &key {
            if head.is_empty() && !quoted {
                return bad(format!("`{k}:` needs a value, as in `{k}:something`"));
            }
        } else if head.is_empty() && !quoted {
            return bad(
                "`!` must come right before the term it negates, as in `!level:info`".into(),
            );
        }
        out.push(Token {
            negated,
            key,
            value: head,
            quoted,
        });
    }
}

/// The text up to the closing quote (the opening one already read); `\"` is a quote inside.
fn quoted_text(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<String, ParseQueryError> {
    let mut text = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Ok(text),
            '\\' if chars.peek() == Some(&'"') => text.push(chars.next().unwrap_or('"')),
            c => text.push(c),
        }
    }
    bad(format!("a quote is not closed: \"{text}"))
}

fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn term(token: &Token) -> Result<Option<Term>, ParseQueryError> {
    let negated = token.negated;
    let Some(key) = &token.key else {
        let words = words(&token.value);
        if words.is_empty() {
            // Punctuation alone matches nothing useful: ignored, as today's search ignores it.
            return Ok(None);
        }
        let filter = Filter::Text {
            phrase: token.quoted && words.len() > 1,
            words,
        };
        return Ok(Some(Term { negated, filter }));
    };
    let value = token.value.as_str();
    let filter = match key.as_str() {
        "is" => Filter::Is(is_state(value)?),
        "level" => {
            let levels = values(key, value, token.quoted)?
                .into_iter()
                .map(|l| level(&l))
                .collect::<Result<_, _>>()?;
            Filter::Level(levels)
        }
        "firstSeen" | "first_seen" | "age" => seen(SeenField::First, key, value)?,
        "lastSeen" | "last_seen" => seen(SeenField::Last, key, value)?,
        _ => Filter::Tag {
            key: key.clone(),
            values: values(key, value, token.quoted)?,
        },
    };
    Ok(Some(Term { negated, filter }))
}

/// The words full-text search sees, as the index tokenizes them.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_state(value: &str) -> Result<IsState, ParseQueryError> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "unresolved" => IsState::Unresolved,
        "resolved" => IsState::Resolved,
        "ignored" | "archived" => IsState::Ignored,
        "regressed" => IsState::Regressed,
        _ => {
            return bad(format!(
                "`is:{value}` is not a status; use is:unresolved, is:resolved, is:ignored or is:regressed"
            ))
        }
    })
}

fn level(value: &str) -> Result<String, ParseQueryError> {
    let lower = value.to_ascii_lowercase();
    match LEVELS.contains(&lower.as_str()) {
        true => Ok(lower),
        false => bad(format!(
            "`level:{value}` is not a level; use one of {}",
            LEVELS.join(", ")
        )),
    }
}

/// A value, or a `[a,b,…]` list of them (a quoted value is one value, brackets and all).
fn values(key: &str, value: &str, quoted: bool) -> Result<Vec<String>, ParseQueryError> {
    let list = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .filter(|_| !quoted);
    let Some(list) = list else {
        return Ok(vec![value.to_owned()]);
    };
    let values: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    match values.len() {
        0 => bad(format!("`{key}:[]` lists no values")),
        n if n > MAX_VALUES => bad(format!(
            "`{key}:[…]` lists {n} values; at most {MAX_VALUES} are allowed"
        )),
        _ => Ok(values),
    }
}

fn seen(field: SeenField, key: &str, value: &str) -> Result<Filter, ParseQueryError> {
    let wrong = || {
        ParseQueryError(format!(
            "`{key}:{value}` is not a time; write `{key}:-24h` (within the last 24 hours), `{key}:+7d` \
             (longer ago than 7 days), `{key}:>24h`, `{key}:<7d` or `{key}:>2026-01-31`"
        ))
    };
    let (cmp, rest) = if let Some(rest) = value.strip_prefix(">=") {
        (Some(Cmp::Since), rest)
    } else if let Some(rest) = value.strip_prefix("<=") {
        (Some(Cmp::Before), rest)
    } else if let Some(rest) = value.strip_prefix('>') {
        (Some(Cmp::Since), rest)
    } else if let Some(rest) = value.strip_prefix('<') {
        (Some(Cmp::Before), rest)
    } else if let Some(rest) = value.strip_prefix('-') {
        (Some(Cmp::Since), rest)
    } else if let Some(rest) = value.strip_prefix('+') {
        (Some(Cmp::Before), rest)
    } else {
        (None, value)
    };
    let cmp = cmp.ok_or_else(wrong)?;
    if let Some(ago) = relative(rest) {
        return Ok(Filter::Seen {
            field,
            cmp,
            when: When::Ago(ago),
        });
    }
    // An absolute time: with `>`/`<` only (a `-` before a date would read as a negative year).
    if value.starts_with(['-', '+']) {
        return Err(wrong());
    }
    let at = absolute(rest).ok_or_else(wrong)?;
    Ok(Filter::Seen {
        field,
        cmp,
        when: When::At(at),
    })
}

/// `24h`, `7d`, `30m`, `2w` in microseconds.
fn relative(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let unit_us: i64 = match unit {
        'm' => 60_000_000,
        'h' => 3_600_000_000,
        'd' => 86_400_000_000,
        'w' => 7 * 86_400_000_000,
        _ => return None,
    };
    n.checked_mul(unit_us)
        .filter(|us| (0..=MAX_AGE_US).contains(us))
}

/// `2026-01-31` (its midnight UTC) or an RFC 3339 time, in microseconds.
fn absolute(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

impl fmt::Display for IsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unresolved => "unresolved",
            Self::Resolved => "resolved",
            Self::Ignored => "ignored",
            Self::Regressed => "regressed",
        })
    }
}

/// The conditions of an issue list's `WHERE`, joined with `AND`, and their parameters in order.
/// Every value a person typed is a parameter; the SQL text holds only this module's own fragments.
///
/// Each condition is either sought (an index reads only the rows that meet it: the project, a status, a
/// rare tag, full text, a time range on the sort's own column) or checked (tested on each row the sought
/// ones yield). A bounded count reads a budget of sought rows and checks each of them.
#[derive(Debug, Default)]
pub(super) struct Conditions {
    pub sql: Vec<String>,
    pub params: Vec<libsql::Value>,
    /// For each of `sql`, whether it is checked row by row rather than sought.
    checked: Vec<bool>,
    /// How many reads of other indexes the checked conditions make for each row (a tag, full text).
    lookups: usize,
}

impl Conditions {
    /// Adds a condition an index seeks, each `?` in it numbered in turn for the next of `values`.
    pub fn push(&mut self, sql: &str, values: impl IntoIterator<Item = libsql::Value>) {
        self.add(sql, values, false);
    }

    /// Adds a condition tested on each row the sought ones yield, from the row's own columns.
    pub fn push_checked(&mut self, sql: &str, values: impl IntoIterator<Item = libsql::Value>) {
        self.add(sql, values, true);
    }

    /// Adds a condition tested on each row the sought ones yield by a read of another index.
    pub fn push_lookup(&mut self, sql: &str, values: impl IntoIterator<Item = libsql::Value>) {
        self.push_lookups(sql, values, 1);
    }

    /// Adds a condition tested on each row the sought ones yield that costs as much as `reads` reads
    /// of an index.
    pub fn push_lookups(
        &mut self,
        sql: &str,
        values: impl IntoIterator<Item = libsql::Value>,
        reads: usize,
    ) {
        self.lookups += reads;
        self.add(sql, values, true);
    }

    pub fn lookups(&self) -> usize {
        self.lookups
    }

    fn add(&mut self, sql: &str, values: impl IntoIterator<Item = libsql::Value>, checked: bool) {
        let mut numbered = String::with_capacity(sql.len() + 8);
        let mut values = values.into_iter();
        for c in sql.chars() {
            match c {
                '?' => {
                    self.params
                        .push(values.next().unwrap_or(libsql::Value::Null));
                    numbered.push_str(&format!("?{}", self.params.len()));
                }
                c => numbered.push(c),
            }
        }
        self.sql.push(numbered);
        self.checked.push(checked);
    }

    pub fn joined(&self) -> String {
        self.sql.join(" AND ")
    }

    /// The sought conditions joined, or `1` if there are none.
    pub fn sought(&self) -> String {
        self.joined_where(false)
    }

    /// The checked conditions joined, or `1` if there are none.
    pub fn checked(&self) -> String {
        self.joined_where(true)
    }

    fn joined_where(&self, checked: bool) -> String {
        let parts: Vec<&str> = self
            .sql
            .iter()
            .zip(&self.checked)
            .filter(|(_, c)| **c == checked)
            .map(|(sql, _)| sql.as_str())
            .collect();
        match parts.is_empty() {
            true => "1".to_owned(),
            false => parts.join(" AND "),
        }
    }
}

/// `?, ?, ?` for `n` values.
pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The statuses an `is:` state stands for.
pub(super) fn statuses(state: IsState) -> &'static [&'static str] {
    match state {
        IsState::Unresolved | IsState::Regressed => &["open"],
        IsState::Resolved => &["resolved", "resolved_next_release"],
        IsState::Ignored => &["ignored"],
    }
}

/// The FTS5 query of full-text terms: each word a quoted prefix, each phrase its quoted words in order.
/// Quoting makes FTS5's own syntax characters data, never operators (and [`words`] keeps none of them).
pub(super) fn fts_match(words: &[String], phrase: bool) -> String {
    if phrase {
        format!("\"{}\"", words.join(" "))
    } else {
        words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<Term> {
        IssueQuery::parse(s).unwrap().terms
    }

    fn tag(key: &str, value: &str) -> Filter {
        Filter::Tag {
            key: key.into(),
            values: vec![value.into()],
        }
    }

    fn yes(filter: Filter) -> Term {
        Term {
            negated: false,
            filter,
        }
    }

    #[test]
    fn reads_the_issue_example() {
        let terms = parse(
            "is:unresolved level:error environment:production release:1.4.2 user.email:x@y.z browser:Firefox timeout",
        );
        assert_eq!(
            terms,
            vec![
                yes(Filter::Is(IsState::Unresolved)),
                yes(Filter::Level(vec!["error".into()])),
                yes(tag("environment", "production")),
                yes(tag("release", "1.4.2")),
                yes(tag("user.email", "x@y.z")),
                yes(tag("browser", "Firefox")),
                yes(Filter::Text {
                    words: vec!["timeout".into()],
                    phrase: false
                }),
            ]
        );
    }

    #[test]
    fn reads_negation_quotes_lists_and_phrases() {
        let terms = parse(
            r#"!level:info browser:"Mobile Safari" level:[error, fatal] "connection reset" !KeyError"#,
        );
        assert_eq!(
            terms,
            vec![
                Term {
                    negated: true,
                    filter: Filter::Level(vec!["info".into()])
                },
                yes(tag("browser", "Mobile Safari")),
                yes(Filter::Level(vec!["error".into(), "fatal".into()])),
                yes(Filter::Text {
                    words: vec!["connection".into(), "reset".into()],
                    phrase: true
                }),
                Term {
                    negated: true,
                    filter: Filter::Text {
                        words: vec!["KeyError".into()],
                        phrase: false
                    }
                },
            ]
        );
        // A quoted value keeps its brackets and colons; an escaped quote is a quote.
        assert_eq!(
            parse(r#"url:"a:[b]" msg:"say \"hi\"""#),
            vec![yes(tag("url", "a:[b]")), yes(tag("msg", "say \"hi\""))]
        );
    }

    #[test]
    fn reads_times_as_sentry_writes_them() {
        let seen = |field, cmp, when| yes(Filter::Seen { field, cmp, when });
        let h24 = When::Ago(24 * 3_600_000_000);
        let d7 = When::Ago(7 * 86_400_000_000);
        assert_eq!(
            parse("firstSeen:-24h firstSeen:>24h lastSeen:+7d lastSeen:<7d age:>=24h"),
            vec![
                seen(SeenField::First, Cmp::Since, h24),
                seen(SeenField::First, Cmp::Since, h24),
                seen(SeenField::Last, Cmp::Before, d7),
                seen(SeenField::Last, Cmp::Before, d7),
                seen(SeenField::First, Cmp::Since, h24),
            ]
        );
        assert_eq!(
            parse("lastSeen:>2026-01-31 first_seen:<2026-01-31T12:00:00Z"),
            vec![
                seen(SeenField::Last, Cmp::Since, When::At(1_769_817_600_000_000)),
                seen(
                    SeenField::First,
                    Cmp::Before,
                    When::At(1_769_860_800_000_000)
                ),
            ]
        );
        assert_eq!(h24.micros(100 * 3_600_000_000), 76 * 3_600_000_000);
    }

    #[test]
    fn text_alone_is_words_and_punctuation_is_ignored() {
        assert_eq!(
            parse("  KeyError user_id  !! ?? "),
            vec![
                yes(Filter::Text {
                    words: vec!["KeyError".into()],
                    phrase: false
                }),
                yes(Filter::Text {
                    words: vec!["user_id".into()],
                    phrase: false
                }),
            ]
        );
        assert!(IssueQuery::parse("").unwrap().is_empty());
        // FTS5 operators typed as text stay words.
        assert_eq!(
            fts_match(&words("\" OR title:* NEAR("), false),
            "\"OR\"* AND \"title\"* AND \"NEAR\"*"
        );
        assert_eq!(fts_match(&["a".into(), "b".into()], true), "\"a b\"");
    }

    #[test]
    fn malformed_queries_name_the_problem() {
        for (query, says) in [
            ("is:open", "`is:open` is not a status"),
            ("level:loud", "`level:loud` is not a level"),
            ("level:", "`level:` needs a value"),
            ("browser:\"Firefox", "a quote is not closed"),
            ("firstSeen:yesterday", "`firstSeen:yesterday` is not a time"),
            ("lastSeen:24h", "`lastSeen:24h` is not a time"),
            ("lastSeen:-2026-01-01", "is not a time"),
            ("firstSeen:-99999999999999w", "is not a time"),
            ("! level:info", "`!` must come right before"),
            ("release:[]", "lists no values"),
            ("release:[1.0, 2.0", "a `[` is not closed"),
        ] {
            let err = IssueQuery::parse(query).unwrap_err().to_string();
            assert!(err.contains(says), "{query}: {err}");
        }
        let long = "a ".repeat(600);
        assert!(IssueQuery::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("at most 1000"));
        let many = "a ".repeat(30);
        assert!(IssueQuery::parse(&many)
            .unwrap_err()
            .to_string()
            .contains("at most 24 are allowed"));
    }

    #[test]
    fn has_status_only_with_is() {
        assert!(IssueQuery::parse("!is:resolved").unwrap().has_status());
        assert!(!IssueQuery::parse("level:error").unwrap().has_status());
    }

    #[test]
    fn conditions_number_their_parameters() {
        let mut c = Conditions::default();
        c.push("a = ?", ["x".into()]);
        c.push_lookup("b IN (?, ?)", ["y".into(), "z".into()]);
        c.push("c = ?", ["w".into()]);
        assert_eq!(c.joined(), "a = ?1 AND b IN (?2, ?3) AND c = ?4");
        assert_eq!(c.params.len(), 4);
        assert_eq!(c.sought(), "a = ?1 AND c = ?4");
        assert_eq!(c.checked(), "b IN (?2, ?3)");
        assert_eq!(c.lookups(), 1);
        assert_eq!(Conditions::default().checked(), "1");
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}
