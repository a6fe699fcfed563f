//! Query documents (MongoDB and friends): keys stay, values go.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{prefix, MAX_REGEX_BYTES, WHITESPACE};

/// A JSON-ish query document: keys stay, values go. `"key":` is a key; any other quoted string, number
/// or boolean is a value.
static DOCUMENT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?xs)
          (?P<key>"(?:\\.|[^"\\])*"\s*:)
        | "(?:\\.|[^"\\])*(?:"|$)
        | '(?:\\.|[^'\\])*(?:'|$)
        | -?(?-u:\b)\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?-u:\b)
        | (?-u:\b)(?:true|false)(?-u:\b)
        "#,
    )
    .expect("static regex")
});

pub(super) fn normalize_document(description: &str) -> String {
    let text = prefix(description.trim(), MAX_REGEX_BYTES);
    let scrubbed = DOCUMENT_VALUE.replace_all(text, |caps: &Captures<'_>| match caps.name("key") {
        Some(key) => key.as_str().to_owned(),
        None => "%s".to_owned(),
    });
    WHITESPACE.replace_all(&scrubbed, " ").into_owned()
}
