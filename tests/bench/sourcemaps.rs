//! The process bench's source maps (`--sourcemaps`): a bundle of one minified file and its multi-MB map,
//! uploaded the way sentry-cli's uploads arrive (SHA-1-named chunks, then assembly), and Node error events
//! whose every frame is in that file, found by its debug id.

use std::io::Write;
use std::time::Instant;

use serde_json::json;
use sourcemap::SourceMapBuilder;
use splat::artifacts::assemble::{assemble, put_chunk, AssembleRequest, Assembled};
use splat::artifacts::{sha1_hex, ArtifactLimits, CHUNK_SIZE};
use splat::blob::BlobStore;
use splat::process::sourcemaps::SourceMaps;
use splat::protocol::{EventId, ProjectId};
use splat::store::Store;

const DEBUG_ID: &str = "4d0c4c43-5b8a-4f5e-9c1a-2a8f1e0b7d11";
const FILE: &str = "/srv/app/dist/app.js";
/// Functions in the app: one per line of the original source, all on the minified file's one line.
const FUNCTIONS: u32 = 47_000;
/// Each function's minified text, 40 columns mapped by five tokens of 8: `function`, its name, its body,
/// and the calls `b` and `c` where frames fall.
const TOKENS_PER_FUNCTION: u32 = 5;
const COLUMNS: u32 = 8;

/// The minified file and its map (about 5 MB, with the original source as `sourcesContent`).
fn minified_and_map() -> (Vec<u8>, Vec<u8>) {
    let mut builder = SourceMapBuilder::new(Some("app.js"));
    let source = builder.add_source("../src/app.js");
    let original: String = (0..FUNCTIONS)
        .map(|f| format!("function f{f}(v) {{ return g{f}(v) + h{f}(v); }}\n"))
        .collect();
    builder.set_source_contents(source, Some(&original));
    let mut minified = String::new();
    for f in 0..FUNCTIONS {
        minified.push_str(&format!("function a{f:04x}(n){{return b(n)+c(n)+d(n)}}"));
        // The name at `a…` is the function's; those at the calls are the callees'.
        let names = [
            None,
            Some(format!("f{f}")),
            None,
            Some(format!("g{f}")),
            Some(format!("h{f}")),
        ];
        for (t, name) in (0..TOKENS_PER_FUNCTION).zip(&names) {
            let column = (f * TOKENS_PER_FUNCTION + t) * COLUMNS;
            builder.add(
                0,
                column,
                f,
                t * 9,
                Some("../src/app.js"),
                name.as_deref(),
                false,
            );
        }
    }
    let mut map = Vec::new();
    builder.into_sourcemap().to_writer(&mut map).unwrap();
    (
        format!("{minified}\n//# debugId={DEBUG_ID}\n").into_bytes(),
        map,
    )
}

/// The bundle as sentry-cli builds it: the `SYSB` header, then a zip of the files and their manifest.
fn bundle(minified: &[u8], map: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let files = [
        (
            "files/_/_/app.js",
            "minified_source",
            "~/dist/app.js",
            minified,
            json!({"debug-id": DEBUG_ID, "sourcemap": "app.js.map"}),
        ),
        (
            "files/_/_/app.js.map",
            "source_map",
            "~/dist/app.js.map",
            map,
            json!({"debug-id": DEBUG_ID}),
        ),
    ];
    let mut manifest = json!({"files": {}, "attributes": {}});
    for (path, ty, url, content, headers) in files {
        zip.start_file(path, options).unwrap();
        zip.write_all(content).unwrap();
        manifest["files"][path] = json!({"type": ty, "url": url, "headers": headers});
    }
    zip.start_file("manifest.json", options).unwrap();
    zip.write_all(manifest.to_string().as_bytes()).unwrap();
    let mut out = b"SYSB\x02\x00\x00\x00".to_vec();
    out.extend(zip.finish().unwrap().into_inner());
    out
}

