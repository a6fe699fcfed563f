//! How the database holds log records: in blocks, one row for the records of one `log` item that lie within
//! a minute of each other (at most [`MAX_RECORDS`] and about [`MAX_BYTES`] of them), not a row each.
//!
//! Records come by the hundred and are read by the page: a row, five index entries and a text-index
//! document per record made storing three times slower than its budget (issue 20), almost all of it in
//! SQLite's B-trees and FTS5's merging of one small document per record. A block is one row, one document
//! of its distinct text (a trigram that a hundred records share is indexed once), one index entry per level
//! it holds and one per trace. A read walks blocks newest first and checks each record of a block it opens.
//!
//! A block's records are a JSON array of arrays, in time order (so SQL still reads them: the `logs` view
//! of migration 32), each `[timestamp, received_at, level, severity_number, body, trace_id, span_id,
//! environment, release, attributes]`. A record's id is its block's origin (derived from the queue message
//! that carried it, so a redelivered item finds its block) and its place in the block: the id finds the
//! record without an index of its own.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::logs::{LogRow, StoredLog};
use super::{Result, StoreError};

/// The widest a block's records spread in time: a read that wants records before a time opens the blocks
/// whose newest record is at most this much after it.
pub(super) const SPAN_US: i64 = 60_000_000;

/// Most records in a block: a page opens few and small blocks.
const MAX_RECORDS: usize = 500;

/// Most bytes of body and attributes in a block (one record alone may pass it).
const MAX_BYTES: usize = 1 << 20;

/// One block to write: its project, origin and the batch's rows it holds, oldest first.
#[derive(Debug, PartialEq)]
pub(super) struct Block {
    pub project_id: i64,
    pub origin: i64,
    pub rows: Vec<usize>,
}

/// The batch's rows in blocks: each item's records (the rows of one project and origin) in time order, cut
/// where the next would spread the block over more than [`SPAN_US`] or pass a size limit.
pub(super) fn blocks_of(rows: &[LogRow]) -> Vec<Block> {
    let item = |i: usize| (rows[i].log.project_id, rows[i].origin);
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (item(i), rows[i].log.timestamp_us));
    let mut blocks = Vec::new();
    for items in order.chunk_by(|&a, &b| item(a) == item(b)) {
        let mut current: Vec<usize> = Vec::new();
        let (mut bytes, mut n) = (0, 0);
        for &i in items {
            let log = &rows[i].log;
            let size = log.body.len() + log.attributes.len();
            let full = current.first().is_some_and(|&first| {
                log.timestamp_us - rows[first].log.timestamp_us > SPAN_US
                    || current.len() == MAX_RECORDS
                    || bytes + size > MAX_BYTES
            });
            if full {
                blocks.push(block(item(i), n, std::mem::take(&mut current)));
                (bytes, n) = (0, n + 1);
            }
            current.push(i);
            bytes += size;
        }
        blocks.push(block(item(items[0]), n, current));
    }
    blocks
}

fn block((project_id, origin): (i64, u64), n: usize, rows: Vec<usize>) -> Block {
    Block {
        project_id,
        origin: block_origin(origin, n as u64),
        rows,
    }
}

/// A block's origin: its item's, mixed with the block's place among the item's (SplitMix64's finalizer;
/// a redelivered item is cut the same way, so its blocks get the same origins).
fn block_origin(item: u64, n: u64) -> i64 {
    let mut x = item ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) as i64
}

/// The id of the record at `position` in the block of `origin`: 32 hex digits (as the `logs` view spells
/// it, `printf('%016llx%016llx', origin, position)`).
pub fn log_id(origin: i64, position: usize) -> String {
    format!("{:016x}{:016x}", origin as u64, position as u64)
}

/// The block origin and position a record's id names.
pub(super) fn parse_log_id(id: &str) -> Option<(i64, usize)> {
    if id.len() != 32 || !id.is_ascii() {
        return None;
    }
    let origin = u64::from_str_radix(&id[..16], 16).ok()? as i64;
    let position = usize::try_from(u64::from_str_radix(&id[16..], 16).ok()?).ok()?;
    Some((origin, position))
}

