"""Writes the committed seed corpus (corpus/<target>/) from the captured fixtures plus a few crafted inputs.

Run with the test venv (it has brotli and zstandard): ~/.cache/splat/venv/bin/python tests/fuzz/seed.py
The corpus is committed; re-run this only to change the seeds. Fuzz runs never write here (tests/fuzz/run
fuzzes a copy).
"""
import base64
import gzip
import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path

import brotli
import zstandard

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures"
CORPUS = HERE / "corpus"

# Must match the tables at the top of the targets.
DECODE_ENCODINGS = [None, "identity", "gzip", "x-gzip", "deflate", "br", "zstd", "GZIP", " zstd , identity",
                    "gzip, br", "compress", ""]
DECODE_CAPS = [0, 1, 7, 64, 1000, 4096, 65_536, 1 << 20]
STORE_CAPS = [0, 16, 1000, 65_536, 1 << 20]
NORMALIZE_OPS = ["db", "db.sql.query", "db.query", "db.redis", "db.mongodb.find", "cache.get", "http.client",
                 "http.server", "resource.script", "ui.render"]
NORMALIZE_DB = [None, "postgresql", "mysql", "sqlite", "mssql", "mongodb", "clickhouse", "bigquery"]


# A lone surrogate escape and a number beyond f64 in fields nobody reads (finding 5).
LONE_SURROGATE_EVENT = (b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"a\\ud800",'
                        b'"extra":{"path":"\\udcff","x":1e400}}')
# Arrays nested past serde_json's 128 levels in a field nobody reads (finding 6).
DEEP_EVENT = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","message":"m","extra":{"x":' + b"[" * 200 + b"]" * 200 + b"}}"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def sdk_fixtures():
    """(name, raw body, content-encoding, decoded envelope) of every captured SDK request."""
    out = []
    for sidecar in sorted((FIXTURES / "sdk").glob("*.json")):
        meta = json.loads(sidecar.read_text())
        raw = sidecar.with_suffix(".envelope").read_bytes()
        enc = next((v for k, v in meta["headers"] if k.lower() == "content-encoding"), None)
        decoded = {None: lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress}[enc](raw)
        out.append((sidecar.stem, raw, enc, decoded))
    return out


def items(envelope):
    """(item header, payload) pairs of an envelope whose items all have a length."""
    lines = envelope.split(b"\n", 1)
    rest, out = lines[1] if len(lines) > 1 else b"", []
    while rest.strip():
        header, rest = rest.split(b"\n", 1)
        h = json.loads(header)
        n = h.get("length")
        if n is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:n], rest[n + 1:]
        out.append((h, payload))
    return out


def decode_seed(encoding, cap, body, round_trip=False):
    selector = DECODE_ENCODINGS.index(encoding) | (0x80 if round_trip else 0)
    return bytes([selector, DECODE_CAPS.index(cap)]) + body


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zigzag(i):
    return (i << 1) ^ (i >> 63) if i >= 0 else ((-i) << 1) - 1


