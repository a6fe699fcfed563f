-- Events' random ids (event id, trace id) indexed after the hour of the event, so that a batch's new
-- entries land together instead of on a page each (see `store::event_keys`). The unique constraint on
-- `(project_id, event_id)` is part of the table, so the table is rebuilt (a copy of every event: on EFS,
-- seconds per hundred thousand events, once). Feedback gets the issue of its event, found before the old
-- index goes: the issue page lists it without a lookup by event id.

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
