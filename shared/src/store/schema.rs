//! Versioned migrations of `splat.db`. Each entry runs once, in order, inside a transaction; the applied
//! versions are recorded in `schema_migrations`. Never edit a released migration: add the next one.

pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, V1_GROUND_FLOOR),
    (2, V2_ISSUES),
    (3, V3_ISSUE_LIST_SPEED),
    (4, V4_TAG_FILTERS),
    (5, crate::lake::catalog::V5_LAKE_CATALOG),
    (6, V6_TRANSACTION_ROLLUPS),
    (8, V8_TRANSACTION_FIGURES),
    (7, V7_NOTIFICATIONS_SENT),
    (9, V9_RETENTION),
    (12, V12_SETTINGS),
    (13, V13_EVENTS_BY_TRACE),
    (DAILY_ROLLUPS_VERSION, V14_DAILY_ROLLUPS),
    (10, V10_MONITORS),
    (15, V15_QUOTAS_AND_ALERT_BUDGET),
    (16, V16_FEEDBACK),
    (17, V17_KEY_CHANGES_AND_QUEUE_BATCHES),
    (18, V18_LEDGER_IN_TIME_ORDER),
    (19, V19_EVENT_KEYS_BY_HOUR),
];

/// What the processor derives from each transaction, for lists and the transaction page (the lake has the
/// same figures for analytics). `query_patterns` is JSON: per normalized query its count, distinct
/// statements, time and N+1 verdict; never a literal.
const V8_TRANSACTION_FIGURES: &str = "
ALTER TABLE transactions ADD COLUMN server_name TEXT;
ALTER TABLE transactions ADD COLUMN http_method TEXT;
ALTER TABLE transactions ADD COLUMN http_url TEXT;
ALTER TABLE transactions ADD COLUMN http_status INTEGER;
ALTER TABLE transactions ADD COLUMN db_time_ms REAL;
ALTER TABLE transactions ADD COLUMN view_time_ms REAL;
ALTER TABLE transactions ADD COLUMN query_count INTEGER;
ALTER TABLE transactions ADD COLUMN has_n_plus_one INTEGER;
ALTER TABLE transactions ADD COLUMN n_plus_one_wasted_ms REAL;
ALTER TABLE transactions ADD COLUMN span_count INTEGER;
ALTER TABLE transactions ADD COLUMN spans_truncated INTEGER;
ALTER TABLE transactions ADD COLUMN query_patterns TEXT;
CREATE INDEX transactions_endpoint_time ON transactions (project_id, name, end_time);
CREATE INDEX transactions_project_duration ON transactions (project_id, duration_us);
";

/// Per (project, endpoint, environment, hour): what performance pages and rankings read, so that they
/// never scan raw transactions. `sketch` is a mergeable latency histogram (`perf::sketch`, ~1% error).
const V6_TRANSACTION_ROLLUPS: &str = "
CREATE TABLE transaction_rollups (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    -- '' when the SDK sent none: part of the key, so never NULL.
    environment      TEXT    NOT NULL,
    -- Unix seconds at the start of the hour.
    hour             INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    duration_sum     REAL    NOT NULL,
    duration_min     REAL,
    duration_max     REAL,
    db_sum           REAL    NOT NULL,
    view_sum         REAL    NOT NULL,
    query_sum        INTEGER NOT NULL,
    query_max        INTEGER NOT NULL,
    n_plus_one_count INTEGER NOT NULL,
    wasted_sum       REAL    NOT NULL,
    errors_5xx       INTEGER NOT NULL,
    sketch           BLOB    NOT NULL,
    PRIMARY KEY (project_id, hour, name, environment)
) WITHOUT ROWID;
";

const V1_GROUND_FLOOR: &str = "
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
";

const V2_ISSUES: &str = "
-- An issue is a group of events that are the same problem (see grouping). Counters are maintained by
-- the processor as events arrive; `grouping_config` records the algorithm that made its hashes.
CREATE TABLE issues (
    id                  INTEGER PRIMARY KEY,
    project_id          INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- open | resolved | resolved_next_release | ignored
    status              TEXT    NOT NULL DEFAULT 'open',
    title               TEXT    NOT NULL,
    culprit             TEXT,
    level               TEXT    NOT NULL,
    platform            TEXT,
    exception_type      TEXT,
    first_seen          INTEGER NOT NULL,
    last_seen           INTEGER NOT NULL,
    times_seen          INTEGER NOT NULL DEFAULT 0,
    users_seen          INTEGER NOT NULL DEFAULT 0,
    first_release       TEXT,
    last_release        TEXT,
    grouping_config     TEXT    NOT NULL,
    resolved_at         INTEGER,
    regressed_at        INTEGER,
    last_event_id       TEXT
);
CREATE INDEX issues_project_status_seen ON issues (project_id, status, last_seen);
CREATE INDEX issues_project_seen ON issues (project_id, last_seen);