/// The block's records as it stores them (see the module's docs).
pub(super) fn records_json(rows: &[LogRow], block: &Block) -> String {
    let mut out = String::with_capacity(
        block
            .rows
            .iter()
            .map(|&i| rows[i].log.body.len() + rows[i].log.attributes.len() + 160)
            .sum(),
    );
    out.push('[');
    for (n, &i) in block.rows.iter().enumerate() {
        let (row, l) = (&rows[i], &rows[i].log);
        if n > 0 {
            out.push(',');
        }
        let fields = (
            l.timestamp_us,
            row.received_at_us,
            &l.level,
            l.severity_number,
            &l.body,
            &l.trace_id,
            &l.span_id,
            &l.environment,
            &l.release,
        );
        // A tuple of plain values always serializes; the attributes are JSON already.
        let fields = serde_json::to_string(&fields).unwrap_or_default();
        out.push_str(fields.strip_suffix(']').unwrap_or(&fields));
        out.push(',');
        out.push_str(if l.attributes.is_empty() {
            "{}"
        } else {
            &l.attributes
        });
        out.push(']');
    }
    out.push(']');
    out
}

/// What the block's text index document holds: each distinct searchable value of its records
/// ([`crate::model::log::searchable_text`]), one per line.
pub(super) fn text(rows: &[LogRow], block: &Block) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for value in block.rows.iter().flat_map(|&i| rows[i].text.iter()) {
        if seen.insert(value.as_str()) {
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// The distinct levels of the block's records, as a JSON array.
pub(super) fn levels_json(rows: &[LogRow], block: &Block) -> String {
    let levels: HashSet<&str> = block
        .rows
        .iter()
        .map(|&i| rows[i].log.level.as_str())
        .collect();
    serde_json::to_string(&levels).unwrap_or_else(|_| "[]".into())
}

/// The distinct `[hour, trace id]` of the block's records that name a trace, as a JSON array.
pub(super) fn traces_json(rows: &[LogRow], block: &Block) -> String {
    let traces: HashSet<(i64, &str)> = block
        .rows
        .iter()
        .filter_map(|&i| {
            let l = &rows[i].log;
            Some((
                super::event_keys::hour(l.timestamp_us),
                l.trace_id.as_deref()?,
            ))
        })
        .collect();
    serde_json::to_string(&traces).unwrap_or_else(|_| "[]".into())
}

/// One record as its block holds it, its text borrowed from the block's where it can be: a read checks
/// many records and keeps few, so it makes a [`StoredLog`] only of those it keeps.
#[derive(serde::Deserialize)]
pub(super) struct RawRecord<'a> {
    pub timestamp: i64,
    _received_at: i64,
    #[serde(borrow)]
    pub level: Cow<'a, str>,
    severity_number: Option<i64>,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
    #[serde(borrow)]
    pub trace_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    span_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    environment: Option<Cow<'a, str>>,
    #[serde(borrow)]
    release: Option<Cow<'a, str>>,
    #[serde(borrow)]
    attributes: &'a RawValue,
}

impl RawRecord<'_> {
    /// Whether its searchable text ([`crate::model::log::searchable_text`]) holds `lowercase` (ASCII
    /// letters compared without case, as LIKE compares them).
    pub fn holds_text(&self, lowercase: &str) -> bool {
        let attributes: Map<String, Value> =
            serde_json::from_str(self.attributes.get()).unwrap_or_default();
        let held = crate::model::log::searchable_text(&self.body, &attributes)
            .any(|value| value.to_ascii_lowercase().contains(lowercase));
        held
    }

    /// The record as the pages show it, with its id.
    pub fn to_stored(&self, origin: i64, position: usize) -> StoredLog {
        let owned = |s: &Option<Cow<'_, str>>| s.as_deref().map(str::to_owned);
        StoredLog {
            log_id: log_id(origin, position),
            timestamp: self.timestamp,
            level: self.level.clone().into_owned(),
            severity_number: self.severity_number,
            body: self.body.clone().into_owned(),
            trace_id: owned(&self.trace_id),
            span_id: owned(&self.span_id),
            environment: owned(&self.environment),
            release: owned(&self.release),
            attributes: self.attributes.get().to_owned(),
        }
    }
}

