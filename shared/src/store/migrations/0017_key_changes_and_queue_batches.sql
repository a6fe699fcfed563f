-- What lets ingest and the UI run without asking AWS: a version of the keys that every change to keys,
-- quotas and projects raises (the key snapshot ingest reads from the bucket carries the version it was
-- built at, and the monitor tick republishes one older than this), and what the processor saw of the
-- queue at its last batch (the UI's queue pill and `/_health` on SQS, instead of `GetQueueAttributes`).

CREATE TABLE key_changes (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
-- 0 while no key exists: nothing to publish, and ingest says so (503) until the first project.
INSERT INTO key_changes (id, version) SELECT 1, EXISTS (SELECT 1 FROM project_keys);
CREATE TRIGGER key_changes_key_insert AFTER INSERT ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_key_update AFTER UPDATE ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_key_delete AFTER DELETE ON project_keys BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_insert AFTER INSERT ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_update AFTER UPDATE ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
CREATE TRIGGER key_changes_quota_delete AFTER DELETE ON quotas BEGIN
    UPDATE key_changes SET version = version + 1;
END;
-- A project's keys and quotas go with it by cascade; counted here too, whatever the cascade fires.
CREATE TRIGGER key_changes_project_delete AFTER DELETE ON projects BEGIN
    UPDATE key_changes SET version = version + 1;
END;

-- The processor's last SQS batch: when (microseconds) and how long its oldest message had waited (ms).
CREATE TABLE queue_batches (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    batch_at INTEGER NOT NULL,
    lag_ms   INTEGER NOT NULL
);
