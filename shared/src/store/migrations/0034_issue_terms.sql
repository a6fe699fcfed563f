-- The terms of the issues' full-text index, for a typed word (a prefix) to be checked as the terms that
-- begin with it: FTS5 answers a prefix query by merging every matching issue's entry first, even when it
-- is asked about one issue. A view over the index: it stores nothing.
CREATE VIRTUAL TABLE issues_fts_terms USING fts5vocab (issues_fts, row);
