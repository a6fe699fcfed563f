//! The ingest router end to end, in process: every protocol rule Relay enforces, then the processor
//! turning what was queued into rows.

use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use serde_json::json;
use splat::queue::{Queue, QueueMessage};
use splat_tests::*;

fn error_event(msg: &str) -> serde_json::Value {
    json!({"exception": {"values": [{"type": "ValueError", "value": msg}]}, "level": "error", "platform": "python",
           "release": "app@1.0", "environment": "prod", "timestamp": 1_700_000_000.5,
           "sdk": {"name": "sentry.python", "version": "2.75.0"}})
}

#[tokio::test]
async fn an_event_is_acknowledged_after_queueing_and_stored_once() {
    let app = TestApp::new().await;
    let id = event_id(1);
    let body = event_envelope(&id, &error_event("boom"));
    let reply = app.post_envelope(body.clone(), &[]).await;
    assert_eq!(
        (reply.status, reply.body.clone()),
        (200, json!({ "id": id }))
    );
    assert_eq!(app.queued().await, 1);
    // The SDK sends the same envelope again (a retry): accepted, but stored once.
    assert_eq!(app.post_envelope(body, &[]).await.status, 200);
    assert_eq!(app.process().await.done.len(), 2);
    let rows = app
        .query_strings(
            "SELECT event_id, title, level, release, environment, sdk_name, timestamp FROM events",
        )
        .await;
    assert_eq!(
        rows,
        vec![vec![
            Some(id),
            Some("ValueError: boom".into()),
            Some("error".into()),
            Some("app@1.0".into()),
            Some("prod".into()),
            Some("sentry.python".into()),
            Some("1700000000500000".into())
        ]]
    );
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn every_auth_form_relay_accepts() {
    let app = TestApp::new().await;
    let key = app.key();
    let path = format!("/api/{}/envelope/", app.project.id);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let cases: Vec<(&str, String, Option<String>)> = vec![
        (
            "x-sentry-auth",
            format!(
                "Sentry sentry_version=7, sentry_client=sentry.python/2.75.0, sentry_key={key}"
            ),
            None,
        ),
        ("authorization", format!("Sentry sentry_key={key}"), None),
        ("authorization", format!("Basic {basic}"), None),
        (
            "x-ignored",
            String::new(),
            Some(format!("sentry_key={key}&sentry_version=7")),
        ),
    ];
    for (n, (header, value, query)) in cases.into_iter().enumerate() {
        let uri = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        let req = Request::post(uri)
            .header(header, value)
            .body(Body::from(event_envelope(
                &event_id(n as u32),
                &error_event("x"),
            )))
            .unwrap();
        let reply = app.send(req).await;
        assert_eq!(reply.status, 200, "{header}: {}", reply.error());
    }
    // Only the envelope's own dsn header (a tunnel): authenticates too.
    let dsn = format!("http://{key}@example.com/{}", app.project.id);
    let body = format!(
        "{{\"event_id\":\"{}\",\"dsn\":\"{dsn}\"}}\n{{\"type\":\"event\"}}\n{{}}",
        event_id(9)
    );
    let reply = app
        .send(Request::post(path.clone()).body(Body::from(body)).unwrap())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    app.process().await;
    assert_eq!(app.count("events").await, 5);
}

#[tokio::test]
async fn auth_refusals() {
    let app = TestApp::new().await;
    let other = app.store.create_project("other").await.unwrap();
    let other_key = other.keys[0].public_key.to_string();
    let key = app.key();
    let pid = app.project.id;
    let body = || Body::from(event_envelope(&event_id(1), &error_event("x")));
    let cases = [
        // No credentials at all.
        (
            Request::post(format!("/api/{pid}/envelope/"))
                .body(body())
                .unwrap(),
            401,
            "missing authorization",
        ),
        // Two sources, even naming the same key.
        (
            Request::post(format!("/api/{pid}/envelope/?sentry_key={key}"))
                .header("x-sentry-auth", format!("Sentry sentry_key={key}"))
                .body(body())
                .unwrap(),
            400,
            "multiple",
        ),
        (
            Request::post(format!("/api/{pid}/envelope/?sentry_key=0123456789abcdef"))
                .body(body())
                .unwrap(),
            403,
            "unknown public key",
        ),
        // A real key, but of another project.
        (
            Request::post(format!("/api/{pid}/envelope/?sentry_key={other_key}"))
                .body(body())
                .unwrap(),
            403,
            "does not belong",
        ),
        (
            Request::post(format!("/api/a.b/envelope/?sentry_key={key}"))
                .body(body())
                .unwrap(),
            400,
            "project id or slug",
        ),
        (
            // A slug, as the seed's DSNs named projects, but not this key's project.
            Request::post(format!("/api/abc/envelope/?sentry_key={key}"))
                .body(body())
                .unwrap(),
            403,
            "does not belong to project abc",
        ),
        (
            Request::post(format!(
                "/api/{pid}/envelope/?sentry_key={key}&sentry_version=99"
            ))
            .body(body())
            .unwrap(),
            400,
            "protocol version",
        ),
    ];
    for (req, status, reason) in cases {
        let reply = app.send(req).await;
        assert_eq!(reply.status, status, "{reason}: {}", reply.error());
        assert!(
            reply.error().contains(reason),
            "{} should mention {reason}",
            reply.error()
        );
        assert!(reply.body["detail"].as_str().unwrap().contains(reason));
    }
    // The envelope dsn names a different key than the query.
    let env = format!("{{\"dsn\":\"http://{other_key}@h/{pid}\"}}\n{{\"type\":\"event\"}}\n{{}}");
    assert_eq!(app.post_envelope(env, &[]).await.status, 400);
    // The dsn names another project than the path.
    let env = format!(
        "{{\"dsn\":\"http://{key}@h/{}\"}}\n{{\"type\":\"event\"}}\n{{}}",
        other.id
    );
    assert_eq!(
        app.send(
            Request::post(format!("/api/{pid}/envelope/"))
                .body(Body::from(env))
                .unwrap()
        )
        .await
        .status,
        403
    );
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn disabled_keys_are_refused_and_other_keys_still_work() {
    // A zero TTL so the key cache sees the change at once.
    let app = TestApp::with_config(|c| c.key_cache_ttl = std::time::Duration::ZERO).await;
    let second = app.store.add_key(app.project.id, "second").await.unwrap();
    app.store
        .set_key_enabled(&app.project.keys[0].public_key, false)
        .await
        .unwrap();
    let reply = app
        .post_envelope(event_envelope(&event_id(1), &error_event("x")), &[])
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "this key is disabled".to_string())
    );
    let req = Request::post(format!(
        "/api/{}/envelope/?sentry_key={}",
        app.project.id, second.public_key
    ))
    .body(Body::from(event_envelope(&event_id(2), &error_event("x"))))
    .unwrap();
    assert_eq!(app.send(req).await.status, 200);
}