/// Uploads the bundle in chunks and assembles it; returns the map's size in bytes.
pub async fn upload(store: &Store, blobs: &dyn BlobStore, project: ProjectId) -> usize {
    let (minified, map) = minified_and_map();
    let bytes = bundle(&minified, &map);
    let chunks: Vec<&[u8]> = bytes.chunks(CHUNK_SIZE).collect();
    for chunk in &chunks {
        put_chunk(blobs, &sha1_hex(chunk), chunk, false)
            .await
            .unwrap();
    }
    let request = AssembleRequest {
        checksum: sha1_hex(&bytes),
        chunks: chunks.iter().map(|c| sha1_hex(c)).collect(),
        projects: vec![project],
        release: None,
        dist: None,
    };
    let assembled = assemble(store, blobs, &ArtifactLimits::default(), &request)
        .await
        .unwrap();
    assert_eq!(assembled, Assembled::Ok);
    map.len()
}

/// A Node error of `bug` (one of a set of distinct stacks): 12 frames of the minified file, each in a
/// function of its own at one of its calls, with the image that names the file's debug id.
pub fn event(bug: usize, n: usize) -> serde_json::Value {
    let frames: Vec<_> = (0..12)
        .map(|f| {
            let function = ((bug * 12 + f) * 7_919) % FUNCTIONS as usize;
            let call = function * TOKENS_PER_FUNCTION as usize + 3 + f % 2;
            json!({"filename": FILE, "abs_path": FILE, "function": format!("a{function:04x}"), "lineno": 1,
                   "colno": 1 + call * COLUMNS as usize + n % 4, "in_app": true})
        })
        .collect();
    json!({
        "event_id": EventId::random().to_string(), "timestamp": 1_764_000_000.0 + n as f64, "platform": "node", "level": "error",
        "release": format!("shop@1.{}", n % 5), "environment": if n.is_multiple_of(3) { "staging" } else { "production" }, "server_name": "web-1",
        "transaction": format!("/orders/{}", bug % 50),
        "exception": {"values": [{"type": "Error", "value": format!("order {n} failed for user {}", n % 1000),
                                   "mechanism": {"type": "onuncaughtexception", "handled": false}, "stacktrace": {"frames": frames}}]},
        "debug_meta": {"images": [{"type": "sourcemap", "code_file": FILE, "debug_id": DEBUG_ID}]},
        "breadcrumbs": {"values": (0..8).map(|b| json!({"timestamp": 1_764_000_000.0, "category": "query", "message": format!("SELECT * FROM t WHERE id = {b}")})).collect::<Vec<_>>()},
        "tags": {"runtime": "node", "customer": format!("c{}", n % 20)}, "user": {"id": (n % 1000).to_string(), "email": format!("u{}@example.com", n % 1000)},
        "sdk": {"name": "sentry.javascript.node", "version": "10.20.0"}
    })
}

/// Symbolication alone, outside the pipeline: the first event (the bundle read, the map and minified
/// file parsed) and then `warm` more with the map cached. Prints both.
pub async fn measure_alone(
    store: &Store,
    blobs: std::sync::Arc<dyn BlobStore>,
    project: ProjectId,
    map_bytes: usize,
) {
    let maps = SourceMaps::new(store.clone(), blobs, ArtifactLimits::default());
    let payload = event(0, 0).to_string().into_bytes();
    let started = Instant::now();
    let first = maps
        .symbolicate(project, &payload)
        .await
        .unwrap()
        .expect("symbolicated");
    let cold = started.elapsed();
    // Every frame resolved, to its original function's name.
    let first: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let frames = first["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert!(
        frames.iter().all(|f| f["data"]["symbolicated"] == true
            && f["function"].as_str().unwrap().starts_with('f')),
        "{frames:?}"
    );
    let payloads: Vec<Vec<u8>> = (0..200)
        .map(|bug| event(bug, bug).to_string().into_bytes())
        .collect();
    let warm = 2_000;
    let started = Instant::now();
    for payload in payloads.iter().cycle().take(warm) {
        maps.symbolicate(project, payload).await.unwrap().unwrap();
    }
    let each = started.elapsed().as_secs_f64() / warm as f64;
    println!(
        "symbolication alone, map {:.1} MB: cold {:.0} ms (bundle read, map and minified file parsed, first event); warm {:.0} µs per event of 12 frames ({:.0} events/s)",
        map_bytes as f64 / 1e6,
        cold.as_secs_f64() * 1e3,
        each * 1e6,
        1.0 / each
    );
}
