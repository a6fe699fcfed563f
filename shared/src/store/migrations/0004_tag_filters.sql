-- Filtering the issue list by environment or release starts from the tag value, not from every issue.
CREATE INDEX issue_tags_value ON issue_tags (key, value, issue_id);
