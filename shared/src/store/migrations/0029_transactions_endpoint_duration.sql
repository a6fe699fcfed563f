-- An endpoint's slowest transactions in a window, walked in duration order (then id, the row id every index
-- ends with, which keeps the page order stable) with the window checked on each row (see `transactions_sql`
-- in store/perf_reads.rs): without it, the endpoint page sorted by duration read and sorted every
-- transaction of the window (4 s for 30 days at 10 M transactions).
CREATE INDEX transactions_endpoint_duration ON transactions (project_id, name, duration_us);
