-- User feedback (`feedback` items and legacy `user_report`s), shown on the event it names and its issue.
-- `event_id` is joined at read time: the feedback often arrives before its event is processed.
-- `feedback_id` is the feedback event's own id, or for a user report the id of the event it names.

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
