-- An issue's tag breakdown (its page, MCP's get_issue) shows per key the most frequent values, the share of
-- each and how many more there are. It read every (key, value) row of the issue and sorted them: a hot issue
-- seen by 100,000 users has 200,000 rows for `user.id` and `user.email` alone. The values of a key are now
-- walked most frequent first along an index, and each key's number of values and of events is kept by
-- triggers, so the page reads a few rows per key whatever the issue's size.
CREATE INDEX issue_tags_top ON issue_tags (issue_id, key, count DESC, value);

CREATE TABLE issue_tag_keys (
    issue_id    INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value_count INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    PRIMARY KEY (issue_id, key)
) WITHOUT ROWID;
INSERT INTO issue_tag_keys (issue_id, key, value_count, event_count)
    SELECT issue_id, key, count(*), sum(count) FROM issue_tags GROUP BY issue_id, key;

-- An upsert that finds its row runs the UPDATE trigger, not the INSERT one.
CREATE TRIGGER issue_tag_keys_insert AFTER INSERT ON issue_tags BEGIN
    INSERT INTO issue_tag_keys (issue_id, key, value_count, event_count) VALUES (NEW.issue_id, NEW.key, 1, NEW.count)
    ON CONFLICT (issue_id, key) DO UPDATE SET value_count = value_count + 1, event_count = event_count + excluded.event_count;
END;
CREATE TRIGGER issue_tag_keys_update AFTER UPDATE OF count ON issue_tags BEGIN
    UPDATE issue_tag_keys SET event_count = event_count + NEW.count - OLD.count WHERE issue_id = NEW.issue_id AND key = NEW.key;
END;
CREATE TRIGGER issue_tag_keys_delete AFTER DELETE ON issue_tags BEGIN
    UPDATE issue_tag_keys SET value_count = value_count - 1, event_count = event_count - OLD.count
    WHERE issue_id = OLD.issue_id AND key = OLD.key;
    DELETE FROM issue_tag_keys WHERE issue_id = OLD.issue_id AND key = OLD.key AND value_count <= 0;
END;
