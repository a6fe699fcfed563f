-- The sentry-cli API (issue 18): API tokens, releases and deploys as CI marks them, and the artifact
-- bundles (source maps and minified sources) that symbolication reads.

-- A token is shown once when created and kept only as the SHA-256 of its text (hex); `prefix` (its
-- first characters) tells tokens apart in lists. `scope`: 'project:releases' (CI: releases, uploads) or
-- 'read'. Revoked tokens stay listed, refused.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    label        TEXT    NOT NULL,
    scope        TEXT    NOT NULL,
    token_sha256 TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Releases as `sentry-cli releases new|finalize` declare them (the processor's `releases` table counts
-- what events say; this one what CI says). `finalized_at` is Sentry's `dateReleased`.
CREATE TABLE release_marks (
    project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version      TEXT    NOT NULL,
    url          TEXT,
    created_at   INTEGER NOT NULL,
    finalized_at INTEGER,
    PRIMARY KEY (project_id, version)
) WITHOUT ROWID;

-- Deploys of a release to an environment (`sentry-cli deploys new -e production`): markers on the
-- issue page and its sparkline.
CREATE TABLE deploys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version     TEXT    NOT NULL,
    environment TEXT    NOT NULL,
    name        TEXT,
    url         TEXT,
    started_at  INTEGER,
    finished_at INTEGER NOT NULL
);
CREATE INDEX deploys_by_time ON deploys (project_id, finished_at);

-- Artifact bundles (sentry-cli's source bundles: a zip with a manifest) assembled from uploaded chunks,
-- kept in the blob store under `blob_key`; `checksum` is the SHA-1 of the whole bundle, as sentry-cli
-- names it. `release` and `dist` are '' when the upload named none.
CREATE TABLE artifact_bundles (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    checksum   TEXT    NOT NULL,
    release    TEXT    NOT NULL DEFAULT '',
    dist       TEXT    NOT NULL DEFAULT '',
    blob_key   TEXT    NOT NULL,
    bytes      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, checksum)
);
CREATE INDEX artifact_bundles_by_time ON artifact_bundles (created_at);

-- The files of each bundle: `path` inside the zip, `url` as the manifest gives it (`~/static/app.js`),
-- `kind` (minified_source, source_map, source), the `debug-id` header and the `sourcemap` header (the map
-- a minified file names).
CREATE TABLE artifact_files (
    bundle_id INTEGER NOT NULL REFERENCES artifact_bundles (id) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    url       TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    debug_id  TEXT,
    sourcemap TEXT,
    PRIMARY KEY (bundle_id, path)
) WITHOUT ROWID;
CREATE INDEX artifact_files_by_debug_id ON artifact_files (debug_id, kind) WHERE debug_id IS NOT NULL;
CREATE INDEX artifact_files_by_url ON artifact_files (url);
