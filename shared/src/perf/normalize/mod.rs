//! Span-description normalization: what a span's description becomes before it reaches disk.
//!
//! Two goals, in this order:
//! 1. **No literal value is ever stored.** SQL strings, numbers, ids in URLs, cache keys: everything that
//!    can carry user data is replaced by a placeholder (`%s` in SQL, `*` in URLs and cache commands).
//! 2. **Spans of the same query group together.** `IN (1, 2, 3)` and `IN (4, 5)` both become `IN (%s)`,
//!    `"users"."id"` and `id` both become `id`, so the normalized text can be hashed into a group.
//!
//! One file per kind of description: `sql` (a statement, by the parser or the regex fallback),
//! `document` (MongoDB), `cache` (Redis and cache commands), `http` (`METHOD url` and resource
//! URLs). This file picks one by the span's `op` and bounds what it returns.
//!
//! Everything here is pure and total: any input, however large or hostile, yields a bounded string and
//! never panics (sqlparser's `recursive-protection` grows the stack instead of overflowing it; deeper
//! expressions than Relay's limit are not rewritten at all). Normalizing an already-normalized
//! description returns it unchanged, so re-processing a stored span is harmless.

mod cache;
mod document;
mod http;
mod sql;

use std::sync::LazyLock;

use regex::Regex;

use cache::normalize_cache_command;
use document::normalize_document;
use http::{normalize_http, normalize_url};
pub use sql::normalize_sql;
use sql::normalize_sql_unclipped;

/// Longest normalized description kept, in bytes. Longer output is cut on a char boundary: a description
/// is for recognising a query, not for replaying it.
pub const MAX_DESCRIPTION_BYTES: usize = 2_000;

/// Longest input the SQL regex fallback (and the document and URL scrubbers) looks at. A description
/// this long is clipped to [`MAX_DESCRIPTION_BYTES`] anyway; only `IN`/`VALUES` collapsing could shrink
/// it back, and a query cut inside a string literal still has that literal scrubbed (unterminated
/// strings run to the end).
const MAX_REGEX_BYTES: usize = 1024 * 1024;

/// Hex ids (8+ hex digits) and multi-digit numbers inside names: `table_1234`, `temp_0a1b2c3d4e`
/// (SQL names and URL path segments alike).
static ID_IN_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9a-fA-F]{8,}|\d\d+").expect("static regex"));

/// A run of whitespace, folded to one space by the SQL and document scrubbers.
static WHITESPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("static regex"));

/// What kind of text a span's description is, decided by its `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DescriptionKind {
    /// `db`, `db.query`, `db.sql.*`: a SQL statement.
    Sql,
    /// `db.*` with a MongoDB system or a JSON-looking description: a query document.
    Document,
    /// `db.redis`, `cache.*`: a command and its keys.
    Cache,
    /// `http.client`, `http.server`: `METHOD url`.
    Http,
    /// `resource.*` (browser resources): a bare URL.
    Resource,
    /// Anything else: kept as written.
    Other,
}

/// Normalizes a span description for storage; the one function the processor calls for every span.
///
/// `op` is the span's `op` (`db.sql.query`, `http.client`, …) and `db_system` the OpenTelemetry
/// `db.system` from the span's data, which picks the SQL dialect. The result is at most
/// [`MAX_DESCRIPTION_BYTES`] long, and normalizing it again returns it unchanged.
pub fn normalize_description(op: &str, description: &str, db_system: Option<&str>) -> String {
    let normalize = |text: &str| normalize_unclipped(op, text, db_system);
    fit(normalize(description), normalize)
}

fn normalize_unclipped(op: &str, description: &str, db_system: Option<&str>) -> String {
    match classify(op, description, db_system) {
        DescriptionKind::Sql => {
            let sql = normalize_sql_unclipped(description, db_system);
            // SQL that now starts like a document (`12x …` became `{%s}x …`) is classified as one the
            // next time; normalized as one now too, it reads the same then.
            if looks_like_document(&sql) {
                normalize_document(&sql)
            } else {
                sql
            }
        }
        DescriptionKind::Document => normalize_document(description),
        DescriptionKind::Cache => normalize_cache_command(description),
        DescriptionKind::Http => normalize_http(description),
        DescriptionKind::Resource => normalize_url(description.trim()),
        DescriptionKind::Other => description.trim().to_owned(),
    }
}

fn classify(op: &str, description: &str, db_system: Option<&str>) -> DescriptionKind {
    let op = op.trim().to_ascii_lowercase();
    let (family, sub) = op.split_once('.').unwrap_or((op.as_str(), ""));
    match family {
        "db" if sub.starts_with("redis") => DescriptionKind::Cache,
        "db" if is_document_query(sub, description, db_system) => DescriptionKind::Document,
        "db" => DescriptionKind::Sql,
        "cache" => DescriptionKind::Cache,
        "http" => DescriptionKind::Http,
        "resource" => DescriptionKind::Resource,
        _ => DescriptionKind::Other,
    }
}

