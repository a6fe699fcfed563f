//! Symbolication of JavaScript stack traces with the source maps sentry-cli uploaded
//! ([`crate::artifacts`]), before the event is grouped and stored.
//!
//! A frame's map is found by its file's debug id (the event's `debug_meta.images` of type `sourcemap`:
//! `code_file` → `debug_id`, which the SDK reads from what `sentry-cli sourcemaps inject` put in the
//! bundle), else, for older setups, by the event's release and dist and the frame's `abs_path` as Sentry
//! matches it (the URL itself, then `~/` and the path, then `~/` and each shorter tail of the path), the
//! minified file's `sourcemap` header naming its map. The original file, line, column, function and
//! context lines replace the minified frame; the minified stack trace is kept as the exception's
//! `raw_stacktrace` (as Sentry does). Grouping then sees the original frames, with Sentry's in-app rule
//! for `node_modules/` and webpack's own modules.
//!
//! A map that is missing or cannot be read leaves its frames as they came and adds a note under
//! `splat.processing_notes` ("source map not found for …"); the message never fails for it. The result
//! depends only on the payload and the uploaded bundles, so a redelivered message comes out the same.
//! Parsed maps are cached, bounded by their size, so a burst of one error parses its map once. Lookups,
//! found or not, are remembered while the project's newest bundle stays the same: one query per event
//! tells whether anything was uploaded since, so errors of an app that uploads no maps cost one query
//! instead of one per candidate URL of every frame file (a third of the processor's time once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use sourcemap::{DecodedMap, SourceMap};

use crate::artifacts::{bundle, ArtifactLimits};
use crate::blob::{BlobError, BlobStore};
use crate::protocol::ProjectId;
use crate::store::{ArtifactKind, FoundArtifact, Store, StoreError};
use minified::Minified;

mod minified;

/// Lines of context on each side of the frame's line (Sentry's five).
const CONTEXT_LINES: u32 = 5;
/// A context line longer than this (minified code inlined in a map) is cut.
const MAX_LINE_CHARS: usize = 300;
/// Different files looked up per event, at most: a stack trace of a thousand files is no reason to
/// read a thousand maps.
const MAX_FILES_PER_EVENT: usize = 20;
/// Parsed maps kept, by their source size (a parsed map holds about that much again).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Why symbolication could not run at all (not a missing map: that is a note). The message is retried.
#[derive(Debug, thiserror::Error)]
pub enum SymbolicationError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("blob store: {0}")]
    Blob(#[from] BlobError),
}

/// A map ready for lookups, with the minified file when the bundle has it (for function names).
struct Parsed {
    map: SourceMap,
    minified: Option<Minified>,
    /// Where the map is, for the frame's `data.sourcemap`.
    url: String,
    bytes: usize,
}

/// The symbolicator: lookups in the store, bundles from the blob store, parsed maps cached.
pub struct SourceMaps {
    store: Store,
    blobs: Arc<dyn BlobStore>,
    limits: ArtifactLimits,
    cache: Mutex<Cache>,
    /// Where each file's map was found, or that it was not (by project and debug id, or release, dist
    /// and path), with the project's newest bundle when it was looked up: a burst of one error asks the
    /// database once until a bundle is uploaded or deleted.
    found: Mutex<HashMap<String, (i64, Found)>>,
}

/// A map and its minified file, as looked up.
type Found = (Option<FoundArtifact>, Option<FoundArtifact>);

/// Lookups remembered at most; past it the memory starts again.
const MAX_FOUND_ENTRIES: usize = 10_000;
/// A lookup whose key (the frame's path, from the event) is longer is not remembered, so that misses,
/// which anyone with the DSN can cause, cannot fill memory with long paths.
const MAX_FOUND_KEY_BYTES: usize = 1024;

impl SourceMaps {
    pub fn new(store: Store, blobs: Arc<dyn BlobStore>, limits: ArtifactLimits) -> Self {
        Self {
            store,
            blobs,
            limits,
            cache: Mutex::new(Cache::new(DEFAULT_CACHE_BYTES)),
            found: Mutex::default(),
        }
    }

