-- Log records in blocks (see `store::log_blocks`): a row per block of up to 500 records of one item, a
-- minute wide at most, instead of a row, five index entries and a text document per record, which made
-- storing three times slower than its budget. The records stored so far move into blocks in this
-- migration's code step; `logs` becomes a view of the blocks' records, so SQL reads them as before.
--
-- A block's id is the time key of its newest record (its millisecond times 2^20, plus its arrival within
-- that millisecond): the blocks, their level and trace entries and the text index all list blocks
-- newest first by walking ids down. `oldest` (its oldest record's time) follows the id in the project's
-- index, so a read that wants records before a time skips the blocks that have none without opening them.
-- `origin` comes from the queue message of the block's item: a redelivered item finds its blocks.

DROP TRIGGER logs_text_insert;
DROP TRIGGER logs_text_delete;
DROP TABLE logs_text;
ALTER TABLE logs RENAME TO logs_before_32;

CREATE TABLE log_blocks (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    origin     INTEGER NOT NULL,
    oldest     INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    -- What `logs_text` indexed for this block (its delete must repeat it): each distinct value once.
    text       TEXT    NOT NULL,
    records    TEXT    NOT NULL
);
CREATE UNIQUE INDEX log_blocks_origin ON log_blocks (project_id, origin);
CREATE INDEX log_blocks_project ON log_blocks (project_id, id, oldest);

-- The levels each block holds: a level rare in the window is found without opening the others.
CREATE TABLE log_levels (
    project_id INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    block_id   INTEGER NOT NULL,
    PRIMARY KEY (project_id, level, block_id)
) WITHOUT ROWID;

-- The traces each block holds, after the hour of the records (as events' are: a batch's entries land
-- together in the hour being written).
CREATE TABLE log_traces (
    project_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    trace_id   TEXT    NOT NULL,
    block_id   INTEGER NOT NULL,
    PRIMARY KEY (project_id, hour, trace_id, block_id)
) WITHOUT ROWID;

-- A trigram index of each block's text (contentless, no positions or sizes: it finds candidate blocks,
-- and the read checks their records). `contentless_delete` would need no text to delete, but came in
-- SQLite 3.43: DuckDB's SQLite (3.38) could then not open this database to read the lake.
CREATE VIRTUAL TABLE logs_text USING fts5 (
    text, tokenize = 'trigram', content = '', detail = none, columnsize = 0
);

CREATE TRIGGER log_blocks_insert AFTER INSERT ON log_blocks BEGIN
    INSERT INTO logs_text (rowid, text) VALUES (new.id, new.text);
END;

-- Retention's and a project's deletion take a block's entries with it (deletes are rare: the JSON is
-- read here rather than kept twice).
CREATE TRIGGER log_blocks_delete AFTER DELETE ON log_blocks BEGIN
    INSERT INTO logs_text (logs_text, rowid, text) VALUES ('delete', old.id, old.text);
    DELETE FROM log_levels WHERE project_id = old.project_id AND block_id = old.id
        AND level IN (SELECT r.value ->> 2 FROM json_each(old.records) r);
    DELETE FROM log_traces WHERE project_id = old.project_id AND block_id = old.id
        AND (hour, trace_id) IN (SELECT (r.value ->> 0) / 3600000000, r.value ->> 5
            FROM json_each(old.records) r WHERE r.value ->> 5 IS NOT NULL);
END;

CREATE VIEW logs AS
SELECT b.project_id, printf('%016llx%016llx', b.origin, r.key) AS log_id, b.id AS block_id,
    r.key AS position, r.value ->> 0 AS timestamp, r.value ->> 1 AS received_at, r.value ->> 2 AS level,
    r.value ->> 3 AS severity_number, r.value ->> 4 AS body, r.value ->> 5 AS trace_id,
    r.value ->> 6 AS span_id, r.value ->> 7 AS environment, r.value ->> 8 AS release,
    r.value -> 9 AS attributes
FROM log_blocks b, json_each(b.records) r;