/// A block's records, in its order.
pub(super) fn decode(origin: i64, records: &str) -> Result<Vec<RawRecord<'_>>> {
    serde_json::from_str(records)
        .map_err(|e| StoreError::Invalid(format!("log block {origin:016x}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::LogFact;

    fn row(origin: u64, project: i64, ts: i64, body: &str) -> LogRow {
        LogRow::new(
            LogFact {
                project_id: project,
                timestamp_us: ts,
                log_id: String::new(),
                trace_id: Some("ab".repeat(16)),
                span_id: None,
                level: "info".into(),
                severity_number: Some(9),
                body: body.into(),
                environment: Some("prod".into()),
                release: None,
                sdk_name: None,
                attributes: r#"{"n":{"type":"integer","value":3}}"#.into(),
            },
            ts + 5,
            origin,
        )
    }

    #[test]
    fn an_items_records_go_in_time_order_and_a_minute_apart_in_another_block() {
        let rows = vec![
            row(1, 1, 3_000_000, "c"),
            row(1, 1, 1_000_000, "a"),
            row(1, 1, 1_000_000 + SPAN_US + 1, "late"),
            row(1, 1, 2_000_000, "b"),
            row(2, 1, 1_000_000, "other item"),
            row(1, 1, 2_500_000, "the same item again"),
        ];
        let blocks = blocks_of(&rows);
        let kept: Vec<Vec<usize>> = blocks.iter().map(|b| b.rows.clone()).collect();
        assert_eq!(kept, [vec![1, 3, 5, 0], vec![2], vec![4]]);
        let origins: HashSet<i64> = blocks.iter().map(|b| b.origin).collect();
        assert_eq!(origins.len(), 3);
        assert_eq!(blocks_of(&rows), blocks, "a redelivery is cut the same way");
    }

    #[test]
    fn records_read_back_as_written_with_ids_that_name_their_place() {
        let rows = vec![row(9, 1, 2_000, "two"), row(9, 1, 1_000, "one \"quoted\"")];
        let [block] = <[Block; 1]>::try_from(blocks_of(&rows)).unwrap();
        let json = records_json(&rows, &block);
        let read: Vec<StoredLog> = decode(block.origin, &json)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(n, r)| r.to_stored(block.origin, n))
            .collect();
        let bodies: Vec<&str> = read.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(bodies, ["one \"quoted\"", "two"]);
        assert_eq!(read[0].timestamp, 1_000);
        assert_eq!(read[0].trace_id.as_deref(), Some(&*"ab".repeat(16)));
        assert_eq!(read[1].attributes, r#"{"n":{"type":"integer","value":3}}"#);
        assert_eq!(
            parse_log_id(&read[1].log_id),
            Some((block.origin, 1)),
            "{}",
            read[1].log_id
        );
        assert_eq!(parse_log_id("not an id"), None);
        assert_eq!(parse_log_id(&"é".repeat(16)), None);
    }

    #[test]
    fn attributes_that_are_not_json_cannot_spoil_their_block() {
        let mut bad = row(9, 1, 1_000, "bad");
        bad.log.attributes = "{not json".into();
        let bad = LogRow::new(bad.log, 0, 9);
        let rows = vec![bad, row(9, 1, 2_000, "good")];
        let [block] = <[Block; 1]>::try_from(blocks_of(&rows)).unwrap();
        let json = records_json(&rows, &block);
        let read = decode(block.origin, &json).unwrap();
        let stored: Vec<StoredLog> = read
            .iter()
            .enumerate()
            .map(|(n, r)| r.to_stored(block.origin, n))
            .collect();
        assert_eq!(stored[0].attributes, "{}");
        assert_eq!(stored[1].body, "good");
    }

    #[test]
    fn the_text_holds_each_value_once() {
        let rows = vec![row(9, 1, 2_000, "same"), row(9, 1, 1_000, "same")];
        let [block] = <[Block; 1]>::try_from(blocks_of(&rows)).unwrap();
        assert_eq!(text(&rows, &block), "same\n3\n");
    }
}
