//! Timestamps as Relay normalizes them, so that what an SDK claims about time cannot spread rows over
//! the years, pin an issue to the top or make a page read every lake file.
//!
//! Per item, against the time ingest received its envelope:
//! - **Clock drift**: when the envelope's `sent_at` is [`MIN_CLOCK_DRIFT_US`] or more away from the
//!   received time, the SDK's clock is off (a wrong time zone, a device never synced): every timestamp of
//!   the item moves by the difference (Relay's `ClockDriftProcessor` with `MINIMUM_CLOCK_DRIFT`).
//! - **Out of range**: when the item's reference timestamp (an event's or transaction's `timestamp`, a
//!   streamed span's start) is more than [`MAX_FUTURE_US`] in the future or older than the retention
//!   horizon, the whole item moves so that it lands on the received time (Relay's
//!   `normalize_timestamps`: `future_timestamp`, `past_timestamp`).
//! - Any other timestamp of the item still out of range becomes the received time, a start never lies
//!   after its end, and a transaction's spans are clamped into its start and end.
//!
//! What the SDK sent is kept: the payload is stored as sent, with a [`Note`] per correction under
//! `splat.processing_notes` (Relay records the same in `_meta` errors; see [`super::stored`]), shown on
//! the event and transaction pages.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;

use crate::model::time::DAY_US;
use crate::model::SpanRecord;
use crate::protocol::lenient;
use crate::retention::Horizons;

/// How far in the future a timestamp may lie (Relay's default `max_secs_in_future`).
pub const MAX_FUTURE_US: i64 = 60_000_000;

/// The smallest difference between `sent_at` and the received time taken as clock drift rather than
/// network delay (Relay's `MINIMUM_CLOCK_DRIFT`, 55 minutes: it still catches a time zone off by one).
pub const MIN_CLOCK_DRIFT_US: i64 = 55 * 60 * 1_000_000;

/// A span moved into its transaction by less than this is rounding between clocks, not worth a note.
const NOTABLE_MOVE_US: i64 = 1_000_000;

/// Why a timestamp was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    ClockDrift,
    FutureTimestamp,
    PastTimestamp,
    /// Spans that lay outside their transaction's start and end were moved into them.
    SpansClamped,
}

/// One correction, as stored in the payload's `splat.processing_notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub kind: NoteKind,
    /// The payload field corrected: `timestamp`, `start_timestamp`, `end_timestamp` or `spans`.
    pub field: &'static str,
    /// What the SDK sent, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_time: Option<String>,
    /// What Splat stored instead, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_time: Option<String>,
    /// For `spans_clamped`: how many spans moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

fn rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

impl Note {
    fn changed(kind: NoteKind, field: &'static str, sent: i64, stored: i64) -> Self {
        Self {
            kind,
            field,
            sdk_time: Some(rfc3339(sent)),
            stored_time: Some(rfc3339(stored)),
            count: None,
        }
    }

    fn clamped(count: usize) -> Self {
        Self {
            kind: NoteKind::SpansClamped,
            field: "spans",
            sdk_time: None,
            stored_time: None,
            count: Some(count),
        }
    }
}

/// The time rules for the items of one envelope.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    received_us: i64,
    /// Received minus `sent_at`, when that is clock drift; else 0.
    drift_us: i64,
    /// How old an error event may be: `SPLAT_MAX_EVENT_LIFE_DAYS`.
    event_max_age_us: i64,
    /// How old a transaction or span may be: `SPLAT_MAX_TRANSACTION_EVENT_LIFE_DAYS`.
    transaction_max_age_us: i64,
    /// How old a log record may be: `SPLAT_MAX_LOG_LIFE_DAYS`.
    log_max_age_us: i64,
}

/// The kind of item a timestamp belongs to, for its horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Event,
    Transaction,
    Log,
}

