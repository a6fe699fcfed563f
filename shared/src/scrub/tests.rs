use serde_json::json;

use super::*;

fn scrubbed(settings: &ScrubSettings, mut payload: Value) -> (Value, Vec<Note>) {
    let report = Scrubber::new(settings).payload(&mut payload);
    (payload, report.notes())
}

fn defaults(payload: Value) -> (Value, Vec<Note>) {
    scrubbed(&ScrubSettings::default(), payload)
}

#[test]
fn sensitive_keys_at_any_depth_lose_their_values() {
    let (v, notes) = defaults(json!({
        "extra": {"password": "hunter2", "nested": {"deeper": {"the_secret": "x", "apiKey": "k", "ok": "keep"}},
                  "list": [{"mysql_pwd": "p"}], "otp": "123456", "two-factor": 1, "pin": 1234, "password_len": 7},
        "contexts": {"db": {"credentials": {"user": "u", "pass": "p"}}},
        "breadcrumbs": {"values": [{"message": "login", "data": {"secret": "s", "url": "/x"}}]},
        "exception": {"values": [{"type": "ValueError", "value": "bad",
            "stacktrace": {"frames": [{"function": "login", "filename": "auth.py", "vars": {"token": "'abc'", "user": "'bob'"}}]}}]},
    }));
    let e = &v["extra"];
    assert_eq!(e["password"], FILTERED);
    assert_eq!(e["nested"]["deeper"]["the_secret"], FILTERED);
    assert_eq!(e["nested"]["deeper"]["apiKey"], FILTERED);
    assert_eq!(e["nested"]["deeper"]["ok"], "keep");
    assert_eq!(e["list"][0]["mysql_pwd"], FILTERED);
    assert_eq!(e["otp"], FILTERED);
    assert_eq!(e["two-factor"], FILTERED);
    assert_eq!(e["pin"], 1234, "not a sensitive key");
    assert_eq!(
        e["password_len"], FILTERED,
        "a number under a password key goes too"
    );
    // A whole object under a sensitive key goes.
    assert_eq!(v["contexts"]["db"]["credentials"], FILTERED);
    assert_eq!(v["breadcrumbs"]["values"][0]["data"]["secret"], FILTERED);
    assert_eq!(v["breadcrumbs"]["values"][0]["data"]["url"], "/x");
    let frame = &v["exception"]["values"][0]["stacktrace"]["frames"][0];
    assert_eq!(frame["vars"]["token"], FILTERED);
    assert_eq!(frame["vars"]["user"], "'bob'");
    // Structural fields stay, even when they contain a sensitive word.
    assert_eq!(frame["filename"], "auth.py");
    // One note per rule, naming paths and never values.
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].rule, "@password:filter");
    assert_eq!(notes[0].count, 10);
    assert!(notes[0]
        .fields
        .contains(&"exception.values.0.stacktrace.frames.0.vars.token".to_owned()));
    assert!(notes[0]
        .fields
        .contains(&"extra.nested.deeper.the_secret".to_owned()));
    let stored = serde_json::to_string(&notes).unwrap();
    for value in ["hunter2", "'abc'", "123456"] {
        assert!(!stored.contains(value));
    }
}

#[test]
fn headers_cookies_and_query_strings_in_every_shape() {
    let (v, _) = defaults(json!({"request": {
        "url": "https://shop.example/cb?code=1&access_token=abc123",
        "headers": {"Authorization": "Bearer abc", "Cookie": "sessionid=s1; theme=dark", "Accept": "*/*",
                    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) token=1", "X-Api-Key": "k1", "X-CSRFToken": "c"},
        "cookies": {"sessionid": "s1", "theme": "dark"},
        "query_string": "page=2&password=hunter2",
        "env": {"REMOTE_ADDR": "10.0.0.1", "SECRET_KEY": "django"},
        "data": {"card": "4111 1111 1111 1111", "name": "Bob"}
    }}));
    let r = &v["request"];
    assert_eq!(
        r["url"],
        "https://shop.example/cb?code=1&access_token=[Filtered]"
    );
    let h = &r["headers"];
    for name in ["Authorization", "Cookie", "X-Api-Key", "X-CSRFToken"] {
        assert_eq!(h[name], FILTERED, "{name}");
    }
    assert_eq!(h["Accept"], "*/*");
    assert_eq!(
        h["User-Agent"], "Mozilla/5.0 (X11; Linux x86_64) token=1",
        "never scrubbed, as in Relay"
    );
    assert_eq!(r["cookies"], FILTERED);
    assert_eq!(r["query_string"], "page=2&password=[Filtered]");
    assert_eq!(r["env"]["SECRET_KEY"], FILTERED);
    assert_eq!(
        r["env"]["REMOTE_ADDR"], "10.0.0.1",
        "IPs are kept unless the project asks"
    );
    assert_eq!(r["data"]["card"], FILTERED);
    assert_eq!(r["data"]["name"], "Bob");

    // The pair shapes: headers, cookies and query strings as `[key, value]` lists, and `Set-Cookie`.
    let (v, notes) = defaults(json!({"request": {
        "headers": [["Authorization", "Basic dXNlcjpwYXNz"], ["Set-Cookie", "a=b"], ["Accept", "text/html"]],
        "cookies": [["theme", "dark"]],
        "query_string": [["password", "x"], ["page", "2"]]
    }}));
    let r = &v["request"];
    assert_eq!(
        r["headers"],
        json!([
            ["Authorization", FILTERED],
            ["Set-Cookie", FILTERED],
            ["Accept", "text/html"]
        ])
    );
    assert_eq!(r["cookies"], FILTERED);
    assert_eq!(
        r["query_string"],
        json!([["password", FILTERED], ["page", "2"]])
    );
    let password = notes.iter().find(|n| n.rule == "@password:filter").unwrap();
    assert!(password
        .fields
        .contains(&"request.headers.0.Authorization".to_owned()));
}

