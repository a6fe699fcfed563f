-- The DuckLake catalog, in which `lake::catalog` registers each batch's files: its tables exactly as
-- DuckDB 1.5.5 creates them in a SQLite catalog, the `main` schema (snapshot 0) and Splat's three tables
-- (snapshot 1). No inlined-data tables: every row Splat commits lives in a parquet file. `data_path` is
-- written by the writer when it opens, since it depends on where the lake lives (a local folder or an S3
-- bucket).

CREATE TABLE ducklake_metadata("key" VARCHAR NOT NULL, "value" VARCHAR NOT NULL, "scope" VARCHAR, scope_id BIGINT);
CREATE TABLE ducklake_snapshot(snapshot_id BIGINT PRIMARY KEY, snapshot_time VARCHAR, schema_version BIGINT, next_catalog_id BIGINT, next_file_id BIGINT);
CREATE TABLE ducklake_snapshot_changes(snapshot_id BIGINT PRIMARY KEY, changes_made VARCHAR, author VARCHAR, commit_message VARCHAR, commit_extra_info VARCHAR);
CREATE TABLE ducklake_schema(schema_id BIGINT PRIMARY KEY, schema_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_table(table_id BIGINT, table_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, table_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_view(view_id BIGINT, view_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, view_name VARCHAR, dialect VARCHAR, "sql" VARCHAR, column_aliases VARCHAR);
CREATE TABLE ducklake_tag(object_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_column_tag(table_id BIGINT, column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_data_file(data_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, file_order BIGINT, path VARCHAR, path_is_relative BIGINT, file_format VARCHAR, record_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, row_id_start BIGINT, partition_id BIGINT, encryption_key VARCHAR, mapping_id BIGINT, partial_max BIGINT);
CREATE TABLE ducklake_file_column_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_file_variant_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, variant_path VARCHAR, shredded_type VARCHAR, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_delete_file(delete_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, format VARCHAR, delete_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, encryption_key VARCHAR, partial_max BIGINT);
CREATE TABLE ducklake_column(column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, table_id BIGINT, column_order BIGINT, column_name VARCHAR, column_type VARCHAR, initial_default VARCHAR, default_value VARCHAR, nulls_allowed BIGINT, parent_column BIGINT, default_value_type VARCHAR, default_value_dialect VARCHAR);
CREATE TABLE ducklake_table_stats(table_id BIGINT, record_count BIGINT, next_row_id BIGINT, file_size_bytes BIGINT);
CREATE TABLE ducklake_table_column_stats(table_id BIGINT, column_id BIGINT, contains_null BIGINT, contains_nan BIGINT, min_value VARCHAR, max_value VARCHAR, extra_stats VARCHAR);
CREATE TABLE ducklake_partition_info(partition_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_partition_column(partition_id BIGINT, table_id BIGINT, partition_key_index BIGINT, column_id BIGINT, "transform" VARCHAR);
CREATE TABLE ducklake_file_partition_value(data_file_id BIGINT, table_id BIGINT, partition_key_index BIGINT, partition_value VARCHAR);
CREATE TABLE ducklake_files_scheduled_for_deletion(data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, schedule_start VARCHAR);
CREATE TABLE ducklake_inlined_data_tables(table_id BIGINT, table_name VARCHAR, schema_version BIGINT);
CREATE TABLE ducklake_column_mapping(mapping_id BIGINT, table_id BIGINT, "type" VARCHAR);
CREATE TABLE ducklake_name_mapping(mapping_id BIGINT, column_id BIGINT, source_name VARCHAR, target_field_id BIGINT, parent_column BIGINT, is_partition BIGINT);
CREATE TABLE ducklake_schema_versions(begin_snapshot BIGINT, schema_version BIGINT, table_id BIGINT);
CREATE TABLE ducklake_macro(schema_id BIGINT, macro_id BIGINT, macro_name VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_macro_impl(macro_id BIGINT, impl_id BIGINT, dialect VARCHAR, "sql" VARCHAR, "type" VARCHAR);
CREATE TABLE ducklake_macro_parameters(macro_id BIGINT, impl_id BIGINT, column_id BIGINT, parameter_name VARCHAR, parameter_type VARCHAR, default_value VARCHAR, default_value_type VARCHAR);
CREATE TABLE ducklake_sort_info(sort_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_sort_expression(sort_id BIGINT, table_id BIGINT, sort_key_index BIGINT, expression VARCHAR, dialect VARCHAR, sort_direction VARCHAR, null_order VARCHAR);

INSERT INTO ducklake_metadata VALUES ('version', '1.0', NULL, NULL), ('created_by', 'Splat', NULL, NULL), ('encrypted', 'false', NULL, NULL);
INSERT INTO ducklake_snapshot VALUES (0, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), 0, 1, 0);
INSERT INTO ducklake_snapshot_changes VALUES (0, 'created_schema:"main"', NULL, NULL, NULL);
INSERT INTO ducklake_schema VALUES (0, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a80', 0, NULL, 'main', 'main/', 1);
INSERT INTO ducklake_snapshot VALUES (1, strftime('%Y-%m-%d %H:%M:%f+00', 'now'), 1, 4, 0);
INSERT INTO ducklake_table VALUES
    (1, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a81', 1, NULL, 0, 'transactions', 'transactions/', 1),
    (2, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a82', 1, NULL, 0, 'spans', 'spans/', 1),
    (3, '0193a6b0-5b1a-7c4e-9f10-3c2d5e6f7a83', 1, NULL, 0, 'events', 'events/', 1);
INSERT INTO ducklake_schema_versions VALUES (1, 1, 1), (1, 1, 2), (1, 1, 3);
INSERT INTO ducklake_column VALUES
    (1, 1, NULL, 1, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 1, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 1, 3, 'start_timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 1, 4, 'event_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 1, 5, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 1, 6, 'span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 1, 7, 'name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 1, 8, 'op', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 1, 9, 'status', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 1, 10, 'duration_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 1, 11, 'environment', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 1, 12, 'release', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 1, 13, 'server_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (14, 1, NULL, 1, 14, 'platform', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (15, 1, NULL, 1, 15, 'sdk_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (16, 1, NULL, 1, 16, 'http_method', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (17, 1, NULL, 1, 17, 'http_url', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (18, 1, NULL, 1, 18, 'http_status', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (19, 1, NULL, 1, 19, 'db_time_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (20, 1, NULL, 1, 20, 'view_time_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (21, 1, NULL, 1, 21, 'query_count', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (22, 1, NULL, 1, 22, 'has_n_plus_one', 'boolean', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (23, 1, NULL, 1, 23, 'n_plus_one_wasted_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (24, 1, NULL, 1, 24, 'span_count', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (25, 1, NULL, 1, 25, 'spans_truncated', 'boolean', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (26, 1, NULL, 1, 26, 'source', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (1, 1, NULL, 2, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 2, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 2, 3, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 2, 4, 'transaction_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 2, 5, 'span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 2, 6, 'parent_span_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 2, 7, 'op', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 2, 8, 'description', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 2, 9, 'group_hash', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 2, 10, 'status', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 2, 11, 'duration_ms', 'float64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 2, 12, 'depth', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 2, 13, 'sequence', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (1, 1, NULL, 3, 1, 'project_id', 'int32', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (2, 1, NULL, 3, 2, 'timestamp', 'timestamp', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (3, 1, NULL, 3, 3, 'event_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (4, 1, NULL, 3, 4, 'issue_id', 'int64', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (5, 1, NULL, 3, 5, 'level', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (6, 1, NULL, 3, 6, 'environment', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (7, 1, NULL, 3, 7, 'release', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (8, 1, NULL, 3, 8, 'platform', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (9, 1, NULL, 3, 9, 'exception_type', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (10, 1, NULL, 3, 10, 'transaction', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (11, 1, NULL, 3, 11, 'trace_id', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (12, 1, NULL, 3, 12, 'server_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb'),
    (13, 1, NULL, 3, 13, 'sdk_name', 'varchar', NULL, 'NULL', 1, NULL, 'literal', 'duckdb');
INSERT INTO ducklake_snapshot_changes VALUES (1, 'created_table:"main"."transactions",created_table:"main"."spans",created_table:"main"."events"', 'splat', 'create the lake tables', NULL);
