use serde_json::json;
use sourcemap::SourceMapBuilder;

use super::*;
use crate::artifacts::assemble::bundle_key;
use crate::artifacts::bundle::index;
use crate::blob::LocalBlobStore;
use crate::store::NewBundle;

/// The original file: `priceOf` throws on line 7 (index 6).
const ORIGINAL: &str = "// Pricing\nconst PRICES = {};\n\nfunction priceOf(sku) {\n  const price = PRICES[sku];\n  if (price === undefined) {\n    throw new Error(`no price for ${sku}`);\n  }\n  return price;\n}\n";
/// Its minified form: `function a(n){throw …}` on one line.
const MINIFIED: &str = "function a(n){throw new Error(\"no price for \"+n)}\n";

fn map_bytes() -> Vec<u8> {
    let mut b = SourceMapBuilder::new(Some("app.js"));
    let src = b.add_source("../src/pricing.js");
    b.set_source_contents(src, Some(ORIGINAL));
    b.add(0, 0, 3, 0, Some("../src/pricing.js"), None, false);
    b.add(
        0,
        9,
        3,
        9,
        Some("../src/pricing.js"),
        Some("priceOf"),
        false,
    );
    b.add(0, 14, 6, 4, Some("../src/pricing.js"), None, false);
    let mut out = Vec::new();
    b.into_sourcemap().to_writer(&mut out).unwrap();
    out
}

/// A processor's symbolicator over a store with one bundle (release 1.0) of `app.js` and its map.
async fn with_bundle(map: &[u8]) -> (SourceMaps, ProjectId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.path()));
    let store = Store::open_in_memory().await.unwrap();
    let project = store.ensure_default_project().await.unwrap().id;
    let bytes = crate::artifacts::bundle::tests::bundle(&[
        (
            "files/_/_/app.js",
            "minified_source",
            "~/static/app.js",
            &[("debug-id", "d1"), ("sourcemap", "app.js.map")],
            MINIFIED.as_bytes(),
        ),
        (
            "files/_/_/app.js.map",
            "source_map",
            "~/static/app.js.map",
            &[("debug-id", "d1")],
            map,
        ),
    ]);
    let files = index(&bytes, 64 << 20).unwrap().files;
    let key = bundle_key(project, "abc");
    blobs.put(&key, bytes.into()).await.unwrap();
    store
        .insert_artifact_bundle(&NewBundle {
            project,
            checksum: "abc",
            release: "1.0",
            dist: "",
            blob_key: &key,
            bytes: 1,
            files: &files,
        })
        .await
        .unwrap();
    let maps = SourceMaps::new(store, blobs, ArtifactLimits::default());
    (maps, project, dir)
}

fn event(path: &str, images: Value, release: Option<&str>) -> Vec<u8> {
    json!({
        "platform": "javascript",
        "release": release,
        "debug_meta": {"images": images},
        "exception": {"values": [{"type": "Error", "value": "no price for x", "stacktrace": {"frames": [
            {"filename": "node:internal/main", "function": "run", "lineno": 1, "colno": 1},
            {"abs_path": path, "filename": path, "function": "Object.a", "module": "app", "lineno": 1, "colno": 15, "in_app": true}
        ]}}]}
    })
    .to_string()
    .into_bytes()
}

