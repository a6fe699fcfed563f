-- Streamed spans wait in the database only until their segment settles (store/segments.rs): a segment's rows
-- are deleted once none of them arrived within the settle window (SPLAT_SPAN_SETTLE_SECS), and the lake alone
-- holds them after. So the rows are keyed by their segment (a segment's children are one range of the key, and
-- the `spans_segment` index, 88 bytes a span, is gone), remember when they arrived (`spans_received`, in time
-- order: its entries append and the sweep reads them from the oldest), and keep nothing nobody reads back:
-- `duration_us` is end − start, and a segment's attributes (`data`, most of its row) were read only for the
-- name and environment of its transaction, which its transaction row has. A span naming no segment is filed
-- under '' (a key column is never NULL). Only the last day's rows move to the new table: older segments have
-- long settled, and their spans are in the lake (a 30-day table is rewritten no more).
CREATE TABLE spans_settling (
    project_id     INTEGER NOT NULL,
    trace_id       TEXT    NOT NULL,
    segment_id     TEXT    NOT NULL,
    span_id        TEXT    NOT NULL,
    parent_span_id TEXT,
    is_segment     INTEGER NOT NULL,
    name           TEXT,
    op             TEXT,
    status         TEXT,
    start_time     INTEGER,
    end_time       INTEGER,
    received_at    INTEGER NOT NULL,
    PRIMARY KEY (project_id, trace_id, segment_id, span_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO spans_settling
    SELECT project_id, trace_id, coalesce(segment_id, ''), span_id, parent_span_id, is_segment, name, op, status,
           start_time, end_time, coalesce(end_time, start_time, 0)
    FROM spans WHERE coalesce(end_time, start_time, 0) >= (unixepoch() - 86400) * 1000000;
DROP TABLE spans;
ALTER TABLE spans_settling RENAME TO spans;
CREATE INDEX spans_received ON spans (received_at);
