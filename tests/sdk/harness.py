"""The real-SDK tests' harness: a running `splat serve`, reads of its database, replays of raw requests."""

import contextlib
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zstandard

ROOT = Path(__file__).resolve().parents[2]
# The recorder and envelope helpers live with the fixture capture script, which needs them too.
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
from capture import FIXTURE_KEY, Recorder, decode, item_types, parse_envelope, run_client  # noqa: E402,F401

SPLAT_BIN = os.environ.get("SPLAT_BIN") or str(Path.home() / ".cache/splat-target/debug/splat")
TIMEOUT = 15.0


@dataclass
class Splat:
    dsn: str
    db_path: Path
    base_url: str
    log_path: Path
    # The `splat serve` process, for tests that kill it.
    proc: subprocess.Popen = None
    # With SPLAT_TEST_DATABASE=sqld: the libSQL server holding the database (sqld.Sqld), and the
    # environment that points Splat at it.
    remote: object = None
    remote_env: dict = None

    @property
    def key(self):
        return urlsplit(self.dsn).username

    def query(self, sql, *params):
        """Rows as dicts, read over a fresh read-only connection so every call sees the latest commit."""
        if self.remote:
            # libsql's client re-renders the schema's statements with keywords upper-cased, so a column
            # named by one (release, key) is declared RELEASE: the same column to SQLite, another dict key.
            return [{k.lower(): v for k, v in row.items()} for row in self.remote.query(sql, *params)]
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(sql, params)]

    def scalar(self, sql, *params):
        return next(iter(self.query(sql, *params)[0].values()))

    def lake(self, sql, *params):
        """Rows as dicts from stock DuckDB with the ducklake extension, attached to Splat's database
        read-only the way the README tells users to (on a server: through `splat lake export-catalog`)."""
        if not self.remote:
            return lake_query(self.db_path, sql, *params)
        catalog = self.db_path.parent / "exported-catalog.sqlite"
        export = subprocess.run(
            [SPLAT_BIN, "lake", "export-catalog", str(catalog), "--data-dir", str(self.db_path.parent)],
            env={**os.environ, **self.remote_env}, capture_output=True, text=True, timeout=60,
        )
        assert export.returncode == 0, export.stderr
        return lake_query(catalog, sql, *params)

    def wait_for(self, sql, *params, count=1):
        """Polls until `sql` returns at least `count` rows and returns them; the processor commits
        asynchronously, so rows appear a moment after the SDK got its 200."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            rows = self.query(sql, *params)
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {TIMEOUT:.0f} s, {len(rows)} of {count} rows for {sql} {params}\n"
                    f"--- splat log (tail) ---\n{self.log_path.read_text()[-3000:]}"
                )
            time.sleep(0.05)


def duckdb_with_ducklake():
    """A DuckDB connection with the ducklake and sqlite extensions loaded from their PyPI wheels, offline.
    The sqlite file must be named after its entry point (`sqlite_scanner`), so it is loaded from a copy."""
    import shutil
    import tempfile

    import duckdb
    import duckdb_extension_ducklake
    import duckdb_extension_sqlite

    def extension(module, name):
        return next(Path(module.__file__).parent.glob(f"extensions/*/{name}.duckdb_extension"))

    ext_dir = Path(tempfile.gettempdir()) / f"splat-duckdb-ext-{duckdb.__version__}"
    ext_dir.mkdir(exist_ok=True)
    sqlite_ext = ext_dir / "sqlite_scanner.duckdb_extension"
    if not sqlite_ext.exists():
        shutil.copy(extension(duckdb_extension_sqlite, "sqlite"), sqlite_ext)
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    con.execute(f"LOAD '{sqlite_ext}'")
    con.execute(f"LOAD '{extension(duckdb_extension_ducklake, 'ducklake')}'")
    return con


def lake_query(db_path, sql, *params):
    con = duckdb_with_ducklake()
    try:
        con.execute(f"ATTACH 'ducklake:sqlite:{db_path}' AS lake (READ_ONLY)")
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


@contextlib.contextmanager
def start_splat(workdir, env=None, log_name="splat.log"):
    """Runs `splat serve` on a kernel-chosen port with the data dir `workdir/data` (fresh, unless a
    previous run left one) and extra environment, if given; stops it on exit. With SPLAT_TEST_DATABASE=sqld
    (tests/run's second pass), the database is on a fresh libSQL server of its own instead (sqld.py)."""
    if os.environ.get("SPLAT_TEST_DATABASE") == "sqld" and "SPLAT_DATABASE_URL" not in (env or {}):
        from sqld import start_sqld

        server_dir = workdir / "sqld-server"
        server_dir.mkdir(exist_ok=True)
        with start_sqld(server_dir) as sqld:
            remote_env = {"SPLAT_DATABASE_URL": sqld.url, "SPLAT_DATABASE_TOKEN": sqld.token}
            with _serve(workdir, {**(env or {}), **remote_env}, log_name) as splat:
                splat.remote, splat.remote_env = sqld, remote_env
                yield splat
        return
    with _serve(workdir, env, log_name) as splat:
        yield splat


@contextlib.contextmanager
def _serve(workdir, env, log_name):
    data_dir, log_path = workdir / "data", workdir / log_name
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [SPLAT_BIN, "serve", "--bind", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        dsn = _wait_for_dsn(proc, log_path)
        parts = urlsplit(dsn)
        _wait_for_http(proc, parts.hostname, parts.port, log_path)
        yield Splat(dsn, data_dir / "splat.db", f"{parts.scheme}://{parts.hostname}:{parts.port}", log_path, proc)
    finally:
        stop(proc)


def until(check, what, timeout=TIMEOUT, context=lambda: ""):
    """Polls `check` until it returns something true and returns that; after `timeout` seconds fails, naming
    `what` and adding `context()` (a log's tail, say) for whoever reads the failure."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:.0f} s\n{context()}")
        time.sleep(0.05)


def stop(proc):
    """SIGTERM, then SIGKILL if the process has not ended within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_dsn(proc, log_path):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        match = re.search(r"^DSN: (\S+)$", log_path.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"splat serve printed no DSN line (exit {proc.poll()}):\n{log_path.read_text()}")


def _wait_for_http(proc, host, port, log_path):
    """The DSN is printed before start-up ends (connections still open, migrations checked); the server is
    ready once it answers. Tests that lock the database or kill the process right away need it ready."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        conn = http.client.HTTPConnection(host, port, timeout=1)
        try:
            conn.request("GET", "/_health")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise RuntimeError(f"splat serve never answered HTTP (exit {proc.poll()}):\n{log_path.read_text()}")


# Framing headers describe one transfer, not the envelope; http.client sets its own.
_HOP_BY_HOP = {"host", "connection", "content-length", "transfer-encoding"}


def replay(base_url, request):
    """Sends a recorded request again, byte for byte, chunked if it was; returns (status, body)."""
    headers = {k: v for k, v in request["headers"] if k.lower() not in _HOP_BY_HOP}
    chunked = any(k.lower() == "transfer-encoding" for k, _ in request["headers"])
    # An iterable body without Content-Length makes http.client send it chunked, as Node does.
    body = iter([request["body"]]) if chunked else request["body"]
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(request["method"], request["path"], body=body, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def payload(row):
    """An events/transactions row's stored JSON payload (zstd; a stream decoder needs no size in the frame)."""
    return json.loads(zstandard.ZstdDecompressor().decompressobj().decompress(row["payload"]))
