-- The issue list sorts within a status tab by count or first seen; without these a large project sorts
-- every open issue per page view.
CREATE INDEX issues_project_status_count ON issues (project_id, status, times_seen);
CREATE INDEX issues_project_status_first ON issues (project_id, status, first_seen);

-- Issues per status, kept by triggers: counting 100k index entries per page view was most of the list's time.
CREATE TABLE issue_status_counts (
    project_id INTEGER NOT NULL,
    status     TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (project_id, status)
) WITHOUT ROWID;
INSERT INTO issue_status_counts (project_id, status, count) SELECT project_id, status, count(*) FROM issues GROUP BY 1, 2;

CREATE TRIGGER issue_status_counts_insert AFTER INSERT ON issues BEGIN
    INSERT INTO issue_status_counts (project_id, status, count) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER issue_status_counts_update AFTER UPDATE OF status ON issues WHEN OLD.status <> NEW.status BEGIN
    UPDATE issue_status_counts SET count = count - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
    INSERT INTO issue_status_counts (project_id, status, count) VALUES (NEW.project_id, NEW.status, 1)
    ON CONFLICT (project_id, status) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER issue_status_counts_delete AFTER DELETE ON issues BEGIN
    UPDATE issue_status_counts SET count = count - 1 WHERE project_id = OLD.project_id AND status = OLD.status;
END;
