-- The whole project's figures per environment and hour, and per environment and day: every endpoint's
-- cells summed, written by the processor beside them. The performance pages' totals, percentile cards
-- and project charts read a cell per environment and hour here instead of every endpoint's: the 7-day
-- page merged 25,200 endpoint sketches for its cards (50 endpoints, 3 environments), and at 100 M
-- transactions those sketches hold 362 B each and were most of the page's time. Endpoints are ranked
-- by their sums alone, and only the endpoints a page shows have their sketches read.
--
-- Its code step fills both tables from the endpoint cells already stored (`rollups::backfill_project`).
-- Long: that merges every endpoint cell kept (540 days of them), which on a large database outlasts
-- the processor function's 60 s; in AWS the migrate job runs it.
CREATE TABLE project_rollups (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    environment      TEXT    NOT NULL,
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
    PRIMARY KEY (project_id, hour, environment)
) WITHOUT ROWID;

CREATE TABLE project_rollups_daily (
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
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
    PRIMARY KEY (project_id, day, environment)
) WITHOUT ROWID;
