//! The Sentry envelope, framed exactly as the spec and Relay frame it.
//!
//! ```text
//! {"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://key@host/42"}\n   <- envelope headers
//! {"type":"event","length":41}\n                                                  <- item headers
//! {"message":"hello world","level":"error"}\n                                     <- payload (41 bytes)
//! {"type":"session"}\n                                                            <- no length: the payload
//! {"sid":"…"}                                                                     <- runs to the next \n or EOF
//! ```
//!
//! A `\r` before a newline belongs to the payload; the final newline is optional; an envelope may hold no
//! items; unknown item types are kept as [`ItemType::Unknown`] so that the caller decides to skip them.
//! Payloads are zero-copy slices of the body.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::EventId;

/// Why an envelope could not be framed. Every variant is the client's fault (a 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope is empty")]
    Empty,
    #[error("invalid envelope header: {0}")]
    InvalidHeader(String),
    #[error("invalid item header at byte {offset}: {reason}")]
    InvalidItemHeader { offset: usize, reason: String },
    #[error("item at byte {offset} declares length {length} but the envelope ends first")]
    UnexpectedEof { offset: usize, length: usize },
    #[error("item payload at byte {offset} is not followed by a newline")]
    MissingNewline { offset: usize },
    #[error("envelope has more than {0} items")]
    TooManyItems(usize),
}

/// The envelope-level headers. Unknown keys are kept in `other` so nothing an SDK sends is lost.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvelopeHeaders {
    #[serde(default, deserialize_with = "super::lenient::event_id")]
    pub event_id: Option<EventId>,
    #[serde(default, deserialize_with = "super::lenient::string")]
    pub dsn: Option<String>,
    #[serde(default, deserialize_with = "super::lenient::string")]
    pub sent_at: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What an item carries. Every variant Relay knows that Splat treats differently is named; the rest are
/// `Unknown`, which callers accept and count but never fail on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ItemType {
    Event,
    Transaction,
    Span,
    Attachment,
    Session,
    Sessions,
    ClientReport,
    CheckIn,
    Log,
    Feedback,
    UserReport,
    Profile,
    ProfileChunk,
    ReplayEvent,
    ReplayRecording,
    // Keep `Unknown` last: a type this build does not know yet.
    Unknown(String),
}

