-- Log records in time order, and a trigram index of their text (see `store::logs`).
--
-- A record gets a time key, its place in time: the millisecond of its timestamp times 2^20, plus its
-- arrival within that millisecond. `logs_project`, `logs_level` and the text index (whose row ids are the
-- time keys) then all list records newest first by walking keys down, so a text search stops at the page's
-- last line instead of collecting every match of the window to sort them. The row id stays in arrival
-- order: the table appends (as the row id, the key made each batch's rows land among the last second's,
-- a page dirtied per record). (A millisecond holds 2^20 records, beyond any batch; the keys stay below
-- 2^63 until the year 2248.)
--
-- `logs_text` indexes the body and the values of the attributes the pages show (`sentry.*` left out: they
-- repeat the SDK's facts, and the same few values in every record would only grow the index), by trigrams,
-- so "contains" keeps its meaning for any three characters or more. It is contentless and keeps neither
-- positions (`detail = none`) nor sizes (`columnsize = 0`, only ranking reads them): it finds candidates,
-- and the search checks them against the record itself.
-- Triggers keep it in step with every insert and delete (retention's and a project's deletion included).

ALTER TABLE logs RENAME TO logs_before_25;
DROP INDEX logs_id;
DROP INDEX logs_trace;
DROP INDEX logs_project_time;

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
    attributes      TEXT    NOT NULL,
    time_key        INTEGER NOT NULL
);
CREATE UNIQUE INDEX logs_time ON logs (time_key);
CREATE UNIQUE INDEX logs_id ON logs (project_id, timestamp / 3600000000, log_id);
CREATE INDEX logs_trace ON logs (project_id, timestamp / 3600000000, trace_id);
CREATE INDEX logs_project ON logs (project_id, time_key);
-- A level filter walks each level's records newest first: a level rare in the window (errors, usually)
-- is found without walking every other record of it.
CREATE INDEX logs_level ON logs (project_id, level, time_key);

CREATE VIRTUAL TABLE logs_text USING fts5 (
    body, attributes, tokenize = 'trigram', content = '', detail = none, columnsize = 0
);

CREATE TRIGGER logs_text_insert AFTER INSERT ON logs BEGIN
    INSERT INTO logs_text (rowid, body, attributes) VALUES (new.time_key, new.body,
        (SELECT group_concat(iif(json_type(a.value, '$.value') = 'text', a.value ->> '$.value',
                a.value -> '$.value'), char(10))
            FROM json_each(new.attributes) a WHERE a.key NOT LIKE 'sentry.%' AND a.type = 'object'));
END;

-- A contentless table forgets a row by being told the text it indexed (`contentless_delete`, which needs
-- no text, came in SQLite 3.43: DuckDB's SQLite, 3.38, could then not open this database to read the lake).
CREATE TRIGGER logs_text_delete AFTER DELETE ON logs BEGIN
    INSERT INTO logs_text (logs_text, rowid, body, attributes) VALUES ('delete', old.time_key, old.body,
        (SELECT group_concat(iif(json_type(a.value, '$.value') = 'text', a.value ->> '$.value',
                a.value -> '$.value'), char(10))
            FROM json_each(old.attributes) a WHERE a.key NOT LIKE 'sentry.%' AND a.type = 'object'));
END;

-- The records stored so far, in their order (the insert trigger indexes them).
INSERT INTO logs (project_id, log_id, timestamp, received_at, level, severity_number, body, trace_id, span_id,
        environment, release, attributes, time_key)
    SELECT project_id, log_id, timestamp, received_at, level, severity_number, body, trace_id, span_id,
        environment, release, attributes,
        (timestamp / 1000) * 1048576 + row_number() OVER (PARTITION BY timestamp / 1000 ORDER BY id) - 1
    FROM logs_before_25 ORDER BY id;
DROP TABLE logs_before_25;
