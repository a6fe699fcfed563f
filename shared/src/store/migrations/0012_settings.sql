-- Instance-wide settings saved from the settings page, e.g. `retention.SPLAT_MAX_EVENT_LIFE_DAYS`; a saved
-- value wins over the environment variable of the same name.
CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
