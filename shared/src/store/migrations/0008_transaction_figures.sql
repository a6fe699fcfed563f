-- What the processor derives from each transaction, for lists and the transaction page (the lake has the
-- same figures for analytics). `query_patterns` is JSON: per normalized query its count, distinct
-- statements, time and N+1 verdict; never a literal.

ALTER TABLE transactions ADD COLUMN server_name TEXT;
ALTER TABLE transactions ADD COLUMN http_method TEXT;
ALTER TABLE transactions ADD COLUMN http_url TEXT;
ALTER TABLE transactions ADD COLUMN http_status INTEGER;
ALTER TABLE transactions ADD COLUMN db_time_ms REAL;
ALTER TABLE transactions ADD COLUMN view_time_ms REAL;
ALTER TABLE transactions ADD COLUMN query_count INTEGER;
ALTER TABLE transactions ADD COLUMN has_n_plus_one INTEGER;
ALTER TABLE transactions ADD COLUMN n_plus_one_wasted_ms REAL;
ALTER TABLE transactions ADD COLUMN span_count INTEGER;
ALTER TABLE transactions ADD COLUMN spans_truncated INTEGER;
ALTER TABLE transactions ADD COLUMN query_patterns TEXT;
CREATE INDEX transactions_endpoint_time ON transactions (project_id, name, end_time);
CREATE INDEX transactions_project_duration ON transactions (project_id, duration_us);
