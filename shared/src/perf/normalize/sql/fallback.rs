//! The regex path: SQL the parser refuses (truncated, vendor syntax, too deep or too long) is scrubbed
//! by a sequence of regexes, as Relay's fallback does.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{lexes_like_mysql, tidy_comment, MAX_KEPT_COMMENTS, PLACEHOLDER};
use crate::perf::normalize::{ID_IN_NAME, WHITESPACE};

/// Marks a stashed `/* */` comment inside the text the regexes see; letters-only in between, so that no
/// scrubbing rule touches it. The input has these characters removed first.
pub(in crate::perf::normalize) const STASH_OPEN: char = '\u{E000}';
pub(in crate::perf::normalize) const STASH_CLOSE: char = '\u{E001}';

/// One alternation over the text [`lex_sql`] leaves (strings already `%s`, comments stashed), matched left
/// to right, so a digit inside a name is seen in its context. A name is word characters and `{%s}`, the
/// mark of an id already scrubbed: `t_{%s}` reads as one word again, not as `t_` and a placeholder, and
/// a word with `{%s}` in it is a name before anything else (`0xf{%s}` is no hex number). Every value
/// takes the casts after it along (`{casts}`), since `%s::int` would be one value the next time. A quoted
/// savepoint name is read as [`quoted_len`] reads it.
const SCRUB_PATTERN: &str = r#"(?x)
    (?P<savepoint>(?-u:\b)(?i-u:savepoint)\s+)(?:"(?:\\"|""|[^"])*(?:"|$)|`(?:\\`|``|[^`])*(?:`|$)|(?:\w|\{%s\})+|%s)
  | (?P<cast>::\w+(?:\[\])?)
  | (?P<name>\w*\{%s\}(?:\w|\{%s\})*)(?P<name_tail>{tail})
  | \{(?:ts?|d)\s+%s\}{casts}
  | (?:\?+|\$\d+|%(?:\(\s*\w+\s*\))?s|:[A-Za-z_]\w*){casts}
  | (?-u:\b)[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?-u:\b){casts}
  | (?-u:\b)0[xX][0-9a-fA-F]+(?-u:\b){casts}
  | (?-u:\b)\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?-u:\b){casts}
  | (?P<word>(?:\w|\{%s\})+)(?:(?P<call>\s*\()|(?P<tail>{tail}))
"#;

/// Any number of `::type` casts.
const CASTS: &str = r"(?:::\w+(?:\[\])?)*";

/// What may follow a name and stays with it: casts and semi-structured paths (`src:customer`, which a
/// parser reads as one expression; `:customer` alone is a parameter).
const NAME_TAIL: &str = r"(?:::\w+(?:\[\])?|:[A-Za-z_]\w*)*";

static SCRUB: LazyLock<Regex> = LazyLock::new(|| {
    let pattern = SCRUB_PATTERN
        .replace("{casts}", CASTS)
        .replace("{tail}", NAME_TAIL);
    Regex::new(&pattern).expect("static regex")
});

/// `x > -%s` → `x > %s`: a sign is part of the literal it precedes.
static UNARY_MINUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?P<pre>^|[\s(,=<>])[-+]%s").expect("static regex"));

static PAREN_SPACE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?P<open>\()\s+|\s+(?P<close>\))").expect("static regex"));

/// `IN (%s, %s, %s)`, `VALUES (%s, %s), (%s, %s)` → `(%s)`; also a list cut off by truncation.
/// Keywords are upper case by now.
static COLLAPSE_LIST: LazyLock<Regex> = LazyLock::new(|| {
    let item = format!("(?:%s{CASTS}|(?:NULL|DEFAULT)(?-u:\\b){NAME_TAIL})");
    Regex::new(&format!(
        r"(?x)
        (?P<pre>(?-u:\b)(?:VALUES|IN)\s*\()
        {item}
        (?:\s*,\s*{item} | \s*\)\s*,\s*\(\s*{item})*
        "
    ))
    .expect("static regex")
});

/// `schema.table.col` → `col`, `t.*` → `*`; see [`collapse_qualified`].
static QUALIFIED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:(?:\w|\{%s\})+\.)+(?P<last>(?:\w|\{%s\})+|\*)").expect("static regex")
});