def sketch_bytes(count, zero, total, lo, hi, buckets):
    out = bytes([1]) + varint(count) + varint(zero) + struct.pack("<ddd", total, lo, hi) + varint(len(buckets))
    prev = None
    for index, n in buckets:
        out += varint(zigzag(index) if prev is None else index - prev) + varint(n)
        prev = index
    return out


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    sdk = sdk_fixtures()
    small = b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}\n{"type":"event","length":41}\n' \
            b'{"message":"hello world","level":"error"}\n'

    # envelope: every captured SDK envelope, decoded, plus the framing corner cases of the spec.
    for name, _, _, decoded in sdk:
        put("envelope", name, decoded)
    put("envelope", "spec-example", b'{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc","dsn":"https://e12d836b15bb49d7bbf99e64295d995b:@sentry.io/42"}\n'
        b'{"type":"attachment","length":10,"content_type":"text/plain","filename":"hello.txt"}\n'
        b'\xef\xbb\xbfHello\r\n\n'
        b'{"type":"event","length":41,"content_type":"application/json","filename":"application.log"}\n'
        b'{"message":"hello world","level":"error"}\n')
    put("envelope", "no-lengths", b'{}\n{"type":"event"}\n{"message":"a"}\n{"type":"session"}\n{"sid":"x"}')
    put("envelope", "empty-items", b'{}\n{"type":"attachment","length":0}\n\n{"type":"attachment"}\n')
    put("envelope", "unknown-type", b'{"sdk":{"name":"x"}}\n{"type":"brand_new","length":3,"item_count":2}\nabc\n')
    put("envelope", "headers-only", b'{"event_id":"9ec79c33-ec99-42ab-8353-589fcb2e04dc","sent_at":"2026-11-25T08:20:13Z"}')

    # decode: every captured body with its real encoding, the small envelope in every encoding, bombs,
    # and round-trip seeds (plaintext that the target compresses itself).
    for name, raw, enc, decoded in sdk:
        put("decode", name, decode_seed(enc, 1 << 20, raw))
        put("decode", name + "-tight-cap", decode_seed(enc, 1000, raw))
    put("decode", "gzip", decode_seed("gzip", 4096, gzip.compress(small)))
    put("decode", "deflate-zlib", decode_seed("deflate", 4096, zlib.compress(small)))
    raw_deflate = zlib.compressobj(wbits=-15)
    put("decode", "deflate-raw", decode_seed("deflate", 4096, raw_deflate.compress(small) + raw_deflate.flush()))
    put("decode", "br", decode_seed("br", 4096, brotli.compress(small, quality=4)))
    put("decode", "zstd", decode_seed("zstd", 4096, zstandard.ZstdCompressor(level=3).compress(small)))
    put("decode", "zstd-no-size", decode_seed("zstd", 4096, zstandard.ZstdCompressor(level=3, write_content_size=False).compress(small)))
    put("decode", "gzip-multi-member", decode_seed("gzip", 4096, gzip.compress(small[:40]) + gzip.compress(small[40:])))
    put("decode", "identity", decode_seed(None, 4096, small))
    zeros = bytes(4 << 20)
    put("decode", "bomb-gzip", decode_seed("gzip", 65_536, gzip.compress(zeros, 9)))
    put("decode", "bomb-zstd", decode_seed("zstd", 65_536, zstandard.ZstdCompressor(level=19).compress(zeros)))
    put("decode", "bomb-br", decode_seed("br", 65_536, brotli.compress(zeros, quality=9)))
    for enc in ["gzip", "deflate", "br", "zstd"]:
        put("decode", "round-trip-" + enc, decode_seed(enc, 4096, small, round_trip=True))

    # store_body: raw JSON events and base64(zlib(JSON)), as old SDKs send them.
    events = sorted((FIXTURES / "grouping" / "events").glob("*.json"))
    for path in events[::10]:
        body = path.read_bytes()
        put("store_body", path.stem, bytes([STORE_CAPS.index(1 << 20)]) + body)
        put("store_body", path.stem + "-b64zlib", bytes([STORE_CAPS.index(65_536)]) + base64.b64encode(zlib.compress(body)))
    put("store_body", "transaction", bytes([4]) + b' {"type":"transaction","transaction":"/x","event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}')
    put("store_body", "b64-bomb", bytes([STORE_CAPS.index(1000)]) + base64.b64encode(zlib.compress(bytes(1 << 20), 9)))
    # Finding 5: what ingest skips unchecked and a full read refused.
    put("store_body", "lone-surrogate-huge-number", bytes([STORE_CAPS.index(65_536)]) + LONE_SURROGATE_EVENT)
    put("store_body", "deep-nesting", bytes([STORE_CAPS.index(65_536)]) + DEEP_EVENT)  # finding 6

    # event: every event/transaction/span payload of the SDK captures, and a spread of the grouping events.
    put("event", "lone-surrogate-huge-number", LONE_SURROGATE_EVENT)
    put("event", "deep-nesting", DEEP_EVENT)
    payloads = [(f"{name}-{i}-{h['type']}", p) for name, _, _, d in sdk for i, (h, p) in enumerate(items(d))]
    for name, payload in payloads:
        put("event", name, payload)
    for path in events[::4]:
        put("event", path.stem, path.read_bytes())
    put("event", "odd-types", b'{"timestamp":"2026-11-25T08:20:13","level":3,"exception":{"values":[{"type":1,"value":null,'
        b'"stacktrace":{"frames":"x"}}]},"tags":[["a","b"],["c"]],"fingerprint":["{{ default }}",2],'
        b'"spans":[{"span_id":"a"}],"items":[{"span_id":"b","trace_id":"c","is_segment":true,"attributes":{"sentry.segment.id":{"type":"string","value":"b"}}}]}')

    # grouping: every captured event of the grouping suite (real Python, Node and Rust SDK events).
    for path in events:
        put("grouping", path.stem, path.read_bytes())
    for name, payload in payloads:
        if b'"exception"' in payload:
            put("grouping", name, payload)

    # normalize: SQL in several dialects and shapes, cache commands, URLs, documents.
    def norm(op, db, text):
        return bytes([NORMALIZE_OPS.index(op) | (NORMALIZE_DB.index(db) << 4)]) + text.encode()
    seeds = [
        ("db", None, "SELECT * FROM orders WHERE user_id = %s"),
        ("db.sql.query", "postgresql", 'SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."id" = $1 LIMIT $2'),
        ("db.sql.query", "mysql", "SELECT `a`.`b` FROM `t_12345` AS a WHERE a.x IN (1, 2, 3) AND a.y = 'bob@example.com' # tail"),
        ("db.query", "sqlite", "INSERT INTO events (id, payload) VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING"),
        ("db", "postgresql", "UPDATE users SET name = 'x', age = 3 WHERE id = 42 RETURNING id"),
        ("db", "mssql", "SELECT TOP 10 [Name] FROM [dbo].[Users] WITH (NOLOCK) WHERE [Id] = N'abc'"),
        ("db", None, "/*controller:users,action:show*/ SELECT users.* FROM users WHERE users.id = 7 -- trailing"),
        ("db", None, "SELECT CASE WHEN a = 1 THEN 'one' WHEN a = 2 THEN 'two' ELSE 'many' END FROM t"),
        ("db", "clickhouse", "SELECT count() FROM spans_2026_11 WHERE ts > toDateTime('2026-11-25 00:00:00')"),
        ("db", "bigquery", "SELECT * FROM `proj.dataset.table` WHERE x = b'bytes' AND y = r'raw'"),
        ("db", None, "SAVEPOINT sp_0a1b2c3d; RELEASE SAVEPOINT sp_0a1b2c3d"),
        ("db", None, "SELECT * FROM t WHERE s = 'unterminated"),
        ("db", None, "SELECT " + "(" * 80 + "1" + ")" * 80),
        ("db", None, "SELECT " + "+".join(["1"] * 200)),
        ("db", None, "SELECT a FROM t WHERE id IN (" + ", ".join(str(i) for i in range(300)) + ")"),
        ("db.redis", None, "GET user:12345:session"),
        ("cache.get", None, "MGET cache:a:1 cache:b:2"),
        ("db.mongodb.find", "mongodb", '{"find": "users", "filter": {"email": "bob@example.com"}}'),
        ("http.client", None, "GET https://api.example.com/users/12345/orders?token=abc&page=2"),
        ("http.server", None, "POST /api/1/envelope/"),
        ("resource.script", None, "https://cdn.example.com/static/app.3f9a8b7c.js"),
        ("ui.render", None, "  render <Checkout>  "),
        # Finding 2: inputs that normalized differently the second time.
        ("db", None, "select12 FROM t WHERE true12 = 12in AND \"sel\"ect = 'x'::a::b AND \"x\"t.* AND :\"y\""),
        ("db", "postgresql", 'SELECT * FROM t WHERE "order" = 1 AND "a b" = 2 AND "users"."id" = 3 AND a IN(%(p)s,NULL'),
        ("db", "sqlite", "select[x]@p"),
        ("db", "mssql", 'SELECT TOP 10 "table".x FROM "table" WHERE "table"."order" = 1'),
        ("http.client", None, "post?x=1& #frag"),
        ("db", None, "SELECT " + ", ".join(f'f("c {i}", x{i}y)' for i in range(300)) + " FROM t"),
    ]
    for i, (op, db, text) in enumerate(seeds):
        put("normalize", f"{i:02}-{op}", norm(op, db, text))

    # sketch: stored forms (one bucket, zero bucket, a spread, corrupt ones) and build-mode durations.
    put("sketch", "empty", b"\0" + sketch_bytes(0, 0, 0.0, 0.0, 0.0, []))
    put("sketch", "one", b"\0" + sketch_bytes(1, 0, 12.5, 12.5, 12.5, [(127, 1)]))
    put("sketch", "zero-and-spread", b"\0" + sketch_bytes(6, 2, 1110.0, 0.0, 1000.0, [(-100, 1), (0, 1), (231, 1), (347, 1)]))
    put("sketch", "bad-counts", b"\0" + sketch_bytes(9, 0, 1.0, 1.0, 1.0, [(1, 1)]))
    put("sketch", "truncated", b"\0" + sketch_bytes(1, 0, 1.0, 1.0, 1.0, [(1, 1)])[:-3])
    put("sketch", "build", b"\1" + struct.pack("<8d", 0.0, 0.0005, 1.0, 12.5, 250.0, 1e4, 1e12, -1.0))
    put("sketch", "build-nan-inf", b"\1" + struct.pack("<4d", float("nan"), float("inf"), 1e13, 3.0))

    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    files = sum(1 for p in CORPUS.rglob("*") if p.is_file())
    print(f"{files} files, {total} bytes")


if __name__ == "__main__":
    main()
