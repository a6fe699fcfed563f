//! Data scrubbing, on by default as Relay's default data scrubbers are: what an SDK sends is cleaned of
//! passwords, secrets, tokens, cookies, card numbers and the like before anything is stored (the
//! processor runs [`Scrubber::payload`] on every event, transaction and span item first).
//!
//! The rules, after Relay's `@common:filter` and `@password:filter` (`relay-pii`: `convert.rs`,
//! `regexes.rs`), each replacing with `[Filtered]`:
//! - **Sensitive keys**: a field whose key contains `password`, `secret`, `passwd`, `api_key`, `apikey`,
//!   `auth`, `credentials`, `mysql_pwd`, `privatekey`, `private_key`, `token`, `bearer` (Relay's list), or
//!   `session`, `cookie`, `csrf`, `xsrf` (so `Cookie`/`Set-Cookie` headers, `request.cookies` and session
//!   ids go too), or is `otp` or `two_factor`, loses its whole value, at any depth: extras, contexts,
//!   request headers, cookies, data, query strings and environment, breadcrumb data, frame variables, tags,
//!   span data and attributes, pairs such as `[["Authorization", "…"]]`. A number is kept under `token`,
//!   `session` and the like (`gen_ai.usage.input_tokens` is a count, not a secret).
//! - **Inside strings** only what matches is replaced: the value of a `key=value` or `key: value` pair
//!   with a sensitive key (`?access_token=…`, `password=…` in a log line), `Bearer` tokens, card numbers
//!   (13 to 19 digits of a card network's range passing the Luhn check), IBANs (passing their mod-97
//!   check), US social security numbers, PEM key bodies, passwords in URLs.
//! - **IP addresses**, when the project asks (Sentry's "Prevent storing of IP addresses", off by default
//!   as in Sentry): `user.ip_address`, `request.env.REMOTE_ADDR`, `sdk.client_ip` and the `client.address`
//!   attribute are removed, and addresses in any string become `[ip]`.
//! - Per project, **additional sensitive fields** (Relay's `sensitiveFields`: a key or a value containing
//!   one loses its value) and **safe fields** (Relay's `excludeFields`: a key, or a dotted path such as
//!   `extra.auth_mode`, left alone with everything under it).
//!
//! Sentry's structural fields are never touched: ids, timestamps, level, release, environment, the
//! transaction name, frames' file names and functions, `debug_meta`, the `User-Agent` header.
//!
//! What was scrubbed is reported as the field paths per rule, never the values ([`Report::notes`]); the
//! processor stores them under `splat.processing_notes`.
//!
//! [`Scrubber::attributes`] and [`Scrubber::text`] serve other item types (log records' attributes and
//! bodies) with the same rules.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod text;

pub use text::IP_REPLACEMENT;

/// What a scrubbed value becomes, as in Sentry.
pub const FILTERED: &str = "[Filtered]";

/// A project's scrubbing settings (Relay's `DataScrubbingConfig`), saved as JSON per project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScrubSettings {
    /// The default rules (Relay's `scrubDefaults`); on unless a project turns them off.
    pub defaults: bool,
    /// Remove and replace IP addresses (Relay's `scrubIpAddresses`); off, as Sentry's project default.
    pub ip_addresses: bool,
    /// Further keys (or parts of keys) whose values are scrubbed, and values containing them.
    pub sensitive_fields: Vec<String>,
    /// Keys or dotted paths left alone.
    pub safe_fields: Vec<String>,
}

impl Default for ScrubSettings {
    fn default() -> Self {
        Self {
            defaults: true,
            ip_addresses: false,
            sensitive_fields: Vec::new(),
            safe_fields: Vec::new(),
        }
    }
}

/// How many fields a list may hold, and how long each may be: settings are read for every batch.
pub const MAX_FIELDS: usize = 100;
pub const MAX_FIELD_LEN: usize = 100;