fn top_frame(payload: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(payload).unwrap();
    v.pointer("/exception/values/0/stacktrace/frames/1")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn frames_resolve_by_debug_id_with_context_and_the_minified_kept() {
    let (maps, project, _dir) = with_bundle(&map_bytes()).await;
    let path = "/srv/app/dist/app.js";
    let images = json!([{"type": "sourcemap", "code_file": path, "debug_id": "D1"}]);
    let out = maps
        .symbolicate(project, &event(path, images.clone(), None))
        .await
        .unwrap()
        .unwrap();
    let frame = top_frame(&out);
    assert_eq!(frame["filename"], "src/pricing.js");
    assert_eq!(frame["abs_path"], "/srv/app/src/pricing.js");
    assert_eq!(
        (frame["lineno"].as_u64(), frame["colno"].as_u64()),
        (Some(7), Some(5))
    );
    assert_eq!(frame["function"], "priceOf");
    assert_eq!(
        frame["context_line"],
        "    throw new Error(`no price for ${sku}`);"
    );
    assert_eq!(frame["pre_context"].as_array().unwrap().len(), 5);
    assert_eq!(frame["post_context"][0], "  }");
    assert!(frame.get("module").is_none());
    let v: Value = serde_json::from_slice(&out).unwrap();
    let raw = &v["exception"]["values"][0]["raw_stacktrace"]["frames"][1];
    assert_eq!(
        (raw["function"].as_str(), raw["colno"].as_u64()),
        (Some("Object.a"), Some(15))
    );
    // Deterministic: the same payload (from the cache now) comes out byte for byte the same.
    let again = maps
        .symbolicate(project, &event(path, images, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, again);
}

#[tokio::test]
async fn frames_resolve_by_release_and_url_without_debug_ids() {
    let (maps, project, _dir) = with_bundle(&map_bytes()).await;
    let path = "https://shop.example/static/app.js?v=3";
    let out = maps
        .symbolicate(project, &event(path, json!([]), Some("1.0")))
        .await
        .unwrap()
        .unwrap();
    let frame = top_frame(&out);
    assert_eq!(
        (frame["filename"].as_str(), frame["lineno"].as_u64()),
        (Some("src/pricing.js"), Some(7))
    );
    // Another release has no maps: the frame stays, with a note.
    let out = maps
        .symbolicate(project, &event(path, json!([]), Some("2.0")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(top_frame(&out)["colno"], 15);
    let notes = crate::format::processing_notes(Some(&serde_json::from_slice(&out).unwrap()));
    assert_eq!(
        notes,
        [format!("source map not found for {path} (release 2.0)")]
    );
}

#[tokio::test]
async fn a_missing_or_broken_map_leaves_the_frame_with_a_note() {
    let (maps, project, _dir) = with_bundle(b"{not json").await;
    let path = "/srv/app/dist/app.js";
    let images = json!([{"type": "sourcemap", "code_file": path, "debug_id": "d1"}]);
    let out = maps
        .symbolicate(project, &event(path, images, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(top_frame(&out)["function"], "Object.a");
    let notes = crate::format::processing_notes(Some(&serde_json::from_slice(&out).unwrap()));
    assert!(
        notes[0].starts_with(
            "source map ~/static/app.js.map for /srv/app/dist/app.js could not be read"
        ),
        "{notes:?}"
    );
    let images = json!([{"type": "sourcemap", "code_file": path, "debug_id": "other"}]);
    let out = maps
        .symbolicate(project, &event(path, images, None))
        .await
        .unwrap()
        .unwrap();
    let notes = crate::format::processing_notes(Some(&serde_json::from_slice(&out).unwrap()));
    assert_eq!(
        notes,
        [format!("source map not found for {path} (debug id other)")]
    );
    // Not JavaScript, or no frames with columns: untouched, not even parsed.
    let python = br#"{"platform":"python","exception":{"values":[]}}"#;
    assert!(maps.symbolicate(project, python).await.unwrap().is_none());
}

#[tokio::test]
async fn lookups_found_or_not_are_remembered_until_the_bundles_change() {
    let (maps, project, _dir) = with_bundle(&map_bytes()).await;
    let path = "/srv/app/dist/app.js";
    let images = json!([{"type": "sourcemap", "code_file": path, "debug_id": "d2"}]);
    let notes_of = |out: Vec<u8>| {
        crate::format::processing_notes(Some(&serde_json::from_slice(&out).unwrap()))
    };
    let missed = [format!("source map not found for {path} (debug id d2)")];
    let out = maps
        .symbolicate(project, &event(path, images.clone(), None))
        .await;
    assert_eq!(notes_of(out.unwrap().unwrap()), missed);
    // The map gains the debug id behind the lookups' back: the miss stands, not asked again...
    maps.store
        .execute_raw("UPDATE artifact_files SET debug_id = 'd2' WHERE debug_id = 'd1'")
        .await;
    let out = maps
        .symbolicate(project, &event(path, images.clone(), None))
        .await;
    assert_eq!(notes_of(out.unwrap().unwrap()), missed);
    // ...until a bundle is uploaded: then the lookup runs again and finds it.
    let blobs: Arc<dyn BlobStore> = maps.blobs.clone();
    let key = bundle_key(project, "def");
    blobs
        .put(&key, bytes::Bytes::from_static(b""))
        .await
        .unwrap();
    maps.store
        .insert_artifact_bundle(&NewBundle {
            project,
            checksum: "def",
            release: "9.9",
            dist: "",
            blob_key: &key,
            bytes: 1,
            files: &[],
        })
        .await
        .unwrap();
    let out = maps.symbolicate(project, &event(path, images, None)).await;
    assert_eq!(top_frame(&out.unwrap().unwrap())["function"], "priceOf");
    // A project without bundles finds nothing, with the same note, without asking per file.
    let other = maps.store.create_project("other").await.unwrap().id;
    let images = json!([{"type": "sourcemap", "code_file": path, "debug_id": "d2"}]);
    let out = maps.symbolicate(other, &event(path, images, None)).await;
    assert_eq!(notes_of(out.unwrap().unwrap()), missed);
}

#[tokio::test]
async fn a_miss_at_a_path_over_the_key_limit_is_not_remembered() {
    let (maps, project, _dir) = with_bundle(&map_bytes()).await;
    // Anyone with the DSN can send frames at long made-up paths: their misses take no memory.
    let path = format!(
        "https://shop.example/{}/static/app.js",
        "a".repeat(MAX_FOUND_KEY_BYTES)
    );
    let out = maps
        .symbolicate(project, &event(&path, json!([]), Some("2.0")))
        .await;
    assert_eq!(top_frame(&out.unwrap().unwrap())["colno"], 15);
    assert!(maps.found.lock().unwrap().is_empty());
    // So the next event asks again, and finds what has changed since.
    maps.store
        .execute_raw("UPDATE artifact_bundles SET release = '2.0'")
        .await;
    let out = maps
        .symbolicate(project, &event(&path, json!([]), Some("2.0")))
        .await;
    assert_eq!(top_frame(&out.unwrap().unwrap())["function"], "priceOf");
}

#[test]
fn urls_and_sources_as_sentry_matches_them() {
    assert_eq!(
        candidate_urls("http://a.example/static/js/app.js?x=1"),
        [
            "http://a.example/static/js/app.js?x=1",
            "~/static/js/app.js",
            "~/js/app.js",
            "~/app.js"
        ]
    );
    assert_eq!(
        candidate_urls("/srv/dist/app.js")[1..],
        ["~/srv/dist/app.js", "~/dist/app.js", "~/app.js"]
    );
    assert_eq!(
        join_url("~/static/app.js", "app.js.map"),
        "~/static/app.js.map"
    );
    assert_eq!(
        join_url("http://h/a/b.js", "../src/c.js"),
        "http://h/src/c.js"
    );
    assert_eq!(join_url("/x/dist/app.js", "/abs.map"), "/abs.map");
    assert_eq!(clean_source("webpack://shop/./src/a.js"), "src/a.js");
    assert_eq!(clean_source("../../src/a.js"), "src/a.js");
    assert!(is_library("node_modules/react/index.js") && is_library("webpack/bootstrap"));
    assert!(!is_library("src/a.js"));
}

#[test]
fn the_cache_keeps_the_most_recently_used_within_its_budget() {
    let parsed = |bytes| {
        Arc::new(Parsed {
            map: SourceMap::from_slice(br#"{"version":3,"sources":[],"names":[],"mappings":""}"#)
                .unwrap(),
            minified: None,
            url: String::new(),
            bytes,
        })
    };
    let mut cache = Cache::new(100);
    cache.insert((1, "a".into()), parsed(40));
    cache.insert((2, "b".into()), parsed(40));
    assert!(cache.get(&(1, "a".into())).is_some());
    cache.insert((3, "c".into()), parsed(40));
    assert!(
        cache.get(&(2, "b".into())).is_none(),
        "the least recently used went"
    );
    assert!(cache.get(&(1, "a".into())).is_some() && cache.get(&(3, "c".into())).is_some());
    assert_eq!(cache.bytes, 80);
}