    /// The event payload with its JavaScript frames symbolicated and notes added, or `None` when there
    /// is nothing to change (no JavaScript frames, or nothing found and nothing to say).
    pub async fn symbolicate(
        &self,
        project: ProjectId,
        payload: &[u8],
    ) -> Result<Option<Vec<u8>>, SymbolicationError> {
        // Cheap before parsing: only frames with a column can be looked up in a map.
        if !payload.windows(7).any(|w| w == b"\"colno\"") {
            return Ok(None);
        }
        let Ok(mut event) = crate::model::payload_value(payload) else {
            return Ok(None);
        };
        if !is_javascript(&event) {
            return Ok(None);
        }
        let lookup = Lookup::of(&event);
        // The project's bundles as they are now (0: none, so nothing can be found).
        let newest = self.store.newest_artifact_bundle(project).await?;
        let mut found: HashMap<String, Option<Arc<Parsed>>> = HashMap::new();
        let mut notes: Vec<String> = Vec::new();
        for path in frame_files(&event) {
            if found.len() >= MAX_FILES_PER_EVENT {
                break;
            }
            let parsed = self
                .map_for(project, newest, &lookup, &path, &mut notes)
                .await?;
            found.insert(path, parsed);
        }
        let resolved = resolve_frames(&mut event, &found);
        if resolved == 0 && notes.is_empty() {
            return Ok(None);
        }
        add_notes(&mut event, &notes);
        Ok(serde_json::to_vec(&event).ok())
    }

    /// The parsed map for one file of the stack trace, or `None` with a note saying why.
    async fn map_for(
        &self,
        project: ProjectId,
        newest: i64,
        lookup: &Lookup,
        path: &str,
        notes: &mut Vec<String>,
    ) -> Result<Option<Arc<Parsed>>, SymbolicationError> {
        let (how, cache_key) = match lookup.debug_ids.get(path) {
            Some(debug_id) => (
                format!("debug id {debug_id}"),
                format!("{project}/id/{debug_id}"),
            ),
            None => {
                let Some(release) = lookup.release.as_deref() else {
                    return Ok(None);
                };
                if path.starts_with("node:") || path.contains("/node_modules/") {
                    return Ok(None);
                }
                let key = format!("{project}/release/{release}/{}/{path}", lookup.dist);
                (format!("release {release}"), key)
            }
        };
        let (map, minified) = match self.remembered(&cache_key, newest) {
            Some(found) => found,
            None => {
                let found = match (
                    newest,
                    lookup.debug_ids.get(path),
                    lookup.release.as_deref(),
                ) {
                    (0, _, _) => (None, None),
                    (_, Some(debug_id), _) => (
                        self.store
                            .artifact_by_debug_id(project, debug_id, ArtifactKind::SourceMap)
                            .await?,
                        self.store
                            .artifact_by_debug_id(project, debug_id, ArtifactKind::MinifiedSource)
                            .await?,
                    ),
                    (_, None, Some(release)) => {
                        self.by_release(project, release, &lookup.dist, path)
                            .await?
                    }
                    (_, None, None) => (None, None),
                };
                self.remember(cache_key.clone(), newest, &found);
                found
            }
        };
        let Some(map) = map else {
            notes.push(format!("source map not found for {path} ({how})"));
            return Ok(None);
        };
        match self.parsed(&map, minified.as_ref()).await {
            Ok(parsed) => Ok(Some(parsed)),
            Err(ParseFailure::Infrastructure(e)) => Err(e),
            Err(ParseFailure::Broken(why)) => {
                // Looked up again next time (retention may have removed the bundle since).
                self.found.lock().expect("not poisoned").remove(&cache_key);
                notes.push(format!(
                    "source map {} for {path} could not be read: {why}",
                    map.file.url
                ));
                Ok(None)
            }
        }
    }

    /// A lookup remembered while the project's newest bundle is still `newest`.
    fn remembered(&self, key: &str, newest: i64) -> Option<Found> {
        let found = self.found.lock().expect("not poisoned");
        match found.get(key) {
            Some((when, found)) if *when == newest => Some(found.clone()),
            _ => None,
        }
    }

    fn remember(&self, key: String, newest: i64, found: &Found) {
        if key.len() > MAX_FOUND_KEY_BYTES {
            return;
        }
        let mut cache = self.found.lock().expect("not poisoned");
        if cache.len() >= MAX_FOUND_ENTRIES {
            cache.clear();
        }
        cache.insert(key, (newest, found.clone()));
    }

    /// The legacy lookup: the minified file at one of the frame's URLs in the release, then the map its
    /// `sourcemap` header names (or the file's URL and `.map`).
    async fn by_release(
        &self,
        project: ProjectId,
        release: &str,
        dist: &str,
        path: &str,
    ) -> Result<Found, SymbolicationError> {
        let urls = candidate_urls(path);
        let minified = self
            .store
            .artifact_by_url(project, release, dist, &urls, ArtifactKind::MinifiedSource)
            .await?;
        let map_urls: Vec<String> = match &minified {
            Some(m) => {
                let named = m
                    .file
                    .sourcemap
                    .as_deref()
                    .map(|s| join_url(&m.file.url, s));
                named
                    .into_iter()
                    .chain([format!("{}.map", m.file.url)])
                    .collect()
            }
            None => urls.iter().map(|u| format!("{u}.map")).collect(),
        };
        let map = self
            .store
            .artifact_by_url(project, release, dist, &map_urls, ArtifactKind::SourceMap)
            .await?;
        Ok((map, minified))
    }