impl ScrubSettings {
    /// A field list as people type it: one per line or comma-separated, blanks dropped. `Err` names the
    /// first thing out of bounds.
    pub fn parse_fields(text: &str) -> Result<Vec<String>, String> {
        let fields: Vec<String> = text
            .split(['\n', ','])
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        if fields.len() > MAX_FIELDS {
            return Err(format!("at most {MAX_FIELDS} fields; got {}", fields.len()));
        }
        if let Some(long) = fields.iter().find(|f| f.len() > MAX_FIELD_LEN) {
            return Err(format!(
                "a field is at most {MAX_FIELD_LEN} characters: {long:?}"
            ));
        }
        Ok(fields)
    }
}

/// Which rule scrubbed a field, named as Relay names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A sensitive key, or a sensitive key's value inside a string.
    Password,
    Bearer,
    Creditcard,
    Iban,
    UsSsn,
    PemKey,
    UrlAuth,
    /// An IP address inside a string.
    Ip,
    /// A field that holds an IP address, removed.
    IpField,
    /// A project's additional sensitive field.
    SensitiveField,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Password => "@password:filter",
            Rule::Bearer => "@bearer:filter",
            Rule::Creditcard => "@creditcard:filter",
            Rule::Iban => "@iban:filter",
            Rule::UsSsn => "@usssn:filter",
            Rule::PemKey => "@pemkey:filter",
            Rule::UrlAuth => "@urlauth:legacy",
            Rule::Ip => "@ip:replace",
            Rule::IpField => "@anything:remove",
            Rule::SensitiveField => "strip-fields",
        }
    }
}

/// A key fragment of the default rules, and whether a number under it is scrubbed too.
struct Needle {
    text: &'static str,
    numbers: bool,
}

const fn secret(text: &'static str) -> Needle {
    Needle {
        text,
        numbers: true,
    }
}

const fn marker(text: &'static str) -> Needle {
    Needle {
        text,
        numbers: false,
    }
}

/// Key fragments, lower case (Relay's `PASSWORD_KEY_REGEX` and `TOKEN_KEY_REGEX`, plus session and cookie
/// names: Relay's sensitive cookies and the Python SDK's default deny list).
const NEEDLES: [Needle; 19] = [
    secret("password"),
    secret("secret"),
    secret("passwd"),
    secret("api_key"),
    secret("api-key"),
    secret("apikey"),
    secret("auth"),
    secret("credentials"),
    secret("mysql_pwd"),
    secret("privatekey"),
    secret("private_key"),
    secret("private-key"),
    secret("bearer"),
    marker("token"),
    marker("session"),
    marker("sessid"),
    marker("cookie"),
    marker("csrf"),
    marker("xsrf"),
];

/// Per lower-case byte, the needles starting with it (bit `i` for `NEEDLES[i]`): keys are scanned once,
/// comparing only the needles that may start at each position (most positions start none).
const STARTS: [u32; 256] = {
    let mut starts = [0; 256];
    let mut i = 0;
    while i < NEEDLES.len() {
        starts[NEEDLES[i].text.as_bytes()[0] as usize] |= 1 << i;
        i += 1;
    }
    starts
};

/// The default needle a key contains; one that scrubs numbers wins over one that does not.
fn default_needle(key: &str) -> Option<&'static Needle> {
    let b = key.as_bytes();
    let mut found = None;
    for i in 0..b.len() {
        let mut candidates = STARTS[b[i].to_ascii_lowercase() as usize];
        while candidates != 0 {
            let needle = &NEEDLES[candidates.trailing_zeros() as usize];
            candidates &= candidates - 1;
            let n = needle.text.as_bytes();
            if b.len() - i >= n.len() && b[i..i + n.len()].eq_ignore_ascii_case(n) {
                if needle.numbers {
                    return Some(needle);
                }
                found = found.or(Some(needle));
            }
        }
    }
    found
}

/// Keys that are sensitive only as a whole (Relay's `^otp$`, `^two[-_]factor$`).
const EXACT: [&str; 3] = ["otp", "two_factor", "two-factor"];