#[tokio::test]
async fn all_content_encodings_and_their_refusals() {
    let app = TestApp::new().await;
    let plain = |n| event_envelope(&event_id(n), &error_event("enc"));
    for (n, (encoding, body)) in [
        ("gzip", gzip(&plain(1))),
        ("deflate", deflate(&plain(2))),
        ("br", brotli(&plain(3))),
        ("zstd", zstd(&plain(4))),
        ("identity", plain(5)),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = app
            .post_envelope(body, &[("content-encoding", encoding)])
            .await;
        assert_eq!(
            reply.status,
            200,
            "{encoding} (case {n}): {}",
            reply.error()
        );
    }
    app.process().await;
    assert_eq!(app.count("events").await, 5);

    let refused = [
        ("gzip, br", gzip(&plain(6)), 415, "stacked"),
        ("compress", plain(7), 415, "unsupported content encoding"),
        ("gzip", plain(8), 400, "not valid gzip"),
        ("br", b"\x8b\x02\x80garbage".to_vec(), 400, "not valid br"),
    ];
    for (encoding, body, status, reason) in refused {
        let reply = app
            .post_envelope(body, &[("content-encoding", encoding)])
            .await;
        assert_eq!(reply.status, status, "{encoding}");
        assert!(
            reply.error().contains(reason),
            "{encoding}: {}",
            reply.error()
        );
    }
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn decompression_bombs_and_oversized_bodies_are_413() {
    let app = TestApp::with_config(|c| {
        c.limits.max_envelope_bytes = 1 << 20;
        c.limits.max_body_bytes = 64 << 10;
    })
    .await;
    // 50 MiB of zeros gzip to ~50 KiB: under the body cap, far over the envelope cap.
    let bomb = gzip(&vec![0u8; 50 << 20]);
    assert!(bomb.len() < 64 << 10);
    let reply = app
        .post_envelope(bomb, &[("content-encoding", "gzip")])
        .await;
    assert_eq!(reply.status, 413, "{}", reply.error());
    let reply = app.post_envelope(vec![b'{'; 65 << 10], &[]).await;
    assert_eq!(reply.status, 413);
    // An event item over 1 MiB inside an envelope under the limit.
    let app = TestApp::new().await;
    let big = json!({"message": "x".repeat((1 << 20) + 10)});
    let reply = app
        .post_envelope(event_envelope(&event_id(1), &big), &[])
        .await;
    assert_eq!(reply.status, 413);
    assert!(reply.error().contains("event item"), "{}", reply.error());
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn framing_variants_sdks_send() {
    let app = TestApp::new().await;
    let id = event_id(1);
    // JavaScript: no lengths, no trailing newline, header event id differs from the payload's (header wins).
    let js = format!("{{\"event_id\":\"{id}\",\"sent_at\":\"2026-01-01T00:00:00Z\"}}\n{{\"type\":\"event\"}}\n{{\"event_id\":\"{}\",\"message\":\"js\"}}\n{{\"type\":\"client_report\"}}\n{{\"discarded_events\":[]}}", event_id(2));
    let reply = app.post_envelope(js, &[]).await;
    assert_eq!(reply.body, json!({ "id": id }));
    // CRLF inside a payload, an empty attachment and an unknown item type around the event.
    let crlf = format!("{{\"event_id\":\"{}\"}}\n{{\"type\":\"attachment\",\"length\":7,\"filename\":\"a.txt\"}}\nab\r\ncd\r\n{{\"type\":\"attachment\",\"length\":0,\"filename\":\"empty\"}}\n\n{{\"type\":\"future_thing\",\"length\":3}}\nxyz\n{{\"type\":\"event\",\"length\":16}}\n{{\"message\":\"a\"}}\r\n", event_id(3));
    let reply = app
        .post_envelope(crlf, &[("content-type", "text/plain;charset=UTF-8")])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    app.process().await;
    let rows = app
        .query_strings("SELECT event_id, title FROM events ORDER BY event_id")
        .await;
    assert_eq!(
        rows,
        vec![
            vec![Some(id), Some("js".into())],
            vec![Some(event_id(3)), Some("a".into())]
        ]
    );
    let pid = app.project.id;
    assert_eq!(app.store.item_count(pid, "attachment").await.unwrap(), 2);
    assert_eq!(app.store.item_count(pid, "future_thing").await.unwrap(), 1);
    assert_eq!(app.store.item_count(pid, "client_report").await.unwrap(), 1);
}

#[tokio::test]
async fn envelopes_without_an_event_answer_empty_and_items_are_counted() {
    let app = TestApp::new().await;
    let body = "{}\n{\"type\":\"session\"}\n{\"sid\":\"s\",\"status\":\"ok\"}\n{\"type\":\"sessions\"}\n{\"aggregates\":[]}\n{\"type\":\"check_in\"}\n{\"check_in_id\":\"83a7c03ed0a04e1b97e2e3b18d38f244\",\"monitor_slug\":\"m\",\"status\":\"ok\"}\n{\"type\":\"log\",\"item_count\":3,\"content_type\":\"application/vnd.sentry.items.log+json\"}\n{\"items\":[{},{},{}]}";
    let reply = app
        .post_envelope(body, &[("content-type", "application/x-sentry-envelope")])
        .await;
    assert_eq!((reply.status, reply.body), (200, json!({})));
    app.process().await;
    let pid = app.project.id;
    // The three log records are empty objects: refused (counted), the rest of the envelope kept.
    for (ty, n) in [
        ("session", 1),
        ("sessions", 1),
        ("check_in", 1),
        ("log_refused", 3),
    ] {
        assert_eq!(app.store.item_count(pid, ty).await.unwrap(), n, "{ty}");
    }
    assert_eq!(app.count("events").await, 0);
}

#[tokio::test]
async fn hostile_bodies_get_4xx_never_5xx_and_nothing_is_queued() {
    let app = TestApp::new().await;
    let corpus: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\n".to_vec(),
        b"\x00\x01\x02".to_vec(),
        b"[]".to_vec(),
        b"{\"event_id\":1}\n{\"type\":\"event\"}\n[1,2]".to_vec(),
        b"{}\n{\"type\":\"event\"}\n{\"unterminated\":".to_vec(),
        b"{}\n{\"type\":\"event\"}\n".to_vec(),
        b"{}\n{\"type\":\"event\",\"length\":99999999}\n{}".to_vec(),
        b"{}\n{\"type\":\"event\",\"length\":2}\n{}garbage".to_vec(),
        b"{}\n{\"type\":\"event\",\"length\":-5}\n{}".to_vec(),
        b"{}\n{\"type\":\"event\",\"length\":1e3}\n{}".to_vec(),
        b"{}\n{\"nottype\":1}\n{}".to_vec(),
        b"{}\n{\"type\":7}\n{}".to_vec(),
        b"{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"transaction\"}\n{}".to_vec(),
        b"{}\n{\"type\":\"event\"}\n{}\n{\"type\":\"event\"}\n{}".to_vec(),
        b"{}\n{\"type\":\"span\",\"item_count\":5000}\n{\"items\":[]}".to_vec(),
        b"{}\n{\"type\":\"transaction\"}\n\"just a string\"".to_vec(),
        b"{}\n{\"type\":\"event\"}\n\xff\xfe{}".to_vec(),
        "{}\n{\"type\":\"event\"}\n{\"a\":\"\u{0}\"}"
            .as_bytes()
            .to_vec(),
        format!(
            "{{}}\n{}",
            "{\"type\":\"x\",\"length\":0}\n\n".repeat(10_001)
        )
        .into_bytes(),
        vec![b'['; 100_000],
        b"{\"dsn\":\"not a dsn\"}\n".to_vec(),
    ];
    for (n, body) in corpus.into_iter().enumerate() {
        let reply = app.post_envelope(body, &[]).await;
        assert!(
            (400..500).contains(&reply.status),
            "case {n}: status {} {}",
            reply.status,
            reply.error()
        );
        assert!(!reply.error().is_empty(), "case {n} has no reason");
    }
    // Every one of them was refused before reaching the queue.
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn chunked_bodies_without_content_length() {
    let app = TestApp::new().await;
    let body = gzip(&event_envelope(&event_id(1), &error_event("chunked")));
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(7)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stream = futures_util::stream::iter(chunks);
    let req = Request::post(app.envelope_url())
        .header("content-encoding", "gzip")
        .body(Body::from_stream(stream))
        .unwrap();
    assert_eq!(app.send(req).await.status, 200);
    app.process().await;
    assert_eq!(app.count("events").await, 1);
}

#[tokio::test]
async fn legacy_store_endpoint_json_base64_zlib_and_envelope() {
    let app = TestApp::new().await;
    let pid = app.project.id;
    let key = app.key();
    let auth = format!("Sentry sentry_key={key}, sentry_version=7");
    let raw = json!({"event_id": event_id(1), "message": "stored raw"}).to_string();
    let zipped = base64::engine::general_purpose::STANDARD.encode(deflate(
        json!({"event_id": event_id(2), "message": "zipped"})
            .to_string()
            .as_bytes(),
    ));
    let envelope = event_envelope(&event_id(3), &json!({"message": "as envelope"}));
    for (body, content_type) in [
        (raw.into_bytes(), "application/json"),
        (zipped.into_bytes(), "application/octet-stream"),
        (envelope, "application/x-sentry-envelope"),
    ] {
        let req = Request::post(format!("/api/{pid}/store/"))
            .header("x-sentry-auth", &auth)
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let reply = app.send(req).await;
        assert_eq!(reply.status, 200, "{content_type}: {}", reply.error());
    }
    let req = Request::post(format!("/api/{pid}/store/"))
        .header("x-sentry-auth", &auth)
        .body(Body::from("not an event"))
        .unwrap();
    assert_eq!(app.send(req).await.status, 400);
    app.process().await;
    let rows = app
        .query_strings("SELECT event_id, title FROM events ORDER BY event_id")
        .await;
    let titles: Vec<_> = rows.iter().map(|r| r[1].clone().unwrap()).collect();
    assert_eq!(titles, vec!["stored raw", "zipped", "as envelope"]);
}

#[tokio::test]
async fn project_quota_answers_429_with_both_headers() {
    let app = TestApp::new().await;
    app.store
        .set_quota(
            app.project.id,
            None,
            splat::protocol::DataCategory::Error,
            Some(2),
        )
        .await
        .unwrap();
    let mut statuses = Vec::new();
    let mut last = None;
    for n in 0..3 {
        let reply = app
            .post_envelope(event_envelope(&event_id(n), &error_event("q")), &[])
            .await;
        statuses.push(reply.status);
        last = Some(reply);
    }
    // A minute boundary between the requests could reset the window; the third must then still pass.
    let last = last.unwrap();
    if statuses == [200, 200, 429] {
        let retry: u64 = last.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(
            last.header("x-sentry-rate-limits").unwrap(),
            format!("{retry}:error:project:project_quota")
        );
    } else {
        assert_eq!(statuses, [200, 200, 200]);
    }
    // Other categories are not counted against the error quota.
    assert_eq!(
        app.post_envelope("{}\n{\"type\":\"session\"}\n{}", &[])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let app = TestApp::new().await;
    let req = Request::options(format!("/api/{}/envelope/", app.project.id))
        .header("origin", "https://shop.example")
        .body(Body::empty())
        .unwrap();
    let reply = app.send(req).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    assert!(reply
        .header("access-control-allow-headers")
        .unwrap()
        .contains("x-sentry-auth"));
    let reply = app.post_envelope("garbage", &[]).await;
    assert_eq!(
        reply.header("access-control-expose-headers"),
        Some("x-sentry-error, x-sentry-rate-limits, retry-after")
    );
}

#[tokio::test]
async fn classic_transactions_and_streamed_spans_become_the_same_rows() {
    // Span ids as SDKs make them (16 hex digits): the lake keeps them as 8-byte integers.
    const ROOT: &str = "dddddddddddddddd";
    const CHILD: &str = "c100000000000001";
    const SEGMENT: &str = "5e90000000000000";
    let app = TestApp::new().await;
    let tx = json!({"type": "transaction", "transaction": "GET /users", "start_timestamp": 1_700_000_000.0, "timestamp": 1_700_000_000.25,
        "environment": "prod", "release": "1.0",
        "contexts": {"trace": {"trace_id": "a".repeat(32), "span_id": ROOT, "op": "http.server", "status": "ok"}},
        "spans": [{"span_id": CHILD, "parent_span_id": ROOT, "op": "db", "description": "SELECT 1", "start_timestamp": 1_700_000_000.1, "timestamp": 1_700_000_000.2}]});
    let payload = tx.to_string();
    let body = format!(
        "{{\"event_id\":\"{}\"}}\n{{\"type\":\"transaction\",\"length\":{}}}\n{payload}\n",
        event_id(1),
        payload.len()
    );
    assert_eq!(
        app.post_envelope(body, &[]).await.body,
        json!({"id": event_id(1)})
    );

    // Streamed spans: the children arrive in one envelope, the segment root in a later one.
    let trace = "b".repeat(32);
    let child = json!({"items": [{"trace_id": trace, "span_id": "5100000000000001", "parent_span_id": SEGMENT, "name": "SELECT 2", "start_timestamp": 1_700_000_001.1, "end_timestamp": 1_700_000_001.2,
        "attributes": {"sentry.op": {"type": "string", "value": "db"}, "sentry.segment.id": {"type": "string", "value": SEGMENT}}}]});
    let root = json!({"items": [{"trace_id": trace, "span_id": SEGMENT, "name": "GET /orders", "is_segment": true, "status": "ok", "start_timestamp": 1_700_000_001.0, "end_timestamp": 1_700_000_001.5,
        "attributes": {"sentry.op": {"type": "string", "value": "http.server"}, "sentry.environment": {"type": "string", "value": "prod"}}}]});
    for items in [child, root] {
        let body = format!("{{}}\n{{\"type\":\"span\",\"item_count\":1,\"content_type\":\"application/vnd.sentry.items.span.v2+json\"}}\n{items}");
        let reply = app.post_envelope(body, &[]).await;
        assert_eq!((reply.status, reply.body), (200, json!({})));
    }
    app.process().await;
    let rows = app.query_strings("SELECT name, op, status, duration_us, environment, source FROM transactions ORDER BY name").await;
    assert_eq!(
        rows,
        vec![
            vec![
                Some("GET /orders".into()),
                Some("http.server".into()),
                Some("ok".into()),
                Some("500000".into()),
                Some("prod".into()),
                Some("span".into())
            ],
            vec![
                Some("GET /users".into()),
                Some("http.server".into()),
                Some("ok".into()),
                Some("250000".into()),
                Some("prod".into()),
                Some("transaction".into())
            ],
        ]
    );
    // Both shapes' spans end in the lake alike (the classic one's only there).
    let mut spans = Vec::new();
    for batch in app.lake_batches(&splat::lake::tables::SPANS).await {
        let (ids, segments, ops) = (
            lake_ids(&batch, "span_id"),
            lake_ids(&batch, "transaction_id"),
            lake_strings(&batch, "op"),
        );
        spans.extend((0..ids.len()).map(|i| (ids[i].clone(), segments[i].clone(), ops[i].clone())));
    }
    spans.sort();
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        spans,
        [
            (s("5100000000000001"), s(SEGMENT), s("db")),
            (s(SEGMENT), s(SEGMENT), s("http.server")),
            (s(CHILD), s(ROOT), s("db")),
            (s(ROOT), s(ROOT), s("http.server")),
        ]
    );
}

#[tokio::test]
async fn a_poison_message_never_blocks_the_batch_and_ends_dead_lettered() {
    let app = TestApp::new().await;
    app.queue
        .send(b"this is not a queue message".to_vec())
        .await
        .unwrap();
    assert_eq!(
        app.post_envelope(event_envelope(&event_id(1), &error_event("ok")), &[])
            .await
            .status,
        200
    );
    let outcome = app.process().await;
    assert_eq!((outcome.done.len(), outcome.failed.len()), (1, 1));
    assert_eq!(app.count("events").await, 1);
    // Retried until max_receives, then moved aside.
    for _ in 0..app.config.queue_max_receives {
        tokio::time::sleep(app.config.queue_visibility).await;
        app.process().await;
    }
    assert_eq!(
        (
            app.queued().await,
            app.queue.dead_letter_count().await.unwrap()
        ),
        (0, 1)
    );
}

#[tokio::test]
async fn redelivered_batches_write_nothing_twice() {
    let app = TestApp::new().await;
    for n in 0..3 {
        app.post_envelope(
            event_envelope(&event_id(n), &error_event("r")),
            &[("content-encoding", "identity")],
        )
        .await;
    }
    app.post_envelope("{}\n{\"type\":\"session\"}\n{}", &[])
        .await;
    let batch = app
        .queue
        .receive(10, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(batch.len(), 4);
    let first = app.processor.process_batch(&batch).await.unwrap();
    // The delete was lost (a crash, a timeout): the same messages come back.
    let second = app.processor.process_batch(&batch).await.unwrap();
    assert_eq!((first.done.len(), second.done.len()), (4, 4));
    assert_eq!(app.count("events").await, 3);
    assert_eq!(app.count("processed_messages").await, 4);
    assert_eq!(
        app.store
            .item_count(app.project.id, "session")
            .await
            .unwrap(),
        1
    );
    // And the message itself is what ingest wrote.
    let message = QueueMessage::decode(&batch[0].body).unwrap();
    assert_eq!(message.project_id, app.project.id);
}

#[tokio::test]
async fn messages_for_a_deleted_project_are_dropped_without_blocking_the_batch() {
    let app = TestApp::with_config(|c| c.key_cache_ttl = std::time::Duration::ZERO).await;
    let doomed = app.store.create_project("doomed").await.unwrap();
    let req = Request::post(format!(
        "/api/{}/envelope/?sentry_key={}",
        doomed.id, doomed.keys[0].public_key
    ))
    .body(Body::from(event_envelope(
        &event_id(1),
        &error_event("late"),
    )))
    .unwrap();
    assert_eq!(app.send(req).await.status, 200);
    app.store.delete_project(doomed.id).await.unwrap();
    assert_eq!(
        app.post_envelope(event_envelope(&event_id(2), &error_event("kept")), &[])
            .await
            .status,
        200
    );
    let outcome = app.process().await;
    assert_eq!((outcome.done.len(), outcome.failed.len()), (2, 0));
    assert_eq!(
        app.query_strings("SELECT event_id FROM events").await,
        vec![vec![Some(event_id(2))]]
    );
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn rows_the_database_refuses_fail_only_their_own_message() {
    let app = TestApp::new().await;
    // Stand-in for any row-level refusal (a constraint, a full disk for one large payload …).
    app.execute_sql("CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.title = 'ValueError: refused' BEGIN SELECT RAISE(ABORT, 'refused'); END;")
        .await;
    for (n, msg) in [(1, "fine"), (2, "refused"), (3, "also fine")] {
        assert_eq!(
            app.post_envelope(event_envelope(&event_id(n), &error_event(msg)), &[])
                .await
                .status,
            200
        );
    }
    let outcome = app.process().await;
    assert_eq!((outcome.done.len(), outcome.failed.len()), (2, 1));
    let titles = app
        .query_strings("SELECT title FROM events ORDER BY event_id")
        .await;
    assert_eq!(
        titles,
        vec![
            vec![Some("ValueError: fine".to_string())],
            vec![Some("ValueError: also fine".to_string())]
        ]
    );
    assert_eq!(
        app.queued().await,
        1,
        "the refused message waits for a retry, then the dead-letter table"
    );
}

/// A body that fails when read past `chunks`: a request answered without reading it shows it was not read.
fn body_then_error(chunks: Vec<Vec<u8>>) -> Body {
    use futures_util::{stream, StreamExt};
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        chunks.into_iter().map(|c| Ok(Bytes::from(c))).collect();
    Body::from_stream(stream::iter(chunks).chain(stream::once(async {
        Err(std::io::Error::other("the body was read"))
    })))
}

#[tokio::test]
async fn keys_in_headers_or_the_query_are_checked_before_the_body_is_read() {
    let app = TestApp::new().await;
    let pid = app.project.id;
    let other = app.store.create_project("other").await.unwrap();
    let unknown = "0123456789abcdef0123456789abcdef";
    let cases = [
        (
            format!("/api/{pid}/envelope/?sentry_key={unknown}"),
            None,
            "unknown public key",
        ),
        (
            format!("/api/{pid}/envelope/"),
            Some(format!("Sentry sentry_key={unknown}")),
            "unknown public key",
        ),
        (
            format!("/api/{pid}/store/?sentry_key={}", other.keys[0].public_key),
            None,
            "does not belong",
        ),
        (format!("/api/{pid}/store/"), None, "missing authorization"),
    ];
    for (uri, auth, reason) in cases {
        let mut req = Request::post(uri).header("content-encoding", "gzip");
        if let Some(auth) = auth {
            req = req.header("x-sentry-auth", auth);
        }
        let reply = app.send(req.body(body_then_error(vec![])).unwrap()).await;
        assert!(
            matches!(reply.status, 401 | 403),
            "{reason}: {}",
            reply.status
        );
        assert!(reply.error().contains(reason), "{}", reply.error());
    }
    // The cron endpoint's key is in its path.
    let reply = app
        .send(
            Request::post(format!("/api/{pid}/cron/nightly/{unknown}/?status=ok"))
                .body(body_then_error(vec![]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "unknown public key".into())
    );
    assert_eq!(app.queued().await, 0);
}

#[tokio::test]
async fn a_key_only_in_the_envelope_dsn_is_checked_on_the_first_line() {
    // Small enough that inflating a bomb would be refused for memory, not for the key.
    let app = TestApp::with_config(|c| c.edge.ingest_memory_bytes = 1 << 20).await;
    let pid = app.project.id;
    let envelope = |key: &str| {
        let mut body = format!("{{\"dsn\":\"http://{key}@h/{pid}\"}}\n").into_bytes();
        body.extend(event_envelope(&event_id(1), &error_event("dsn only")).split_off(47));
        body
    };
    let post = |body: Body, encoding: &str| {
        Request::post(format!("/api/{pid}/envelope/"))
            .header("content-encoding", encoding)
            .body(body)
            .unwrap()
    };
    let good = envelope(&app.key());
    let reply = app.send(post(Body::from(gzip(&good)), "gzip")).await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    // Unknown key: only the first line is read (the rest would fail) …
    let unknown = "0123456789abcdef0123456789abcdef";
    let mut first = format!("{{\"dsn\":\"http://{unknown}@h/{pid}\"}}\n").into_bytes();
    first.extend_from_slice(b"{\"type\":");
    let reply = app
        .send(post(body_then_error(vec![first]), "identity"))
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "unknown public key".into())
    );
    // … and only it is inflated: a 50 MiB bomb behind it is never reached.
    let mut bomb = format!("{{\"dsn\":\"http://{unknown}@h/{pid}\"}}\n").into_bytes();
    bomb.extend(vec![b' '; 50 << 20]);
    let reply = app.send(post(Body::from(gzip(&bomb)), "gzip")).await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, "unknown public key".into())
    );
    // A header line that never ends is refused at the cap.
    let endless = gzip(&vec![b'{'; 50 << 20]);
    let reply = app.send(post(Body::from(endless), "gzip")).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.error().contains("must end within"),
        "{}",
        reply.error()
    );
    app.process().await;
    assert_eq!(app.count("events").await, 1);
}