    /// The map parsed (from the cache, or read from its bundle and parsed now).
    async fn parsed(
        &self,
        map: &FoundArtifact,
        minified: Option<&FoundArtifact>,
    ) -> Result<Arc<Parsed>, ParseFailure> {
        let key = (map.bundle_id, map.file.path.clone());
        if let Some(hit) = self.cache.lock().expect("not poisoned").get(&key) {
            return Ok(hit);
        }
        let bundle = self
            .blobs
            .get_capped(&map.blob_key, self.limits.max_bundle_bytes)
            .await
            .map_err(|e| match e {
                BlobError::NotFound(_) | BlobError::TooLarge(..) => {
                    ParseFailure::Broken(e.to_string())
                }
                e => ParseFailure::Infrastructure(e.into()),
            })?;
        let cap = self.limits.max_file_bytes;
        let bytes = bundle::read_file(&bundle, &map.file.path, cap)
            .map_err(|e| ParseFailure::Broken(e.to_string()))?;
        let decoded =
            sourcemap::decode_slice(&bytes).map_err(|e| ParseFailure::Broken(e.to_string()))?;
        let map_parsed = match decoded {
            DecodedMap::Regular(sm) => sm,
            DecodedMap::Index(index) => index
                .flatten()
                .map_err(|e| ParseFailure::Broken(e.to_string()))?,
            DecodedMap::Hermes(hermes) => (*hermes).clone(),
        };
        // The minified file gives function names; without it frames keep their minified ones.
        let minified = minified
            .filter(|m| m.bundle_id == map.bundle_id)
            .and_then(|m| bundle::read_file(&bundle, &m.file.path, cap).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(Minified::new);
        let size = bytes.len() + minified.as_ref().map_or(0, Minified::bytes);
        let parsed = Arc::new(Parsed {
            map: map_parsed,
            minified,
            url: map.file.url.clone(),
            bytes: size,
        });
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(key, parsed.clone());
        Ok(parsed)
    }
}

enum ParseFailure {
    /// The map is there but unusable: a note, never a retry.
    Broken(String),
    Infrastructure(SymbolicationError),
}

/// What the event says about where its maps are.
struct Lookup {
    /// `code_file` → `debug_id` from `debug_meta.images` of type `sourcemap`.
    debug_ids: HashMap<String, String>,
    release: Option<String>,
    dist: String,
}

impl Lookup {
    fn of(event: &Value) -> Self {
        let mut debug_ids = HashMap::new();
        let images = event
            .pointer("/debug_meta/images")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for image in images.iter().take(1_000) {
            let text = |k: &str| image.get(k).and_then(Value::as_str);
            if let (Some("sourcemap"), Some(file), Some(id)) =
                (text("type"), text("code_file"), text("debug_id"))
            {
                debug_ids.insert(file.to_owned(), id.to_ascii_lowercase());
            }
        }
        let text = |k: &str| {
            event
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Self {
            debug_ids,
            release: text("release"),
            dist: text("dist").unwrap_or_default(),
        }
    }
}

/// JavaScript by its platform, or by the source map images its SDK listed.
fn is_javascript(event: &Value) -> bool {
    let platform = event.get("platform").and_then(Value::as_str);
    matches!(platform, Some("javascript" | "node"))
        || event
            .pointer("/debug_meta/images")
            .and_then(Value::as_array)
            .is_some_and(|images| {
                images
                    .iter()
                    .any(|i| i.get("type").and_then(Value::as_str) == Some("sourcemap"))
            })
}

/// The exceptions' stack traces, mutably (`exception.values[]`, or `exception` as a bare list).
fn stacktraces(event: &mut Value) -> Vec<&mut Map<String, Value>> {
    let exceptions = match event.get_mut("exception") {
        Some(Value::Object(o)) => o.get_mut("values"),
        Some(list @ Value::Array(_)) => Some(list),
        _ => None,
    };
    let Some(Value::Array(exceptions)) = exceptions else {
        return Vec::new();
    };
    exceptions
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .collect()
}

/// A frame's file: `abs_path`, else `filename` (the Node SDK sends only the latter).
fn frame_path(frame: &Value) -> Option<&str> {
    frame
        .get("abs_path")
        .or_else(|| frame.get("filename"))
        .and_then(Value::as_str)
}

/// The exceptions of an event (`exception.values[]`, or `exception` as a bare list).
fn exceptions(event: &Value) -> &[Value] {
    let list = match event.get("exception") {
        Some(Value::Object(o)) => o.get("values").and_then(Value::as_array),
        Some(Value::Array(list)) => Some(list),
        _ => None,
    };
    list.map(Vec::as_slice).unwrap_or_default()
}

/// The distinct files of the frames that have a line and column, in order of appearance.
fn frame_files(event: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for exception in exceptions(event) {
        let frames = exception
            .pointer("/stacktrace/frames")
            .and_then(Value::as_array);
        for frame in frames.into_iter().flatten() {
            if frame.get("colno").and_then(Value::as_u64).is_none() {
                continue;
            }
            if let Some(path) = frame_path(frame) {
                if !out.iter().any(|p| p == path) {
                    out.push(path.to_owned());
                }
            }
        }
    }
    out
}

/// Rewrites every frame whose file has a map; keeps each changed stack trace as `raw_stacktrace`.
/// Returns how many frames changed.
fn resolve_frames(event: &mut Value, found: &HashMap<String, Option<Arc<Parsed>>>) -> usize {
    let mut resolved = 0;
    for exception in stacktraces(event) {
        let Some(stacktrace) = exception.get("stacktrace").cloned() else {
            continue;
        };
        let mut changed = 0;
        if let Some(frames) = exception
            .get_mut("stacktrace")
            .and_then(|s| s.get_mut("frames"))
            .and_then(Value::as_array_mut)
        {
            for frame in frames.iter_mut() {
                let parsed = frame_path(frame)
                    .and_then(|p| found.get(p))
                    .and_then(Option::as_ref);
                if let Some(parsed) = parsed {
                    changed += usize::from(resolve_frame(frame, parsed));
                }
            }
        }
        if changed > 0 {
            exception.insert("raw_stacktrace".into(), stacktrace);
            resolved += changed;
        }
    }
    resolved
}

/// One frame from its minified position to the original one; `false` when the map has no token there.
fn resolve_frame(frame: &mut Value, parsed: &Parsed) -> bool {
    let number = |k: &str| frame.get(k).and_then(Value::as_u64).filter(|n| *n >= 1);
    let (Some(line), Some(col)) = (number("lineno"), number("colno")) else {
        return false;
    };
    let (line, col) = (
        (line - 1).min(u32::MAX as u64) as u32,
        (col - 1).min(u32::MAX as u64) as u32,
    );
    let Some(token) = parsed.map.lookup_token(line, col) else {
        return false;
    };
    let Some(source) = token.get_source() else {
        return false;
    };
    let minified_name = frame
        .get("function")
        .and_then(Value::as_str)
        .map(|f| f.rsplit('.').next().unwrap_or(f).to_owned());
    let function = match (&parsed.minified, &minified_name) {
        (Some(minified), Some(name)) => {
            minified.original_function_name(&parsed.map, line, col, name)
        }
        _ => None,
    };
    let (src_line, src_col) = (token.get_src_line(), token.get_src_col());
    let view = parsed.map.get_source_view(token.get_src_id());
    let context = |from: u32, to: u32| -> Vec<Value> {
        (from..to)
            .filter_map(|i| view?.get_line(i))
            .map(|l| Value::from(clip_line(l)))
            .collect()
    };
    let pre = context(src_line.saturating_sub(CONTEXT_LINES), src_line);
    let post = context(src_line + 1, src_line.saturating_add(CONTEXT_LINES + 1));
    let context_line = view.and_then(|v| v.get_line(src_line)).map(clip_line);
    let filename = clean_source(source);
    let abs_path = frame_path(frame).map_or_else(|| source.to_owned(), |p| join_url(p, source));
    let Some(object) = frame.as_object_mut() else {
        return false;
    };
    let in_app = !is_library(&filename)
        && object
            .get("in_app")
            .and_then(Value::as_bool)
            .unwrap_or(true);
    object.insert("abs_path".into(), abs_path.into());
    object.insert("filename".into(), filename.into());
    object.insert("lineno".into(), (u64::from(src_line) + 1).into());
    object.insert("colno".into(), (u64::from(src_col) + 1).into());
    if let Some(function) = function {
        object.insert("function".into(), function.into());
    }
    // The minified module name would outrank the original file in grouping.
    object.remove("module");
    object.insert("in_app".into(), in_app.into());
    object.insert("pre_context".into(), pre.into());
    object.insert("post_context".into(), post.into());
    match context_line {
        Some(l) => object.insert("context_line".into(), l.into()),
        None => object.remove("context_line"),
    };
    object.insert(
        "data".into(),
        json!({"sourcemap": parsed.url, "symbolicated": true}),
    );
    true
}

fn clip_line(line: &str) -> String {
    crate::model::clip(line.trim_end_matches(['\r', '\n']), MAX_LINE_CHARS)
}

/// A map's source as people read it: `webpack://app/./src/a.js` → `src/a.js`, `../../src/a.js` → `src/a.js`.
fn clean_source(source: &str) -> String {
    let mut s = source;
    if let Some((scheme, rest)) = s.split_once("://") {
        if scheme == "webpack" {
            // `webpack://<namespace>/…`: the namespace is the app's name, not a folder.
            s = rest.trim_start_matches('/');
            if let Some((_, path)) = s.split_once('/').filter(|(ns, _)| !ns.starts_with('.')) {
                s = path;
            }
        }
    }
    loop {
        let trimmed = s.trim_start_matches("./").trim_start_matches("../");
        if trimmed == s {
            break;
        }
        s = trimmed;
    }
    s.to_owned()
}

/// Sentry's in-app rule for JavaScript: dependencies and webpack's own modules are not the app.
fn is_library(filename: &str) -> bool {
    filename.contains("node_modules/")
        || filename.starts_with("webpack/")
        || filename.contains("webpack/bootstrap")
        || filename.contains("(webpack)/")
}

/// `relative` against `base` (a URL or a path): absolute ones stay, others replace `base`'s last segment,
/// with `.` and `..` segments folded.
fn join_url(base: &str, relative: &str) -> String {
    if relative.contains("://") || relative.starts_with('/') {
        return relative.to_owned();
    }
    let (prefix, path) = match base.split_once("://") {
        Some((scheme, rest)) => match rest.find('/') {
            Some(i) => (format!("{scheme}://{}", &rest[..i]), &rest[i..]),
            None => (format!("{scheme}://{rest}"), "/"),
        },
        None => (String::new(), base),
    };
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut segments: Vec<&str> = dir.split('/').collect();
    for part in relative.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                if segments.len() > 1 {
                    segments.pop();
                }
            }
            p => segments.push(p),
        }
    }
    format!("{prefix}{}", segments.join("/"))
}

