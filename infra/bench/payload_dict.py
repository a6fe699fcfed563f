"""Does a trained zstd dictionary pay for Splat's stored payloads? Each payload is stored as its own zstd frame
at level 3 (`process::compress`); a dictionary trained per project on its first --train payloads would be
stored once and every later frame compressed with it. This measures the stored bytes per payload with and
without one:

- the payloads of a database (events and classic transactions; keep one with db_bytes.py --keep), trained on
  the first --train of each table and measured on the rest: one app sending one shape, the best case;
- the grouping corpus (tests/fixtures/grouping/events: 86 errors of real Python and Node SDK apps, many
  shapes), trained on every other one and measured on the others.

    ~/.cache/splat/venv/bin/python infra/bench/payload_dict.py [--db splat.db] [--train 100] [--dict-size 16384]
"""

import argparse
import json
import sqlite3
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parents[2]
LEVEL = 3


def measure(name, train, test, dict_size):
    plain = zstandard.ZstdCompressor(level=LEVEL)
    dictionary = zstandard.train_dictionary(dict_size, train, level=LEVEL)
    with_dict = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary)
    before = sum(len(plain.compress(p)) for p in test) / len(test)
    after = sum(len(with_dict.compress(p)) for p in test) / len(test)
    print(json.dumps({"payloads": name, "trained_on": len(train), "measured_on": len(test),
                      "raw_bytes": round(sum(map(len, test)) / len(test)), "zstd_bytes": round(before),
                      "zstd_with_dictionary_bytes": round(after), "saved_bytes": round(before - after),
                      "dictionary_bytes": len(dictionary.as_bytes())}))


def stored(db, table):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(f"SELECT payload FROM {table} WHERE payload IS NOT NULL ORDER BY rowid").fetchall()
    decompress = zstandard.ZstdDecompressor()
    return [decompress.decompressobj().decompress(r[0]) for r in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db")
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--dict-size", type=int, default=16384)
    args = parser.parse_args()
    if args.db:
        for table in ("events", "transactions"):
            payloads = stored(args.db, table)
            if len(payloads) > args.train:
                measure(f"{table} of {args.db}", payloads[: args.train], payloads[args.train:], args.dict_size)
    corpus = [json.dumps(json.loads(p.read_text())).encode()
              for p in sorted((ROOT / "tests/fixtures/grouping/events").glob("*.json"))]
    measure("grouping corpus", corpus[::2], corpus[1::2], args.dict_size)


if __name__ == "__main__":
    main()
