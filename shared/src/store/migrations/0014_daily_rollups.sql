-- The hourly rollups summed per UTC day, so long windows read a day per row (the same columns; `day` is
-- Unix seconds at the start of the day). Its code step then fills them from the hourly ones
-- (`rollups::backfill_daily`, in the same transaction).

CREATE TABLE transaction_rollups_daily (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    day              INTEGER NOT NULL,
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
    PRIMARY KEY (project_id, day, name, environment)
) WITHOUT ROWID;