impl Clock {
    /// `sent_at` is the envelope header as the SDK wrote it; one that does not parse is ignored.
    pub fn new(received_us: i64, sent_at: Option<&str>, horizons: &Horizons) -> Self {
        let drift_us = sent_at
            .and_then(lenient::parse_timestamp)
            .map(|sent| received_us.saturating_sub(sent))
            .filter(|d| d.unsigned_abs() >= MIN_CLOCK_DRIFT_US as u64)
            .unwrap_or(0);
        Self {
            received_us,
            drift_us,
            event_max_age_us: i64::from(horizons.event_days).saturating_mul(DAY_US),
            transaction_max_age_us: i64::from(horizons.transaction_days).saturating_mul(DAY_US),
            log_max_age_us: i64::from(horizons.log_days).saturating_mul(DAY_US),
        }
    }

    /// Splat's own items (a monitor's incident), stamped now: no drift, the default horizons.
    pub fn at(received_us: i64) -> Self {
        Self::new(received_us, None, &Horizons::default())
    }

    pub fn received_us(&self) -> i64 {
        self.received_us
    }

    fn max_age(&self, kind: ItemKind) -> i64 {
        match kind {
            ItemKind::Event => self.event_max_age_us,
            ItemKind::Transaction => self.transaction_max_age_us,
            ItemKind::Log => self.log_max_age_us,
        }
    }

    /// Why `ts` is out of range, if it is.
    fn out_of_range(&self, ts: i64, kind: ItemKind) -> Option<NoteKind> {
        if ts > self.received_us.saturating_add(MAX_FUTURE_US) {
            Some(NoteKind::FutureTimestamp)
        } else if ts < self.received_us.saturating_sub(self.max_age(kind)) {
            Some(NoteKind::PastTimestamp)
        } else {
            None
        }
    }

    /// How far every timestamp of an item moves, given its reference timestamp, and why; `None` when
    /// nothing moves. An out-of-range reference lands on the received time; otherwise drift applies.
    fn shift(&self, reference: i64, kind: ItemKind) -> Option<(i64, NoteKind)> {
        let drifted = reference.saturating_add(self.drift_us);
        match self.out_of_range(drifted, kind) {
            Some(why) => Some((self.received_us.saturating_sub(reference), why)),
            None => (self.drift_us != 0).then_some((self.drift_us, NoteKind::ClockDrift)),
        }
    }

    /// An error event's timestamp (the received time when it has none) and the notes on it.
    pub fn event_timestamp(&self, sent: Option<i64>) -> (i64, Vec<Note>) {
        let Some(sent) = sent else {
            return (self.received_us, Vec::new());
        };
        match self.shift(sent, ItemKind::Event) {
            Some((by, why)) => {
                let stored = sent.saturating_add(by);
                (stored, vec![Note::changed(why, "timestamp", sent, stored)])
            }
            None => (sent, Vec::new()),
        }
    }

    /// A log record's timestamp, by the event's rules with the logs' horizon, and why it moved if it did.
    pub fn log_timestamp(&self, sent: i64) -> (i64, Option<NoteKind>) {
        match self.shift(sent, ItemKind::Log) {
            Some((by, why)) => (sent.saturating_add(by), Some(why)),
            None => (sent, None),
        }
    }

