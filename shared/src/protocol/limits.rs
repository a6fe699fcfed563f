//! Size limits, Relay's defaults (`limits.max_*` in Relay's options). An envelope over any of them is a 413.

use super::{Envelope, ItemType};

#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted on the wire, before decompression.
    pub max_body_bytes: usize,
    /// Largest envelope once decompressed, all items together.
    pub max_envelope_bytes: usize,
    /// Event, transaction, feedback, span and other JSON items.
    pub max_event_bytes: usize,
    pub max_check_in_bytes: usize,
    /// A `log` item: a container of records, each at most `model::log::MAX_RECORD_BYTES` (Relay's
    /// `max_container_size`).
    pub max_log_container_bytes: usize,
    pub max_attachments_bytes: usize,
    pub max_session_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 << 20,
            max_envelope_bytes: 100 << 20,
            max_event_bytes: 1 << 20,
            max_check_in_bytes: 100 << 10,
            max_log_container_bytes: 12 << 20,
            max_attachments_bytes: 100 << 20,
            max_session_items: 100,
        }
    }
}

impl Limits {
    /// Why the envelope is too large, if it is.
    pub fn check(&self, envelope: &Envelope) -> Result<(), String> {
        let (mut attachments, mut sessions) = (0usize, 0usize);
        for item in &envelope.items {
            let size = item.payload.len();
            let cap = match item.ty() {
                ItemType::Event
                | ItemType::Transaction
                | ItemType::Feedback
                | ItemType::UserReport
                | ItemType::Span
                | ItemType::ClientReport => Some(self.max_event_bytes),
                ItemType::Log => Some(self.max_log_container_bytes),
                ItemType::CheckIn => Some(self.max_check_in_bytes),
                ItemType::Attachment
                | ItemType::Profile
                | ItemType::ProfileChunk
                | ItemType::ReplayEvent
                | ItemType::ReplayRecording => {
                    attachments += size;
                    None
                }
                ItemType::Session | ItemType::Sessions => {
                    sessions += 1;
                    Some(self.max_event_bytes)
                }
                // Unknown items only count toward the envelope limit the body already passed.
                ItemType::Unknown(_) => None,
            };
            if let Some(cap) = cap.filter(|cap| size > *cap) {
                return Err(format!(
                    "{} item of {size} bytes exceeds the {cap}-byte limit",
                    item.ty().as_str()
                ));
            }
        }
        if attachments > self.max_attachments_bytes {
            return Err(format!(
                "attachments of {attachments} bytes exceed the {}-byte limit",
                self.max_attachments_bytes
            ));
        }
        if sessions > self.max_session_items {
            return Err(format!(
                "{sessions} session items exceed the limit of {}",
                self.max_session_items
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn envelope(item_type: &str, size: usize, count: usize) -> Envelope {
        let mut raw = b"{}\n".to_vec();
        for _ in 0..count {
            raw.extend_from_slice(
                format!("{{\"type\":\"{item_type}\",\"length\":{size}}}\n").as_bytes(),
            );
            raw.extend(std::iter::repeat_n(b'x', size));
            raw.push(b'\n');
        }
        Envelope::parse(Bytes::from(raw)).unwrap()
    }

    #[test]
    fn event_items_are_capped_at_one_mebibyte() {
        let limits = Limits::default();
        assert!(limits.check(&envelope("event", 1 << 20, 1)).is_ok());
        assert!(limits
            .check(&envelope("event", (1 << 20) + 1, 1))
            .unwrap_err()
            .contains("event item"));
        assert!(limits
            .check(&envelope("transaction", (1 << 20) + 1, 1))
            .is_err());
        assert!(limits
            .check(&envelope("check_in", (100 << 10) + 1, 1))
            .is_err());
        // A log container may hold many records: Relay's 12 MiB.
        assert!(limits.check(&envelope("log", 2 << 20, 1)).is_ok());
        assert!(limits.check(&envelope("log", (12 << 20) + 1, 1)).is_err());
        // Attachments may be large; unknown items are only bound by the envelope size.
        assert!(limits.check(&envelope("attachment", 2 << 20, 1)).is_ok());
        assert!(limits.check(&envelope("mystery", 2 << 20, 1)).is_ok());
    }

    #[test]
    fn attachments_and_sessions_have_totals() {
        let limits = Limits {
            max_attachments_bytes: 100,
            max_session_items: 2,
            ..Limits::default()
        };
        assert!(limits.check(&envelope("attachment", 60, 2)).is_err());
        assert!(limits.check(&envelope("session", 2, 3)).is_err());
        assert!(limits.check(&envelope("session", 2, 2)).is_ok());
    }
}