/// Sentry's structural fields: never scrubbed, at any depth (ids, times, names the product needs, the
/// file names and functions of frames, the user agent; Relay's `DATASCRUBBER_IGNORE` and non-PII fields).
/// Every key is looked up here, so it is a `match` on the lower-cased key (no allocation).
fn is_structural(key: &str) -> bool {
    let mut lower = [0u8; 16];
    let Some(lower) = lower.get_mut(..key.len()) else {
        return false;
    };
    lower.copy_from_slice(key.as_bytes());
    lower.make_ascii_lowercase();
    matches!(
        &*lower,
        b"event_id"
            | b"trace_id"
            | b"span_id"
            | b"parent_span_id"
            | b"segment_id"
            | b"profile_id"
            | b"replay_id"
            | b"timestamp"
            | b"start_timestamp"
            | b"end_timestamp"
            | b"received"
            | b"level"
            | b"platform"
            | b"release"
            | b"dist"
            | b"environment"
            | b"transaction"
            | b"fingerprint"
            | b"modules"
            | b"debug_meta"
            | b"filename"
            | b"abs_path"
            | b"function"
            | b"raw_function"
            | b"module"
            | b"package"
            | b"instruction_addr"
            | b"op"
            | b"status"
            | b"exclusive_time"
            | b"is_segment"
            | b"user-agent"
            | b"splat"
    )
}

/// Fields that hold the client's IP address (Relay's `KNOWN_IP_FIELDS`), removed when IPs are scrubbed.
const IP_FIELDS: [&str; 5] = [
    "ip_address",
    "REMOTE_ADDR",
    "client_ip",
    "client.address",
    "user.ip",
];

fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    text::find_ignore_case(hay.as_bytes(), needle.as_bytes(), 0).is_some()
}

/// One project's rules, ready to run.
#[derive(Debug, Clone)]
pub struct Scrubber {
    defaults: bool,
    ip_addresses: bool,
    /// Lower case.
    sensitive_fields: Vec<String>,
    /// Lower case.
    safe_fields: Vec<String>,
}

impl Scrubber {
    pub fn new(settings: &ScrubSettings) -> Self {
        let lower = |fields: &[String]| {
            fields
                .iter()
                .map(|f| f.trim().to_ascii_lowercase())
                .filter(|f| !f.is_empty())
                .collect()
        };
        Self {
            defaults: settings.defaults,
            ip_addresses: settings.ip_addresses,
            sensitive_fields: lower(&settings.sensitive_fields),
            safe_fields: lower(&settings.safe_fields),
        }
    }

    /// Every rule off: for what Splat writes itself (a monitor's incident).
    pub fn off() -> Self {
        Self {
            defaults: false,
            ip_addresses: false,
            sensitive_fields: Vec::new(),
            safe_fields: Vec::new(),
        }
    }

    /// Nothing to do: every rule is off.
    pub fn is_off(&self) -> bool {
        !self.defaults && !self.ip_addresses && self.sensitive_fields.is_empty()
    }

    /// A whole item's payload (an event, a transaction, a span-v2 container), in place.
    pub fn payload(&self, payload: &mut Value) -> Report {
        let mut walk = Walk::new(self);
        if !self.is_off() {
            walk.value(payload);
        }
        walk.report
    }

    /// An attribute map (`{"key": {"type": …, "value": …}}` or plain values), as log records carry.
    pub fn attributes(&self, attributes: &mut Map<String, Value>) -> Report {
        let mut walk = Walk::new(self);
        if !self.is_off() {
            walk.object(attributes);
        }
        walk.report
    }

    /// A free text (a log body, a message): only the rules that replace what they match.
    pub fn text(&self, text: &mut String) -> Report {
        let mut walk = Walk::new(self);
        if !self.is_off() {
            walk.string(text);
        }
        walk.report
    }

    /// The rule a key calls for, and whether it scrubs numbers too.
    fn sensitive_key(&self, key: &str) -> Option<(Rule, bool)> {
        if self
            .sensitive_fields
            .iter()
            .any(|f| contains_ignore_case(key, f))
        {
            return Some((Rule::SensitiveField, true));
        }
        if !self.defaults {
            return None;
        }
        if EXACT.iter().any(|e| key.eq_ignore_ascii_case(e)) {
            return Some((Rule::Password, true));
        }
        default_needle(key).map(|n| (Rule::Password, n.numbers))
    }