impl ItemType {
    pub fn parse(name: &str) -> Self {
        match name {
            "event" => Self::Event,
            "transaction" => Self::Transaction,
            "span" => Self::Span,
            "attachment" => Self::Attachment,
            "session" => Self::Session,
            "sessions" => Self::Sessions,
            "client_report" => Self::ClientReport,
            "check_in" => Self::CheckIn,
            "log" => Self::Log,
            "feedback" => Self::Feedback,
            "user_report" => Self::UserReport,
            "profile" => Self::Profile,
            "profile_chunk" => Self::ProfileChunk,
            "replay_event" => Self::ReplayEvent,
            "replay_recording" => Self::ReplayRecording,
            other => Self::Unknown(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Event => "event",
            Self::Transaction => "transaction",
            Self::Span => "span",
            Self::Attachment => "attachment",
            Self::Session => "session",
            Self::Sessions => "sessions",
            Self::ClientReport => "client_report",
            Self::CheckIn => "check_in",
            Self::Log => "log",
            Self::Feedback => "feedback",
            Self::UserReport => "user_report",
            Self::Profile => "profile",
            Self::ProfileChunk => "profile_chunk",
            Self::ReplayEvent => "replay_event",
            Self::ReplayRecording => "replay_recording",
            Self::Unknown(name) => name,
        }
    }

    /// Items whose payload creates an event: at most one per envelope, and it gets the envelope's event id.
    pub fn creates_event(&self) -> bool {
        match self {
            Self::Event | Self::Transaction | Self::Feedback => true,
            Self::Span
            | Self::Attachment
            | Self::Session
            | Self::Sessions
            | Self::ClientReport
            | Self::CheckIn
            | Self::Log
            | Self::UserReport
            | Self::Profile
            | Self::ProfileChunk
            | Self::ReplayEvent
            | Self::ReplayRecording => false,
            // An unknown type cannot be an event we understand: claiming it would steal the envelope's id.
            Self::Unknown(_) => false,
        }
    }

    /// Items whose payload must be a JSON object; the ingest checks them so a malformed one is a 400 now,
    /// not a poison message later.
    pub fn is_json(&self) -> bool {
        match self {
            Self::Event
            | Self::Transaction
            | Self::Span
            | Self::Session
            | Self::Sessions
            | Self::ClientReport
            | Self::CheckIn
            | Self::Log
            | Self::Feedback
            | Self::UserReport => true,
            Self::Attachment
            | Self::Profile
            | Self::ProfileChunk
            | Self::ReplayEvent
            | Self::ReplayRecording => false,
            // Unknown payloads are opaque: we neither parse nor reject them.
            Self::Unknown(_) => false,
        }
    }
}

/// One item's headers. `type` is required; unknown keys are kept.
#[derive(Debug, Clone)]
pub struct ItemHeaders {
    pub ty: ItemType,
    pub length: Option<usize>,
    pub content_type: Option<String>,
    pub item_count: Option<u64>,
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub headers: ItemHeaders,
    pub payload: Bytes,
}

impl Item {
    pub fn ty(&self) -> &ItemType {
        &self.headers.ty
    }
}

#[derive(Debug, Clone)]
pub struct Envelope {
    pub headers: EnvelopeHeaders,
    pub items: Vec<Item>,
}

/// An envelope never needs more items than this; a body of a million empty items is an attack, not data.
pub const MAX_ITEMS: usize = 10_000;

impl Envelope {
    /// Frames `body` into headers and items. Payloads are not parsed.
    pub fn parse(body: Bytes) -> Result<Self, EnvelopeError> {
        if body.is_empty() {
            return Err(EnvelopeError::Empty);
        }
        let (header_line, mut pos) = next_line(&body, 0);
        let headers: EnvelopeHeaders = serde_json::from_slice(header_line)
            .map_err(|e| EnvelopeError::InvalidHeader(e.to_string()))?;
        let mut items = Vec::new();
        while pos < body.len() {
            let (line, after_header) = next_line(&body, pos);
            if line.is_empty() {
                // A blank line between items (or trailing) carries nothing; Relay skips it too.
                pos = after_header;
                continue;
            }
            if items.len() == MAX_ITEMS {
                return Err(EnvelopeError::TooManyItems(MAX_ITEMS));
            }
            let item_headers = parse_item_headers(line, pos)?;
            let (payload, next) = match item_headers.length {
                Some(length) => {
                    let end = after_header
                        .checked_add(length)
                        .filter(|end| *end <= body.len())
                        .ok_or(EnvelopeError::UnexpectedEof {
                            offset: pos,
                            length,
                        })?;
                    match body.get(end) {
                        None => (body.slice(after_header..end), end),
                        Some(b'\n') => (body.slice(after_header..end), end + 1),
                        Some(_) => return Err(EnvelopeError::MissingNewline { offset: pos }),
                    }
                }
                None => {
                    let (payload, next) = next_line(&body, after_header);
                    let start = after_header.min(body.len());
                    (body.slice(start..start + payload.len()), next)
                }
            };
            items.push(Item {
                headers: item_headers,
                payload,
            });
            pos = next;
        }
        Ok(Envelope { headers, items })
    }

    /// The envelope as bytes again, every item with an explicit length (the form Python and Rust SDKs send).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut headers = self.headers.other.clone();
        if let Some(id) = &self.headers.event_id {
            headers.insert("event_id".into(), Value::String(id.to_string()));
        }
        if let Some(dsn) = &self.headers.dsn {
            headers.insert("dsn".into(), Value::String(dsn.clone()));
        }
        if let Some(sent_at) = &self.headers.sent_at {
            headers.insert("sent_at".into(), Value::String(sent_at.clone()));
        }
        out.extend_from_slice(Value::Object(headers).to_string().as_bytes());
        out.push(b'\n');
        for item in &self.items {
            let mut h = item.headers.other.clone();
            h.insert("type".into(), Value::String(item.ty().as_str().to_owned()));
            h.insert("length".into(), Value::from(item.payload.len()));
            if let Some(ct) = &item.headers.content_type {
                h.insert("content_type".into(), Value::String(ct.clone()));
            }
            if let Some(n) = item.headers.item_count {
                h.insert("item_count".into(), Value::from(n));
            }
            out.extend_from_slice(Value::Object(h).to_string().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&item.payload);
            out.push(b'\n');
        }
        out
    }

