//! Data categories: what a quota counts and what `X-Sentry-Rate-Limits` names, with Relay's names
//! (`relay-base-schema`'s `DataCategory`) so that every SDK recognises them.

use std::fmt;

use super::envelope::{Item, ItemType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataCategory {
    /// Items of a type Splat does not know (Relay's catch-all).
    Default,
    /// Error events (Relay's `error`; message events are errors too).
    Error,
    Transaction,
    Span,
    /// Attachments, counted per item (Relay's `attachment` counts bytes; an SDK stops sending
    /// attachments on either).
    Attachment,
    /// Session updates and aggregates.
    Session,
    /// Cron check-ins.
    Monitor,
    /// User feedback (Relay's `UserReportV2`, named `feedback` on the wire); old user reports count here.
    Feedback,
    Profile,
    ProfileChunk,
    Replay,
    /// Log entries (`log_item`).
    LogItem,
    /// Bytes of log entries (`log_byte`): a log item counts its records as `log_item` and its payload's
    /// size here, as Relay counts them.
    LogByte,
}

impl DataCategory {
    /// Every category, in the order headers list them.
    pub const ALL: [DataCategory; 13] = [
        Self::Default,
        Self::Error,
        Self::Transaction,
        Self::Span,
        Self::Attachment,
        Self::Session,
        Self::Monitor,
        Self::Feedback,
        Self::Profile,
        Self::ProfileChunk,
        Self::Replay,
        Self::LogItem,
        Self::LogByte,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Error => "error",
            Self::Transaction => "transaction",
            Self::Span => "span",
            Self::Attachment => "attachment",
            Self::Session => "session",
            Self::Monitor => "monitor",
            Self::Feedback => "feedback",
            Self::Profile => "profile",
            Self::ProfileChunk => "profile_chunk",
            Self::Replay => "replay",
            Self::LogItem => "log_item",
            Self::LogByte => "log_byte",
        }
    }

    /// The category named `name` (Relay's name; `check_in` and `log` are accepted for the item types).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        let alias = match name.as_str() {
            "check_in" | "cron" => "monitor",
            "log" => "log_item",
            "user_report" => "feedback",
            other => other,
        };
        Self::ALL.into_iter().find(|c| c.name() == alias)
    }

    /// What an item counts as. `None` for client reports: Relay never limits them (they report
    /// what was dropped).
    pub fn of_item_type(ty: &ItemType) -> Option<Self> {
        Some(match ty {
            ItemType::Event => Self::Error,
            ItemType::Transaction => Self::Transaction,
            ItemType::Span => Self::Span,
            ItemType::Attachment => Self::Attachment,
            ItemType::Session | ItemType::Sessions => Self::Session,
            ItemType::CheckIn => Self::Monitor,
            ItemType::Feedback | ItemType::UserReport => Self::Feedback,
            ItemType::Profile => Self::Profile,
            ItemType::ProfileChunk => Self::ProfileChunk,
            ItemType::ReplayEvent | ItemType::ReplayRecording => Self::Replay,
            ItemType::Log => Self::LogItem,
            ItemType::ClientReport => return None,
            ItemType::Unknown(_) => Self::Default,
        })
    }

    /// Every category an item counts in, with how many: its own ([`Self::of_item_type`], [`Self::quantity`]),
    /// and for a log item also its bytes.
    pub fn counts(item: &Item) -> impl Iterator<Item = (Self, u64)> {
        let own = Self::of_item_type(item.ty()).map(|c| (c, Self::quantity(item)));
        let bytes =
            (*item.ty() == ItemType::Log).then(|| (Self::LogByte, item.payload.len() as u64));
        own.into_iter().chain(bytes)
    }

    /// How many of its category an item is: a span or log container says so in `item_count`.
    pub fn quantity(item: &Item) -> u64 {
        match item.ty() {
            ItemType::Span | ItemType::Log => item.headers.item_count.unwrap_or(1).max(1),
            _ => 1,
        }
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_items_map_as_relay() {
        for c in DataCategory::ALL {
            assert_eq!(DataCategory::from_name(c.name()), Some(c));
        }
        assert_eq!(
            DataCategory::from_name("check_in"),
            Some(DataCategory::Monitor)
        );
        assert_eq!(DataCategory::from_name("nope"), None);
        let of = |t: &str| DataCategory::of_item_type(&ItemType::parse(t));
        assert_eq!(of("event"), Some(DataCategory::Error));
        assert_eq!(of("check_in"), Some(DataCategory::Monitor));
        assert_eq!(of("feedback"), Some(DataCategory::Feedback));
        assert_eq!(of("client_report"), None);
        assert_eq!(of("something_new"), Some(DataCategory::Default));
        assert_eq!(
            DataCategory::from_name("log_byte"),
            Some(DataCategory::LogByte)
        );
    }

    #[test]
    fn a_log_item_counts_its_records_and_its_bytes() {
        let raw = b"{}\n{\"type\":\"log\",\"item_count\":3,\"length\":12}\n{\"items\":[]}\n";
        let envelope = super::super::Envelope::parse(bytes::Bytes::from_static(raw)).unwrap();
        let counts: Vec<_> = DataCategory::counts(&envelope.items[0]).collect();
        assert_eq!(
            counts,
            [(DataCategory::LogItem, 3), (DataCategory::LogByte, 12)]
        );
    }
}