-- Every grouping hash (app and system variant) points at its issue: either one matching is enough.
CREATE TABLE issue_hashes (
    project_id INTEGER NOT NULL,
    hash       TEXT    NOT NULL,
    issue_id   INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, hash)
) WITHOUT ROWID;
CREATE INDEX issue_hashes_issue ON issue_hashes (issue_id);

ALTER TABLE events ADD COLUMN issue_id INTEGER REFERENCES issues (id) ON DELETE CASCADE;
CREATE INDEX events_issue_time ON events (issue_id, timestamp);

CREATE TABLE issue_users (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    user_key TEXT    NOT NULL,
    PRIMARY KEY (issue_id, user_key)
) WITHOUT ROWID;

-- Tag value distribution per issue (environment and release included as tags).
CREATE TABLE issue_tags (
    issue_id   INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    PRIMARY KEY (issue_id, key, value)
) WITHOUT ROWID;

-- Events per issue per hour (sparklines).
CREATE TABLE issue_hours (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    hour     INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (issue_id, hour)
) WITHOUT ROWID;

CREATE TABLE releases (
    project_id        INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version           TEXT    NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    event_count       INTEGER NOT NULL DEFAULT 0,
    transaction_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, version)
) WITHOUT ROWID;

-- Full-text search over issues: the title, and a body of exception types and values, messages, and stack
-- frame functions and files. The rowid is the issue id.
CREATE VIRTUAL TABLE issues_fts USING fts5 (title, body, tokenize = 'unicode61 remove_diacritics 2');
";

const V3_ISSUE_LIST_SPEED: &str = "
-- The issue list sorts within a status tab by count or first seen; without these a large project sorts
-- every open issue per page view.
CREATE INDEX issues_project_status_count ON issues (project_id, status, times_seen);
CREATE INDEX issues_project_status_first ON issues (project_id, status, first_seen);

-- Issues per status, kept by triggers: counting 100k index entries per page view was most of the list's time.
CREATE TABLE issue_status_counts (
    project_id INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, status)
) WITHOUT ROWID;
INSERT INTO issue_status_counts (project_id, status, count) SELECT project_id, status, count(*) FROM issues GROUP BY 1, 2;

CREATE TRIGGER issue_status_counts_insert AFTER INSERT ON issues BEGIN
    INSERT INTO issue_status_counts (project_id, status, count) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER issue_status_counts_update AFTER UPDATE OF status ON issues WHEN OLD.status <> NEW.status BEGIN
    UPDATE issue_status_counts SET count = count - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
    INSERT INTO issue_status_counts (project_id, status, count) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER issue_status_counts_delete AFTER DELETE ON issues BEGIN
    UPDATE issue_status_counts SET count = count - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
END;
";

const V4_TAG_FILTERS: &str = "
-- Filtering the issue list by environment or release starts from the tag value, not from every issue.
CREATE INDEX issue_tags_value ON issue_tags (key, value, issue_id);
";

/// The migration that creates the daily rollups; `Store::migrate` then fills them from the hourly ones.
pub const DAILY_ROLLUPS_VERSION: i64 = 14;

/// The hourly rollups summed per UTC day, so long windows read a day per row (the same columns; `day` is
/// Unix seconds at the start of the day).
const V14_DAILY_ROLLUPS: &str = "
CREATE TABLE transaction_rollups_daily (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    day              INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    duration_sum     REAL    NOT NULL,
    duration_min     REAL,
    duration_max     REAL,
    db_sum           REAL    NOT NULL,
    view_sum         REAL    NOT NULL,
    query_sum        INTEGER NOT NULL,
    query_max        INTEGER NOT NULL,
    n_plus_one_count INTEGER NOT NULL,
    wasted_sum       REAL    NOT NULL,
    errors_5xx       INTEGER NOT NULL,
    sketch           BLOB    NOT NULL,
    PRIMARY KEY (project_id, day, name, environment)
) WITHOUT ROWID;
";

const V13_EVENTS_BY_TRACE: &str = "
-- A trace's errors (the transaction page, MCP get_trace/get_transaction/get_event): without it SQLite
-- walked the time index, 430-820 ms on 300k events; with it, 0.04 ms. The timestamp spares the sort.
CREATE INDEX events_trace ON events (project_id, trace_id, timestamp);
";

