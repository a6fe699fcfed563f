//! The rules that find secrets inside a string, each replacing only what it matches with `[Filtered]`, so
//! that a message stays readable: `key=value` pairs whose key is sensitive, `Bearer` tokens, card numbers
//! (Luhn), IBANs (mod 97), US social security numbers, PEM key bodies, passwords in URLs, and (when
//! asked) IP addresses.
//!
//! One pass over a string's bytes ([`Shape`]) tells which rules could match at all; each rule that could
//! is one more pass. The common string, which holds none of these, costs that one scan and no allocation.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Rule, FILTERED};

/// What the IP rule writes (Relay's `@ip:replace`).
pub const IP_REPLACEMENT: &str = "[ip]";

/// What one pass over a string's bytes tells about which rules could match it.
#[derive(Debug, Default)]
pub(super) struct Shape {
    pub digits: usize,
    pub dashes: usize,
    /// `=` or `:`.
    pub separators: bool,
    pub at: bool,
    pub dots: bool,
    /// A `b` or `B` followed by `e`/`E` (how `bearer` starts).
    pub bearer: bool,
}

impl Shape {
    pub fn of(text: &str) -> Self {
        let mut shape = Shape::default();
        let mut after_b = false;
        for &c in text.as_bytes() {
            match c {
                b'0'..=b'9' => shape.digits += 1,
                b'-' => shape.dashes += 1,
                b'=' | b':' => shape.separators = true,
                b'@' => shape.at = true,
                b'.' => shape.dots = true,
                b'e' | b'E' if after_b => shape.bearer = true,
                _ => {}
            }
            after_b = matches!(c, b'b' | b'B');
        }
        shape
    }
}

/// Applies `rule` to `text` when `find` reports replacements: ranges of the text to replace with `with`.
pub(super) fn apply(
    text: &mut Cow<'_, str>,
    applied: &mut Vec<Rule>,
    rule: Rule,
    with: &str,
    find: impl Fn(&str) -> Vec<(usize, usize)>,
) {
    let ranges = find(text);
    if ranges.is_empty() {
        return;
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in ranges {
        out.push_str(&text[copied..start]);
        out.push_str(with);
        copied = end;
    }
    out.push_str(&text[copied..]);
    *text = Cow::Owned(out);
    applied.push(rule);
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Case-insensitive search for an ASCII `needle` given in lower case.
pub(super) fn find_ignore_case(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len())
        .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// The characters of a key in `key=value` or `key: value`: `access_token`, `card[number]`, `X-Api-Key`.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']')
}

/// Where an unquoted value ends: a pair separator, white space, or what closes a structure.
fn ends_value(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'&' | b'#' | b';' | b',' | b')' | b']' | b'}' | b'"' | b'\'' | b'<' | b'>'
        )
}

/// Authorization schemes: the credential follows the scheme's name (`Basic dXNlcjpw`).
const AUTH_SCHEMES: [&str; 5] = ["basic", "bearer", "digest", "token", "negotiate"];

/// A query's placeholder (`?`, `%s`, `$1`, `:name`, `@p1`): no value, and the SQL normalization that
/// groups spans needs it as it is (`WHERE session_id = ?`).
fn is_placeholder(value: &[u8]) -> bool {
    match value {
        b"?" | b"%s" => true,
        [b'$', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
        [b':' | b'@', rest @ ..] => !rest.is_empty() && rest.iter().all(|&c| is_word(c)),
        _ => false,
    }
}

/// The values of `key=value` and `key: value` pairs whose key is sensitive (query strings, form bodies,
/// cookie strings, JSON or source code in a string, log lines); an authorization scheme's name is kept.
/// `sensitive` says whether a key is, and whether a number under it is scrubbed too (as for fields: a
/// count under `…_tokens` is kept).
pub(super) fn pairs(text: &str, sensitive: impl Fn(&str) -> Option<bool>) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let sep = b[i];
        if !(sep == b'=' || sep == b':') || b[i + 1..].starts_with(b"//") {
            i += 1;
            continue;
        }
        // The key, right before the separator: spaces and a closing quote skipped (`"password": "…"`).
        let mut end = i;
        while end > 0 && b[end - 1] == b' ' {
            end -= 1;
        }
        if end > 0 && matches!(b[end - 1], b'"' | b'\'') {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && is_key_byte(b[start - 1]) {
            start -= 1;
        }
        let Some(numbers) = (start < end)
            .then(|| sensitive(&text[start..end]))
            .flatten()
        else {
            i += 1;
            continue;
        };
        let Some((from, to)) = value_after(b, i + 1) else {
            i += 1;
            continue;
        };
        let value = &b[from..to];
        let number = value.iter().all(|c| c.is_ascii_digit() || *c == b'.');
        if !is_placeholder(value) && (numbers || !number) {
            found.push((from, to));
        }
        i = to.max(i + 1);
    }
    found
}

