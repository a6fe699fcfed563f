-- Lake ids as binary (issue 21): trace, event and log ids become DuckDB `UUID`s (16 bytes instead of 32 hex
-- characters), span ids `UBIGINT`s (8 bytes, as Sentry's own span store keeps them), and the classic
-- transaction's event id leaves the lake (the database has it; trace and span ids identify a transaction).
-- One snapshot with the next schema version, as DuckDB's ALTER TABLE writes one; files already written keep
-- their hex text and stay readable:
-- - a UUID column changes type in place (same column id): DuckDB casts an old file's 32 hex digits to UUID
--   as it reads them;
-- - text cannot be cast to a span id, so each span-id column gets a new column id under its name, and the
--   old text column is renamed `<name>_hex` while the table has files: old rows have their span ids there
--   (`('0x' || span_id_hex)::UBIGINT`), new rows in the new column. Compaction rewrites the old files with
--   binary ids, and maintenance then drops the `_hex` columns (`lake::maintenance::retire_columns`).
-- Ids keep no bounds in the catalog from now on (random values prune nothing).

INSERT INTO ducklake_snapshot
    SELECT snapshot_id + 1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), schema_version + 1, next_catalog_id, next_file_id
    FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1;
INSERT INTO ducklake_snapshot_changes
    SELECT max(snapshot_id), 'altered_table:1,altered_table:2,altered_table:3,altered_table:4', 'splat',
        'ids as UUID and UBIGINT', NULL
    FROM ducklake_snapshot;
INSERT INTO ducklake_schema_versions
    SELECT s.snapshot_id, s.schema_version, t.table_id
    FROM (SELECT * FROM ducklake_snapshot ORDER BY snapshot_id DESC LIMIT 1) s
    JOIN ducklake_table t ON t.table_id IN (1, 2, 3, 4) AND t.end_snapshot IS NULL;

-- Every column that changes ends here: (table, column) as in 0005 and 0020.
UPDATE ducklake_column SET end_snapshot = (SELECT max(snapshot_id) FROM ducklake_snapshot)
WHERE end_snapshot IS NULL AND (table_id, column_id) IN (VALUES
    (1, 4), (1, 5), (1, 6), (2, 3), (2, 4), (2, 5), (2, 6), (3, 3), (3, 11), (4, 3), (4, 4), (4, 5));

-- The UUID columns, in place.
INSERT INTO ducklake_column
    SELECT column_id, end_snapshot, NULL, table_id, column_order, column_name, 'uuid', initial_default,
        default_value, nulls_allowed, parent_column, default_value_type, default_value_dialect
    FROM ducklake_column
    WHERE end_snapshot = (SELECT max(snapshot_id) FROM ducklake_snapshot)
      AND (table_id, column_id) IN (VALUES (1, 5), (2, 3), (3, 3), (3, 11), (4, 3), (4, 4));

-- The old span-id text columns, renamed and moved last, in tables that have files.
INSERT INTO ducklake_column
    SELECT column_id, end_snapshot, NULL, table_id, 100 + column_id, column_name || '_hex', column_type,
        initial_default, default_value, nulls_allowed, parent_column, default_value_type, default_value_dialect
    FROM ducklake_column c
    WHERE end_snapshot = (SELECT max(snapshot_id) FROM ducklake_snapshot)
      AND (table_id, column_id) IN (VALUES (1, 6), (2, 4), (2, 5), (2, 6), (4, 5))
      AND EXISTS (SELECT 1 FROM ducklake_data_file f WHERE f.table_id = c.table_id AND f.end_snapshot IS NULL);

-- The span ids, binary, where the text ones stood.
WITH c (table_id, column_id, column_order, name) AS (VALUES
    (1, 27, 6, 'span_id'), (2, 14, 4, 'transaction_id'), (2, 15, 5, 'span_id'), (2, 16, 6, 'parent_span_id'),
    (4, 13, 5, 'span_id'))
INSERT INTO ducklake_column
    SELECT c.column_id, (SELECT max(snapshot_id) FROM ducklake_snapshot), NULL, c.table_id, c.column_order,
        c.name, 'uint64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'
    FROM c;

-- The old files' bounds of the UUID columns go too: they are hex text without dashes, and DuckDB compares
-- a UUID's text (with dashes) against them, pruning files that hold the value.
UPDATE ducklake_file_column_stats SET min_value = NULL, max_value = NULL
WHERE (table_id, column_id) IN (VALUES (1, 5), (2, 3), (3, 3), (3, 11), (4, 3), (4, 4));
-- Table-wide stats: no bounds for the UUID columns; the renamed text columns and the new ones hold NULLs
-- (rows of the other kind), where a table has stats at all.
UPDATE ducklake_table_column_stats SET min_value = NULL, max_value = NULL
WHERE (table_id, column_id) IN (VALUES (1, 5), (2, 3), (3, 3), (3, 11), (4, 3), (4, 4));
UPDATE ducklake_table_column_stats SET contains_null = 1
WHERE (table_id, column_id) IN (VALUES (1, 6), (2, 4), (2, 5), (2, 6), (4, 5));
WITH c (table_id, column_id) AS (VALUES (1, 27), (2, 14), (2, 15), (2, 16), (4, 13))
INSERT INTO ducklake_table_column_stats
    SELECT c.table_id, c.column_id, 1, NULL, NULL, NULL, NULL
    FROM c JOIN ducklake_table_stats s ON s.table_id = c.table_id;
