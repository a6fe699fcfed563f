-- Per (project, endpoint, environment, hour): what performance pages and rankings read, so that they
-- never scan raw transactions. `sketch` is a mergeable latency histogram (`perf::sketch`, ~1% error).

CREATE TABLE transaction_rollups (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    -- '' when the SDK sent none: part of the key, so never NULL.
    environment      TEXT    NOT NULL,
    -- Unix seconds at the start of the hour.
    hour             INTEGER NOT NULL,
    count            INTEGER NOT NULL,
    duration_sum     REAL    NOT NULL,
    duration_min     REAL,
    duration_max     REAL,
    db_sum           REAL    NOT NULL,
    view_sum         REAL    NOT NULL,
    query_sum        INTEGER NOT NULL,
    query_max        INTEGER NOT NULL,
    n_plus_one_count INTEGER NOT NULL,
    wasted_sum       REAL    NOT NULL,
    errors_5xx       INTEGER NOT NULL,
    sketch           BLOB    NOT NULL,
    PRIMARY KEY (project_id, hour, name, environment)
) WITHOUT ROWID;