/// The value that starts after a separator at `at`: quoted up to its closing quote, else up to a
/// delimiter; past an authorization scheme's name. `None` when empty.
fn value_after(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut from = at;
    while from < b.len() && b[from] == b' ' {
        from += 1;
    }
    if b[from..].starts_with(FILTERED.as_bytes()) {
        return None;
    }
    if let Some(&quote @ (b'"' | b'\'')) = b.get(from) {
        let to = b[from + 1..]
            .iter()
            .position(|&c| c == quote)
            .map_or(b.len(), |n| from + 1 + n);
        return (to > from + 1).then_some((from + 1, to));
    }
    let token_end = |from: usize| {
        b[from..]
            .iter()
            .position(|&c| ends_value(c))
            .map_or(b.len(), |n| from + n)
    };
    let mut to = token_end(from);
    let scheme = &b[from..to];
    if AUTH_SCHEMES
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s.as_bytes()))
        && b.get(to) == Some(&b' ')
        && b.get(to + 1).is_some_and(|&c| !ends_value(c))
    {
        from = to + 1;
        to = token_end(from);
    }
    (to > from).then_some((from, to))
}

/// `Bearer <token>`: the token (Relay's `@bearer`).
pub(super) fn bearer(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find_ignore_case(b, b"bearer", from) {
        from = at + 6;
        if at > 0 && is_word(b[at - 1]) {
            continue;
        }
        let mut start = from;
        while start < b.len() && b[start].is_ascii_whitespace() {
            start += 1;
        }
        let end = b[start..]
            .iter()
            .position(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\''))
            .map_or(b.len(), |n| start + n);
        if start > from && end > start && &text[start..end] != FILTERED {
            found.push((start, end));
            from = end;
        }
    }
    found
}

/// A run of digits with single spaces or dashes between them, as people write card numbers.
struct DigitRun {
    start: usize,
    end: usize,
    digits: usize,
}

fn digit_runs(b: &[u8]) -> impl Iterator<Item = DigitRun> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let (start, mut digits, mut end) = (i, 0, i);
            let mut j = i;
            while j < b.len() {
                if b[j].is_ascii_digit() {
                    digits += 1;
                    j += 1;
                    end = j;
                } else if matches!(b[j], b' ' | b'-')
                    && b.get(j + 1).is_some_and(u8::is_ascii_digit)
                {
                    j += 1;
                } else {
                    break;
                }
            }
            i = end;
            // A run inside a word (`id4111…`, `…1111x`) is part of something else.
            let bounded =
                (start == 0 || !is_word(b[start - 1])) && (end == b.len() || !is_word(b[end]));
            if bounded {
                return Some(DigitRun { start, end, digits });
            }
        }
        None
    })
}

/// The Luhn checksum every card number carries: one mistyped digit fails it.
fn luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                doubled - if doubled > 9 { 9 } else { 0 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Card numbers: 13 to 19 digits (spaces or dashes between them allowed) that start as the card networks'
/// numbers do (2 to 6: Mastercard, Amex, Diners, JCB, Visa, Discover, UnionPay) and pass the Luhn check.
/// Relay matches the networks' prefixes and lengths by regular expression without a checksum; the checksum
/// keeps order numbers and timestamps (which start with 1) out.
pub(super) fn cards(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    digit_runs(b)
        .filter(|r| (13..=19).contains(&r.digits) && (b'2'..=b'6').contains(&b[r.start]))
        .filter(|r| {
            luhn(
                b[r.start..r.end]
                    .iter()
                    .filter(|c| c.is_ascii_digit())
                    .map(|c| c - b'0'),
            )
        })
        .map(|r| (r.start, r.end))
        .collect()
}

/// US social security numbers, `123-45-6789` (Relay's `@usssn`).
pub(super) fn us_ssns(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let shape = |r: &DigitRun| {
        let s = &b[r.start..r.end];
        s.len() == 11
            && s[3] == b'-'
            && s[6] == b'-'
            && s.iter()
                .enumerate()
                .all(|(i, c)| i == 3 || i == 6 || c.is_ascii_digit())
    };
    digit_runs(b)
        .filter(shape)
        .map(|r| (r.start, r.end))
        .collect()
}

/// IBANs (Relay's `@iban`): two letters, two check digits and 11 to 30 letters or digits, standing on
/// their own and passing the ISO 13616 check (mod 97), which keeps other upper-case ids out.
pub(super) fn ibans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 15 <= b.len() {
        let start = i;
        let end = b[i..]
            .iter()
            .position(|c| !c.is_ascii_alphanumeric())
            .map_or(b.len(), |n| i + n);
        i = end + 1;
        let token = &b[start..end];
        let bounded = start == 0 || !is_word(b[start - 1]);
        let shaped = (15..=34).contains(&token.len())
            && token[..2].iter().all(u8::is_ascii_uppercase)
            && token[2..4].iter().all(u8::is_ascii_digit);
        if bounded && shaped && iban_checksum(token) == 1 {
            found.push((start, end));
        }
    }
    found
}