const V12_SETTINGS: &str = "
-- Instance-wide settings saved from the settings page, e.g. `retention.SPLAT_MAX_EVENT_LIFE_DAYS`; a saved
-- value wins over the environment variable of the same name.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
";

const V9_RETENTION: &str = "
-- What each retention run removed (its report as JSON), newest kept for the settings page.
CREATE TABLE retention_runs (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    report      TEXT    NOT NULL
);
-- Retention trims the ledger by age; without this it would scan the whole ledger per batch.
CREATE INDEX processed_messages_at ON processed_messages (processed_at);
";

const V7_NOTIFICATIONS_SENT: &str = "
-- Alerts already sent that must not repeat (an event burst: at most once per issue per hour), kept in the
-- database so that a restart or another Lambda instance does not send them again. `hour` is Unix seconds
-- at the start of the hour the alert is about; `sent_at` is microseconds.
CREATE TABLE notifications_sent (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    kind     TEXT    NOT NULL,
    hour     INTEGER NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (issue_id, kind, hour)
) WITHOUT ROWID;
CREATE INDEX notifications_sent_at ON notifications_sent (sent_at);
";

const V10_MONITORS: &str = "
-- Cron monitors, one per (project, slug): created by their first check-in, configured by any check-in that
-- carries a monitor_config (the newest config wins: `config_at` is when it was received). Margin and
-- runtime are minutes; times are microseconds.
CREATE TABLE monitors (
    id                      INTEGER PRIMARY KEY,
    project_id              INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    slug                    TEXT    NOT NULL,
    created_at              INTEGER NOT NULL,
    -- 'crontab' | 'interval'; NULL until a config arrives (such a monitor is never missed).
    schedule_type           TEXT,
    schedule_value          TEXT,
    schedule_unit           TEXT,
    timezone                TEXT,
    checkin_margin          INTEGER NOT NULL DEFAULT 1,
    max_runtime             INTEGER NOT NULL DEFAULT 30,
    failure_issue_threshold INTEGER NOT NULL DEFAULT 1,
    recovery_threshold      INTEGER NOT NULL DEFAULT 1,
    config_at               INTEGER,
    environment             TEXT,
    last_checkin_at         INTEGER,
    next_expected_at        INTEGER,
    UNIQUE (project_id, slug)
);

-- One row per run, keyed by the client's check_in_id (a missed slot is 'missed-<µs>'). `status` is
-- in_progress | ok | error, or the evaluation's missed | timeout; `incident` is set once the evaluation has
-- judged the run (missed | failed | overrun), so it is never judged twice.
CREATE TABLE monitor_checkins (
    monitor_id  INTEGER NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    check_in_id TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    duration_ms REAL,
    environment TEXT,
    release     TEXT,
    incident    TEXT,
    PRIMARY KEY (monitor_id, check_in_id)
) WITHOUT ROWID;
CREATE INDEX monitor_checkins_started ON monitor_checkins (monitor_id, started_at);
";

const V15_QUOTAS_AND_ALERT_BUDGET: &str = "
-- Items accepted per clock minute, per data category (Relay's names: error, transaction, span, attachment,
-- session, monitor, feedback, ...), for one key or (public_key '') for every key of the project together.
CREATE TABLE quotas (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public_key TEXT    NOT NULL DEFAULT '',
    category   TEXT    NOT NULL,
    per_minute INTEGER NOT NULL,
    PRIMARY KEY (project_id, public_key, category)
) WITHOUT ROWID;
-- The old project quota counted events, transactions and feedback together; it becomes one quota each.
INSERT INTO quotas (project_id, public_key, category, per_minute)
SELECT p.id, '', c.category, p.events_per_minute
FROM projects p, (SELECT 'error' AS category UNION ALL SELECT 'transaction' UNION ALL SELECT 'feedback') c
WHERE p.events_per_minute IS NOT NULL;

-- Alerts sent per project and clock hour (`hour` in Unix seconds), and those held back past the cap: they
-- are reported by one digest (`digest_sent_at`, microseconds) about the latest of them.
CREATE TABLE alert_budget (
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hour            INTEGER NOT NULL,
    sent            INTEGER NOT NULL DEFAULT 0,
    suppressed      INTEGER NOT NULL DEFAULT 0,
    last_suppressed INTEGER,
    digest_sent_at  INTEGER,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;
";

/// User feedback (`feedback` items and legacy `user_report`s), shown on the event it names and its issue.
/// `event_id` is joined at read time: the feedback often arrives before its event is processed.
/// `feedback_id` is the feedback event's own id, or for a user report the id of the event it names.
const V16_FEEDBACK: &str = "
CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    -- 'feedback' | 'user_report'
    kind        TEXT    NOT NULL,
    feedback_id TEXT    NOT NULL,
    event_id    TEXT,
    name        TEXT,
    email       TEXT,
    message     TEXT    NOT NULL,
    url         TEXT,
    timestamp   INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (project_id, kind, feedback_id)
);
CREATE INDEX feedback_event ON feedback (project_id, event_id);
CREATE INDEX feedback_project_time ON feedback (project_id, timestamp);
";

