-- The unique key of transactions, `(project_id, trace_id, span_id)`, is random in its ids, so each new
-- transaction changed a leaf page of its own: on a database of a million transactions it was 6.6 KB of the
-- 13 KB a transaction wrote at batches of 1,000 (BENCHMARKS, "Bytes written per transaction on a grown
-- database"), billed as EFS writes. It is now keyed after the hour the transaction ended, as events are
-- (migration 19): a batch's new keys land together in the hour being written. The processor knows a
-- transaction's hour; a trace's transactions are found by probing the project's hours (store/event_keys.rs).
-- A transaction re-sent with another end hour would now be stored twice; an SDK's retry sends the same one.
--
-- The constraint is part of the table, so the table is rebuilt (ids kept), in parts: on a large database the
-- copy outlasts any one invocation (about 11 s a million transactions on a local SSD; 100 M on EFS, hours).
-- This file runs once, at the start: the new table with its indexes, which the copy fills as it goes, and
-- the old table's secondary indexes dropped (their names pass to the new ones; the processor writes
-- nothing until the migration is done, and a UI or MCP instance started before it reads slowly meanwhile:
-- new ones answer 503). Each part then copies the next rows in id order, and the last
-- swaps the tables (`store::transaction_keys::copy_keys_by_hour`, `finish_keys_by_hour`).
CREATE TABLE transactions_by_hour (
    id                   INTEGER PRIMARY KEY,
    project_id           INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id             TEXT,
    trace_id             TEXT    NOT NULL,
    span_id              TEXT    NOT NULL,
    parent_span_id       TEXT,
    name                 TEXT    NOT NULL,
    op                   TEXT,
    status               TEXT,
    start_time           INTEGER,
    end_time             INTEGER NOT NULL,
    duration_us          INTEGER,
    environment          TEXT,
    release              TEXT,
    platform             TEXT,
    sdk_name             TEXT,
    -- 'transaction' (a classic item) or 'span' (a streamed segment).
    source               TEXT    NOT NULL,
    received_at          INTEGER NOT NULL,
    payload              BLOB,
    server_name          TEXT,
    http_method          TEXT,
    http_url             TEXT,
    http_status          INTEGER,
    db_time_ms           REAL,
    view_time_ms         REAL,
    query_count          INTEGER,
    has_n_plus_one       INTEGER,
    n_plus_one_wasted_ms REAL,
    span_count           INTEGER,
    spans_truncated      INTEGER,
    query_patterns       TEXT
);
DROP INDEX transactions_project_time;
DROP INDEX transactions_endpoint_time;
DROP INDEX transactions_hour_duration;
DROP INDEX transactions_endpoint_hour_duration;
CREATE UNIQUE INDEX transactions_key ON transactions_by_hour (project_id, end_time / 3600000000, trace_id, span_id);
CREATE INDEX transactions_project_time ON transactions_by_hour (project_id, end_time);
CREATE INDEX transactions_endpoint_time ON transactions_by_hour (project_id, name, end_time);
CREATE INDEX transactions_hour_duration ON transactions_by_hour (project_id, end_time / 3600000000, duration_us);
CREATE INDEX transactions_endpoint_hour_duration
    ON transactions_by_hour (project_id, name, end_time / 3600000000, duration_us);
