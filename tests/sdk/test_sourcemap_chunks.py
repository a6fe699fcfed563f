"""Chunks of a source map upload that is never assembled (sentry-cli stopped halfway) do not stay in
`splat serve`'s data folder forever: the retention run deletes those a day old (in AWS a lifecycle rule on
the bucket does the same)."""

import gzip
import hashlib
import json
import os
import time

from test_sourcemaps import create_token, post_chunk, splat, splat_cli  # noqa: F401 (splat: the fixture)


def test_retention_deletes_chunks_never_assembled_after_a_day(splat):
    token, _ = create_token(splat)
    chunks = splat.db_path.parent / "artifacts" / "chunks"
    names = []
    for data in (b"the first half of an upload", b"a chunk uploaded a minute ago"):
        name = hashlib.sha1(data).hexdigest()
        status, body = post_chunk(splat, token, name, gzip.compress(data))
        assert status == 200, body
        names.append(name)
    stale, fresh = (chunks / name for name in names)
    assert stale.exists() and fresh.exists()
    # The first came 25 hours ago; nothing asked for its assembly since.
    then = time.time() - 25 * 3600
    os.utime(stale, (then, then))

    report = json.loads(splat_cli(splat, "retention", "run"))

    assert not stale.exists()
    assert fresh.exists(), "a chunk of an upload under way is kept"
    assert report["database"]["artifact_chunks_deleted"] == 1