/// MongoDB and friends describe a query as a JSON document, which the SQL scrubber would mangle (and
/// leak: in ANSI SQL `"bob"` is an identifier, not a string).
fn is_document_query(sub_op: &str, description: &str, db_system: Option<&str>) -> bool {
    sub_op.contains("mongo")
        || db_system.is_some_and(|s| s.eq_ignore_ascii_case("mongodb"))
        || looks_like_document(description)
}

fn looks_like_document(description: &str) -> bool {
    let trimmed = description.trim_start();
    trimmed.starts_with('{') || trimmed.starts_with('[')
}

/// How many times [`fit`] re-normalizes a cut before it cuts shorter.
const FIT_ROUNDS: usize = 4;

/// Cuts a normalized description to [`MAX_DESCRIPTION_BYTES`] so that normalizing the result again
/// (`renormalize`, the same normalization without this step) returns it unchanged. A cut can leave what
/// a second pass reads differently: half a quoted name, a word that is now a keyword (`inner_x` → `in`),
/// a column list that now ends the query. So the cut is normalized again and cut again until it is
/// stable, and cut shorter if that does not settle. Only long output pays for this; the empty string is
/// stable for every kind of description.
fn fit(normalized: String, renormalize: impl Fn(&str) -> String) -> String {
    if normalized.len() <= MAX_DESCRIPTION_BYTES {
        return normalized;
    }
    let mut max = MAX_DESCRIPTION_BYTES;
    while max > 0 {
        let mut candidate = clip(&normalized, max);
        for _ in 0..FIT_ROUNDS {
            let again = renormalize(&candidate);
            if again == candidate {
                return candidate;
            }
            candidate = clip(&again, max);
        }
        max /= 2;
    }
    String::new()
}

/// The first `max` bytes of `s`, cut on a char boundary, without trailing whitespace.
fn clip(s: &str, max: usize) -> String {
    prefix(s, max).trim_end().to_owned()
}