/// The IBAN's number mod 97, its first four characters moved to the end and letters counted from 10.
fn iban_checksum(iban: &[u8]) -> u32 {
    iban[4..].iter().chain(&iban[..4]).fold(0, |rest, &c| {
        let c = c.to_ascii_uppercase();
        if c.is_ascii_digit() {
            (rest * 10 + u32::from(c - b'0')) % 97
        } else {
            (rest * 100 + u32::from(c - b'A') + 10) % 97
        }
    })
}

/// The body of a PEM key between its `-----BEGIN … KEY-----` and `-----END … KEY-----` lines.
pub(super) fn pem_keys(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("-----BEGIN ").map(|n| from + n) {
        let header_start = at + 11;
        let Some(header_end) = text[header_start..].find("-----").map(|n| header_start + n) else {
            break;
        };
        from = header_end + 5;
        if !text[header_start..header_end].ends_with("KEY") {
            continue;
        }
        let Some(end) = text[from..].find("-----END ").map(|n| from + n) else {
            break;
        };
        if end > from {
            found.push((from, end));
        }
        from = end + 9;
    }
    found
}

fn is_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'%' | b'_' | b'.' | b'-')
}

/// The password of `scheme://user:password@host` (Relay's `@urlauth:legacy`).
pub(super) fn url_passwords(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("//").map(|n| from + n) {
        from = at + 2;
        let user_end = b[from..]
            .iter()
            .position(|&c| !is_userinfo_byte(c))
            .map_or(b.len(), |n| from + n);
        if user_end == from || b.get(user_end) != Some(&b':') {
            continue;
        }
        let pass_start = user_end + 1;
        let pass_end = b[pass_start..]
            .iter()
            .position(|&c| !is_userinfo_byte(c))
            .map_or(b.len(), |n| pass_start + n);
        if pass_end > pass_start
            && b.get(pass_end) == Some(&b'@')
            && &text[pass_start..pass_end] != FILTERED
        {
            found.push((pass_start, pass_end));
            from = pass_end + 1;
        }
    }
    found
}

/// IPv4 and IPv6 addresses standing on their own (Relay's `@ip`): tokens of the characters addresses are
/// made of, parsed by the standard library.
pub(super) fn ips(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let is_ip_byte = |c: u8| c.is_ascii_hexdigit() || c == b'.' || c == b':';
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !is_ip_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ip_byte(b[i]) {
            i += 1;
        }
        // A sentence's full stop or a port's colon is not part of the address.
        let mut end = i;
        while end > start && matches!(b[end - 1], b'.') {
            end -= 1;
        }
        let bounded =
            (start == 0 || !is_word(b[start - 1])) && (end == b.len() || !is_word(b[end]));
        if bounded {
            found.extend(ip_in(&text[start..end]).map(|len| (start, start + len)));
        }
    }
    found
}

