//! Trained zstd dictionaries for stored payloads. Every payload is its own zstd frame, and a frame of a few KB
//! compresses poorly alone: the keys, SDK names, module paths and frames it shares with the project's other
//! payloads are written out again in each. Once a processor has stored [`TRAIN_ON`] payloads of a project in
//! a table, it trains a dictionary from the newest of them (`zstd::dict::from_samples`) and stores it here;
//! the project's later payloads in that table are compressed with it (688 → 82 bytes per error of the Python
//! SDK's shape, about a third of the database bytes written per event at volume: BENCHMARKS.md).
//!
//! A frame names its dictionary: zstd writes the dictionary's id in the frame header. Rows compressed before
//! a dictionary existed, or without one, name none and still decode ([`Store::payload_bytes`]).

use std::collections::{HashMap, HashSet};
use std::io::Read;

use zstd::bulk::Compressor;

use super::{Result, Store, StoreError};

/// Payloads of one project in one table that a processor stores before it trains their dictionary.
pub const TRAIN_ON: usize = 200;
/// A dictionary's size: zstd's default; more did not compress the measured payloads better.
const DICTIONARY_BYTES: usize = 16 * 1024;
/// zstd's level for payloads (what they were always compressed at).
const LEVEL: i32 = 3;

/// The tables whose payloads get a dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadTable {
    Events,
    Transactions,
}

impl PayloadTable {
    fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Transactions => "transactions",
        }
    }

    /// The newest stored payloads of a project in this table.
    fn newest(self) -> &'static str {
        match self {
            Self::Events => {
                "SELECT payload FROM events WHERE project_id = ?1 AND payload IS NOT NULL ORDER BY id DESC LIMIT ?2"
            }
            Self::Transactions => {
                "SELECT payload FROM transactions WHERE project_id = ?1 AND payload IS NOT NULL ORDER BY id DESC LIMIT ?2"
            }
        }
    }
}

/// Compresses payloads as they are stored, with each project's dictionary once it has one; counts what it
/// compressed without one, so that the processor knows when to train ([`Packer::due`]). Its compression
/// contexts are reused (a context per payload showed in profiles), each dictionary loaded into its own once.
pub struct Packer {
    plain: Compressor<'static>,
    dictionaries: HashMap<(i64, PayloadTable), Compressor<'static>>,
    packed: HashMap<(i64, PayloadTable), usize>,
    /// Training failed for these (too few distinct bytes, say): not tried again by this processor.
    failed: HashSet<(i64, PayloadTable)>,
}

impl Default for Packer {
    fn default() -> Self {
        Self {
            plain: Compressor::new(LEVEL).expect("zstd level 3 is valid"),
            dictionaries: HashMap::new(),
            packed: HashMap::new(),
            failed: HashSet::new(),
        }
    }
}

impl Packer {
    /// A payload as stored: a zstd frame, with the project's dictionary for `table` when it has one.
    pub fn pack(&mut self, project: i64, table: PayloadTable, payload: &[u8]) -> Vec<u8> {
        let compressor = match self.dictionaries.get_mut(&(project, table)) {
            Some(compressor) => compressor,
            None => {
                *self.packed.entry((project, table)).or_default() += 1;
                &mut self.plain
            }
        };
        compressor
            .compress(payload)
            .expect("in-memory zstd cannot fail")
    }

    /// Uses `dictionary` for the project's payloads in `table` from now on (a dictionary zstd refuses is
    /// not used: the payloads stay plain).
    pub fn add(&mut self, project: i64, table: PayloadTable, dictionary: &[u8]) {
        self.packed.remove(&(project, table));
        match Compressor::with_dictionary(LEVEL, dictionary) {
            Ok(compressor) => {
                self.dictionaries.insert((project, table), compressor);
            }
            Err(_) => self.give_up(project, table),
        }
    }

    /// The projects and tables with [`TRAIN_ON`] payloads packed without a dictionary, to train now.
    pub fn due(&self) -> Vec<(i64, PayloadTable)> {
        self.packed
            .iter()
            .filter(|(key, n)| **n >= TRAIN_ON && !self.failed.contains(key))
            .map(|(key, _)| *key)
            .collect()
    }

    /// Training for this project and table failed: it is not due again.
    pub fn give_up(&mut self, project: i64, table: PayloadTable) {
        self.failed.insert((project, table));
    }
}

impl Store {
    /// Every stored dictionary, for a processor's [`Packer`]: (project, table, dictionary).
    pub async fn payload_dictionaries(&self) -> Result<Vec<(i64, PayloadTable, Vec<u8>)>> {
        let mut rows = self
            .conn()
            .query(
                "SELECT project_id, kind, dictionary FROM payload_dictionaries ORDER BY created_at",
                (),
            )
            .await?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().await? {
            let table = match row.get::<String>(1)?.as_str() {
                "events" => PayloadTable::Events,
                "transactions" => PayloadTable::Transactions,
                _ => continue,
            };
            out.push((row.get(0)?, table, row.get(2)?));
        }
        Ok(out)
    }

