-- Log records (Sentry `log` items and OpenTelemetry logs; see `store::logs`). Their ids are derived from the
-- queue message that carried them, so a redelivery writes nothing twice; ids and trace ids are indexed after
-- the hour of the record (as events' are since migration 19), so a batch's entries land together. Attributes
-- stay typed as sent: a JSON object of `{"type": …, "value": …}`.
--
-- The lake gets a fourth table, `logs` (table id 4), in a snapshot of its own with the next schema version,
-- as DuckDB's CREATE TABLE writes it; its columns match `lake::tables::LOGS`. `attributes` is DuckDB's
-- `json` type, so a reader gets typed values with `attributes->'$.user.id'`.

CREATE TABLE logs (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    log_id          TEXT    NOT NULL,
    timestamp       INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    level           TEXT    NOT NULL,
    severity_number INTEGER,
    body            TEXT    NOT NULL,
    trace_id        TEXT,
    span_id         TEXT,
    environment     TEXT,
    release         TEXT,
    attributes      TEXT    NOT NULL
);
CREATE UNIQUE INDEX logs_id ON logs (project_id, timestamp / 3600000000, log_id);
CREATE INDEX logs_trace ON logs (project_id, timestamp / 3600000000, trace_id);
CREATE INDEX logs_project_time ON logs (project_id, timestamp);

INSERT INTO ducklake_snapshot
    SELECT snapshot_id + 1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), schema_version + 1, max(next_catalog_id, 5), next_file_id
    FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1;
INSERT INTO ducklake_snapshot_changes
    SELECT max(snapshot_id), 'created_table:"main"."logs"', 'splat', 'create the logs table', NULL FROM ducklake_snapshot;
INSERT INTO ducklake_table
    SELECT 4, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a84', max(snapshot_id), NULL, 0, 'logs', 'logs/', 1 FROM ducklake_snapshot;
INSERT INTO ducklake_schema_versions
    SELECT snapshot_id, schema_version, 4 FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1;
WITH c (column_id, name, type) AS (VALUES (1, 'project_id', 'int32'), (2, 'timestamp', 'timestamp'),
    (3, 'log_id', 'varchar'), (4, 'trace_id', 'varchar'), (5, 'span_id', 'varchar'), (6, 'level', 'varchar'),
    (7, 'severity_number', 'int32'), (8, 'body', 'varchar'), (9, 'environment', 'varchar'),
    (10, 'release', 'varchar'), (11, 'sdk_name', 'varchar'), (12, 'attributes', 'json'))
INSERT INTO ducklake_column
    SELECT c.column_id, (SELECT max(snapshot_id) FROM ducklake_snapshot), NULL, 4, c.column_id, c.name, c.type,
        NULL, 'NULL', 1, NULL, 'literal', 'duckdb'
    FROM c;
