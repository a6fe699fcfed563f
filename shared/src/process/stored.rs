//! The payload the processor reads and stores for an item: scrubbed first ([`crate::scrub`]), so that
//! nothing read from it (rows, lake files, search text, the payload kept) holds what the rules remove.
//! It is stored as sent when neither scrubbing nor the time rules ([`super::time`]) changed anything;
//! otherwise as the scrubbed value with both kinds of notes under `splat.processing_notes`.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use crate::model;
use crate::protocol::ProjectId;
use crate::scrub::{Report, ScrubSettings, Scrubber};
use crate::store::{Store, StoreError};

use super::time::Note;

/// Each project's scrubber, for one batch.
pub(super) struct Scrubbers {
    saved: HashMap<i64, Scrubber>,
    default: Scrubber,
}

impl Scrubbers {
    /// Every project's settings, read once per batch (one small query): a change on the settings page
    /// applies from the next batch on.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let saved = store.all_scrub_settings().await?;
        Ok(Self {
            saved: saved
                .into_iter()
                .map(|(id, settings)| (id, Scrubber::new(&settings)))
                .collect(),
            default: Scrubber::new(&ScrubSettings::default()),
        })
    }

    pub fn of(&self, project: ProjectId) -> &Scrubber {
        self.saved.get(&project.value()).unwrap_or(&self.default)
    }
}

/// An item's payload, read once and scrubbed.
pub(super) struct Payload<'a> {
    sent: &'a [u8],
    pub value: Value,
    pub scrubbed: Report,
}

impl<'a> Payload<'a> {
    pub fn read(sent: &'a [u8], scrubber: &Scrubber) -> Result<Self, String> {
        let mut value = model::payload_value(sent).map_err(|e| e.to_string())?;
        let scrubbed = scrubber.payload(&mut value);
        Ok(Self {
            sent,
            value,
            scrubbed,
        })
    }

    /// The bytes for a reader of its own: as sent unless scrubbing changed the payload.
    pub fn bytes(&self) -> Cow<'a, [u8]> {
        if self.scrubbed.is_empty() {
            Cow::Borrowed(self.sent)
        } else {
            Cow::Owned(to_vec(&self.value))
        }
    }

    /// What to store: as sent when nothing changed, else the scrubbed value with the notes.
    pub fn stored(self, notes: &[Note]) -> Cow<'a, [u8]> {
        if self.scrubbed.is_empty() && notes.is_empty() {
            return Cow::Borrowed(self.sent);
        }
        let mut value = self.value;
        add_notes(&mut value, notes, &self.scrubbed);
        Cow::Owned(to_vec(&value))
    }
}

/// A payload of notes alone (a streamed transaction has no payload of its own); `None` without notes.
pub(super) fn notes_payload(notes: &[Note], scrubbed: &Report) -> Option<Vec<u8>> {
    if notes.is_empty() && scrubbed.is_empty() {
        return None;
    }
    let mut value = Value::Object(Default::default());
    add_notes(&mut value, notes, scrubbed);
    Some(to_vec(&value))
}

/// A JSON value always serializes (its keys are strings); should that ever fail, nothing is stored
/// rather than what scrubbing removed.
fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The notes under `splat.processing_notes`, after those already there (symbolication's), then time
/// corrections, then scrubbing; the SDK's fields stay as sent.
fn add_notes(value: &mut Value, notes: &[Note], scrubbed: &Report) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    let splat = object
        .entry("splat")
        .or_insert_with(|| Value::Object(Default::default()));
    if !splat.is_object() {
        *splat = Value::Object(Default::default());
    }
    let time = notes.iter().filter_map(|n| serde_json::to_value(n).ok());
    let scrub = scrubbed
        .notes()
        .into_iter()
        .filter_map(|n| serde_json::to_value(n).ok());
    let earlier = match splat.get_mut("processing_notes").map(Value::take) {
        Some(Value::Array(earlier)) => earlier,
        _ => Vec::new(),
    };
    splat["processing_notes"] =
        Value::Array(earlier.into_iter().chain(time).chain(scrub).collect());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::time::Clock;

    const NOW: i64 = 1_780_000_000_000_000;

    #[test]
    fn notes_go_into_the_payload_and_the_sdk_fields_stay_as_sent() {
        let on = Scrubber::new(&ScrubSettings::default());
        let sent = br#"{"timestamp":1,"splat":7,"extra":{"a":1}}"#;
        let untouched = Payload::read(sent, &on).unwrap();
        assert!(matches!(untouched.bytes(), Cow::Borrowed(_)));
        assert!(matches!(untouched.stored(&[]), Cow::Borrowed(_)));
        // A timestamp in 9999 gets a note; the SDK's fields stay.
        let (_, notes) = Clock::at(NOW).event_timestamp(Some(253_402_300_799_000_000));
        let stored = Payload::read(sent, &on).unwrap().stored(&notes);
        let v: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(v["timestamp"], 1);
        assert_eq!(
            v["splat"]["processing_notes"][0]["kind"],
            "future_timestamp"
        );
    }

    #[test]
    fn a_scrubbed_payload_is_stored_scrubbed_with_its_note() {
        let on = Scrubber::new(&ScrubSettings::default());
        let sent = br#"{"extra":{"password":"hunter2"}}"#;
        let payload = Payload::read(sent, &on).unwrap();
        assert!(!String::from_utf8_lossy(&payload.bytes()).contains("hunter2"));
        let stored = payload.stored(&[]);
        let v: Value = serde_json::from_slice(&stored).unwrap();
        assert_eq!(v["extra"]["password"], "[Filtered]");
        let note = &v["splat"]["processing_notes"][0];
        assert_eq!(
            (note["kind"].as_str(), note["rule"].as_str()),
            (Some("scrubbed"), Some("@password:filter"))
        );
        assert_eq!(note["fields"][0], "extra.password");
        assert_eq!(notes_payload(&[], &Report::default()), None);
    }
}
