-- Trained zstd dictionaries for stored payloads (store/dictionaries.rs): one per project and table (`kind`:
-- events or transactions), keyed by zstd's id for it, which every frame compressed with it names in its header.
-- Rows compressed before a dictionary existed name none and decode as before.
CREATE TABLE payload_dictionaries (
    dict_id    INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    dictionary BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX payload_dictionaries_project ON payload_dictionaries (project_id);