#[tokio::test]
async fn bodies_are_held_within_the_memory_budget() {
    let app = TestApp::with_config(|c| c.edge.ingest_memory_bytes = 4 << 20).await;
    // A bomb with a valid key inflates only as far as the budget: alone it could never fit.
    let bomb = gzip(&vec![0u8; 50 << 20]);
    let reply = app
        .post_envelope(bomb, &[("content-encoding", "gzip")])
        .await;
    assert_eq!(reply.status, 413, "{}", reply.error());
    assert!(reply.error().contains("memory budget"), "{}", reply.error());
    // A request stalled after 3 MiB holds them; another that needs 1.5 MiB is told to come back.
    let (read, stalled) = tokio::sync::oneshot::channel();
    let held = Body::from_stream(futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 3 << 20]))]),
        futures_util::stream::once(async move {
            let _ = read.send(());
            std::future::pending::<Result<Bytes, std::io::Error>>().await
        }),
    ));
    let slow = Request::post(app.envelope_url())
        .header("content-length", (4 << 20) - 1)
        .body(held)
        .unwrap();
    let router = app.router.clone();
    let slow = tokio::spawn(async move { tower::ServiceExt::oneshot(router, slow).await });
    stalled.await.unwrap();
    let attachment = format!(
        "{{}}\n{{\"type\":\"attachment\",\"length\":{}}}\n{}\n",
        3 << 19,
        "a".repeat(3 << 19)
    );
    let reply = app.post_envelope(attachment.clone(), &[]).await;
    assert_eq!(reply.status, 503, "{}", reply.error());
    assert_eq!(reply.header("retry-after"), Some("2"));
    slow.abort();
    let _ = slow.await;
    let reply = app.post_envelope(attachment, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.error());
    assert_eq!(app.queued().await, 1);
}
