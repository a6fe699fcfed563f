//! The load generator's corpus: requests captured from real SDKs (`tests/fixtures/sdk`, each an
//! `.envelope` body beside a `.json` with its path, headers and DSN), replayed as new events.
//!
//! A replayed copy must be a new event to the server, or it measures deduplication: Splat and Bugsink
//! both drop a repeated event id, and Splat keeps one transaction per trace and span id. So each copy
//! gets fresh ids: every occurrence of the envelope header's `event_id` and `trace.trace_id` is
//! overwritten in the decoded body (same length, so item `length` headers stay right), and the body is
//! encoded again the way the SDK sent it. The capture's key is swapped for the target's everywhere.

use std::path::Path;

use bytes::Bytes;

/// What a captured envelope carries, as the two systems count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An `event` item: one row in Splat's `events`, one in Bugsink's `events_event`.
    Error,
    /// A `transaction` item or a batch of streamed spans: one row in Splat's `transactions`.
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// Where to send: parsed from a DSN `http://KEY@HOST:PORT/PROJECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub key: String,
    pub project: String,
}

impl Target {
    pub fn from_dsn(dsn: &str) -> Result<Self, String> {
        let rest = dsn
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// DSNs (loopback): {dsn}"))?;
        let (key, rest) = rest
            .split_once('@')
            .ok_or_else(|| format!("no key in DSN {dsn}"))?;
        let key = key.split(':').next().unwrap_or_default();
        let (host, project) = rest
            .split_once('/')
            .ok_or_else(|| format!("no project in DSN {dsn}"))?;
        if !is_hex_id(key.as_bytes()) {
            return Err(format!("the DSN's key is not 32 hex digits: {key}"));
        }
        Ok(Self {
            host: host.to_owned(),
            key: key.to_owned(),
            project: project.trim_end_matches('/').to_owned(),
        })
    }
}

/// One captured request, ready to be replayed with fresh ids.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub kind: Kind,
    /// `/api/<project>/envelope/` plus the query the SDK sent (key swapped).
    pub path_and_query: String,
    /// Lower-case names; without the ones that describe the capture's connection and framing.
    pub headers: Vec<(String, String)>,
    encoding: Encoding,
    decoded: Vec<u8>,
    /// Offsets of each id to overwrite, per id (0: the event id, 1: the trace id).
    id_offsets: Vec<Vec<usize>>,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: Kind,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Template {
    /// Every `.envelope` in `dir` with its `.json`, sorted by name, aimed at `target`.
    pub fn load_dir(dir: &Path, target: &Target) -> Result<Vec<Self>, String> {
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "envelope"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load(p, target)).collect()
    }

    fn load(path: &Path, target: &Target) -> Result<Self, String> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let meta: serde_json::Value = serde_json::from_slice(&read(&path.with_extension("json"))?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let captured_key = Target::from_dsn(meta["dsn"].as_str().unwrap_or_default())?.key;
        let swap = |s: &str| s.replace(&captured_key, &target.key);
        let headers: Vec<(String, String)> = meta["headers"]
            .as_array()
            .ok_or("headers are [name, value] pairs")?
            .iter()
            .filter_map(|pair| {
                Some((
                    pair[0].as_str()?.to_ascii_lowercase(),
                    swap(pair[1].as_str()?),
                ))
            })
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "host" | "content-length" | "transfer-encoding" | "connection"
                )
            })
            .collect();
        let encoding = match headers.iter().find(|(k, _)| k == "content-encoding") {
            None => Encoding::Identity,
            Some((_, v)) if v == "gzip" => Encoding::Gzip,
            Some((_, v)) if v == "br" => Encoding::Brotli,
            Some((_, v)) => return Err(format!("{}: encoding {v} not replayable", path.display())),
        };
        let decoded = swap_bytes(&decode(encoding, &read(path)?)?, &captured_key, &target.key);
        let query = meta["path"]
            .as_str()
            .unwrap_or_default()
            .split_once('?')
            .map(|(_, q)| format!("?{}", swap(q)))
            .unwrap_or_default();
        let (kind, ids) = header_ids(&decoded)?;
        Ok(Self {
            name: path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            kind,
            path_and_query: format!("/api/{}/envelope/{query}", target.project),
            headers,
            encoding,
            id_offsets: ids.iter().map(|id| find_all(&decoded, id)).collect(),
            decoded,
        })
    }

    /// Copy number `seq` of this request: its ids become `ids(run, seq, i)`, its body encoded as captured.
    pub fn prepare(&self, run: u32, seq: u64) -> Prepared {
        let mut body = self.decoded.clone();
        for (i, offsets) in self.id_offsets.iter().enumerate() {
            let id = fresh_id(run, i as u16, seq);
            for &at in offsets {
                body[at..at + 32].copy_from_slice(id.as_bytes());
            }
        }
        let body = match self.encoding {
            Encoding::Identity => body,
            Encoding::Gzip => crate::gzip(&body),
            Encoding::Brotli => crate::brotli(&body),
        };
        Prepared {
            kind: self.kind,
            path_and_query: self.path_and_query.clone(),
            headers: self.headers.clone(),
            body: Bytes::from(body),
        }
    }
}

