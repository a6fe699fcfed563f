//! The `outputSchema` of every tool: the shape of its `structuredContent`, so that a client can check it
//! (the official SDK clients do) and a model knows the fields before calling. Tool errors carry
//! `{"error": …}` with `isError`, which the schema does not cover (clients validate only successes).
//!
//! Written as a small vocabulary (`ty("string?")` is a nullable string, `object` requires every field
//! it lists) over the same pieces the tools build their JSON from (`format`, `perf::tx_json`, …).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::store::EndpointStats;

/// A JSON type by name; a trailing `?` allows null.
fn ty(t: &str) -> Value {
    match t.strip_suffix('?') {
        Some(t) => json!({ "type": [t, "null"] }),
        None => json!({ "type": t }),
    }
}

/// An object with these properties, all present (a nullable one may be null); others may follow.
fn object(fields: &[(&str, Value)]) -> Value {
    let props: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    json!({ "type": "object", "properties": props, "required": fields.iter().map(|(k, _)| *k).collect::<Vec<_>>() })
}

/// `base` with more fields (all present).
fn extend(mut base: Value, fields: &[(&str, Value)]) -> Value {
    for (k, v) in fields {
        base["properties"][*k] = v.clone();
        if let Some(r) = base["required"].as_array_mut() {
            r.push(json!(k));
        }
    }
    base
}

fn nullable(v: Value) -> Value {
    json!({ "anyOf": [v, { "type": "null" }] })
}