/// `schema.table.col` → `col`, `t.*` → `*`, unless what is left would read differently the next time:
/// in `%s.x` the `s` is no name (`%x` would follow), `:a.b`, `$a.1x` and `%(a.b)s` would become
/// parameters, `"1x.y"` (kept quoted) would become the plain name `"y"`, `t.SELECT` a keyword; and `t.*`
/// becomes `*` only at the start of an item (`/t.*` would open a comment, `"a"t.*` would leave a quoted
/// name next to `*`).
fn collapse_qualified(s: &str) -> Cow<'_, str> {
    QUALIFIED.replace_all(s, |caps: &Captures<'_>| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let start = caps.get(0).map_or(0, |m| m.start());
        let mut preceding = s[..start].chars().rev();
        let before = preceding.next();
        let last = &caps["last"];
        let glued = if last == "*" {
            !before.is_none_or(|c| c.is_whitespace() || c == '(' || c == ',')
        } else {
            before.is_some_and(|c| c.is_alphanumeric() || "_%:$\"`".contains(c))
                || (before == Some('(') && preceding.next() == Some('%'))
                // `t.SELECT` keeps its qualifier, as the parser path keeps it: alone it is a keyword.
                || !is_plain_name(last)
        };
        if glued {
            whole.to_owned()
        } else {
            last.to_owned()
        }
    })
}

/// `SELECT a, b AS x, c FROM` → `SELECT .. FROM` (keywords are upper case by now). Only right after `SELECT`, where the parser path
/// collapses too: collapsing elsewhere (function arguments) would make the two paths disagree.
static COLLAPSE_COLUMNS: LazyLock<Regex> = LazyLock::new(|| {
    let col = r"\w+(?:\s+AS\s+\w+)?";
    Regex::new(&format!(
        r"(?x)
        (?P<pre>(?-u:\b)SELECT(?:\s+(?:DISTINCT|ALL))?\s+)
        {col}(?:\s*,\s*{col})+
        (?P<post>\s*,|\s+FROM(?-u:\b)|\s*$)"
    ))
    .expect("static regex")
});

/// Keywords the parser path prints in upper case; the fallback upper-cases them too so that both paths
/// agree. Only words that are never plain column names are listed.
const KEYWORDS: &[&str] = &[
    "all",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "case",
    "cross",
    "default",
    "delete",
    "desc",
    "distinct",
    "else",
    "end",
    "exists",
    "from",
    "full",
    "group",
    "having",
    "ilike",
    "in",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "left",
    "like",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "or",
    "order",
    "outer",
    "returning",
    "right",
    "select",
    "set",
    "then",
    "union",
    "update",
    "values",
    "when",
    "where",
    "with",
];

fn is_keyword(word: &str) -> bool {
    KEYWORDS
        .binary_search(&word.to_ascii_lowercase().as_str())
        .is_ok()
}

/// One part of a name that may stand without quotes: word characters and `{%s}`.
static PLAIN_NAME_PART: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:\w|\{%s\})+$").expect("static regex"));

/// Whether a quoted name may lose its quotes: only if, bare, it still reads as that name. Each
/// dot-separated part is word characters (or `{%s}`), does not start with a digit once its ids are
/// scrubbed (`1x` would read as a number and an alias; `12x` is the name `{%s}x`) and is neither a
/// keyword nor `true`/`false` (`"order"`, `"true"` bare would be upper-cased or scrubbed, and no longer
/// parse as a name). Both paths follow it, so a name comes out the same whichever of them normalized the
/// query, and reads the same when normalized again.
pub(super) fn is_plain_name(name: &str) -> bool {
    name.split('.').all(|part| {
        PLAIN_NAME_PART.is_match(part)
            && !ID_IN_NAME
                .replace_all(part, "{%s}")
                .starts_with(char::is_numeric)
            && !is_keyword(part)
            && !part.eq_ignore_ascii_case("true")
            && !part.eq_ignore_ascii_case("false")
    })
}