/// 32 hex digits, unique per (run, which id, copy): the run keeps repeated runs on one server apart.
pub fn fresh_id(run: u32, which: u16, seq: u64) -> String {
    format!("{run:08x}{which:04x}{seq:020x}")
}

fn decode(encoding: Encoding, body: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    match encoding {
        Encoding::Identity => out.extend_from_slice(body),
        Encoding::Gzip => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
        }
        Encoding::Brotli => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(out)
}

/// The kind of the first item and the ids to refresh (event id, trace id), from the envelope's headers.
fn header_ids(envelope: &[u8]) -> Result<(Kind, Vec<String>), String> {
    let mut lines = envelope.split(|&b| b == b'\n');
    let header: serde_json::Value = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|e| format!("envelope header: {e}"))?;
    let item: serde_json::Value = serde_json::from_slice(lines.next().unwrap_or_default())
        .map_err(|e| format!("item header: {e}"))?;
    let kind = match item["type"].as_str() {
        Some("event") => Kind::Error,
        Some("transaction" | "span") => Kind::Transaction,
        other => return Err(format!("no replayable item type: {other:?}")),
    };
    let ids = [&header["event_id"], &header["trace"]["trace_id"]]
        .into_iter()
        .filter_map(|v| v.as_str())
        .filter(|id| is_hex_id(id.as_bytes()))
        .map(str::to_owned)
        .collect();
    Ok((kind, ids))
}

fn is_hex_id(s: &[u8]) -> bool {
    s.len() == 32 && s.iter().all(u8::is_ascii_hexdigit)
}

fn find_all(haystack: &[u8], needle: &str) -> Vec<usize> {
    let needle = needle.as_bytes();
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

fn swap_bytes(data: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut out = data.to_vec();
    for at in find_all(data, from) {
        out[at..at + from.len()].copy_from_slice(to.as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<Template> {
        let target =
            Target::from_dsn("http://0123456789abcdef0123456789abcdef@127.0.0.1:9/7").unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sdk");
        Template::load_dir(&dir, &target).unwrap()
    }

    #[test]
    fn dsn_gives_host_key_and_project() {
        let t =
            Target::from_dsn("http://0123456789abcdef0123456789abcdef@127.0.0.1:8765/3").unwrap();
        assert_eq!(t.host, "127.0.0.1:8765");
        assert_eq!(t.key, "0123456789abcdef0123456789abcdef");
        assert_eq!(t.project, "3");
        assert!(Target::from_dsn("https://k@h/1").is_err());
        assert!(Target::from_dsn("http://short@h/1").is_err());
    }

    #[test]
    fn every_capture_loads_with_its_kind_and_ids() {
        let corpus = corpus();
        let kinds: Vec<_> = corpus.iter().map(|t| (t.name.as_str(), t.kind)).collect();
        assert!(kinds.contains(&("python-error-gzip", Kind::Error)));
        assert!(kinds.contains(&("node-spans", Kind::Transaction)));
        for t in &corpus {
            assert!(
                t.path_and_query.starts_with("/api/7/envelope/"),
                "{}",
                t.name
            );
            // Every capture has a trace id; all but streamed spans an event id; each occurs somewhere.
            assert!(!t.id_offsets.is_empty(), "{}", t.name);
            assert!(t.id_offsets.iter().all(|o| !o.is_empty()), "{}", t.name);
        }
    }

    #[test]
    fn copies_differ_in_their_ids_only_and_carry_the_target_key() {
        for t in corpus() {
            let a = decode(t.encoding, &t.prepare(1, 0).body).unwrap();
            let b = decode(t.encoding, &t.prepare(1, 1).body).unwrap();
            assert_eq!(a.len(), t.decoded.len(), "{}", t.name);
            assert_ne!(a, b, "{}", t.name);
            let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
            let overwritten: usize = t.id_offsets.iter().map(Vec::len).sum();
            assert!(differing >= 1 && differing <= overwritten, "{}", t.name);
            // The header's event id is the fresh one, and the envelope still parses.
            let header: serde_json::Value =
                serde_json::from_slice(a.split(|&c| c == b'\n').next().unwrap()).unwrap();
            if let Some(id) = header["event_id"].as_str() {
                assert_eq!(id, fresh_id(1, 0, 0), "{}", t.name);
            }
            let text = String::from_utf8_lossy(&a);
            assert!(
                !text.contains("5e1a7f1c5e1a7f1c5e1a7f1c5e1a7f1c"),
                "{}",
                t.name
            );
            let sent_key = t
                .headers
                .iter()
                .any(|(_, v)| v.contains("0123456789abcdef"))
                || t.path_and_query
                    .contains("sentry_key=0123456789abcdef0123456789abcdef");
            assert!(sent_key, "{}: the target key is sent", t.name);
        }
    }

    #[test]
    fn fresh_ids_are_hex_and_distinct() {
        let ids = [
            fresh_id(1, 0, 0),
            fresh_id(1, 1, 0),
            fresh_id(1, 0, 1),
            fresh_id(2, 0, 0),
        ];
        assert!(ids.iter().all(|id| is_hex_id(id.as_bytes())));
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