    /// `key` (at `path`, which ends with it) is a safe field: by name, or by a dotted path ending there.
    fn is_safe(&self, key: &str, path: &str) -> bool {
        self.safe_fields.iter().any(|f| {
            key.eq_ignore_ascii_case(f)
                || (f.contains('.')
                    && path.len() >= f.len()
                    && path.as_bytes()[path.len() - f.len()..].eq_ignore_ascii_case(f.as_bytes())
                    && (path.len() == f.len() || path.as_bytes()[path.len() - f.len() - 1] == b'.'))
        })
    }

    /// A string with the rules that look inside strings applied; `None` when nothing matched.
    fn scrub_text(&self, value: &str, applied: &mut Vec<Rule>) -> Option<String> {
        if self
            .sensitive_fields
            .iter()
            .any(|f| contains_ignore_case(value, f))
        {
            applied.push(Rule::SensitiveField);
            return Some(FILTERED.to_owned());
        }
        // One look at the bytes says which rules can match at all: most strings skip every rule.
        let shape = text::Shape::of(value);
        let mut text = Cow::Borrowed(value);
        let mut run = |rule, with, may: bool, find: &dyn Fn(&str) -> Vec<(usize, usize)>| {
            if may {
                text::apply(&mut text, applied, rule, with, find);
            }
        };
        if self.defaults {
            run(Rule::PemKey, FILTERED, shape.dashes >= 10, &text::pem_keys);
            run(Rule::Bearer, FILTERED, shape.bearer, &text::bearer);
            run(Rule::Password, FILTERED, shape.separators, &|s| {
                text::pairs(s, |k| self.sensitive_key(k).map(|(_, numbers)| numbers))
            });
            let url = shape.at && shape.separators;
            run(Rule::UrlAuth, FILTERED, url, &text::url_passwords);
            run(Rule::Creditcard, FILTERED, shape.digits >= 13, &text::cards);
            let iban = shape.digits >= 2 && value.len() >= 15;
            run(Rule::Iban, FILTERED, iban, &text::ibans);
            let ssn = shape.digits >= 9 && shape.dashes >= 2;
            run(Rule::UsSsn, FILTERED, ssn, &text::us_ssns);
        }
        let ip = self.ip_addresses && (shape.dots || shape.separators);
        run(Rule::Ip, IP_REPLACEMENT, ip, &text::ips);
        match text {
            Cow::Owned(changed) => Some(changed),
            Cow::Borrowed(_) => None,
        }
    }
}

/// Field paths listed per rule at most, and how long a listed path may be (keys come from SDKs).
const MAX_PATHS: usize = 20;
const MAX_PATH_LEN: usize = 200;

/// What one scrub did: per rule, the paths of the fields it scrubbed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    rules: Vec<(Rule, Vec<String>, usize)>,
}

/// One rule's part of a [`Report`], as stored in `splat.processing_notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Always `scrubbed`.
    pub kind: &'static str,
    pub rule: &'static str,
    /// The first [`MAX_PATHS`] fields scrubbed (`request.headers.Authorization`,
    /// `exception.values.0.stacktrace.frames.3.vars.token`).
    pub fields: Vec<String>,
    /// How many fields the rule scrubbed.
    pub count: usize,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    fn add(&mut self, rule: Rule, path: &str) {
        let at = match self.rules.iter().position(|(r, _, _)| *r == rule) {
            Some(at) => at,
            None => {
                self.rules.push((rule, Vec::new(), 0));
                self.rules.len() - 1
            }
        };
        let (_, paths, count) = &mut self.rules[at];
        *count += 1;
        if paths.len() < MAX_PATHS {
            let path = if path.is_empty() { "(value)" } else { path };
            paths.push(crate::model::clip(path, MAX_PATH_LEN));
        }
    }

    /// Adds another report's fields.
    pub fn absorb(&mut self, other: Report) {
        for (rule, paths, count) in other.rules {
            for path in &paths {
                self.add(rule, path);
            }
            if let Some((_, _, c)) = self.rules.iter_mut().find(|(r, _, _)| *r == rule) {
                *c += count - paths.len();
            }
        }
    }

    /// The notes to store: one per rule, with paths and never values.
    pub fn notes(&self) -> Vec<Note> {
        self.rules
            .iter()
            .map(|(rule, fields, count)| Note {
                kind: "scrubbed",
                rule: rule.name(),
                fields: fields.clone(),
                count: *count,
            })
            .collect()
    }
}