#[test]
fn strings_keep_what_is_not_a_secret() {
    let (v, notes) = defaults(json!({
        "message": "charge failed for card 4242 4242 4242 4242, order 1733450000000123",
        "logentry": {"formatted": "db at postgres://app:s3cret@db/x said no; ssn 078-05-1120"},
        "exception": {"values": [{"type": "AuthError", "value": "login failed password=hunter2 for bob"}]},
        "extra": {"note": "GET /auth/login", "sql": "UPDATE users SET password = 'x' WHERE id = 1"},
        "contexts": {"trace": {"trace_id": "4111111111111111", "span_id": "4111111111111111"}},
    }));
    assert_eq!(
        v["message"],
        "charge failed for card [Filtered], order 1733450000000123"
    );
    assert_eq!(
        v["logentry"]["formatted"],
        "db at postgres://app:[Filtered]@db/x said no; ssn [Filtered]"
    );
    assert_eq!(
        v["exception"]["values"][0]["value"],
        "login failed password=[Filtered] for bob"
    );
    assert_eq!(v["exception"]["values"][0]["type"], "AuthError");
    assert_eq!(v["extra"]["note"], "GET /auth/login");
    assert_eq!(
        v["extra"]["sql"],
        "UPDATE users SET password = '[Filtered]' WHERE id = 1"
    );
    // Ids never look like card numbers to the scrubber.
    assert_eq!(v["contexts"]["trace"]["span_id"], "4111111111111111");
    let rules: Vec<_> = notes.iter().map(|n| n.rule).collect();
    for rule in [
        "@creditcard:filter",
        "@urlauth:legacy",
        "@usssn:filter",
        "@password:filter",
    ] {
        assert!(rules.contains(&rule), "{rules:?}");
    }
}

#[test]
fn span_data_and_typed_attributes() {
    let (v, _) = defaults(json!({"items": [{
        "trace_id": "t", "span_id": "s", "name": "POST /login",
        "attributes": {
            "http.request.header.authorization": {"type": "string", "value": "Bearer x"},
            "http.request.header.cookie": {"type": "string", "value": "a=b"},
            "gen_ai.usage.input_tokens": {"type": "integer", "value": 12},
            "url.full": {"type": "string", "value": "https://x/?token=t1"},
            "client.address": {"type": "string", "value": "10.1.2.3"}
        }
    }]}));
    let a = &v["items"][0]["attributes"];
    assert_eq!(
        a["http.request.header.authorization"],
        json!({"type": "string", "value": FILTERED})
    );
    assert_eq!(a["http.request.header.cookie"]["value"], FILTERED);
    assert_eq!(
        a["gen_ai.usage.input_tokens"]["value"], 12,
        "a count of tokens is no secret"
    );
    assert_eq!(a["url.full"]["value"], "https://x/?token=[Filtered]");
    assert_eq!(a["client.address"]["value"], "10.1.2.3");
    assert_eq!(v["items"][0]["name"], "POST /login");

    let (v, _) = defaults(
        json!({"spans": [{"span_id": "a", "op": "db", "description": "SELECT 1",
        "data": {"db.password": "p", "http.query": "api_key=k"}}]}),
    );
    assert_eq!(v["spans"][0]["data"]["db.password"], FILTERED);
    assert_eq!(v["spans"][0]["data"]["http.query"], "api_key=[Filtered]");
}

#[test]
fn ip_addresses_only_when_the_project_asks() {
    let payload = json!({
        "user": {"id": "42", "ip_address": "203.0.113.9"},
        "request": {"env": {"REMOTE_ADDR": "203.0.113.9"}},
        "sdk": {"name": "sentry.python", "client_ip": "203.0.113.9"},
        "breadcrumbs": [{"message": "connect to 10.0.0.7:5432 from 2001:db8::1"}],
    });
    let (kept, notes) = defaults(payload.clone());
    assert_eq!((kept, notes), (payload.clone(), vec![]));
    let settings = ScrubSettings {
        ip_addresses: true,
        ..ScrubSettings::default()
    };
    let (v, notes) = scrubbed(&settings, payload);
    assert_eq!(v["user"], json!({"id": "42", "ip_address": null}));
    assert_eq!(v["request"]["env"]["REMOTE_ADDR"], Value::Null);
    assert_eq!(v["sdk"]["client_ip"], Value::Null);
    assert_eq!(
        v["breadcrumbs"][0]["message"],
        "connect to [ip]:5432 from [ip]"
    );
    let mut rules: Vec<_> = notes.iter().map(|n| (n.rule, n.count)).collect();
    rules.sort();
    assert_eq!(rules, [("@anything:remove", 3), ("@ip:replace", 1)]);
}