/// Characters that may touch a name without changing how it reads once its quotes are gone: in `("x")`
/// the bare `x` is still a word of its own, while `a"x"`, `"x"1` or `:"x"` would become `ax`, `x1` or the
/// parameter `:x`. Whitespace counts too. The scrubbing rules never turn any other character into one of
/// these, so a name kept quoted because of its neighbour is kept quoted the next time.
const NAME_NEIGHBOURS: &str = "(),;.=<>+-*/|!&^~[]";

fn is_name_neighbour(c: Option<char>) -> bool {
    c.is_none_or(|c| c.is_whitespace() || NAME_NEIGHBOURS.contains(c))
}

/// Scrubs SQL that does not parse, in the order Relay's fallback does: [`lex_sql`] first, then one pass of
/// token rules, then the rules that fold lists and names. Each rule keeps the boundaries between tokens, so
/// its output, scrubbed again, comes back unchanged.
pub(super) fn scrub_sql_regex(sql: &str, db_system: Option<&str>) -> String {
    let mysql = lexes_like_mysql(db_system) || (db_system.is_none() && sql.contains('`'));
    let (code, comments) = lex_sql(sql, mysql);
    let s = SCRUB.replace_all(&code, scrub_token);
    let s = UNARY_MINUS.replace_all(&s, "${pre}%s");
    let s = WHITESPACE.replace_all(&s, " ");
    let s = PAREN_SPACE.replace_all(&s, "${open}${close}");
    // Before the lists: `IN (t.NULL, 1)` is the list `IN (NULL, %s)` once the qualifier is gone.
    let s = collapse_qualified(&s);
    let s = COLLAPSE_LIST.replace_all(&s, "${pre}%s");
    let s = COLLAPSE_COLUMNS.replace_all(&s, "${pre}..${post}");
    restore_comments(s.trim(), &comments)
}

/// The replacement for one match of [`SCRUB_PATTERN`].
fn scrub_token(caps: &Captures<'_>) -> String {
    if let Some(pre) = caps.name("savepoint") {
        return format!("{}%s", pre.as_str().to_ascii_uppercase());
    }
    if let Some(cast) = caps.name("cast") {
        return cast.as_str().to_owned();
    }
    if let Some(name) = caps.name("name") {
        let tail = caps.name("name_tail").map_or("", |m| m.as_str());
        return format!("{}{tail}", ID_IN_NAME.replace_all(name.as_str(), "{%s}"));
    }
    let Some(word) = caps.name("word") else {
        return PLACEHOLDER.to_owned();
    };
    let word = word.as_str();
    let call = caps.name("call").map_or("", |m| m.as_str());
    let tail = caps.name("tail").map_or("", |m| m.as_str());
    if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") {
        // A value, with its casts (a whole word only: `true{%s}` is a name).
        return format!("{PLACEHOLDER}{call}");
    }
    if is_keyword(word) {
        return format!("{}{call}{tail}", word.to_ascii_uppercase());
    }
    if !call.is_empty() {
        // A function name (`log10(`, `md5(`): kept, as the parser path keeps it.
        return format!("{word}{call}");
    }
    format!("{}{tail}", ID_IN_NAME.replace_all(word, "{%s}"))
}