/// What lets ingest and the UI run without asking AWS: a version of the keys that every change to keys,
/// quotas and projects raises (the key snapshot ingest reads from the bucket carries the version it was
/// built at, and the monitor tick republishes one older than this), and what the processor saw of the
/// queue at its last batch (the UI's queue pill and `/_health` on SQS, instead of `GetQueueAttributes`).
const V17_KEY_CHANGES_AND_QUEUE_BATCHES: &str = "
CREATE TABLE key_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
-- 0 while no key exists: nothing to publish, and ingest says so (503) until the first project.
INSERT INTO key_changes (id, version) SELECT 1, EXISTS (SELECT 1 FROM project_keys);
CREATE TRIGGER key_changes_key_insert AFTER INSERT ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_key_update AFTER UPDATE ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_key_delete AFTER DELETE ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_insert AFTER INSERT ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_update AFTER UPDATE ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_delete AFTER DELETE ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
-- A project's keys and quotas go with it by cascade; counted here too, whatever the cascade fires.
CREATE TRIGGER key_changes_project_delete AFTER DELETE ON projects BEGIN
    UPDATE key_changes SET version = version + 1;
END;

-- The processor's last SQS batch: when (microseconds) and how long its oldest message had waited (ms).
CREATE TABLE queue_batches (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    batch_at INTEGER NOT NULL,
    lag_ms   INTEGER NOT NULL
);
";

const V18_LEDGER_IN_TIME_ORDER: &str = "
-- The message ledger keyed by when the queue took the message (SQS's SentTimestamp, the same on every
-- redelivery) before its random id, so that a batch's entries land on the last page or two instead of one
-- page each: on EFS every page a commit changes is written twice (journal and file). Rows from before have
-- no time: 0, and the processor looks there too.
CREATE TABLE processed_messages_by_time (
    sent_ms      INTEGER NOT NULL,
    message_id   TEXT    NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (sent_ms, message_id)
) WITHOUT ROWID;
INSERT INTO processed_messages_by_time (sent_ms, message_id, processed_at)
    SELECT 0, message_id, processed_at FROM processed_messages;
DROP TABLE processed_messages;
ALTER TABLE processed_messages_by_time RENAME TO processed_messages;
CREATE INDEX processed_messages_at ON processed_messages (processed_at);
";

/// Events' random ids (event id, trace id) indexed after the hour of the event, so that a batch's new
/// entries land together instead of on a page each (see `store::event_keys`). The unique constraint on
/// `(project_id, event_id)` is part of the table, so the table is rebuilt (a copy of every event: on EFS,
/// seconds per hundred thousand events, once). Feedback gets the issue of its event, found before the old
/// index goes: the issue page lists it without a lookup by event id.
const V19_EVENT_KEYS_BY_HOUR: &str = "
ALTER TABLE feedback ADD COLUMN issue_id INTEGER REFERENCES issues (id) ON DELETE SET NULL;
UPDATE feedback SET issue_id = (
    SELECT e.issue_id FROM events e WHERE e.project_id = feedback.project_id AND e.event_id = feedback.event_id
) WHERE event_id IS NOT NULL;
CREATE INDEX feedback_issue ON feedback (issue_id, timestamp);

CREATE TABLE events_by_hour (
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
    issue_id         INTEGER REFERENCES issues (id) ON DELETE CASCADE
);
INSERT INTO events_by_hour SELECT id, project_id, event_id, timestamp, received_at, level, platform, release,
    environment, server_name, transaction_name, title, exception_type, exception_value, message, sdk_name,
    sdk_version, trace_id, payload, issue_id FROM events;
DROP TABLE events;
ALTER TABLE events_by_hour RENAME TO events;
CREATE UNIQUE INDEX events_id ON events (project_id, timestamp / 3600000000, event_id);
CREATE INDEX events_trace ON events (project_id, timestamp / 3600000000, trace_id);
CREATE INDEX events_project_time ON events (project_id, timestamp);
CREATE INDEX events_issue_time ON events (issue_id, timestamp);
";
