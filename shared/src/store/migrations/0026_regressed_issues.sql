-- `is:regressed` reads the issues that came back, not every open one: at 100,000 issues its page and
-- count walked the whole open list to find the few percent with a regression (175 ms at p95). A partial
-- index holds only them, in the list's own order.
CREATE INDEX issues_regressed ON issues (project_id, status, last_seen) WHERE regressed_at IS NOT NULL;