/// How much of a token is an IP address: all of it, or an IPv4 address before its port (`10.0.0.7:5432`).
fn ip_in(token: &str) -> Option<usize> {
    let v6 =
        || token.bytes().filter(|&c| c == b':').count() >= 2 && token.parse::<Ipv6Addr>().is_ok();
    if token.parse::<Ipv4Addr>().is_ok() || v6() {
        return Some(token.len());
    }
    let (host, port) = token.rsplit_once(':')?;
    let with_port = !port.is_empty() && port.bytes().all(|c| c.is_ascii_digit());
    (with_port && host.parse::<Ipv4Addr>().is_ok()).then_some(host.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replaced(text: &str, find: impl Fn(&str) -> Vec<(usize, usize)>) -> String {
        let mut t = Cow::Borrowed(text);
        apply(&mut t, &mut Vec::new(), Rule::Password, FILTERED, find);
        t.into_owned()
    }

    #[test]
    fn luhn_accepts_card_numbers_and_refuses_a_mistyped_digit() {
        let digits = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>().into_iter();
        for good in [
            "4111111111111111",
            "5500000000000004",
            "378282246310005",
            "6011111111111117",
            "4242424242424242",
        ] {
            assert!(luhn(digits(good)), "{good}");
        }
        for bad in [
            "4111111111111112",
            "5500000000000005",
            "378282246310006",
            "1234567812345678",
        ] {
            assert!(!luhn(digits(bad)), "{bad}");
        }
    }

    #[test]
    fn card_numbers_are_found_with_or_without_separators_and_nothing_else_is() {
        assert_eq!(
            replaced("card 4111 1111 1111 1111 ok", cards),
            "card [Filtered] ok"
        );
        assert_eq!(replaced("4111-1111-1111-1111", cards), "[Filtered]");
        assert_eq!(replaced("amex:378282246310005.", cards), "amex:[Filtered].");
        // A mistyped digit, a millisecond timestamp, a number inside a word, too few or too many digits.
        for kept in [
            "4111 1111 1111 1112",
            "1733450000000123",
            "order4111111111111111",
            "411111111111",
            "41111111111111111111111",
            "span 6242424242424242x",
        ] {
            assert_eq!(replaced(kept, cards), kept);
        }
    }

    #[test]
    fn pairs_with_sensitive_keys_lose_their_values_only() {
        let sensitive = |k: &str| {
            let k = k.to_ascii_lowercase();
            let secret = k.contains("password") || k.contains("auth");
            (secret || k.contains("token")).then_some(secret)
        };
        let p = |t: &str| replaced(t, |s| pairs(s, sensitive));
        assert_eq!(p("a=1&password=hunter2&b=2"), "a=1&password=[Filtered]&b=2");
        assert_eq!(p("?access_token=abc#x"), "?access_token=[Filtered]#x");
        assert_eq!(
            p(r#"{"password": "hunter 2", "user": "bob"}"#),
            r#"{"password": "[Filtered]", "user": "bob"}"#
        );
        assert_eq!(p("token = 'abc'"), "token = '[Filtered]'");
        assert_eq!(
            p("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: Basic [Filtered]"
        );
        assert_eq!(
            p("login failed password=s3cret for bob"),
            "login failed password=[Filtered] for bob"
        );
        assert_eq!(
            p("pin: 1234, password=42"),
            "pin: 1234, password=[Filtered]"
        );
        for kept in [
            "https://auth.example.com/x",
            "user=bob&x=1",
            "password:",
            "at 12:30:00",
            "password=[Filtered]",
            "SELECT * FROM s WHERE auth_token = ? AND password = $1 AND token = :tok OR auth = @p1",
            "input_tokens=12",
        ] {
            assert_eq!(p(kept), kept);
        }
    }

    #[test]
    fn ibans_pass_their_check() {
        assert_eq!(
            replaced("to DE89370400440532013000.", ibans),
            "to [Filtered]."
        );
        assert_eq!(
            replaced("GB82WEST12345698765432 ok", ibans),
            "[Filtered] ok"
        );
        // One digit off, inside a word, lower case, too short.
        for kept in [
            "DE89370400440532013001",
            "xDE89370400440532013000",
            "de89370400440532013000",
            "DE8937040044",
        ] {
            assert_eq!(replaced(kept, ibans), kept);
        }
    }

    #[test]
    fn bearer_tokens_ssns_pem_keys_and_url_passwords() {
        assert_eq!(
            replaced("Authorization: Bearer abc.def", bearer),
            "Authorization: Bearer [Filtered]"
        );
        assert_eq!(replaced("bearers are people", bearer), "bearers are people");
        assert_eq!(replaced("ssn 078-05-1120.", us_ssns), "ssn [Filtered].");
        assert_eq!(replaced("on 2024-01-15", us_ssns), "on 2024-01-15");
        let pem = "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- y";
        assert_eq!(
            replaced(pem, pem_keys),
            "x -----BEGIN RSA PRIVATE KEY-----[Filtered]-----END RSA PRIVATE KEY----- y"
        );
        assert_eq!(
            replaced("postgres://app:s3cret@db:5432/x and //h/p@x", url_passwords),
            "postgres://app:[Filtered]@db:5432/x and //h/p@x"
        );
    }

    #[test]
    fn ip_addresses_standing_on_their_own() {
        let r = |t: &str| {
            let mut c = Cow::Borrowed(t);
            apply(&mut c, &mut Vec::new(), Rule::Ip, IP_REPLACEMENT, ips);
            c.into_owned()
        };
        assert_eq!(r("from 192.168.0.1."), "from [ip].");
        assert_eq!(r("client 2001:db8::1 and ::1"), "client [ip] and [ip]");
        for kept in ["version 1.2", "at 12:30:00", "a.b.c", "300.1.1.1"] {
            assert_eq!(r(kept), kept);
        }
    }
}