    /// A transaction's root and spans, normalized in place: the whole moves with its end (`timestamp`),
    /// a start still out of range becomes the received time (never after the end), and the spans are
    /// clamped into the root's start and end.
    pub fn transaction(&self, root: &mut SpanRecord, spans: &mut [SpanRecord]) -> Vec<Note> {
        let kind = ItemKind::Transaction;
        let mut notes = Vec::new();
        let sent_start = root.start_us;
        let reference = match (root.end_us, root.start_us) {
            (Some(end), _) => Some(("timestamp", end)),
            (None, start) => start.map(|s| ("start_timestamp", s)),
        };
        if let Some((field, sent, (by, why))) =
            reference.and_then(|(f, sent)| Some((f, sent, self.shift(sent, kind)?)))
        {
            for span in std::iter::once(&mut *root).chain(spans.iter_mut()) {
                move_by(span, by);
            }
            notes.push(Note::changed(why, field, sent, sent.saturating_add(by)));
        }
        notes.extend(self.bound_start(root, sent_start, kind));
        let (Some(start), Some(end)) = (root.start_us.or(root.end_us), root.end_us) else {
            // No window to clamp into (a root without an end): each span keeps to the range on its own.
            for span in spans {
                self.streamed_span(span);
            }
            return notes;
        };
        let moved = spans
            .iter_mut()
            .map(|span| clamp_into(span, start, end))
            .filter(|&by| by >= NOTABLE_MOVE_US)
            .count();
        if moved > 0 {
            notes.push(Note::clamped(moved));
        }
        notes
    }

    /// One span-v2 item's spans, normalized in place, with each span's notes: every span on its own
    /// ([`Clock::streamed_span`]), then the children sent with their segment clamped into it (children
    /// arriving in other envelopes cannot be: their segment may not exist yet).
    pub fn streamed(&self, spans: &mut [SpanRecord]) -> Vec<Vec<Note>> {
        let mut notes: Vec<Vec<Note>> = spans.iter_mut().map(|s| self.streamed_span(s)).collect();
        let segments: HashMap<(String, String), usize> = spans
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_segment)
            .map(|(i, s)| ((s.trace_id.clone(), s.span_id.clone()), i))
            .collect();
        // Per span: its segment in this item, and that segment's start and end.
        let windows: Vec<Option<(usize, i64, i64)>> = spans
            .iter()
            .map(|span| {
                let id = span.segment_id.as_ref().filter(|_| !span.is_segment)?;
                let &seg = segments.get(&(span.trace_id.clone(), id.clone()))?;
                let end = spans[seg].end_us?;
                Some((seg, spans[seg].start_us.unwrap_or(end), end))
            })
            .collect();
        let mut moved = vec![0; spans.len()];
        for (span, window) in spans.iter_mut().zip(windows) {
            if let Some((seg, start, end)) = window {
                if clamp_into(span, start, end) >= NOTABLE_MOVE_US {
                    moved[seg] += 1;
                }
            }
        }
        for (seg, count) in moved.into_iter().enumerate().filter(|(_, n)| *n > 0) {
            notes[seg].push(Note::clamped(count));
        }
        notes
    }

    /// A streamed span on its own: the whole moves with its start (Relay's reference timestamp for
    /// span v2), then an end still out of range becomes the received time.
    pub fn streamed_span(&self, span: &mut SpanRecord) -> Vec<Note> {
        let kind = ItemKind::Transaction;
        let sent = span.start_us;
        let mut notes = Vec::new();
        if let Some((by, why)) = span.start_us.and_then(|s| self.shift(s, kind)) {
            move_by(span, by);
            if let (Some(from), Some(to)) = (sent, span.start_us) {
                notes.push(Note::changed(why, "start_timestamp", from, to));
            }
        }
        let sent_end = span.end_us;
        if let Some(why) = span.end_us.and_then(|e| self.out_of_range(e, kind)) {
            span.end_us = Some(self.received_us);
            notes
                .extend(sent_end.map(|e| Note::changed(why, "end_timestamp", e, self.received_us)));
        }
        // A segment sent without an end ends when it was received, in its span row as in its transaction:
        // that row leads a late child to its transaction's hour (store/transaction_keys.rs).
        if span.is_segment && span.end_us.is_none() {
            span.end_us = Some(self.received_us);
        }
        keep_order(span);
        notes
    }

    /// A start still out of range after the shift becomes the received time, and a start after its end
    /// becomes the end; the note says what the SDK sent (`sent`) and what is stored.
    fn bound_start(
        &self,
        span: &mut SpanRecord,
        sent: Option<i64>,
        kind: ItemKind,
    ) -> Option<Note> {
        let why = span.start_us.and_then(|s| self.out_of_range(s, kind));
        if why.is_some() {
            span.start_us = Some(self.received_us);
        }
        keep_order(span);
        Some(Note::changed(
            why?,
            "start_timestamp",
            sent?,
            span.start_us?,
        ))
    }
}

