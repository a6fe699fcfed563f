-- What each retention run removed (its report as JSON), newest kept for the settings page.
CREATE TABLE retention_runs (
    id          INTEGER PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    report      TEXT    NOT NULL
);
-- Retention trims the ledger by age; without this it would scan the whole ledger per batch.
CREATE INDEX processed_messages_at ON processed_messages (processed_at);
