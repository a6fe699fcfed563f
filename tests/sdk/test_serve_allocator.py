"""`splat serve` runs on the system allocator, not mimalloc: measured, mimalloc held on to what the daily
compaction freed (functions/splat/src/main.rs; BENCHMARKS.md, "The allocator of `splat serve`")."""

from harness import start_splat


def test_serve_is_not_on_mimalloc(tmp_path):
    # mimalloc prints its version and options at start-up when MIMALLOC_VERBOSE=1; nothing else reads it.
    with start_splat(tmp_path, env={"MIMALLOC_VERBOSE": "1"}) as splat:
        log = splat.log_path.read_text()
        assert "DSN: " in log
        assert "option 'purge_delay'" not in log, log[:2000]