    /// The single item that creates an event, if any.
    pub fn event_item(&self) -> Option<&Item> {
        self.items.iter().find(|item| item.ty().creates_event())
    }
}

/// The line starting at `pos` (without its `\n`) and the position after the newline.
fn next_line(body: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = body.get(pos..).unwrap_or_default();
    match memchr::memchr(b'\n', rest) {
        Some(n) => (&rest[..n], pos + n + 1),
        None => (rest, body.len()),
    }
}

fn parse_item_headers(line: &[u8], offset: usize) -> Result<ItemHeaders, EnvelopeError> {
    let invalid = |reason: String| EnvelopeError::InvalidItemHeader { offset, reason };
    let mut map: Map<String, Value> =
        serde_json::from_slice(line).map_err(|e| invalid(e.to_string()))?;
    let ty = match map.remove("type") {
        Some(Value::String(name)) => ItemType::parse(&name),
        _ => return Err(invalid("missing item type".into())),
    };
    let length = match map.remove("length") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n <= u32::MAX as u64)
                .ok_or_else(|| invalid(format!("length {v} is not a byte count")))?
                as usize,
        ),
    };
    let content_type = match map.remove("content_type") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let item_count = map.get("item_count").and_then(Value::as_u64);
    map.remove("item_count");
    Ok(ItemHeaders {
        ty,
        length,
        content_type,
        item_count,
        other: map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Envelope, EnvelopeError> {
        Envelope::parse(Bytes::copy_from_slice(raw))
    }

    #[test]
    fn spec_example_with_lengths_crlf_and_attachment() {
        let raw = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42\"}\n\
{\"type\":\"attachment\",\"length\":10,\"content_type\":\"text/plain\",\"filename\":\"hello.txt\"}\n\
\xef\xbb\xbfHello\r\n\n\
{\"type\":\"event\",\"length\":41,\"content_type\":\"application/json\",\"filename\":\"application.log\"}\n\
{\"message\":\"hello world\",\"level\":\"error\"}\n";
        let env = parse(raw).unwrap();
        assert_eq!(
            env.headers.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
        assert_eq!(env.items.len(), 2);
        assert_eq!(env.items[0].ty(), &ItemType::Attachment);
        assert_eq!(&env.items[0].payload[..], b"\xef\xbb\xbfHello\r\n");
        assert_eq!(env.items[0].headers.other["filename"], "hello.txt");
        assert_eq!(
            &env.items[1].payload[..],
            br#"{"message":"hello world","level":"error"}"#
        );
    }

    #[test]
    fn items_without_length_and_no_trailing_newline() {
        let raw = b"{}\n{\"type\":\"event\"}\n{\"message\":\"a\"}\n{\"type\":\"session\"}\n{\"sid\":\"x\"}";
        let env = parse(raw).unwrap();
        assert_eq!(env.items.len(), 2);
        assert_eq!(&env.items[0].payload[..], br#"{"message":"a"}"#);
        assert_eq!(&env.items[1].payload[..], br#"{"sid":"x"}"#);
    }

    #[test]
    fn empty_payloads_with_and_without_length() {
        let env =
            parse(b"{}\n{\"type\":\"attachment\",\"length\":0}\n\n{\"type\":\"attachment\"}\n")
                .unwrap();
        assert_eq!(env.items.len(), 2);
        assert!(env.items.iter().all(|i| i.payload.is_empty()));
        let env = parse(b"{}\n{\"type\":\"attachment\",\"length\":0}").unwrap();
        assert_eq!(env.items.len(), 1);
    }

    #[test]
    fn headers_only_envelope_has_no_items() {
        assert!(parse(b"{}").unwrap().items.is_empty());
        assert!(parse(b"{}\n").unwrap().items.is_empty());
    }

    #[test]
    fn unknown_item_types_are_kept_not_rejected() {
        let env = parse(b"{}\n{\"type\":\"brand_new\",\"length\":3}\nabc\n").unwrap();
        assert_eq!(env.items[0].ty(), &ItemType::Unknown("brand_new".into()));
        assert!(!env.items[0].ty().creates_event());
    }

    #[test]
    fn length_past_the_end_is_an_error() {
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":100}\n{}"),
            Err(EnvelopeError::UnexpectedEof { .. })
        ));
        // A length near usize::MAX must not overflow.
        assert!(parse(b"{}\n{\"type\":\"event\",\"length\":4294967295}\n{}").is_err());
    }

    #[test]
    fn payload_not_followed_by_newline_is_an_error() {
        assert_eq!(
            parse(b"{}\n{\"type\":\"event\",\"length\":2}\n{}X").unwrap_err(),
            EnvelopeError::MissingNewline { offset: 3 }
        );
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(matches!(parse(b""), Err(EnvelopeError::Empty)));
        assert!(matches!(
            parse(b"not json\n"),
            Err(EnvelopeError::InvalidHeader(_))
        ));
        assert!(matches!(
            parse(b"[]\n"),
            Err(EnvelopeError::InvalidHeader(_))
        ));
        assert!(matches!(
            parse(b"{}\n{\"length\":2}\n{}"),
            Err(EnvelopeError::InvalidItemHeader { .. })
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":-1}\n{}"),
            Err(EnvelopeError::InvalidItemHeader { .. })
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"event\",\"length\":\"2\"}\n{}"),
            Err(EnvelopeError::InvalidItemHeader { .. })
        ));
    }

    #[test]
    fn dashed_event_ids_are_accepted_and_bad_ones_ignored() {
        let env = parse(b"{\"event_id\":\"9ec79c33-ec99-42ab-8353-589fcb2e04dc\"}\n").unwrap();
        assert_eq!(
            env.headers.event_id.unwrap().to_string(),
            "9ec79c33ec9942ab8353589fcb2e04dc"
        );
    }

    #[test]
    fn round_trip_keeps_items_and_unknown_headers() {
        let raw = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"sdk\":{\"name\":\"x\"}}\n{\"type\":\"event\",\"filename\":\"f\"}\n{\"a\":1}";
        let env = parse(raw).unwrap();
        let again = parse(&env.to_bytes()).unwrap();
        assert_eq!(again.headers.other["sdk"]["name"], "x");
        assert_eq!(again.items[0].headers.other["filename"], "f");
        assert_eq!(again.items[0].headers.length, Some(7));
        assert_eq!(&again.items[0].payload[..], b"{\"a\":1}");
    }

    #[test]
    fn framing_again_is_a_fixed_point_for_any_number() {
        // Found by fuzzing (README finding 7): `1.8e+25` read back one ulp off and printed as
        // `1.7999999999999999e+25`, which read back as the first number again, and so on.
        for number in [
            "17999999999999999999999999",
            "1.8e+25",
            "1.7955949e+37",
            "1795594899999999999999999999999999999",
            "-2.2250738585072011e-308",
            "0.1",
        ] {
            let raw = format!("{{\"n\":{number}}}\n{{\"type\":\"event\",\"x\":{number}}}\n{{}}\n");
            let once = parse(raw.as_bytes()).unwrap().to_bytes();
            let twice = parse(&once).unwrap().to_bytes();
            assert_eq!(
                String::from_utf8_lossy(&twice),
                String::from_utf8_lossy(&once),
                "{number}"
            );
        }
    }

    #[test]
    fn too_many_items_is_an_error() {
        let mut raw = b"{}\n".to_vec();
        for _ in 0..=MAX_ITEMS {
            raw.extend_from_slice(b"{\"type\":\"x\",\"length\":0}\n\n");
        }
        assert_eq!(
            parse(&raw).unwrap_err(),
            EnvelopeError::TooManyItems(MAX_ITEMS)
        );
    }
}
