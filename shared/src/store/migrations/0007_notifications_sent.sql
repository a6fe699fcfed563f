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
