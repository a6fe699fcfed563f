//! Replaces the variable parts of a message with placeholders so that "user 42 not found" and "user 7 not
//! found" group together. Patterns and their order follow Sentry's parameterization (emails and URLs before
//! the numbers inside them; quoted strings and booleans only after `=`).

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One alternation, tried left to right at each position; the group name is the placeholder.
static PATTERNS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?P<email>\b[a-zA-Z0-9._%+\-]+@[a-zA-Z0-9.\-]+\.[a-zA-Z]{2,}\b)",
        r"|(?P<url>\b(?:https?|ftp|wss?)://[^\s/$.?#][^\s]*)",
        r"|(?P<uuid>\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b)",
        r"|(?P<ip>\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b)",
        r"|(?P<sha1>\b[0-9a-fA-F]{40}\b)",
        r"|(?P<md5>\b[0-9a-fA-F]{32}\b)",
        r"|(?P<date>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b)",
        r"|(?P<time>\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AaPp][Mm])?\b)",
        r"|(?P<duration>\b\d+(?:\.\d+)?(?:ms|s)\b)",
        r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b)",
        r"|(?P<float>-?\b\d+\.\d+\b)",
        r"|(?P<int>-?\b\d+\b)",
        r#"|=(?P<quoted_str>"[^"]*"|'[^']*')"#,
        r"|=(?P<bool>\b(?:[Tt]rue|[Ff]alse)\b)",
    ))
    .expect("parameterization patterns compile")
});

const NAMES: &[&str] = &[
    "email",
    "url",
    "uuid",
    "ip",
    "sha1",
    "md5",
    "date",
    "time",
    "duration",
    "hex",
    "float",
    "int",
    "quoted_str",
    "bool",
];

pub fn parameterize(message: &str) -> String {
    PATTERNS
        .replace_all(message, |caps: &Captures| {
            let name = NAMES
                .iter()
                .find(|n| caps.name(n).is_some())
                .expect("one group matched");
            // The `=` of `key="value"` is part of the match; keep it.
            let eq = if matches!(*name, "quoted_str" | "bool") {
                "="
            } else {
                ""
            };
            format!("{eq}<{name}>")
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_parts_become_placeholders() {
        let cases = [
            ("user 42 not found", "user <int> not found"),
            ("mail bob@example.com failed", "mail <email> failed"),
            (
                "GET https://api.example.com/v1/users/9 timed out",
                "GET <url> timed out",
            ),
            (
                "row 0b3e2bd0-5f3e-4c1e-9c2a-3e1f2a3b4c5d missing",
                "row <uuid> missing",
            ),
            (
                "from 10.0.0.12 at 2026-11-25T08:00:00Z",
                "from <ip> at <date>",
            ),
            (
                "took 1500ms (1.5s) at 0xdeadbeef",
                "took <duration> (<duration>) at <hex>",
            ),
            ("ratio -0.25 of 3", "ratio <float> of <int>"),
            (
                "commit da39a3ee5e6b4b0d3255bfef95601890afd80709",
                "commit <sha1>",
            ),
            (
                r#"bad value name="bob" flag=true"#,
                "bad value name=<quoted_str> flag=<bool>",
            ),
            ("no numbers here", "no numbers here"),
            ("version2 of build", "version2 of build"),
        ];
        for (input, want) in cases {
            assert_eq!(parameterize(input), want, "{input}");
        }
    }
}