/// One walk over a value: the path of the field at hand (reused, so no key costs an allocation), and the
/// report.
struct Walk<'a> {
    rules: &'a Scrubber,
    path: String,
    report: Report,
    applied: Vec<Rule>,
}

impl<'a> Walk<'a> {
    fn new(rules: &'a Scrubber) -> Self {
        Self {
            rules,
            path: String::new(),
            report: Report::default(),
            applied: Vec::new(),
        }
    }

    /// Appends `.key` to the path; returns the length to truncate back to.
    fn enter(&mut self, key: &str) -> usize {
        let mark = self.path.len();
        if mark > 0 {
            self.path.push('.');
        }
        self.path.push_str(key);
        mark
    }

    fn object(&mut self, map: &mut Map<String, Value>) {
        for (key, value) in map.iter_mut() {
            let mark = self.enter(key);
            self.field(key, value);
            self.path.truncate(mark);
        }
    }

    /// A value under `key` (the path already ends with it).
    fn field(&mut self, key: &str, value: &mut Value) {
        if matches!(value, Value::Null | Value::Bool(_))
            || is_structural(key)
            || self.rules.is_safe(key, &self.path)
        {
            return;
        }
        if self.rules.ip_addresses && IP_FIELDS.contains(&key) {
            *value = Value::Null;
            self.report.add(Rule::IpField, &self.path);
            return;
        }
        // A typed attribute (`{"type": "string", "value": …}`): its value is scrubbed as the key's own.
        if let Some(inner) = typed_attribute(value) {
            let mark = self.enter("value");
            self.field(key, inner);
            self.path.truncate(mark);
            return;
        }
        if let Some((rule, numbers)) = self.rules.sensitive_key(key) {
            let scrub = match value {
                Value::String(s) => !matches!(
                    s.as_str(),
                    "" | "true" | "false" | "null" | "undefined" | FILTERED
                ),
                Value::Number(_) => numbers,
                _ => true,
            };
            if scrub {
                *value = Value::String(FILTERED.to_owned());
                self.report.add(rule, &self.path);
            }
            return;
        }
        self.value(value);
    }

    fn value(&mut self, value: &mut Value) {
        match value {
            Value::String(s) => self.string(s),
            Value::Object(map) => self.object(map),
            Value::Array(items) => self.array(items),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    /// A list; a `[key, value]` pair (headers, cookies, tags and query strings as SDKs send them) is
    /// scrubbed as the field `key`.
    fn array(&mut self, items: &mut [Value]) {
        if let [Value::String(key), value] = items {
            if looks_like_key(key) {
                let mark = self.enter(key);
                self.field(key, value);
                self.path.truncate(mark);
                return;
            }
        }
        for (i, item) in items.iter_mut().enumerate() {
            let mark = self.enter(&itoa(i));
            self.value(item);
            self.path.truncate(mark);
        }
    }

    fn string(&mut self, s: &mut String) {
        self.applied.clear();
        if let Some(changed) = self.rules.scrub_text(s, &mut self.applied) {
            *s = changed;
            for rule in std::mem::take(&mut self.applied) {
                self.report.add(rule, &self.path);
            }
        }
    }
}

/// The value of a typed attribute, `{"type": "string", "value": …}` (span v2 and log attributes).
fn typed_attribute(value: &mut Value) -> Option<&mut Value> {
    let Value::Object(map) = value else {
        return None;
    };
    let typed = map.len() <= 3 && map.get("type").is_some_and(Value::is_string);
    if typed {
        map.get_mut("value")
    } else {
        None
    }
}

/// A pair's first element names a field: short and without spaces (not a line of source context).
fn looks_like_key(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && !s.bytes().any(|b| b.is_ascii_whitespace())
}

/// An array index as text, without allocating for the common small ones.
fn itoa(i: usize) -> Cow<'static, str> {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(i) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(i.to_string()),
    }
}

#[cfg(test)]
mod tests;
