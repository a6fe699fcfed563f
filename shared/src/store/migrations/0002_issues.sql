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
