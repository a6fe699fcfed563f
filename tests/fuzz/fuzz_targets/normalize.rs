//! Span-description normalization (`splat::perf::normalize`), run on every span before it is stored.
//!
//! The first input byte picks the span `op` and the `db.system`; the rest, as UTF-8 (lossily), is the
//! description. Invariants, beyond not panicking:
//! - the output is at most `MAX_DESCRIPTION_BYTES` (2,000) bytes;
//! - normalizing is idempotent: normalizing the output again (same op, same db.system) returns it
//!   unchanged, for `normalize_description` and for `normalize_sql` alike (README.md, finding 2).
#![no_main]

use libfuzzer_sys::fuzz_target;
use splat::perf::normalize::{normalize_description, normalize_sql, MAX_DESCRIPTION_BYTES};

const OPS: &[&str] = &[
    "db",
    "db.sql.query",
    "db.query",
    "db.redis",
    "db.mongodb.find",
    "cache.get",
    "http.client",
    "http.server",
    "resource.script",
    "ui.render",
];

const DB_SYSTEMS: &[Option<&str>] = &[
    None,
    Some("postgresql"),
    Some("mysql"),
    Some("sqlite"),
    Some("mssql"),
    Some("mongodb"),
    Some("clickhouse"),
    Some("bigquery"),
];

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else {
        return;
    };
    let op = OPS[usize::from(selector & 0x0f) % OPS.len()];
    let db_system = DB_SYSTEMS[usize::from(selector >> 4) % DB_SYSTEMS.len()];
    let description = String::from_utf8_lossy(rest);

    let once = normalize_description(op, &description, db_system);
    assert!(once.len() <= MAX_DESCRIPTION_BYTES, "{} bytes", once.len());
    let twice = normalize_description(op, &once, db_system);
    assert_eq!(twice, once, "normalize_description({op:?}, db.system {db_system:?}) is not idempotent");

    let sql = normalize_sql(&description, db_system);
    assert!(sql.len() <= MAX_DESCRIPTION_BYTES, "{} bytes", sql.len());
    let sql_twice = normalize_sql(&sql, db_system);
    assert_eq!(sql_twice, sql, "normalize_sql(db.system {db_system:?}) is not idempotent");
});