/// The first `max` bytes of `s`, cut on a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests {
    use super::sql::{STASH_CLOSE, STASH_OPEN};
    use super::*;

    /// `(op, description, expected)` for [`normalize_description`].
    const DESCRIPTION_CASES: &[(&str, &str, &str)] = &[
        ("db.sql.query", "SELECT * FROM users WHERE id = 42", "SELECT * FROM users WHERE id = %s"),
        ("db", "select 1", "SELECT %s"),
        ("http.client", "GET https://api.example.com/users/12345/orders?page=2&sort=desc", "GET https://api.example.com/users/*/orders?page=*&sort=*"),
        ("http.client", "post https://user:secret@Example.COM:8443/v1/items/550e8400-e29b-41d4-a716-446655440000#top", "POST https://example.com:8443/v1/items/*"),
        ("http.client", "GET https://www.service.io/clients/563712f9722fb0996ac8f3905b40786f/project/01234", "GET https://www.service.io/clients/*/project/*"),
        ("http.client", "GET http://service.io", "GET http://service.io"),
        ("http.client", "GET data:image/png;base64,drtfghaksjfdhaeh/blah/blah/blah", "GET data:image/png"),
        ("http.server", "GET /api/projects/{project_id}/issues", "GET /api/projects/{project_id}/issues"),
        ("http.server", "DELETE /api/0/teams/acme/members/bob@example.com/", "DELETE /api/*/teams/acme/members/*/"),
        ("http.client", "GET", "GET"),
        ("http.client", "PUT /v1/users/5/avatar.png", "PUT /v1/users/*/avatar.png"),
        ("resource.script", "https://cdn.example.com/static/js/main.3f2a9c1b.js", "https://cdn.example.com/static/js/*.js"),
        ("resource.css", "/assets/app-4f9c2e8a1b7d.css?v=20240101", "/assets/*.css?v=*"),
        ("resource.img", "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk", "data:image/png"),
        ("resource.script", "chrome-extension://abcdefghijklmnopabcdefghijklmnop/content.js", "chrome-extension://*"),
        ("db.redis", "GET user:123", "GET *"),
        ("db.redis", "SET mykey 'multi: part, value'", "SET *"),
        ("db.redis", " get  asdf:123", "GET *"),
        ("db.redis", "EXEC", "EXEC"),
        ("db.redis", "What a beautiful day!", "*"),
        ("db.redis", "ACL SETUSER jane", "ACL SETUSER *"),
        ("cache.get_item", "GET abc:12:{def}:{34}:{fg56}:EAB38:zookeeper", "GET *"),
        ("cache.get", "abc-dontscrubme-meneither:stillno:ohplsstop", "*"),
        ("cache.put", "", ""),
        ("db.mongodb", r#"{"find": "users", "filter": {"name": "bob", "age": 42, "vip": true}}"#, r#"{"find": %s, "filter": {"name": %s, "age": %s, "vip": %s}}"#),
        ("db.query", r#"{"aggregate": "orders", "pipeline": [{"$match": {"total": {"$gt": 100.5}}}]}"#, r#"{"aggregate": %s, "pipeline": [{"$match": {"total": {"$gt": %s}}}]}"#),
        ("ui.load", "  MainViewController  ", "MainViewController"),
        ("function", "process_order", "process_order"),
    ];

    #[test]
    fn description_corpus() {
        let mut failures = Vec::new();
        for (op, input, expected) in DESCRIPTION_CASES {
            let got = normalize_description(op, input, None);
            if got != *expected {
                failures.push(format!(
                    "{op} {input:?}\n   got: {got:?}\n  want: {expected:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            DESCRIPTION_CASES.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn hostile_input_is_bounded_and_never_panics() {
        let nested = format!(
            "SELECT {}1{} FROM t WHERE x = 'secret'",
            "(".repeat(5_000),
            ")".repeat(5_000)
        );
        let chained = format!(
            "SELECT {} FROM t WHERE x = 'secret'",
            vec!["1"; 8_000].join("+")
        );
        let unbalanced = format!("SELECT * FROM t WHERE x IN {}", "(".repeat(20_000));
        let emoji = "🎉".repeat(60_000);
        let mixed = format!("SELECT '{emoji}' FROM \"{emoji}\" WHERE {emoji} = 1");
        let comments = "/* a */ ".repeat(10_000) + "SELECT 1";
        let inputs = [
            nested,
            chained,
            unbalanced,
            emoji.clone(),
            mixed,
            comments,
            "\u{E000}a\u{E001}".repeat(50),
            "'".repeat(1_000),
            "/*".into(),
            "NOT ".repeat(4_000) + "x = 'secret'",
            "SELECT ".to_owned() + &"-".repeat(8_000) + "1, 'secret'",
            "SELECT * FROM (".repeat(1_000) + "t WHERE x = 'secret'",
            format!(
                "SELECT * FROM {}t{} WHERE x = 'secret'",
                "(SELECT * FROM ".repeat(40),
                ") AS a".repeat(40)
            ),
            "SELECT ".to_owned() + &"ARRAY[".repeat(3_000) + "'secret'",
            "SELECT ".to_owned() + &"CASE WHEN ".repeat(2_000) + "'secret'",
            "SELECT * FROM t WHERE x = 'secret' AND ".to_owned()
                + &"y = 1 AND ".repeat(1_500)
                + "z = 2",
            "*/".into(),
            "".into(),
            "   ".into(),
        ];
        let ops = [
            "db.sql.query",
            "db.redis",
            "http.client",
            "resource.script",
            "db.mongodb",
            "other",
        ];
        for input in &inputs {
            for op in ops {
                let out = normalize_description(op, input, None);
                assert!(
                    out.len() <= MAX_DESCRIPTION_BYTES,
                    "{op}: {} bytes",
                    out.len()
                );
                if op.starts_with("db.") {
                    assert!(!out.contains("secret"), "{op}: {out}");
                }
            }
            let out = normalize_sql(input, Some("mysql"));
            assert!(out.len() <= MAX_DESCRIPTION_BYTES);
            assert!(!out.contains("secret"), "{out}");
            assert!(!out.contains(STASH_OPEN) && !out.contains(STASH_CLOSE));
        }
    }

    #[test]
    fn normalizing_a_description_twice_changes_nothing() {
        let mut failures = Vec::new();
        for (op, input, _) in DESCRIPTION_CASES {
            let once = normalize_description(op, input, None);
            let twice = normalize_description(op, &once, None);
            if once != twice {
                failures.push(format!(
                    "{op} {input:?}\n  once:  {once:?}\n  twice: {twice:?}"
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} not idempotent:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn sql_that_comes_out_like_a_document_is_normalized_as_one() {
        // `12e` is the name `{%s}e`, and a description starting with `{` is a document the next time.
        let once = normalize_description("db", "12e /*'x'*/", None);
        assert_eq!(once, "{%s}e /*%s*/");
        assert_eq!(normalize_description("db", &once, None), once);
    }

    #[test]
    fn output_is_clipped_on_a_char_boundary() {
        let long = format!(
            "SELECT {} FROM t",
            (0..2_000)
                .map(|i| format!("f(é{i})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let out = normalize_sql(&long, None);
        assert!(out.len() <= MAX_DESCRIPTION_BYTES && out.len() > MAX_DESCRIPTION_BYTES - 10);
        let out = normalize_description("ui.load", &"é".repeat(5_000), None);
        assert_eq!(out.len(), MAX_DESCRIPTION_BYTES);
    }
}