fn array(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

fn any_object() -> Value {
    json!({ "type": "object" })
}

fn project() -> Value {
    object(&[
        ("id", ty("integer")),
        ("slug", ty("string")),
        ("name", ty("string")),
    ])
}

fn window() -> Value {
    object(&[("start", ty("string")), ("end", ty("string"))])
}

/// What every performance tool answers with first: project, window and environment.
fn scope(fields: &[(&str, Value)]) -> Value {
    let base = object(&[
        ("project", project()),
        ("window", window()),
        ("environment", ty("string?")),
    ]);
    extend(base, fields)
}

fn issue() -> Value {
    object(&[
        ("id", ty("integer")),
        ("project_id", ty("integer")),
        ("title", ty("string")),
        ("culprit", ty("string?")),
        ("status", ty("string")),
        ("level", ty("string")),
        ("platform", ty("string?")),
        ("exception_type", ty("string?")),
        ("count", ty("integer")),
        ("users", ty("integer")),
        ("first_seen", ty("string")),
        ("last_seen", ty("string")),
        ("first_release", ty("string?")),
        ("last_release", ty("string?")),
        ("regressed", ty("boolean")),
        ("last_event_id", ty("string?")),
    ])
}

fn issue_list() -> Value {
    object(&[
        ("project", project()),
        ("total", ty("integer")),
        ("total_is_exact", ty("boolean")),
        ("issues", array(issue())),
    ])
}

fn frame() -> Value {
    object(&[
        ("function", ty("string?")),
        ("filename", ty("string?")),
        ("lineno", ty("integer?")),
        ("in_app", ty("boolean")),
        ("context_line", ty("string?")),
        ("pre_context", array(ty("string"))),
        ("post_context", array(ty("string"))),
    ])
}

/// `format::event_json`: the parts of an event `get_event` shows.
fn event() -> Value {
    object(&[
        ("level", ty("string?")),
        ("platform", ty("string?")),
        ("release", ty("string?")),
        ("environment", ty("string?")),
        ("server_name", ty("string?")),
        ("transaction", ty("string?")),
        ("message", ty("string?")),
        ("trace_id", ty("string?")),
        (
            "exceptions",
            array(object(&[
                ("type", ty("string?")),
                ("value", ty("string?")),
                ("handled", ty("boolean?")),
                ("frames", array(frame())),
            ])),
        ),
        (
            "breadcrumbs",
            array(object(&[
                ("timestamp", ty("string?")),
                ("category", ty("string?")),
                ("message", ty("string?")),
            ])),
        ),
        ("request", nullable(any_object())),
        ("user", nullable(any_object())),
        (
            "tags",
            json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        ),
        ("contexts", any_object()),
        ("sdk", any_object()),
    ])
}

fn event_item() -> Value {
    object(&[
        ("event_id", ty("string")),
        ("timestamp", ty("string")),
        ("title", ty("string")),
        ("level", ty("string")),
        ("release", ty("string?")),
        ("environment", ty("string?")),
    ])
}

/// `traces::trace_event_json`: an error event of a trace.
fn trace_event() -> Value {
    extend(event_item(), &[("issue_id", ty("integer?"))])
}

/// `perf::tx_json`: a transaction as lists show it.
fn transaction() -> Value {
    object(&[
        ("id", ty("string")),
        ("row_id", ty("integer")),
        ("event_id", ty("string?")),
        ("trace_id", ty("string")),
        ("span_id", ty("string")),
        ("name", ty("string")),
        ("op", ty("string?")),
        ("status", ty("string?")),
        ("http_method", ty("string?")),
        ("http_status", ty("integer?")),
        ("duration_ms", ty("number?")),
        ("timestamp", ty("string")),
        ("start", ty("string?")),
        ("environment", ty("string?")),
        ("release", ty("string?")),
        ("db_time_ms", ty("number?")),
        ("query_count", ty("integer?")),
        ("has_n_plus_one", ty("boolean")),
        ("source", ty("string")),
    ])
}

/// `perf::stats_json`: [`EndpointStats`] (its schema derived from the type) and the shares derived
/// from it.
fn stats() -> Value {
    let mut s = schemars::schema_for!(EndpointStats).to_value();
    if let Some(m) = s.as_object_mut() {
        m.remove("$schema");
        m.remove("title");
        m.remove("description");
    }
    extend(
        s,
        &[
            ("n_plus_one_pct", ty("number")),
            ("error_rate_pct", ty("number")),
            ("percentiles", ty("string")),
            ("capped_at_rows", ty("integer?")),
        ],
    )
}

fn status_change() -> Value {
    object(&[
        ("issue_id", ty("integer")),
        ("previous_status", ty("string")),
        ("status", ty("string")),
    ])
}

fn side() -> Value {
    object(&[
        ("label", ty("string")),
        ("window", window()),
        ("release", ty("string?")),
        ("stats", stats()),
        ("slowest", nullable(transaction())),
    ])
}

fn span() -> Value {
    object(&[
        ("span_id", ty("string")),
        ("parent_span_id", ty("string?")),
        ("op", ty("string?")),
        ("description", ty("string?")),
        ("status", ty("string?")),
        ("duration_ms", ty("number?")),
        ("offset_ms", ty("number")),
        ("depth", ty("integer?")),
        ("sequence", ty("integer?")),
        ("group_hash", ty("string?")),
    ])
}

fn trace_of_event() -> Value {
    nullable(object(&[
        ("trace_id", ty("string")),
        ("transactions", array(transaction())),
    ]))
}

/// The output schema of tool `name` (`None`: the tool declares none).
pub fn schema(name: &str) -> Option<Arc<Map<String, Value>>> {
    let s = match name {
        "list_projects" => object(&[(
            "projects",
            array(extend(
                project(),
                &[
                    ("open_issues", ty("integer")),
                    ("events", ty("integer")),
                    ("last_activity", ty("string?")),
                ],
            )),
        )]),
        "get_status" => object(&[
            ("version", ty("string")),
            ("projects", ty("integer")),
            ("issues", ty("integer")),
            (
                "issues_by_status",
                json!({ "type": "object", "additionalProperties": { "type": "integer" } }),
            ),
            ("events", ty("integer")),
            ("transactions", ty("integer")),
            ("spans", ty("integer")),
            ("releases", ty("integer")),
            ("queue_depth", ty("integer?")),
            ("queue_lag_seconds", ty("number?")),
            ("queue_last_batch_at", ty("string?")),
        ]),
        "list_recent_issues" | "search_issues" => issue_list(),
        "get_issue" => extend(
            issue(),
            &[
                ("project", project()),
                (
                    "tags",
                    json!({ "type": "object", "additionalProperties": array(object(&[
                        ("value", ty("string")),
                        ("count", ty("integer")),
                    ])) }),
                ),
                (
                    "latest_event",
                    nullable(object(&[
                        ("event_id", ty("string")),
                        ("timestamp", ty("string")),
                        ("has_in_app_frames", ty("boolean")),
                    ])),
                ),
                (
                    "feedback",
                    object(&[
                        ("count", ty("integer")),
                        (
                            "items",
                            array(object(&[
                                ("name", ty("string?")),
                                ("email", ty("string?")),
                                ("message", ty("string")),
                                ("timestamp", ty("string")),
                                ("event_id", ty("string?")),
                            ])),
                        ),
                    ]),
                ),
            ],
        ),
        "get_issue_events" => {
            object(&[("issue_id", ty("integer")), ("events", array(event_item()))])
        }
        "get_event" => extend(
            event(),
            &[
                ("event_id", ty("string")),
                ("timestamp", ty("string")),
                ("title", ty("string")),
                ("issue_id", ty("integer?")),
                ("project", project()),
                ("untrusted", ty("boolean")),
                ("trace", trace_of_event()),
            ],
        ),
        "get_investigation_context" => object(&[
            ("issue", issue()),
            ("project", project()),
            ("untrusted_event_data", ty("boolean")),
            (
                "event",
                nullable(extend(
                    event(),
                    &[
                        ("event_id", ty("string")),
                        ("timestamp", ty("string")),
                        ("has_in_app_frames", ty("boolean")),
                        ("in_app_frames", array(frame())),
                    ],
                )),
            ),
        ]),
        "resolve_issue" | "ignore_issue" | "reopen_issue" => status_change(),
        "list_releases" => object(&[
            ("project", project()),
            ("total", ty("integer")),
            (
                "releases",
                array(object(&[
                    ("version", ty("string")),
                    ("first_seen", ty("string")),
                    ("last_seen", ty("string")),
                    ("events", ty("integer")),
                    ("transactions", ty("integer")),
                ])),
            ),
        ]),
        "get_transaction_stats" => scope(&[
            ("endpoint", ty("string?")),
            ("totals", stats()),
            ("endpoint_count", ty("integer")),
            ("endpoints", array(stats())),
        ]),
        "get_endpoint_summary" => scope(&[
            ("endpoint", ty("string")),
            ("release", ty("string?")),
            ("stats", stats()),
            ("slowest", nullable(transaction())),
            ("latest", nullable(transaction())),
        ]),
        "get_endpoint_timeseries" => scope(&[
            ("endpoint", ty("string")),
            ("release", ty("string?")),
            ("bucket_hours", ty("integer")),
            ("total", ty("integer")),
            (
                "buckets",
                array(object(&[
                    ("start", ty("string")),
                    ("count", ty("integer")),
                    ("avg_ms", ty("number?")),
                    ("p50_ms", ty("number?")),
                    ("p95_ms", ty("number?")),
                    ("p99_ms", ty("number?")),
                ])),
            ),
            ("capped_at_rows", ty("integer?")),
        ]),
        "find_n_plus_one_endpoints" => scope(&[
            ("total", ty("integer")),
            (
                "endpoints",
                array(object(&[
                    ("name", ty("string")),
                    ("count", ty("integer")),
                    ("n_plus_one_count", ty("integer")),
                    ("n_plus_one_pct", ty("number")),
                    ("wasted_ms", ty("number")),
                    ("wasted_per_affected_ms", ty("number")),
                    ("avg_queries", ty("number")),
                    ("max_queries", ty("integer")),
                    ("avg_ms", ty("number")),
                    ("p95_ms", ty("number?")),
                    (
                        "example",
                        nullable(object(&[
                            ("transaction", transaction()),
                            ("pattern", nullable(any_object())),
                        ])),
                    ),
                ])),
            ),
        ]),
        "search_slow_transactions" => scope(&[
            ("min_duration_ms", ty("number")),
            ("max_duration_ms", ty("number?")),
            ("endpoint", ty("string?")),
            ("release", ty("string?")),
            ("http_status", ty("integer?")),
            ("http_method", ty("string?")),
            (
                "tags",
                json!({ "type": "object", "additionalProperties": { "type": "string" } }),
            ),
            ("tag_scan_capped", ty("boolean")),
            ("transactions", array(transaction())),
        ]),
        "get_transactions_by_endpoint" => scope(&[
            ("endpoint", ty("string")),
            ("release", ty("string?")),
            ("offset", ty("integer")),
            ("next_offset", ty("integer?")),
            ("transactions", array(transaction())),
        ]),
        "compare_endpoint_performance" => object(&[
            ("project", project()),
            ("environment", ty("string?")),
            ("endpoint", ty("string")),
            ("mode", json!({ "enum": ["releases", "time"] })),
            ("a", side()),
            ("b", side()),
            (
                "change_pct",
                object(&[
                    ("count", ty("number?")),
                    ("avg", ty("number?")),
                    ("p50", ty("number?")),
                    ("p95", ty("number?")),
                    ("p99", ty("number?")),
                ]),
            ),
            ("verdict", ty("string")),
        ]),
        "get_transaction" => extend(
            transaction(),
            &[
                ("project", project()),
                ("parent_span_id", ty("string?")),
                ("http_url", ty("string?")),
                ("query_param_names", array(ty("string"))),
                ("server_name", ty("string?")),
                ("platform", ty("string?")),
                ("sdk_name", ty("string?")),
                ("view_time_ms", ty("number?")),
                ("other_time_ms", ty("number")),
                ("n_plus_one_wasted_ms", ty("number?")),
                ("span_count", ty("integer?")),
                ("spans_truncated", ty("boolean")),
                ("query_patterns", array(any_object())),
                ("measurements", any_object()),
                (
                    "tags",
                    json!({ "type": "object", "additionalProperties": { "type": "string" } }),
                ),
                ("contexts", any_object()),
                ("errors", array(trace_event())),
                ("untrusted", ty("boolean")),
            ],
        ),
        "get_transaction_spans" => object(&[
            ("project", project()),
            (
                "transaction",
                extend(
                    transaction(),
                    &[
                        ("span_count", ty("integer?")),
                        ("spans_truncated", ty("boolean")),
                    ],
                ),
            ),
            ("total_spans", ty("integer")),
            ("matching", ty("integer")),
            ("shown", ty("integer")),
            ("output_truncated", ty("boolean")),
            ("op_filter", ty("string?")),
            (
                "ops",
                array(object(&[
                    ("op", ty("string")),
                    ("count", ty("integer")),
                    ("total_ms", ty("number")),
                    ("avg_ms", ty("number")),
                ])),
            ),
            (
                "repeated",
                array(object(&[
                    ("op", ty("string")),
                    ("description", ty("string")),
                    ("count", ty("integer")),
                    ("total_ms", ty("number")),
                ])),
            ),
            ("spans", array(span())),
            ("untrusted", ty("boolean")),
        ]),
        "list_monitors" => object(&[
            ("project", project()),
            (
                "monitors",
                array(object(&[
                    ("slug", ty("string")),
                    ("state", ty("string")),
                    (
                        "schedule",
                        nullable(object(&[
                            ("type", ty("string")),
                            ("value", ty("string")),
                            ("unit", ty("string?")),
                            ("timezone", ty("string?")),
                        ])),
                    ),
                    ("checkin_margin_minutes", ty("integer")),
                    ("max_runtime_minutes", ty("integer")),
                    ("failure_issue_threshold", ty("integer")),
                    ("recovery_threshold", ty("integer")),
                    ("environment", ty("string?")),
                    ("last_checkin_at", ty("string?")),
                    ("last_status", ty("string?")),
                    ("last_duration_ms", ty("number?")),
                    ("next_expected_at", ty("string?")),
                ])),
            ),
        ]),
        "get_trace" => object(&[
            ("trace_id", ty("string")),
            ("start", ty("string")),
            ("projects", array(project())),
            (
                "transactions",
                array(extend(
                    transaction(),
                    &[("project", ty("string")), ("offset_ms", ty("number"))],
                )),
            ),
            (
                "errors",
                array(extend(trace_event(), &[("project", ty("string"))])),
            ),
        ]),
        _ => return None,
    };
    s.as_object().cloned().map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_declares_an_object_schema() {
        for name in super::super::NAMES {
            let s = schema(name).unwrap_or_else(|| panic!("{name} has no output schema"));
            assert_eq!(s["type"], "object", "{name}");
            assert!(
                s["properties"].as_object().is_some_and(|p| !p.is_empty()),
                "{name}"
            );
        }
    }

    #[test]
    fn the_stats_schema_comes_from_endpoint_stats() {
        let s = stats();
        for field in ["count", "p95_ms", "wasted_ms", "exact", "n_plus_one_pct"] {
            assert!(s["properties"][field].is_object(), "{field}: {s}");
        }
        assert!(s["required"].as_array().unwrap().contains(&json!("count")));
        assert!(s.get("$schema").is_none());
    }
}
