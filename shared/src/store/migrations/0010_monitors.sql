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