fn move_by(span: &mut SpanRecord, by: i64) {
    span.start_us = span.start_us.map(|t| t.saturating_add(by));
    span.end_us = span.end_us.map(|t| t.saturating_add(by));
}

/// A start never lies after its end.
fn keep_order(span: &mut SpanRecord) {
    if let (Some(start), Some(end)) = (span.start_us, span.end_us) {
        span.start_us = Some(start.min(end));
    }
}

/// Clamps the span into `start..=end`; returns how far it moved (the larger of its two ends' moves).
fn clamp_into(span: &mut SpanRecord, start: i64, end: i64) -> i64 {
    // Callers pass an ordered window; `clamp` would panic on one that is not.
    let end = end.max(start);
    let (old_start, old_end) = (span.start_us, span.end_us);
    span.start_us = old_start.map(|s| s.clamp(start, end));
    span.end_us = old_end.map(|e| e.clamp(span.start_us.unwrap_or(start), end));
    let moved = |old: Option<i64>, new: Option<i64>| match (old, new) {
        (Some(o), Some(n)) => o.abs_diff(n).min(i64::MAX as u64) as i64,
        _ => 0,
    };
    moved(old_start, span.start_us).max(moved(old_end, span.end_us))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_000_000;
    const SEC: i64 = 1_000_000;
    const HOUR: i64 = 3_600 * SEC;

    fn clock(sent_at: Option<&str>) -> Clock {
        Clock::new(NOW, sent_at, &Horizons::default())
    }

    fn span(id: &str, start: i64, end: i64) -> SpanRecord {
        SpanRecord {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_span_id: None,
            segment_id: Some("root".into()),
            is_segment: false,
            name: None,
            op: None,
            status: None,
            start_us: Some(start),
            end_us: Some(end),
            data: None,
            db_system: None,
        }
    }

    #[test]
    fn an_sdk_clock_an_hour_behind_is_corrected_by_sent_at() {
        let sent_at = rfc3339(NOW - HOUR);
        let c = clock(Some(&sent_at));
        let (ts, notes) = c.event_timestamp(Some(NOW - HOUR - 5 * SEC));
        assert_eq!(ts, NOW - 5 * SEC);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].kind, NoteKind::ClockDrift);
        assert_eq!(
            notes[0].sdk_time.as_deref(),
            Some(rfc3339(NOW - HOUR - 5 * SEC).as_str())
        );
        // The same for a transaction and its spans: everything moves by the drift.
        let mut root = span("root", NOW - HOUR - 2 * SEC, NOW - HOUR - SEC);
        let mut spans = [span("a", NOW - HOUR - 2 * SEC, NOW - HOUR - SEC)];
        let notes = c.transaction(&mut root, &mut spans);
        assert_eq!(
            (root.start_us, root.end_us),
            (Some(NOW - 2 * SEC), Some(NOW - SEC))
        );
        assert_eq!(spans[0].start_us, Some(NOW - 2 * SEC));
        assert_eq!(
            notes.iter().map(|n| n.kind).collect::<Vec<_>>(),
            [NoteKind::ClockDrift]
        );
    }

    #[test]
    fn a_small_difference_is_network_delay_not_drift() {
        // 54 minutes between sent_at and arrival: left alone (Relay's 55-minute minimum).
        let c = clock(Some(&rfc3339(NOW - 54 * 60 * SEC)));
        assert_eq!(
            c.event_timestamp(Some(NOW - 10 * SEC)),
            (NOW - 10 * SEC, vec![])
        );
        // An unreadable sent_at is ignored; no timestamp at all means the received time.
        assert_eq!(
            clock(Some("soon")).event_timestamp(Some(NOW - SEC)).0,
            NOW - SEC
        );
        assert_eq!(clock(None).event_timestamp(None), (NOW, vec![]));
    }

    #[test]
    fn future_and_past_events_land_on_the_received_time_and_keep_the_original() {
        let c = clock(None);
        // Up to 60 s ahead is tolerated.
        assert_eq!(c.event_timestamp(Some(NOW + 59 * SEC)).0, NOW + 59 * SEC);
        let year_9999 = 253_402_300_799 * SEC;
        let (ts, notes) = c.event_timestamp(Some(year_9999));
        assert_eq!(ts, NOW);
        assert_eq!(notes[0].kind, NoteKind::FutureTimestamp);
        assert_eq!(
            notes[0].sdk_time.as_deref(),
            Some("9999-12-31T23:59:59.000000Z")
        );
        assert_eq!(notes[0].stored_time, Some(rfc3339(NOW)));
        // Older than the 90-day event horizon; 89 days is kept.
        let (ts, notes) = c.event_timestamp(Some(NOW - 91 * DAY_US));
        assert_eq!((ts, notes[0].kind), (NOW, NoteKind::PastTimestamp));
        assert_eq!(
            c.event_timestamp(Some(NOW - 89 * DAY_US)).0,
            NOW - 89 * DAY_US
        );
        // A shorter horizon is honoured.
        let short = Horizons {
            event_days: 7,
            ..Horizons::default()
        };
        let c = Clock::new(NOW, None, &short);
        assert_eq!(c.event_timestamp(Some(NOW - 8 * DAY_US)).0, NOW);
        // A sent_at far in the future cannot make a future timestamp pass either.
        let c = clock(Some(&rfc3339(NOW + 400 * DAY_US)));
        assert_eq!(c.event_timestamp(Some(year_9999)).0, NOW);
    }

    #[test]
    fn log_records_keep_to_the_logs_horizon() {
        let c = clock(None);
        assert_eq!(
            c.log_timestamp(NOW - 29 * DAY_US),
            (NOW - 29 * DAY_US, None)
        );
        assert_eq!(
            c.log_timestamp(NOW - 31 * DAY_US),
            (NOW, Some(NoteKind::PastTimestamp))
        );
        assert_eq!(
            c.log_timestamp(NOW + 3_600_000_000),
            (NOW, Some(NoteKind::FutureTimestamp))
        );
        let drifted = clock(Some(&rfc3339(NOW - 2 * 3_600_000_000)));
        assert_eq!(
            drifted.log_timestamp(NOW - 2 * 3_600_000_000),
            (NOW, Some(NoteKind::ClockDrift))
        );
    }

    #[test]
    fn a_transaction_from_1970_to_9999_collapses_onto_the_received_time() {
        let (start, end) = (0, 253_402_300_799 * SEC);
        let mut root = span("root", start, end);
        let step = (end - start) / 1_000;
        let mut spans: Vec<SpanRecord> = (0..1_000)
            .map(|i| span(&format!("s{i}"), start + i * step, start + (i + 1) * step))
            .collect();
        let notes = clock(None).transaction(&mut root, &mut spans);
        assert_eq!((root.start_us, root.end_us), (Some(NOW), Some(NOW)));
        for s in &spans {
            assert_eq!((s.start_us, s.end_us), (Some(NOW), Some(NOW)));
        }
        let kinds: Vec<_> = notes.iter().map(|n| (n.kind, n.field)).collect();
        assert_eq!(
            kinds,
            [
                (NoteKind::FutureTimestamp, "timestamp"),
                (NoteKind::PastTimestamp, "start_timestamp"),
                (NoteKind::SpansClamped, "spans"),
            ]
        );
        assert_eq!(
            notes[1].sdk_time.as_deref(),
            Some("1970-01-01T00:00:00.000000Z")
        );
        assert_eq!(notes[2].count, Some(1_000));
    }

    #[test]
    fn spans_are_clamped_into_their_transaction() {
        let mut root = span("root", NOW - 10 * SEC, NOW - 5 * SEC);
        let mut spans = [
            // Inside: untouched.
            span("in", NOW - 9 * SEC, NOW - 8 * SEC),
            // Starts before the root and ends after it.
            span("wide", NOW - 100 * SEC, NOW + 100 * SEC),
            // A millisecond early: moved, but not worth a note.
            span("early", NOW - 10 * SEC - 1_000, NOW - 9 * SEC),
        ];
        let notes = clock(None).transaction(&mut root, &mut spans);
        assert_eq!(
            (spans[0].start_us, spans[0].end_us),
            (Some(NOW - 9 * SEC), Some(NOW - 8 * SEC))
        );
        assert_eq!(
            (spans[1].start_us, spans[1].end_us),
            (Some(NOW - 10 * SEC), Some(NOW - 5 * SEC))
        );
        assert_eq!(spans[2].start_us, Some(NOW - 10 * SEC));
        assert_eq!(notes, [Note::clamped(1)]);
        // A start after its end is turned around to the end.
        let mut root = span("root", NOW - SEC, NOW - 2 * SEC);
        clock(None).transaction(&mut root, &mut []);
        assert_eq!(root.start_us, Some(NOW - 2 * SEC));
    }

    #[test]
    fn streamed_spans_move_with_their_start_and_children_keep_inside_their_segment() {
        let segment = |start, end| SpanRecord {
            is_segment: true,
            segment_id: Some("seg".into()),
            ..span("seg", start, end)
        };
        // A segment from 1970 moves as a whole onto the received time (its start is the reference).
        let mut spans = [segment(0, 10 * SEC)];
        let notes = clock(None).streamed(&mut spans);
        assert_eq!(
            (spans[0].start_us, spans[0].end_us),
            (Some(NOW), Some(NOW + 10 * SEC))
        );
        assert_eq!(
            (notes[0][0].kind, notes[0][0].field),
            (NoteKind::PastTimestamp, "start_timestamp")
        );
        // Children sent with their segment keep inside it; an end in 9999 is replaced first.
        let mut spans = [
            segment(NOW - 10 * SEC, NOW - 5 * SEC),
            SpanRecord {
                segment_id: Some("seg".into()),
                ..span("a", NOW - 20 * SEC, NOW + 30 * SEC)
            },
            SpanRecord {
                segment_id: Some("seg".into()),
                ..span("b", NOW - 8 * SEC, 253_402_300_799 * SEC)
            },
        ];
        let notes = clock(None).streamed(&mut spans);
        assert_eq!(
            (spans[1].start_us, spans[1].end_us),
            (Some(NOW - 10 * SEC), Some(NOW - 5 * SEC))
        );
        assert_eq!(
            (spans[2].start_us, spans[2].end_us),
            (Some(NOW - 8 * SEC), Some(NOW - 5 * SEC))
        );
        assert_eq!(notes[0], [Note::clamped(2)]);
        assert_eq!(
            (notes[2][0].kind, notes[2][0].field),
            (NoteKind::FutureTimestamp, "end_timestamp")
        );
        assert!(notes[1].is_empty());
    }

    #[test]
    fn a_segment_sent_without_an_end_ends_when_received_and_a_child_keeps_none() {
        let mut spans = [
            SpanRecord {
                is_segment: true,
                end_us: None,
                ..span("seg", NOW - 10 * SEC, 0)
            },
            SpanRecord {
                end_us: None,
                ..span("a", NOW - 8 * SEC, 0)
            },
        ];
        clock(None).streamed(&mut spans);
        assert_eq!(spans[0].end_us, Some(NOW));
        assert_eq!(spans[1].end_us, None);
    }
}
