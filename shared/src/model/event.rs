//! An error event as SDKs send it, read leniently: exceptions as a list or `{values}`, chained exceptions,
//! threads, `logentry` or `message`, tags as a map or pairs, timestamps as RFC 3339 or float seconds. A
//! field of the wrong type is treated as absent; only a payload that is not a JSON object fails.

use serde_json::{Map, Value};

use super::{tag_pairs, PayloadError};
use crate::protocol::lenient;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub timestamp_us: Option<i64>,
    pub level: Option<String>,
    pub platform: Option<String>,
    pub logger: Option<String>,
    pub transaction: Option<String>,
    pub server_name: Option<String>,
    pub release: Option<String>,
    pub dist: Option<String>,
    pub environment: Option<String>,
    /// The formatted message (`logentry.formatted`, or the legacy `message` string).
    pub message: Option<String>,
    /// The message template (`logentry.message` with `%s`/`{}`), which grouping prefers.
    pub message_template: Option<String>,
    /// Oldest cause first; the last is the one raised.
    pub exceptions: Vec<Exception>,
    pub threads: Vec<Thread>,
    pub tags: Vec<(String, String)>,
    pub fingerprint: Option<Vec<String>>,
    pub user: Option<User>,
    pub request: Option<Request>,
    pub breadcrumbs: Vec<Breadcrumb>,
    pub sdk_name: Option<String>,
    pub sdk_version: Option<String>,
    pub trace_id: Option<String>,
    pub contexts: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exception {
    pub ty: Option<String>,
    pub value: Option<String>,
    pub module: Option<String>,
    pub mechanism: Option<Mechanism>,
    pub stacktrace: Option<Stacktrace>,
    /// The stack trace as the SDK sent it, when source maps rewrote `stacktrace` (Sentry's name).
    pub raw_stacktrace: Option<Stacktrace>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mechanism {
    pub ty: Option<String>,
    pub handled: Option<bool>,
    pub synthetic: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stacktrace {
    /// Caller first; the last frame is where it happened.
    pub frames: Vec<Frame>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub filename: Option<String>,
    pub abs_path: Option<String>,
    pub function: Option<String>,
    pub raw_function: Option<String>,
    pub module: Option<String>,
    pub package: Option<String>,
    pub lineno: Option<i64>,
    pub colno: Option<i64>,
    pub context_line: Option<String>,
    pub pre_context: Vec<String>,
    pub post_context: Vec<String>,
    pub in_app: Option<bool>,
    pub vars: Option<Value>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thread {
    pub id: Option<String>,
    pub name: Option<String>,
    pub crashed: bool,
    pub current: bool,
    pub stacktrace: Option<Stacktrace>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    pub id: Option<String>,
    pub email: Option<String>,
    pub username: Option<String>,
    pub ip_address: Option<String>,
}

impl User {
    /// The identity used to count affected users: id, else email, else username, else IP.
    pub fn key(&self) -> Option<String> {
        let tagged = |prefix: &str, v: &Option<String>| v.as_ref().map(|v| format!("{prefix}:{v}"));
        tagged("id", &self.id)
            .or_else(|| tagged("email", &self.email))
            .or_else(|| tagged("username", &self.username))
            .or_else(|| tagged("ip", &self.ip_address))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    pub url: Option<String>,
    pub method: Option<String>,
    pub query_string: Option<String>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breadcrumb {
    pub timestamp_us: Option<i64>,
    pub ty: Option<String>,
    pub category: Option<String>,
    pub message: Option<String>,
    pub level: Option<String>,
    pub data: Option<Value>,
}

/// A non-empty string at `key`, or a number or bool rendered as one.
fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn int(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Value, key: &str) -> Option<bool> {
    v.get(key)?.as_bool()
}

fn timestamp(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(n) => lenient::parse_timestamp(&n.to_string()),
        Value::String(s) => lenient::parse_timestamp(s),
        _ => None,
    }
}

/// A list, or a `{"values": [...]}` wrapper around one (both shapes are on the wire).
fn values(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Array(items)) => items,
        Some(Value::Object(map)) => map
            .get("values")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        _ => &[],
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map_or_else(Vec::new, |items| {
        items
            .iter()
            .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
            .collect()
    })
}

/// Tags and headers, as `(key, text)`; a key sent with `null` is left out.
fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    let render = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    v.into_iter()
        .flat_map(tag_pairs)
        .filter_map(|(k, v)| Some((k.to_owned(), render(v)?)))
        .collect()
}

fn stacktrace(v: Option<&Value>) -> Option<Stacktrace> {
    let frames: Vec<Frame> = v?
        .get("frames")?
        .as_array()?
        .iter()
        .filter(|f| f.is_object())
        .map(frame)
        .collect();
    Some(Stacktrace { frames })
}

fn frame(f: &Value) -> Frame {
    Frame {
        filename: text(f, "filename"),
        abs_path: text(f, "abs_path"),
        function: text(f, "function"),
        raw_function: text(f, "raw_function"),
        module: text(f, "module"),
        package: text(f, "package"),
        lineno: int(f, "lineno"),
        colno: int(f, "colno"),
        context_line: text(f, "context_line"),
        pre_context: strings(f.get("pre_context")),
        post_context: strings(f.get("post_context")),
        in_app: boolean(f, "in_app"),
        vars: f.get("vars").filter(|v| v.is_object()).cloned(),
        platform: text(f, "platform"),
    }
}

fn exception(e: &Value) -> Exception {
    let mechanism = e
        .get("mechanism")
        .filter(|m| m.is_object())
        .map(|m| Mechanism {
            ty: text(m, "type"),
            handled: boolean(m, "handled"),
            synthetic: boolean(m, "synthetic").unwrap_or(false),
        });
    Exception {
        ty: text(e, "type"),
        value: text(e, "value"),
        module: text(e, "module"),
        mechanism,
        stacktrace: stacktrace(e.get("stacktrace")),
        raw_stacktrace: stacktrace(e.get("raw_stacktrace")),
    }
}

impl Event {
    pub fn from_payload(payload: &[u8]) -> Result<Self, PayloadError> {
        Ok(Self::from_value(&super::payload_value(payload)?))
    }

    pub fn from_value(v: &Value) -> Self {
        let logentry = v.get("logentry").filter(|l| l.is_object());
        // `message` is a string in old SDKs and a logentry-shaped object in some others.
        let message_obj = v.get("message").filter(|m| m.is_object());
        let message = logentry
            .and_then(|l| text(l, "formatted"))
            .or_else(|| {
                v.get("message")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            })
            .or_else(|| message_obj.and_then(|m| text(m, "formatted")))
            .or_else(|| logentry.and_then(|l| text(l, "message")))
            .or_else(|| message_obj.and_then(|m| text(m, "message")));
        let message_template = logentry
            .and_then(|l| text(l, "message"))
            .or_else(|| message_obj.and_then(|m| text(m, "message")));
        let user = v.get("user").filter(|u| u.is_object()).map(|u| User {
            id: text(u, "id"),
            email: text(u, "email"),
            username: text(u, "username"),
            ip_address: text(u, "ip_address"),
        });
        let request = v.get("request").filter(|r| r.is_object()).map(|r| Request {
            url: text(r, "url"),
            method: text(r, "method"),
            query_string: text(r, "query_string"),
            headers: pairs(r.get("headers")),
        });
        let contexts = v
            .get("contexts")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let trace_id = contexts.get("trace").and_then(|t| text(t, "trace_id"));
        let fingerprint = v
            .get("fingerprint")
            .and_then(Value::as_array)
            .map(|f| strings(Some(&Value::Array(f.clone()))))
            .filter(|f| !f.is_empty());
        Self {
            timestamp_us: timestamp(v, "timestamp"),
            level: text(v, "level"),
            platform: text(v, "platform"),
            logger: text(v, "logger"),
            transaction: text(v, "transaction"),
            server_name: text(v, "server_name"),
            release: text(v, "release"),
            dist: text(v, "dist"),
            environment: text(v, "environment"),
            message,
            message_template,
            exceptions: values(v.get("exception"))
                .iter()
                .filter(|e| e.is_object())
                .map(exception)
                .collect(),
            threads: values(v.get("threads"))
                .iter()
                .filter(|t| t.is_object())
                .map(|t| Thread {
                    id: text(t, "id"),
                    name: text(t, "name"),
                    crashed: boolean(t, "crashed").unwrap_or(false),
                    current: boolean(t, "current").unwrap_or(false),
                    stacktrace: stacktrace(t.get("stacktrace")),
                })
                .collect(),
            tags: pairs(v.get("tags")),
            fingerprint,
            user,
            request,
            breadcrumbs: values(v.get("breadcrumbs"))
                .iter()
                .filter(|b| b.is_object())
                .map(|b| Breadcrumb {
                    timestamp_us: timestamp(b, "timestamp"),
                    ty: text(b, "type"),
                    category: text(b, "category"),
                    message: text(b, "message"),
                    level: text(b, "level"),
                    data: b.get("data").filter(|d| d.is_object()).cloned(),
                })
                .collect(),
            sdk_name: v.get("sdk").and_then(|s| text(s, "name")),
            sdk_version: v.get("sdk").and_then(|s| text(s, "version")),
            trace_id,
            contexts,
        }
    }

    /// The exception that was raised (the last in the chain).
    pub fn main_exception(&self) -> Option<&Exception> {
        self.exceptions.last()
    }

    /// The stack trace shown first and used for the culprit: the raised exception's, else the crashed thread's.
    pub fn main_stacktrace(&self) -> Option<&Stacktrace> {
        self.exceptions
            .iter()
            .rev()
            .find_map(|e| e.stacktrace.as_ref().filter(|s| !s.frames.is_empty()))
            .or_else(|| {
                self.threads
                    .iter()
                    .find(|t| t.crashed || t.current)
                    .and_then(|t| t.stacktrace.as_ref())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape_sdks_send() {
        let e = Event::from_payload(
            br#"{"exception":[{"type":"KeyError","value":"'a'","mechanism":{"type":"generic","handled":false},
                  "stacktrace":{"frames":[{"filename":"app.py","function":"main","lineno":"10","in_app":true,"pre_context":["a","b"],"vars":{"x":"1"}}]}}],
                "tags":[["browser","Firefox"],["os","Linux"]],"user":{"id":42,"email":"a@b.c"},
                "logentry":{"message":"failed %s","formatted":"failed bob"},
                "breadcrumbs":{"values":[{"timestamp":1700000000.0,"category":"sql","message":"SELECT 1"}]},
                "threads":{"values":[{"id":1,"crashed":true,"stacktrace":{"frames":[]}}]},
                "fingerprint":["{{ default }}","x"], "request":{"url":"http://h/p","method":"GET","headers":{"Accept":"*/*"}}}"#,
        )
        .unwrap();
        assert_eq!(e.exceptions[0].ty.as_deref(), Some("KeyError"));
        assert_eq!(
            e.exceptions[0].mechanism.as_ref().unwrap().handled,
            Some(false)
        );
        let f = &e.exceptions[0].stacktrace.as_ref().unwrap().frames[0];
        assert_eq!(
            (f.lineno, f.in_app, f.pre_context.len()),
            (Some(10), Some(true), 2)
        );
        assert_eq!(
            e.tags,
            vec![
                ("browser".into(), "Firefox".into()),
                ("os".into(), "Linux".into())
            ]
        );
        assert_eq!(e.user.unwrap().key().unwrap(), "id:42");
        assert_eq!(
            (e.message.as_deref(), e.message_template.as_deref()),
            (Some("failed bob"), Some("failed %s"))
        );
        assert_eq!(e.breadcrumbs[0].category.as_deref(), Some("sql"));
        assert!(e.threads[0].crashed);
        assert_eq!(e.fingerprint.unwrap(), vec!["{{ default }}", "x"]);
        assert_eq!(
            e.request.unwrap().headers,
            vec![("Accept".into(), "*/*".into())]
        );
    }

    #[test]
    fn odd_fields_are_absent_not_fatal() {
        let e = Event::from_payload(br#"{"exception":{"values":"no"},"tags":"x","user":[],"breadcrumbs":7,"fingerprint":[],"message":{"formatted":"f"}}"#).unwrap();
        assert!(
            e.exceptions.is_empty()
                && e.tags.is_empty()
                && e.user.is_none()
                && e.breadcrumbs.is_empty()
                && e.fingerprint.is_none()
        );
        assert_eq!(e.message.as_deref(), Some("f"));
        assert!(Event::from_payload(b"[]").is_err());
    }
}
