"""Two processors on one database file with the rollback journal, as two processor instances on EFS can be
when the SQS trigger runs two at once: they take turns on the file's lock and lose nothing."""

import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from harness import SPLAT_BIN, start_splat

EVENTS = 300
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]


def send(splat, n):
    event_id = uuid.uuid4().hex
    body = "\n".join(
        [
            json.dumps({"event_id": event_id}),
            json.dumps({"type": "event"}),
            json.dumps({"event_id": event_id, "message": f"race lost by {WORDS[n % 7]}", "level": "error"}),
        ]
    )
    reply = requests.post(
        f"{splat.base_url}/api/1/envelope/",
        data=body,
        headers={"X-Sentry-Auth": f"Sentry sentry_key={splat.key}, sentry_version=7"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return event_id


def batches_processed(log_path):
    return sum(int(n) for n in re.findall(r"processed a batch done=(\d+)", log_path.read_text()))


def test_two_processors_on_one_rollback_journal_file_lose_nothing(tmp_path):
    env = {"SPLAT_SQLITE_JOURNAL": "delete", "RUST_LOG": "info,splat=debug", "NO_COLOR": "1"}
    with start_splat(tmp_path, env=env, log_name="first.log") as first:
        with start_splat(tmp_path, env=env, log_name="second.log") as second:
            with ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(lambda n: send((first, second)[n % 2], n), range(EVENTS)))
            rows = first.wait_for("SELECT event_id FROM events", count=EVENTS)
            assert sorted(r["event_id"].replace("-", "") for r in rows) == sorted(ids)
            assert first.scalar("PRAGMA journal_mode") == "delete"
            # Seven messages, seven issues, each counted once per event.
            assert first.scalar("SELECT count(*) FROM issues") == 7
            assert first.scalar("SELECT sum(times_seen) FROM issues") == EVENTS
            done = batches_processed(first.log_path), batches_processed(second.log_path)
    # Both took part, and between them each message was processed exactly once.
    assert min(done) > 0, done
    assert sum(done) == EVENTS, done


def test_a_cli_command_beside_a_running_server_loses_nothing(tmp_path):
    """`splat key …` or `splat project …` open the same database from another process while `splat serve`
    runs. When the server's own process once reopened the database file (to create it with private
    permissions) it dropped its SQLite locks, the CLI's exit then took the WAL away under it, and the
    server's next commits vanished."""
    with start_splat(tmp_path) as splat:
        cli = [SPLAT_BIN, "--data-dir", str(splat.db_path.parent)]
        for round_ in range(3):
            subprocess.run([*cli, "project", "list"], check=True, capture_output=True, timeout=30)
            ids = [send(splat, n) for n in range(round_ * 10, round_ * 10 + 10)]
            splat.wait_for("SELECT 1 FROM events", count=10 * (round_ + 1))
        assert splat.scalar("SELECT count(*) FROM events") == 30
        assert ids[-1] in {r["event_id"].replace("-", "") for r in splat.query("SELECT event_id FROM events")}
