"""Where each thread of the ingest bench spends its time, from a `perf` call-graph recording of its HTTP case.

    perf record -F 4000 --call-graph dwarf,16384 -o http.data \
        $CARGO_TARGET_DIR/release/deps/ingest-<hash> --seconds 3 --http-only
    perf script -i http.data | python3 tests/bench/perf_split.py [FREQUENCY, default 4000, perf's -F]

Only the samples while the load generator ran count. The server thread's samples are split by the part of
ingest nearest the sampled frame (decompression, JSON checks, hyper, axum, TCP system calls, ...); the
queue writer's and checkpointer's by SQLite's work (log writes, inserts, fsync, checkpoints).
"""
import collections
import re
import sys

SERVER_PARTS = [
    ("decompress (gzip, br)", r"zlib_rs|brotli|decode_body_within|decode_within"),
    ("JSON validation (validate_items)", r"ingest::validate_items"),
    ("envelope framing (Envelope::parse)", r"Envelope::parse"),
    ("size checks (Limits::check)", r"Limits::check"),
    ("queue hand-off (enqueue, encode, send)",
     r"ingest::enqueue|QueueMessage::encode|LocalQueue as splat::queue::Queue>::send"),
    ("auth + key cache", r"ingest::authorize|auth::from_request|with_envelope_dsn|CachedKeys"),
    ("rate limits", r"rate_limit::enforce"),
    ("body read (BodyReader)", r"BodyReader"),
    ("response building", r"IntoResponse>::into_response"),
    ("rest of the handler", r"ingest::receive"),
    ("middleware (cors, answer_within)", r"ingest::cors|answer_within"),
    ("axum routing + extractors", r"axum::routing|axum::handler|axum::extract|FromRequestParts|UrlParams"),
    ("hyper h1 parse/encode/dispatch", r"hyper::proto|httparse"),
    ("TCP read/write system calls",
     r"__x64_sys_(read|write|recvfrom|sendto|writev|sendmsg|recvmsg)|tcp_sendmsg|tcp_recvmsg"),
    ("epoll / tokio scheduling", r"epoll|tokio::runtime"),
]
QUEUE_PARTS = [
    ("checkpoint", r"sqlite3Checkpoint|walCheckpoint"),
    ("fsync", r"fsync|fdatasync"),
    ("log writes (walFrames)", r"walWriteOneFrame|walFrames"),
    ("inserts (VDBE, b-tree)", r"sqlite3VdbeExec"),
    ("channel receive / answers", r"recv_many|notify|oneshot"),
]


def samples(lines):
    """(thread name, thread id, time, frames leaf first) per sample of `perf script`."""
    current = None
    for line in lines:
        if not line.strip():
            if current:
                yield current
            current = None
            continue
        head = re.match(r"^(\S.*?)\s+(\d+)\s+([\d.]+):", line)
        if head:
            current = (head.group(1).strip(), int(head.group(2)), float(head.group(3)), [])
        elif current is not None:
            parts = line.strip().split(" ", 1)
            current[3].append(parts[1] if len(parts) == 2 else "")
    if current:
        yield current


def nearest(frames, parts):
    """The part named by the frame nearest the leaf, scanning up the stack."""
    for frame in frames:
        for name, pattern in parts:
            if re.search(pattern, frame):
                return name
    return "other"


def anywhere(frames, parts):
    """The first part, in the order given, that any frame of the stack names."""
    stack = " ".join(frames)
    return next((name for name, pattern in parts if re.search(pattern, stack)), "other")


def show(title, counts, total):
    print(title)
    for name, n in counts.most_common():
        print(f"  {n / total * 100:5.1f}%  {name}")


def main():
    all_samples = list(samples(sys.stdin))
    load = [s[2] for s in all_samples if s[0] == "loadgen"]
    if not load:
        sys.exit("no load generator samples: record the bench's HTTP case")
    start, end = min(load), max(load)
    window = [s for s in all_samples if start <= s[2] <= end]
    server_tid = min(s[1] for s in window if s[0].startswith("ingest-"))
    threads = collections.Counter("server" if s[1] == server_tid else s[0] for s in window)
    seconds = end - start
    hz = float(sys.argv[1]) if len(sys.argv) > 1 else 4000.0
    print(f"HTTP case {seconds:.2f} s; each thread's share of a core ({hz:.0f} samples/s = one core):")
    for name, n in threads.most_common():
        print(f"  {name:<18} {n / seconds / hz * 100:5.1f}%")
    server = [s[3] for s in window if s[1] == server_tid]
    show(f"server thread ({len(server)} samples):",
         collections.Counter(nearest(f, SERVER_PARTS) for f in server), len(server))
    heaps = sum(1 for f in server if f and re.search(r"^_?mi_|mi_malloc|mi_free|memmove|memcpy|memset", f[0]))
    print(f"  (sampled in the allocator or a memory copy: {heaps / len(server) * 100:.1f}%)")
    for prefix in ("splat-queue-wri", "splat-queue-che"):
        stacks = [s[3] for s in window if s[0].startswith(prefix)]
        if stacks:
            show(f"{prefix} ({len(stacks)} samples):",
                 collections.Counter(anywhere(f, QUEUE_PARTS) for f in stacks), len(stacks))


if __name__ == "__main__":
    main()
