CREATE TABLE projects (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL,
    slug              TEXT    NOT NULL UNIQUE,
    created_at        INTEGER NOT NULL,
    -- Accepted events per minute; NULL means no quota.
    events_per_minute INTEGER
);

CREATE TABLE project_keys (
    public_key TEXT    PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    label      TEXT    NOT NULL DEFAULT 'Default',
    enabled    INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE INDEX project_keys_project ON project_keys (project_id);

-- Times are microseconds since the Unix epoch, UTC. Payloads are zstd-compressed JSON.
CREATE TABLE events (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL,
    timestamp        INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    level            TEXT    NOT NULL,
    platform         TEXT,
    release          TEXT,
    environment      TEXT,
    server_name      TEXT,
    transaction_name TEXT,
    title            TEXT    NOT NULL,
    exception_type   TEXT,
    exception_value  TEXT,
    message          TEXT,
    sdk_name         TEXT,
    sdk_version      TEXT,
    trace_id         TEXT,
    payload          BLOB    NOT NULL,
    UNIQUE (project_id, event_id)
);
CREATE INDEX events_project_time ON events (project_id, timestamp);

-- One row per transaction, classic or streamed: keyed by its root span so both shapes dedupe alike.
CREATE TABLE transactions (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    event_id       TEXT,
    trace_id       TEXT    NOT NULL,
    span_id        TEXT    NOT NULL,
    parent_span_id TEXT,
    name           TEXT    NOT NULL,
    op             TEXT,
    status         TEXT,
    start_time     INTEGER,
    end_time       INTEGER NOT NULL,
    duration_us    INTEGER,
    environment    TEXT,
    release        TEXT,
    platform       TEXT,
    sdk_name       TEXT,
    -- 'transaction' (a classic item) or 'span' (a streamed segment).
    source         TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    payload        BLOB,
    UNIQUE (project_id, trace_id, span_id)
);
CREATE INDEX transactions_project_time ON transactions (project_id, end_time);

CREATE TABLE spans (
    project_id     INTEGER NOT NULL,
    trace_id       TEXT    NOT NULL,
    span_id        TEXT    NOT NULL,
    parent_span_id TEXT,
    segment_id     TEXT,
    is_segment     INTEGER NOT NULL,
    name           TEXT,
    op             TEXT,
    status         TEXT,
    start_time     INTEGER,
    end_time       INTEGER,
    duration_us    INTEGER,
    data           TEXT,
    PRIMARY KEY (project_id, trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX spans_segment ON spans (project_id, trace_id, segment_id);

-- Items accepted but not (yet) stored as rows: sessions, client reports, attachments, check-ins, logs …
CREATE TABLE item_counts (
    project_id INTEGER NOT NULL,
    item_type  TEXT    NOT NULL,
    hour       INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, item_type, hour)
) WITHOUT ROWID;

-- The ledger: queue messages whose rows are committed. Written in the same transaction as the rows,
-- so a redelivered message is recognised and skipped.
CREATE TABLE processed_messages (
    message_id   TEXT    PRIMARY KEY,
    processed_at INTEGER NOT NULL
) WITHOUT ROWID;
