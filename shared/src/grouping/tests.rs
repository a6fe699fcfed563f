//! Unit tests of the grouping rules on hand-made events; `tests/grouping.rs` runs the corpus of real SDK
//! events.

use serde_json::json;

use super::*;

fn event(v: serde_json::Value) -> Event {
    Event::from_value(&v)
}

fn python_error(ty: &str, value: &str, frames: serde_json::Value) -> Event {
    event(
        json!({"platform": "python", "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": frames}}]}}),
    )
}

fn frame(
    module: &str,
    function: &str,
    line: i64,
    context: &str,
    in_app: bool,
) -> serde_json::Value {
    json!({"module": module, "function": function, "lineno": line, "context_line": context, "in_app": in_app, "filename": format!("{module}.py")})
}

#[test]
fn line_numbers_and_values_do_not_split_a_stack_trace() {
    let a = python_error(
        "KeyError",
        "'user-1'",
        json!([frame("app.views", "show", 10, "x = d[k]", true)]),
    );
    let b = python_error(
        "KeyError",
        "'user-2'",
        json!([frame("app.views", "show", 99, "x  =  d[k]", true)]),
    );
    assert_eq!(group(&a).hashes, group(&b).hashes);
}

#[test]
fn different_functions_types_or_lines_of_code_split() {
    let base = group(&python_error(
        "KeyError",
        "'a'",
        json!([frame("app.views", "show", 10, "x = d[k]", true)]),
    ))
    .hashes;
    for other in [
        python_error(
            "KeyError",
            "'a'",
            json!([frame("app.views", "edit", 10, "x = d[k]", true)]),
        ),
        python_error(
            "ValueError",
            "'a'",
            json!([frame("app.views", "show", 10, "x = d[k]", true)]),
        ),
        python_error(
            "KeyError",
            "'a'",
            json!([frame("app.views", "show", 10, "y = d[j]", true)]),
        ),
    ] {
        assert!(group(&other).hashes.iter().all(|h| !base.contains(h)));
    }
}

#[test]
fn app_variant_ignores_system_frames_and_system_variant_keeps_them() {
    let via = |lib: &str| {
        python_error(
            "KeyError",
            "'a'",
            json!([
                frame(lib, "call", 1, "f()", false),
                frame("app.views", "show", 10, "x = d[k]", true)
            ]),
        )
    };
    let (a, b) = (group(&via("functools")), group(&via("itertools")));
    assert_eq!(a.hashes.len(), 2);
    assert_eq!(a.hashes[0], b.hashes[0], "same app hash");
    assert_ne!(a.hashes[1], b.hashes[1], "different system hash");
}

#[test]
fn without_in_app_frames_only_the_system_hash_counts() {
    let g = group(&python_error(
        "KeyError",
        "'a'",
        json!([frame("lib", "call", 1, "f()", false)]),
    ));
    assert_eq!(g.hashes.len(), 1);
}

#[test]
fn recursion_is_collapsed() {
    let rec = |depth: usize| {
        let mut frames = vec![frame("app.tree", "main", 1, "walk(t)", true)];
        frames.extend((0..depth).map(|_| frame("app.tree", "walk", 5, "walk(t.left)", true)));
        python_error("RecursionError", "boom", json!(frames))
    };
    assert_eq!(group(&rec(3)).hashes, group(&rec(7)).hashes);
}

#[test]
fn value_counts_only_without_a_stack_and_is_parameterized() {
    let bare = |v: &str| event(json!({"exception": [{"type": "Timeout", "value": v}]}));
    assert_eq!(
        group(&bare("after 30s to 10.0.0.1")).hashes,
        group(&bare("after 45s to 10.0.0.2")).hashes
    );
    assert_ne!(
        group(&bare("connection refused")).hashes,
        group(&bare("disk full")).hashes
    );
}

#[test]
fn messages_group_by_template_or_parameterized_text() {
    let msg = |m: &str| event(json!({"message": m}));
    assert_eq!(
        group(&msg("user 42 not found")).hashes,
        group(&msg("user 7 not found")).hashes
    );
    assert_ne!(
        group(&msg("cache miss")).hashes,
        group(&msg("disk full")).hashes
    );
    let log = |arg: &str| {
        event(
            json!({"logentry": {"message": "failed for %s", "formatted": format!("failed for {arg}")}}),
        )
    };
    assert_eq!(group(&log("bob")).hashes, group(&log("alice")).hashes);
}

#[test]
fn synthetic_mechanisms_hide_the_type() {
    let e = |ty: &str| {
        event(
            json!({"exception": [{"type": ty, "value": "v", "mechanism": {"type": "signal", "synthetic": true}}]}),
        )
    };
    assert_eq!(
        group(&e("SIGSEGV")).hashes,
        group(&e("EXC_BAD_ACCESS")).hashes
    );
}

#[test]
fn fingerprints_replace_or_extend() {
    let with = |fp: serde_json::Value, ty: &str| {
        let mut v = json!({"exception": [{"type": ty, "value": "x"}], "tags": {"tenant": "t1"}, "transaction": "/pay"});
        v["fingerprint"] = fp;
        event(v)
    };
    assert_eq!(
        group(&with(json!(["payment"]), "A")).hashes,
        group(&with(json!(["payment"]), "B")).hashes
    );
    assert_eq!(group(&with(json!(["payment"]), "A")).hashes.len(), 1);
    let a = group(&with(json!(["{{ default }}", "tenant-a"]), "A")).hashes;
    assert_ne!(
        a,
        group(&with(json!(["{{ default }}", "tenant-b"]), "A")).hashes
    );
    assert_ne!(
        a,
        group(&with(json!([]), "A")).hashes,
        "extends, so differs from the default alone"
    );
    // Variables resolve from the event.
    assert_eq!(
        group(&with(
            json!(["{{ tags.tenant }}", "{{ transaction }}"]),
            "A"
        ))
        .hashes,
        group(&with(json!(["t1", "/pay"]), "B")).hashes
    );
}

#[test]
fn javascript_functions_keep_their_last_segment_and_files_their_base_name() {
    let js = |function: &str, file: &str| {
        event(
            json!({"platform": "node", "exception": [{"type": "Error", "value": "x", "stacktrace": {"frames": [
            {"function": function, "filename": file, "context_line": "throw new Error(x)", "in_app": true}]}}]}),
        )
    };
    assert_eq!(
        group(&js("Object.handler", "/srv/app/dist/App.js?v=1")).hashes,
        group(&js("Module.handler", "/home/ci/app/dist/app.js")).hashes
    );
}

#[test]
fn culprit_is_the_transaction_or_the_top_in_app_frame() {
    let e = python_error(
        "E",
        "v",
        json!([
            frame("app.views", "show", 1, "x", true),
            frame("lib", "inner", 2, "y", false)
        ]),
    );
    assert_eq!(group(&e).culprit.as_deref(), Some("app.views in show"));
    let mut with_tx = e.clone();
    with_tx.transaction = Some("/users/{id}".into());
    assert_eq!(group(&with_tx).culprit.as_deref(), Some("/users/{id}"));
}

#[test]
fn the_config_version_is_recorded() {
    assert_eq!(group(&event(json!({}))).config, CONFIG);
}
