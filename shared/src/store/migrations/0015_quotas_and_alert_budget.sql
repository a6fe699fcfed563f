-- Items accepted per clock minute, per data category (Relay's names: error, transaction, span, attachment,
-- session, monitor, feedback, ...), for one key or (public_key '') for every key of the project together.
CREATE TABLE quotas (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    public_key TEXT    NOT NULL DEFAULT '',
    category   TEXT    NOT NULL,
    per_minute INTEGER NOT NULL,
    PRIMARY KEY (project_id, public_key, category)
) WITHOUT ROWID;
-- The old project quota counted events, transactions and feedback together; it becomes one quota each.
INSERT INTO quotas (project_id, public_key, category, per_minute)
SELECT p.id, '', c.category, p.events_per_minute
FROM projects p, (SELECT 'error' AS category UNION ALL SELECT 'transaction' UNION ALL SELECT 'feedback') c
WHERE p.events_per_minute IS NOT NULL;

-- Alerts sent per project and clock hour (`hour` in Unix seconds), and those held back past the cap: they
-- are reported by one digest (`digest_sent_at`, microseconds) about the latest of them.
CREATE TABLE alert_budget (
    project_id      INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    hour            INTEGER NOT NULL,
    sent            INTEGER NOT NULL DEFAULT 0,
    suppressed      INTEGER NOT NULL DEFAULT 0,
    last_suppressed INTEGER,
    digest_sent_at  INTEGER,
    PRIMARY KEY (project_id, hour)
) WITHOUT ROWID;