/// Reads SQL once, left to right, as SQL lexes it, and returns the text the scrubbing rules see (and the
/// stashed comments):
/// - `/* */` comments become markers, kept for [`restore_comments`]; `--` and MySQL `#` comments go;
/// - string literals become `%s`: `'…'` (with an `N`, `E`, `B` or `X` prefix), `$$…$$` and, for MySQL,
///   `"…"`; an unterminated one runs to the end;
/// - a quoted name (`"…"`, `` `…` ``) loses its quotes if [`is_plain_name`] allows it and its neighbours
///   leave it a word of its own ([`NAME_NEIGHBOURS`]); otherwise it stays as written.
///
/// Quotes are read here and nowhere else: a rule that stripped quotes after the others had run would join
/// tokens they had kept apart (`"in"(` → `IN(`, which the list rule reads differently next time).
fn lex_sql(sql: &str, mysql: bool) -> (String, Vec<String>) {
    let filtered;
    let sql = if sql.contains([STASH_OPEN, STASH_CLOSE]) {
        filtered = sql.replace([STASH_OPEN, STASH_CLOSE], "");
        filtered.as_str()
    } else {
        sql
    };
    let mut code = String::with_capacity(sql.len());
    let mut comments: Vec<String> = Vec::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let taken = if let Some(body) = rest.strip_prefix("/*") {
            // An unterminated one (cut off by truncation) is kept as it is.
            let len = body.find("*/").map_or(rest.len(), |i| i + 4);
            stash(&mut code, &mut comments, tidy_comment(&rest[..len]));
            len
        } else if rest.starts_with("--") || (mysql && c == '#') {
            // Up to the newline, which stays.
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("$$") {
            code.push_str(PLACEHOLDER);
            body.find("$$").map_or(rest.len(), |i| i + 4)
        } else if c == '\'' || (mysql && c == '"') {
            drop_string_prefix(&mut code);
            code.push_str(PLACEHOLDER);
            quoted_len(rest, c).0
        } else if c == '"' || c == '`' {
            let (len, closed) = quoted_len(rest, c);
            let quoted = &rest[..len];
            let name = &quoted[1..len - usize::from(closed)];
            let after = &rest[len..];
            let bare = is_plain_name(name)
                && is_name_neighbour(code.chars().next_back())
                && (is_name_neighbour(after.chars().next()) || (mysql && after.starts_with('#')));
            code.push_str(if bare { name } else { quoted });
            len
        } else {
            code.push(c);
            c.len_utf8()
        };
        rest = &rest[taken..];
    }
    (code, comments)
}

/// Length of the quoted run at the start of `s`, opening quote `q` included, and whether it is closed.
/// A doubled quote, or one after a backslash, stands for itself (so `'it\\'s'` runs on, as Relay reads
/// it: scrubbing too much is the safe side); an unterminated run goes to the end.
fn quoted_len(s: &str, q: char) -> (usize, bool) {
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == '\\' && s[i + 1..].starts_with(q) {
            chars.next();
        } else if c == q {
            if s[i + 1..].starts_with(q) {
                chars.next();
            } else {
                return (i + 1, true);
            }
        }
    }
    (s.len(), false)
}

/// `N'…'`, `E'…'`, `B'…'`, `X'…'`: a one-letter prefix belongs to the literal that follows.
fn drop_string_prefix(code: &mut String) {
    let mut tail = code.chars().rev();
    let is_prefix = tail.next().is_some_and(|c| "NEBXnebx".contains(c))
        && !tail.next().is_some_and(|c| c.is_alphanumeric() || c == '_');
    if is_prefix {
        code.pop();
    }
}

/// Replaces a comment by a marker naming it with letters (`a`, `b`, …), never digits, so that no
/// scrubbing rule touches it. Comments past [`MAX_KEPT_COMMENTS`] are dropped.
fn stash(code: &mut String, comments: &mut Vec<String>, comment: String) {
    code.push(' ');
    if comments.len() < MAX_KEPT_COMMENTS {
        code.push(STASH_OPEN);
        code.push(char::from(b'a' + comments.len() as u8));
        code.push(STASH_CLOSE);
        code.push(' ');
        comments.push(comment);
    }
}

static STASH_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("\u{E000}([a-z])\u{E001}").expect("static regex"));

fn restore_comments(s: &str, comments: &[String]) -> String {
    let restored = STASH_MARKER.replace_all(s, |caps: &Captures<'_>| {
        let index = caps[1]
            .bytes()
            .next()
            .map_or(usize::MAX, |b| usize::from(b.wrapping_sub(b'a')));
        comments.get(index).cloned().unwrap_or_default()
    });
    restored.trim().to_owned()
}
