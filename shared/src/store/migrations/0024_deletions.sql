-- What people deleted in the UI. An event's id stays here (after the hour of its timestamp, as its
-- index was: a batch's lookups land together) so that a redelivered message or an SDK's retry of a
-- deleted event is taken for a duplicate and not stored again; retention drops entries with the events
-- of their hour. A deleted issue's id stays so that it never names another issue.
CREATE TABLE deleted_events (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hour       INTEGER NOT NULL,
    event_id   TEXT    NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, event_id)
) WITHOUT ROWID;

CREATE TABLE deleted_issues (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL
);