/// The URLs a release's file may have been uploaded under for this frame path, as Sentry tries them:
/// the path itself, `~` and its path without scheme and host, then `~/` and each shorter tail.
fn candidate_urls(path: &str) -> Vec<String> {
    let mut out = vec![path.to_owned()];
    let no_query = path.split(['?', '#']).next().unwrap_or(path);
    let local = match no_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => no_query,
    };
    let segments: Vec<&str> = local.split('/').filter(|s| !s.is_empty()).collect();
    for start in 0..segments.len().min(10) {
        let candidate = format!("~/{}", segments[start..].join("/"));
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// The notes, after those already there (the clock's are added later, after these).
fn add_notes(event: &mut Value, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    let Some(object) = event.as_object_mut() else {
        return;
    };
    let splat = object.entry("splat").or_insert_with(|| json!({}));
    if !splat.is_object() {
        *splat = json!({});
    }
    let list = splat
        .as_object_mut()
        .expect("made an object above")
        .entry("processing_notes")
        .or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut() {
        list.extend(
            notes
                .iter()
                .map(|n| json!({"kind": "source_map", "message": n})),
        );
    }
}

/// Parsed maps by (bundle, file), least recently used dropped first once over the byte budget.
struct Cache {
    entries: HashMap<(i64, String), (Arc<Parsed>, u64)>,
    bytes: usize,
    budget: usize,
    clock: u64,
}

impl Cache {
    fn new(budget: usize) -> Self {
        Self {
            entries: HashMap::new(),
            bytes: 0,
            budget,
            clock: 0,
        }
    }

    fn get(&mut self, key: &(i64, String)) -> Option<Arc<Parsed>> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        entry.1 = self.clock;
        Some(entry.0.clone())
    }

    fn insert(&mut self, key: (i64, String), parsed: Arc<Parsed>) {
        self.clock += 1;
        self.bytes += parsed.bytes;
        if let Some((old, _)) = self.entries.insert(key, (parsed, self.clock)) {
            self.bytes -= old.bytes;
        }
        while self.bytes > self.budget && self.entries.len() > 1 {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= gone.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests;
