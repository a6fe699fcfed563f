//! HTTP spans (`METHOD url`) and browser resources (a bare URL): the method, scheme and host stay,
//! ids in the path and every query value go.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::{prefix, ID_IN_NAME, MAX_REGEX_BYTES};

/// `GET https://api.example.com/users/123?page=2` → `GET https://api.example.com/users/*?page=*`.
/// The method stays, scheme and host stay (credentials go), id-like path segments and every query value
/// become `*`, the fragment goes.
pub(super) fn normalize_http(description: &str) -> String {
    let description = description.trim();
    let (first, rest) = split_method(description);
    if !is_http_method(first) {
        let url = normalize_url(description);
        // A URL that now starts with a method (`post?` → `post`, `get#top` → `get`) reads as one the
        // next time, so it is read as one now.
        return if is_http_method(split_method(&url).0) {
            normalize_http(&url)
        } else {
            url
        };
    }
    let method = first.to_ascii_uppercase();
    let url = normalize_url(rest.trim());
    if url.is_empty() {
        return method;
    }
    format!("{method} {url}")
}

fn split_method(description: &str) -> (&str, &str) {
    description
        .split_once(char::is_whitespace)
        .unwrap_or((description, ""))
}

fn is_http_method(word: &str) -> bool {
    HTTP_METHODS.iter().any(|m| m.eq_ignore_ascii_case(word))
        || (!word.is_empty() && word.len() <= 12 && word.chars().all(|c| c.is_ascii_uppercase()))
}

/// The standard methods, recognised in any case; other all-capitals words (`PROPFIND`) count too.
const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Normalizes a URL or a path (see [`normalize_http`]). Never parses strictly: SDKs send relative paths,
/// route templates (`/users/{id}`) and truncated URLs.
pub(super) fn normalize_url(url: &str) -> String {
    let url = prefix(url, MAX_REGEX_BYTES);
    if let Some(data) = strip_prefix_ignore_case(url, "data:") {
        return normalize_data_url(data);
    }
    let url = url.split('#').next().unwrap_or_default().trim_end();
    let (before_query, query) = url.split_once('?').unwrap_or((url, ""));
    let query = normalize_query(query);
    // What ends the URL once the fragment and an empty query are gone ends it the next time too: no
    // trailing space is left to make `3 ` a different segment from `3`.
    let before_query = if query.is_empty() {
        before_query.trim_end()
    } else {
        before_query
    };
    let (origin, path) = split_origin(before_query);
    let mut out = origin;
    if out.ends_with("://*") {
        return out;
    }
    out.push_str(
        &path
            .split('/')
            .map(normalize_path_segment)
            .collect::<Vec<_>>()
            .join("/"),
    );
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    out
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `data:image/png;base64,…` → `data:image/png`: the media type says what it is, the payload is data.
fn normalize_data_url(data: &str) -> String {
    let media = data.split([';', ',']).next().unwrap_or_default();
    let valid = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c))
    };
    match media.split_once('/') {
        Some((kind, sub)) if valid(kind) && valid(sub) && media.len() <= 64 => {
            format!("data:{}", media.to_ascii_lowercase())
        }
        _ => "data:*".to_owned(),
    }
}

/// Splits `scheme://user:pass@Host:port/path` into `scheme://host:port` and `/path`. Browser-extension
/// URLs name the extension by an id, so their origin is `scheme://*`.
fn split_origin(url: &str) -> (String, &str) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (String::new(), url);
    };
    let valid_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !valid_scheme {
        return (String::new(), url);
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme.ends_with("-extension") {
        return (format!("{scheme}://*"), "");
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (format!("{scheme}://{}", host.to_ascii_lowercase()), path)
}

/// `a=1&b=x&c` → `a=*&b=*&c`. Keys lose surrounding whitespace, so that none is left at the end.
fn normalize_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{}=*", normalize_query_key(key.trim())),
            None => normalize_query_key(pair.trim()).into_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A query key is usually a fixed name; one that looks like an id is scrubbed like a path segment.
fn normalize_query_key(key: &str) -> Cow<'_, str> {
    normalize_path_segment(key)
}

static UUID_LIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
        .expect("static regex")
});

/// Characters of e-mail addresses, encoded values and key=value pairs, never of route names.
const ENCODED_VALUE_CHARS: [char; 8] = ['@', '=', '%', '+', ',', ';', '\'', '"'];

/// Segments longer than this are tokens, hashes or slugs of data, not route names.
const MAX_SEGMENT_LEN: usize = 40;

/// Whether a path segment (or a file name without its extension) carries an id: numbers, digit runs,
/// hex ids, uuids, long random tokens. (E-mail-like and encoded values are caught before.)
fn is_id_segment(segment: &str) -> bool {
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    segment.len() > MAX_SEGMENT_LEN
        || digits == segment.len()
        || ID_IN_NAME.is_match(segment)
        || UUID_LIKE.is_match(segment)
        || (digits > 0 && segment.len() >= 12)
}

/// `123` → `*`, `main.3f2a9c1b.js` → `*.js`, `users` → `users`, `{id}` → `{id}`.
fn normalize_path_segment(segment: &str) -> Cow<'_, str> {
    if segment.is_empty() || segment == "*" {
        return Cow::Borrowed(segment);
    }
    if segment.contains(ENCODED_VALUE_CHARS) {
        return Cow::Borrowed("*");
    }
    let (base, extension) = match segment.rsplit_once('.') {
        Some((base, ext)) if !base.is_empty() && is_extension(ext) => (base, Some(ext)),
        _ => (segment, None),
    };
    if !is_id_segment(base) {
        return Cow::Borrowed(segment);
    }
    match extension {
        Some(ext) => Cow::Owned(format!("*.{}", ext.to_ascii_lowercase())),
        None => Cow::Borrowed("*"),
    }
}

fn is_extension(ext: &str) -> bool {
    (1..=5).contains(&ext.len())
        && ext.chars().all(|c| c.is_ascii_alphanumeric())
        && ext.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use crate::perf::normalize::normalize_description;

    #[test]
    fn urls_lose_what_a_second_pass_would_trim() {
        for (op, input, expected) in [
            ("http.client", "3 #", "*"),
            ("resource.script", "3 #top", "*"),
            ("http.client", "? &", ""),
            ("http.client", "/a?x=1& ", "/a?x=*"),
            ("http.client", "post?", "POST"),
            ("http.client", "get#top", "GET"),
            ("http.client", "D #", "D"),
        ] {
            let once = normalize_description(op, input, None);
            assert_eq!(once, expected, "{op} {input:?}");
            assert_eq!(
                normalize_description(op, &once, None),
                once,
                "{op} {input:?}"
            );
        }
    }
}
