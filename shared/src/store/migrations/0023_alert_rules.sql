-- Which alerts a project sends, and where. No row: every kind, level, environment and destination (what
-- Splat did before rules existed). `kinds` is a comma-separated subset of new, regressed, burst;
-- `environments` is comma-separated ('' for every one); `destinations` names channels (email, ntfy, a
-- webhook's name), comma-separated, or is NULL for every destination, those added later included.
CREATE TABLE alert_rules (
    project_id   INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    kinds        TEXT    NOT NULL,
    min_level    TEXT    NOT NULL,
    environments TEXT    NOT NULL,
    destinations TEXT,
    updated_at   INTEGER NOT NULL
);

-- Issues whose alerts are muted: until `until` (microseconds), or for good when it is NULL.
CREATE TABLE issue_mutes (
    issue_id INTEGER PRIMARY KEY REFERENCES issues (id) ON DELETE CASCADE,
    until    INTEGER,
    muted_at INTEGER NOT NULL
);
