-- The performance page's environment filter lists the environments a project's transactions came from.
-- It was a DISTINCT over every hourly rollup cell the project has (rollups are kept 540 days): 54 ms per
-- page at 30 days of 100 M transactions, growing with the days kept. With this index the list is read by
-- skipping from one environment to the next (`perf_environments` in store/perf_reads.rs), a few index
-- lookups whatever the size. The daily table holds the same environments in 24 times fewer cells.
CREATE INDEX transaction_rollups_daily_environment ON transaction_rollups_daily (project_id, environment);
