-- Slowest-first lists walked an index in duration order, per project and per endpoint. Durations are as
-- good as random, so every new transaction changed a leaf page of each of those two indexes: on a database
-- of a million transactions, batches of 1,000 wrote 28 KB per transaction with them and 6.6 KB without
-- (BENCHMARKS, "Bytes written per transaction on a grown database"); on EFS those are billed writes. Now
-- durations are indexed after the hour the transaction ended, so a batch's entries land together in the
-- hour being written. A slowest-first list walks the hours the rollups say may hold a slower transaction
-- than it has found (`Store::slowest_transactions` in store/perf_reads.rs).
--
-- Long: it builds two indexes over every transaction, which on a large database outlasts the processor
-- function's 60 s; in AWS the migrate job runs it.
DROP INDEX transactions_project_duration;
DROP INDEX transactions_endpoint_duration;
CREATE INDEX transactions_hour_duration ON transactions (project_id, end_time / 3600000000, duration_us);
CREATE INDEX transactions_endpoint_hour_duration
    ON transactions (project_id, name, end_time / 3600000000, duration_us);
