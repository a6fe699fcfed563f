"""`splat serve` gives freed memory back at once: it restarts itself with MIMALLOC_PURGE_DELAY=0 (the
allocator reads it only at start-up), unless whoever started it chose a value (shared/src/allocator.rs)."""

import re
import sys
from pathlib import Path

import pytest

from harness import start_splat

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def purge_delays(log_path):
    """The purge delays mimalloc started with, in order (MIMALLOC_VERBOSE=1 prints its options at start)."""
    return [int(v) for v in re.findall(r"option 'purge_delay': (\d+)", Path(log_path).read_text())]


def environment(pid):
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split(b"=", 1) for entry in raw.split(b"\0") if b"=" in entry)


def test_serve_restarts_once_with_freed_memory_returned_at_once(tmp_path):
    with start_splat(tmp_path, env={"MIMALLOC_VERBOSE": "1"}) as splat:
        # Same process (the DSN it printed answers), its allocator now started with a delay of 0.
        assert environment(splat.proc.pid)[b"MIMALLOC_PURGE_DELAY"] == b"0"
        # Two starts: mimalloc's own default, then the restart's 0.
        assert purge_delays(splat.log_path)[1:] == [0]
        assert splat.log_path.read_text().count("DSN: ") == 1


def test_a_purge_delay_someone_chose_stands(tmp_path):
    with start_splat(tmp_path, env={"MIMALLOC_VERBOSE": "1", "MIMALLOC_PURGE_DELAY": "250"}) as splat:
        assert environment(splat.proc.pid)[b"MIMALLOC_PURGE_DELAY"] == b"250"
        assert purge_delays(splat.log_path) == [250]