    /// Trains the project's dictionary for `table` from its newest [`TRAIN_ON`] payloads and stores it;
    /// returns it, or `None` when zstd could not train one from them.
    pub async fn train_payload_dictionary(
        &self,
        project: i64,
        table: PayloadTable,
    ) -> Result<Option<Vec<u8>>> {
        let mut rows = self
            .conn()
            .query(table.newest(), (project, TRAIN_ON as i64))
            .await?;
        let mut samples = Vec::new();
        while let Some(row) = rows.next().await? {
            let frame: Vec<u8> = row.get(0)?;
            samples.push(self.payload_bytes(&frame, MAX_PAYLOAD_BYTES).await?);
        }
        let Ok(dictionary) = zstd::dict::from_samples(&samples, DICTIONARY_BYTES) else {
            return Ok(None);
        };
        let Some(id) = zstd::zstd_safe::get_dict_id_from_dict(&dictionary) else {
            return Ok(None);
        };
        // The id is a hash of the dictionary: another project's, equal or colliding, keeps its row, and
        // this project stays without one (its frames must name a dictionary that decodes them).
        let stored = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO payload_dictionaries (dict_id, project_id, kind, dictionary, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                libsql::params![
                    i64::from(id.get()),
                    project,
                    table.name(),
                    dictionary.clone(),
                    super::now_us()
                ],
            )
            .await?;
        Ok((stored == 1).then_some(dictionary))
    }

    /// A stored payload's bytes, at most `limit` of them: the zstd frame decoded with the dictionary it
    /// names, if any.
    pub async fn payload_bytes(&self, frame: &[u8], limit: u64) -> Result<Vec<u8>> {
        let corrupt = |e: std::io::Error| StoreError::Invalid(format!("corrupt payload: {e}"));
        let mut out = Vec::new();
        match zstd::zstd_safe::get_dict_id_from_frame(frame) {
            None => zstd::stream::read::Decoder::new(frame)
                .map_err(corrupt)?
                .take(limit)
                .read_to_end(&mut out),
            Some(id) => {
                let mut rows = self
                    .conn()
                    .query(
                        "SELECT dictionary FROM payload_dictionaries WHERE dict_id = ?1",
                        [i64::from(id.get())],
                    )
                    .await?;
                let Some(row) = rows.next().await? else {
                    return Err(StoreError::Invalid(format!(
                        "payload dictionary {id} is missing"
                    )));
                };
                let dictionary: Vec<u8> = row.get(0)?;
                zstd::stream::read::Decoder::with_dictionary(frame, &dictionary)
                    .map_err(corrupt)?
                    .take(limit)
                    .read_to_end(&mut out)
            }
        }
        .map_err(corrupt)?;
        Ok(out)
    }
}

/// What a stored payload may decode to, at most (ingest's limits keep every payload far below).
pub const MAX_PAYLOAD_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// An error payload of one shape, with its own ids and numbers.
    fn payload(i: usize) -> Vec<u8> {
        serde_json::json!({
            "event_id": format!("{:032x}", i * 7919),
            "exception": {"values": [{"type": "ValueError", "value": format!("bad order {i}"),
                "stacktrace": {"frames": [
                    {"filename": "shop/views.py", "function": "checkout", "lineno": 42, "module": "shop.views"},
                    {"filename": "shop/orders.py", "function": "load_order", "lineno": i % 90, "module": "shop.orders"}]}}]},
            "sdk": {"name": "sentry.python", "version": "2.75.0"},
            "contexts": {"trace": {"trace_id": format!("{:032x}", i * 104729), "span_id": format!("{:016x}", i)}},
        })
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn payloads_after_training_are_smaller_and_every_one_decodes() {
        let store = Store::open_in_memory().await.unwrap();
        let project = store.ensure_default_project().await.unwrap().id.value();
        let mut packer = Packer::default();
        let plain = packer.pack(project, PayloadTable::Events, &payload(0));
        assert!(packer.due().is_empty());
        for i in 1..TRAIN_ON {
            store
                .insert_test_payload(
                    project,
                    &packer.pack(project, PayloadTable::Events, &payload(i)),
                )
                .await;
        }
        store.insert_test_payload(project, &plain).await;
        assert_eq!(packer.due(), vec![(project, PayloadTable::Events)]);

        let dictionary = store
            .train_payload_dictionary(project, PayloadTable::Events)
            .await
            .unwrap()
            .expect("a dictionary");
        packer.add(project, PayloadTable::Events, &dictionary);
        assert!(packer.due().is_empty());
        let packed = packer.pack(project, PayloadTable::Events, &payload(1000));
        assert!(
            packed.len() * 2 < plain.len(),
            "{} vs {}",
            packed.len(),
            plain.len()
        );
        // The new frame names its dictionary; the old one names none; both decode.
        assert!(zstd::zstd_safe::get_dict_id_from_frame(&packed).is_some());
        assert_eq!(
            store
                .payload_bytes(&packed, MAX_PAYLOAD_BYTES)
                .await
                .unwrap(),
            payload(1000)
        );
        assert_eq!(
            store
                .payload_bytes(&plain, MAX_PAYLOAD_BYTES)
                .await
                .unwrap(),
            payload(0)
        );
        // A new processor starts from the stored dictionary.
        let stored = store.payload_dictionaries().await.unwrap();
        assert_eq!(stored, vec![(project, PayloadTable::Events, dictionary)]);
        // Another project's payloads stay plain.
        let other = packer.pack(project + 1, PayloadTable::Events, &payload(1000));
        assert!(zstd::zstd_safe::get_dict_id_from_frame(&other).is_none());
    }

    impl Store {
        async fn insert_test_payload(&self, project: i64, frame: &[u8]) {
            self.conn()
                .execute(
                    "INSERT INTO events (project_id, event_id, timestamp, received_at, level, title, payload)
                     VALUES (?1, lower(hex(randomblob(16))), 1, 1, 'error', 't', ?2)",
                    libsql::params![project, frame.to_vec()],
                )
                .await
                .unwrap();
        }
    }
}
