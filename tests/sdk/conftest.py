"""Fixtures of the real-SDK tests: a fresh `splat serve` per test (see harness.py for the helpers)."""

import pytest

from harness import start_splat


@pytest.fixture
def splat(tmp_path):
    """A running server with an empty data dir: .dsn, .db_path, .base_url, .query(), .wait_for()."""
    with start_splat(tmp_path) as server:
        yield server