#[test]
fn extra_sensitive_fields_and_safe_fields() {
    let settings = ScrubSettings {
        sensitive_fields: vec!["Iban".into(), "mysekret".into()],
        safe_fields: vec!["auth_mode".into(), "extra.session".into()],
        ..ScrubSettings::default()
    };
    let (v, notes) = scrubbed(
        &settings,
        json!({"extra": {"iban_number": "DE89", "note": "uses MYSEKRET here", "auth_mode": "oauth",
            "session": {"id": "s1"}, "contexts": {"session": "x"}}}),
    );
    let e = &v["extra"];
    assert_eq!(e["iban_number"], FILTERED);
    assert_eq!(
        e["note"], FILTERED,
        "a value containing an extra field goes whole, as in Sentry"
    );
    assert_eq!(e["auth_mode"], "oauth", "safe by name");
    assert_eq!(e["session"], json!({"id": "s1"}), "safe by path");
    assert_eq!(e["contexts"]["session"], FILTERED, "only that path is safe");
    assert!(notes
        .iter()
        .any(|n| n.rule == "strip-fields" && n.count == 2));

    // With the defaults off only the project's own fields apply.
    let settings = ScrubSettings {
        defaults: false,
        sensitive_fields: vec!["mysekret".into()],
        ..ScrubSettings::default()
    };
    let (v, _) = scrubbed(
        &settings,
        json!({"extra": {"password": "p", "mysekret": "m"}}),
    );
    assert_eq!(v["extra"], json!({"password": "p", "mysekret": FILTERED}));
    let off = ScrubSettings {
        defaults: false,
        ..ScrubSettings::default()
    };
    assert!(Scrubber::new(&off).is_off());
}

#[test]
fn attributes_and_text_for_other_items() {
    let scrubber = Scrubber::new(&ScrubSettings::default());
    let mut attributes = json!({"user.password": {"type": "string", "value": "p"}, "count": {"type": "integer", "value": 3}});
    let report = scrubber.attributes(attributes.as_object_mut().unwrap());
    assert_eq!(attributes["user.password"]["value"], FILTERED);
    assert_eq!(report.notes()[0].fields, ["user.password.value"]);
    let mut body = "paid with 4111111111111111, password=x".to_owned();
    let mut both = scrubber.text(&mut body);
    assert_eq!(body, "paid with [Filtered], password=[Filtered]");
    // A log record's body and attributes make one report: one note per rule.
    both.absorb(report);
    let notes = both.notes();
    assert_eq!(notes.len(), 2);
    let password = notes.iter().find(|n| n.rule == "@password:filter").unwrap();
    assert_eq!((password.count, password.fields.len()), (2, 2));
}

#[test]
fn notes_are_bounded() {
    let mut extra = Map::new();
    for i in 0..500 {
        extra.insert(format!("secret_{i}_{}", "k".repeat(300)), json!("v"));
    }
    let (_, notes) = defaults(json!({ "extra": extra }));
    assert_eq!(notes[0].count, 500);
    assert_eq!(notes[0].fields.len(), MAX_PATHS);
    assert!(notes[0].fields.iter().all(|f| f.len() <= MAX_PATH_LEN + 3));
}

#[test]
fn field_lists_as_people_type_them() {
    assert_eq!(
        ScrubSettings::parse_fields(" a, b\n\nc ,").unwrap(),
        ["a", "b", "c"]
    );
    assert!(ScrubSettings::parse_fields(&"x,".repeat(101)).is_err());
    assert!(ScrubSettings::parse_fields(&"x".repeat(101)).is_err());
    let saved: ScrubSettings = serde_json::from_str(r#"{"ip_addresses": true}"#).unwrap();
    assert!(
        saved.defaults && saved.ip_addresses,
        "missing keys take the defaults"
    );
}

#[test]
fn key_lookups_without_allocation_agree_with_the_lists() {
    // Every needle is found wherever it sits, in any case; a needle that scrubs numbers wins.
    for needle in &NEEDLES {
        let key = format!("X_{}_y", needle.text.to_ascii_uppercase());
        assert_eq!(default_needle(&key).map(|n| n.text), Some(needle.text));
    }
    assert!(default_needle("input_tokens_password").unwrap().numbers);
    assert!(!default_needle("input_tokens").unwrap().numbers);
    assert!(default_needle("order_id").is_none());
    assert!(is_structural("Instruction_Addr") && is_structural("span_id"));
    assert!(!is_structural("span_ids") && !is_structural(&"x".repeat(40)) && !is_structural(""));
}
