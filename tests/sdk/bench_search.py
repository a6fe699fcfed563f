"""Issue-list page times under the search syntax at 100,000 issues: a `splat serve` whose database gets
synthetic issues (statuses, levels, times over 30 days, environment/release/browser/user tags, full-text
rows) written straight into its tables, then each query's page fetched 30 times over HTTP (warm), p50 and
p95. A measurement, not a test:

    SPLAT_BIN=$CARGO_TARGET_DIR/debug/splat ~/.cache/splat/venv/bin/python tests/sdk/bench_search.py [ISSUES] [--analyze]
"""

import random
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import start_splat  # noqa: E402

QUERIES = [
    "",
    "is:unresolved level:error",
    "is:unresolved level:error environment:production browser:Firefox",
    "browser:Opera",
    "user.email:user7@example.com",
    "!level:info !browser:Chrome environment:staging",
    "release:[1.0.42,1.0.43] lastSeen:-24h",
    "firstSeen:+7d is:unresolved",
    "timeout",
    '"connection reset" is:unresolved',
    "is:regressed",
]
WORDS = ["timeout", "KeyError", "connection", "reset", "basket", "price", "checkout", "invoice", "parse", "render"]


def fill(db_path, n):
    rnd = random.Random(7)
    now_us = int(time.time() * 1e6)
    db = sqlite3.connect(db_path, timeout=30)
    issues, tags, fts = [], [], []
    for i in range(1, n + 1):
        first = now_us - rnd.randrange(30 * 86400) * 1_000_000
        last = min(now_us, first + rnd.randrange(7 * 86400) * 1_000_000)
        status = rnd.choices(["open", "resolved", "ignored"], [8, 1, 1])[0]
        regressed = last if status == "open" and rnd.random() < 0.05 else None
        level = rnd.choices(["error", "warning", "info", "fatal"], [6, 2, 1, 1])[0]
        words = rnd.sample(WORDS, 3)
        title = f"{words[0]}: {words[1]} {i}"
        issues.append((i, status, title, level, first, last, rnd.randrange(1, 500), regressed))
        fts.append((i, title, " ".join(words)))
        tags.append((i, "environment", rnd.choices(["production", "staging"], [7, 3])[0]))
        tags.append((i, "release", f"1.0.{rnd.randrange(100)}"))
        tags.append((i, "browser", rnd.choices(["Firefox", "Chrome", "Safari", "Opera"], [40, 45, 14.5, 0.5])[0]))
        tags.append((i, "level", level))
        tags.append((i, "user.email", f"user{rnd.randrange(5000)}@example.com"))
    db.executemany(
        "INSERT INTO issues (id, project_id, status, title, level, first_seen, last_seen, times_seen, grouping_config, regressed_at)"
        " VALUES (?, 1, ?, ?, ?, ?, ?, ?, 'bench', ?)", issues)
    db.executemany("INSERT INTO issues_fts (rowid, title, body) VALUES (?, ?, ?)", fts)
    db.executemany(
        "INSERT INTO issue_tags (issue_id, key, value, count, first_seen, last_seen) VALUES (?, ?, ?, 1, 0, 0)", tags)
    db.commit()
    # Splat never runs ANALYZE, so the planner works without statistics, as it does here unless asked.
    if "--analyze" in sys.argv:
        db.execute("ANALYZE")
    db.close()


def main():
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    n = int(numbers[0]) if numbers else 100_000
    with tempfile.TemporaryDirectory() as tmp, start_splat(Path(tmp)) as splat:
        started = time.monotonic()
        fill(splat.db_path, n)
        print(f"{n} issues written in {time.monotonic() - started:.1f} s")
        # Today's dropdowns first, as the baseline the syntax is compared with.
        pages = [("environment dropdown (before the syntax)", "environment=production&level=error")]
        pages += [(q or "(no query)", f"q={urllib.parse.quote(q)}") for q in QUERIES]
        for name, query in pages:
            url = f"{splat.base_url}/projects/default/issues?status=all&{query}"
            times = []
            for _ in range(31):
                t = time.perf_counter()
                with urllib.request.urlopen(url) as r:
                    body = r.read().decode()
                times.append((time.perf_counter() - t) * 1e3)
            times = sorted(times[1:])
            shown = body.count('class="issue-row ')
            assert 'role="alert"' not in body, name
            print(f"page [{name}]: p50 {times[15]:.1f} ms, p95 {times[28]:.1f} ms ({shown} rows shown)")


if __name__ == "__main__":
    main()
