"""Faults (issue 8): a crash, an unreachable queue, a full disk. Whatever happens, an envelope the server
answered 200 is stored exactly once after recovery, and one it could not queue gets an error, never a 200.

Traffic is copies of the captured SDK fixtures with fresh ids (faults.py), so there are many distinct
events and transactions of both shapes; the check reads the database and the lake (stock DuckDB).

Not covered here, and why: moto keeps its state in memory, so a killed emulator is killed with its queue
drained (a stall, SIGSTOP, is the outage that keeps state) and the lake is not read after its S3 restarted
empty; the really full disk needs the right to mount a tmpfs and is skipped without it (the queue cap test
reaches the same SQLITE_FULL path anywhere); the Lambda processor is not killed (it runs the same
`process_batch` as `splat serve`, and SQS redelivers what it did not delete)."""

import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from faults import Corpus, Ledger, Traffic, check_stored_exactly_once, queue_rows, send, wait_until
from harness import run_client, start_splat

# In-flight messages of a killed processor come back after this, not after the default minute.
QUICK_REDELIVERY = {"SPLAT_QUEUE_VISIBILITY_SECS": "2"}


@contextlib.contextmanager
def write_lock(db_path):
    """Holds the database's write lock, as another writer would: the processor waits at its next commit."""
    db = sqlite3.connect(db_path, isolation_level=None, timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield
        db.execute("ROLLBACK")
    finally:
        db.close()


def in_flight(data_dir):
    """Messages received by the processor and not acknowledged: a kill with some left landed inside a batch."""
    return queue_rows(data_dir, "SELECT count(*) FROM messages WHERE receive_count > 0")[0][0]


def taken(data_dir, sent):
    """Whether the processor has received some of the `sent` waiting messages (or, if it wrongly acknowledges
    before committing, deleted them)."""
    waiting, received = queue_rows(data_dir, "SELECT count(*), count(*) FILTER (WHERE receive_count > 0) FROM messages")[0]
    return received > 0 or waiting < sent


def depth(data_dir):
    return queue_rows(data_dir, "SELECT count(*) FROM messages")[0][0]


def processed(splat):
    return splat.scalar("SELECT count(*) FROM processed_messages")


def kill(splat):
    splat.proc.send_signal(signal.SIGKILL)
    splat.proc.wait()


def test_processor_killed_inside_a_batch_loses_and_duplicates_nothing(tmp_path):
    data_dir = tmp_path / "data"
    ledger = Ledger()
    with start_splat(tmp_path, QUICK_REDELIVERY, "splat-1.log") as splat:
        corpus = Corpus(splat.key)
        assert not send(splat.base_url, corpus.take(20), ledger)
        wait_until(lambda: processed(splat) == 20 and depth(data_dir) == 0, "the first envelopes processed",
                   log=splat.log_path)
        # Killed while waiting to commit: received, decoded, nothing written yet.
        with write_lock(splat.db_path):
            assert not send(splat.base_url, corpus.take(300), ledger)
            wait_until(lambda: taken(data_dir, 300), "the processor taking a batch", log=splat.log_path)
            kill(splat)
    first_kill = in_flight(data_dir)

    # Killed at a moment of its own choosing, with traffic arriving: wherever the batch was (building rows,
    # writing parquet, committing, acknowledging), a restart must finish it once.
    with start_splat(tmp_path, QUICK_REDELIVERY, "splat-2.log") as splat:
        with Traffic(splat.base_url, corpus, ledger):
            before = processed(splat)
            wait_until(lambda: processed(splat) > before, "processing resumed", log=splat.log_path)
            wait_until(lambda: in_flight(data_dir) > 0, "the processor taking a batch", log=splat.log_path)
            kill(splat)
    second_kill = in_flight(data_dir)

    with start_splat(tmp_path, QUICK_REDELIVERY, "splat-3.log") as splat:
        wait_until(lambda: depth(data_dir) == 0,
                   "the queue drained after the restarts", log=splat.log_path)
        assert queue_rows(data_dir, "SELECT count(*) FROM dead_letters") == [(0,)]
        check_stored_exactly_once(splat, ledger)
    # The first kill certainly landed inside a batch; the second one usually does (never asserted: its
    # moment is the point). Messages deleted before their commit would have failed the check above instead.
    assert first_kill > 0
    print(f"in flight at the kills: {first_kill}, {second_kill}; acknowledged {len(ledger.acknowledged())}"
          f" of {len(ledger.sent)} sent")


def test_full_local_queue_answers_503_and_recovers_when_space_returns(tmp_path):
    """The local queue at its cap is what a full disk looks like to SQLite (SQLITE_FULL, the same path)."""
    env = {**QUICK_REDELIVERY, "SPLAT_QUEUE_MAX_BYTES": str(192 * 1024)}
    ledger = Ledger()
    with start_splat(tmp_path, env) as splat:
        corpus = Corpus(splat.key)
        # The processor waits at its commit, so nothing leaves the queue until the lock goes.
        with write_lock(splat.db_path):
            refused = send(splat.base_url, corpus.take(200), ledger, threads=2)
            assert refused and {status for status, _ in refused} == {503}, refused[:3]
            # Relay's answer to a full buffer: 503 with the reason, and the server keeps serving.
            assert all(json.loads(body)["detail"] == "the queue is full, try again later" for _, body in refused)
            report = run_client("python", splat.dsn, "error")
            assert [r["status"] for r in report["requests"]] == [503], report
            assert splat.proc.poll() is None
            assert "panicked" not in splat.log_path.read_text()
        # Space returns as the processor drains; what was refused is accepted when sent again.
        wait_until(lambda: not send(splat.base_url, [ledger.sent[i] for i, s in ledger.statuses.items() if s != 200],
                                    ledger, threads=2), "the refused envelopes accepted again", log=splat.log_path)
        wait_until(lambda: depth(tmp_path / "data") == 0,
                   "the queue drained", log=splat.log_path)
        check_stored_exactly_once(splat, ledger)
        assert ledger.count(503) == 0 and len(ledger.acknowledged()) == 200


class Moto:
    """An S3/SQS emulator of this test's own (the suite's shared one must not be stopped), on a fixed port so
    that a restarted one answers at the same queue URL."""

    def __init__(self, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto.log"
        self.proc = None

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                                          "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, "moto started", timeout=30, log=self.log)

    def answers(self):
        try:
            urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def client(self, service):
        return boto3.client(service, endpoint_url=self.endpoint, aws_access_key_id="test",
                            aws_secret_access_key="test", region_name="us-east-1")

    def create(self, name):
        """The bucket and the queue (2 s visibility: redeliveries within the test); returns the queue URL."""
        self.client("s3").create_bucket(Bucket=name)
        return self.client("sqs").create_queue(QueueName=name, Attributes={"VisibilityTimeout": "2"})["QueueUrl"]

    def depth(self, url):
        attrs = self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def resend_refused(splat, ledger):
    """Sends again what was not acknowledged, as an SDK's retry or a proxy's replay would; True once all is."""
    return not send(splat.base_url, [ledger.sent[i] for i, s in ledger.statuses.items() if s != 200], ledger)


def test_queue_emulator_stalled_then_restarted_under_load(tmp_path):
    moto = Moto(tmp_path)
    moto.start()
    try:
        name = "faults"
        url = moto.create(name)
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": moto.endpoint, "SPLAT_QUEUE_URL": url, "SPLAT_BUCKET": name,
               "SPLAT_S3_FORCE_PATH_STYLE": "true"}
        ledger = Ledger()
        with start_splat(tmp_path, env) as splat:
            corpus = Corpus(splat.key)
            # 1. Stalled (SIGSTOP): connections open, nothing answers, nothing is forgotten. Ingest must give
            # up within its bounds and answer 503; once it answers again, everything flows.
            with Traffic(splat.base_url, corpus, ledger):
                wait_until(lambda: ledger.count(200) >= 20, "traffic flowing", log=splat.log_path)
                moto.proc.send_signal(signal.SIGSTOP)
                wait_until(lambda: ledger.count(503) >= 2, "503s while the queue is stalled", log=splat.log_path)
                moto.proc.send_signal(signal.SIGCONT)
                resumed = ledger.count(200)
                wait_until(lambda: ledger.count(200) >= resumed + 20, "traffic flowing again", log=splat.log_path)
            stalled_503 = ledger.count(503)
            assert ledger.count(None) == 0, "every request was answered (none hung until the client gave up)"
            wait_until(lambda: resend_refused(splat, ledger), "the refused envelopes accepted", log=splat.log_path)
            wait_until(lambda: moto.depth(url) == 0, "SQS drained", log=splat.log_path)

            # 2. Restarted: a killed emulator keeps nothing (moto holds its state in memory), so it is killed
            # with its queue drained: while it is down ingest answers 503 at once, and after it is back,
            # with the queue and bucket recreated, traffic flows again without restarting Splat.
            moto.stop()
            down = corpus.take(12)
            refused = send(splat.base_url, down, ledger)
            assert [status for status, _ in refused] == [503] * len(down), refused[:3]
            assert json.loads(refused[0][1])["detail"] == "the event could not be queued, try again"
            moto.start()
            assert moto.create(name) == url
            wait_until(lambda: resend_refused(splat, ledger), "ingest accepting after the restart", log=splat.log_path)
            assert not send(splat.base_url, corpus.take(40), ledger)
            wait_until(lambda: moto.depth(url) == 0, "SQS drained after the restart", log=splat.log_path)
            wait_until(lambda: splat.scalar("SELECT count(*) FROM processed_messages") >= len(ledger.acknowledged()),
                       "everything processed", log=splat.log_path)
            # The lake's files were in the emulator's S3, which the restart emptied: the database is checked.
            check_stored_exactly_once(splat, ledger, lake=False)
            assert splat.proc.poll() is None and "panicked" not in splat.log_path.read_text()
        print(f"503s while stalled: {stalled_503}; acknowledged {len(ledger.acknowledged())} of {len(ledger.sent)}")
    finally:
        moto.stop()


@contextlib.contextmanager
def small_disk(path, size):
    """A tmpfs of `size` mounted at `path`: a disk that really fills (ENOSPC). Needs the right to mount."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the queue cap test covers the path")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk):
    """Writes a ballast file until the disk is full; returns it."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return ballast


def test_real_full_disk_answers_503_and_recovers_when_space_returns(tmp_path):
    """Everything on one small disk (database, queue, lake), filled up under traffic, then freed."""
    if not os.environ.get("SPLAT_TEST_REAL_DISK"):
        # In 2 of 4 full-suite runs, creating the ballast file failed with ENOSPC while the tmpfs held ~4 MB
        # of 64 (alone it always passed); until that is understood the queue-cap test covers this path in CI.
        pytest.skip("set SPLAT_TEST_REAL_DISK=1 to run (flaky in the full suite, see the comment)")
    with small_disk(tmp_path / "data", "64m") as disk:
        ledger = Ledger()
        with start_splat(tmp_path, QUICK_REDELIVERY) as splat:
            corpus = Corpus(splat.key)
            assert not send(splat.base_url, corpus.take(40), ledger)
            # A backlog is waiting when the disk fills, so the processor meets the full disk too.
            with write_lock(splat.db_path):
                assert not send(splat.base_url, corpus.take(100), ledger)
                ballast = fill(disk)
                refused = send(splat.base_url, corpus.take(60), ledger, threads=2)
            assert refused and {status for status, _ in refused} == {503}, refused[:3]
            details = {json.loads(body)["detail"] for _, body in refused}
            assert details == {"the queue is full, try again later"}, details
            # The processor fails for a while too (its lake files and commits need the disk).
            time.sleep(5)
            assert splat.proc.poll() is None and "panicked" not in splat.log_path.read_text()
            ballast.unlink()
            wait_until(lambda: resend_refused(splat, ledger), "the refused envelopes accepted", log=splat.log_path)
            wait_until(lambda: depth(disk) == 0, "the queue drained", log=splat.log_path)
            assert queue_rows(disk, "SELECT count(*) FROM dead_letters") == [(0,)]
            check_stored_exactly_once(splat, ledger)
        print(f"refused while full: {len(refused)} of 60")


def test_storage_outage_never_dead_letters_good_messages(tmp_path):
    """While the processor cannot write at all (here its lake folder is unusable, as on a failed volume),
    its failed attempts are not deliveries: after the outage, nothing acknowledged sits in the dead letters."""
    env = {"SPLAT_QUEUE_VISIBILITY_SECS": "1", "SPLAT_QUEUE_MAX_RECEIVES": "2"}
    data_dir, ledger = tmp_path / "data", Ledger()
    with start_splat(tmp_path, env) as splat:
        corpus = Corpus(splat.key)
        assert not send(splat.base_url, corpus.take(8), ledger)
        wait_until(lambda: processed(splat) == 8 and depth(data_dir) == 0, "the first envelopes processed")
        # The lake path becomes a link to a plain file, and comes back by replacing that link in one rename:
        # deleting the file first would leave a moment in which the processor recreates an empty lake folder.
        lake, away, broken = data_dir / "lake", data_dir / "lake-away", data_dir / "not-a-folder"
        lake.rename(away)
        broken.write_text("not a folder")
        lake.symlink_to(broken)
        assert not send(splat.base_url, corpus.take(20), ledger)
        wait_until(lambda: "storage failed" in splat.log_path.read_text(), "the processor failing", log=splat.log_path)
        time.sleep(4)  # two visibility timeouts: the receive limit, had the attempts counted
        (data_dir / "lake-restored").symlink_to(away, target_is_directory=True)
        os.replace(data_dir / "lake-restored", lake)
        wait_until(lambda: depth(data_dir) == 0, "the queue drained", log=splat.log_path)
        assert queue_rows(data_dir, "SELECT count(*) FROM dead_letters") == [(0,)]
        check_stored_exactly_once(splat, ledger)
