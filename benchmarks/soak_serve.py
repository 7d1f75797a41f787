"""Serving soak: hostile traffic, then valid traffic, against the real ``serve`` on loopback.

    python -m benchmarks.soak_serve                    # make soak-serve
    python -m benchmarks.soak_serve --hostile 20000 --slow 2 --threads 2

Phase 1 sends ``--hostile`` requests of every kind in ``hostile_requests.KINDS``
(round robin, seeded) from ``--clients`` threads while ``--slow`` more clients
keep sending half a request and stalling. Phase 2 sends valid requests (raw
JPEGs, JSON, small batches, jsonlines, with and without an expected quantity)
from ``--clients`` threads for ``--valid-seconds``. Prints counts by status,
every 5xx and lost connection with its kind, each worker's RSS at start, after
a warm-up of every kind, after each phase, and exits 1 on any 5xx, lost
connection, 4xx without a JSON reason, valid request not answered 200, worker
restart, traceback in the server log, or RSS growth of 50 MB or more from the
warm-up to the end. (The warm-up takes each worker to the memory the largest
allowed requests need: ONNX Runtime's arena keeps what a batch of 32 needed,
and glibc keeps freed heap. Growth after it is what would add up: a leak.)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from http.client import HTTPResponse
from pathlib import Path

import psutil

from benchmarks.hostile_requests import KINDS, as_json, b64, jpeg
from devtools.local_serve import start_serve, stop
from devtools.local_toolkit import SAMPLE
from devtools.random_model import random_model

SAMPLE_IMAGES = SAMPLE / "images"
RSS_GROWTH_LIMIT_MB = 50


class Tally:
    """Thread-safe outcome counts: per phase and kind, the statuses; the failures in full."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.failures: list[str] = []

    def add(self, phase: str, kind: str, status: str, failure: str | None = None) -> None:
        with self.lock:
            self.statuses[f"{phase}: {kind}"][status] += 1
            if failure:
                self.failures.append(f"{phase}: {kind}: {failure}")


def send(port: int, raw: bytes, timeout: float = 90.0) -> tuple[int, str | None, bytes]:
    """One request as raw bytes on a new connection: (status, content type, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 400) before reading it all: read what it said
        reply = HTTPResponse(sock)
        reply.begin()
        return reply.status, reply.getheader("Content-Type"), reply.read()


def judge(tally: Tally, phase: str, kind: str, port: int, raw: bytes, want_200: bool = False) -> None:
    try:
        status, ctype, body = send(port, raw)
    except (OSError, ValueError) as exc:  # reset, refused, timeout, no status line
        tally.add(phase, kind, "lost", f"lost connection: {type(exc).__name__}: {exc}")
        return
    failure = None
    if status >= 500:
        failure = f"{status}: {body[:200]!r}"
    elif want_200 and status != 200:
        failure = f"valid request answered {status}: {body[:200]!r}"
    elif status >= 400:
        try:
            ok = (ctype or "").startswith("application/json") and json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            failure = f"{status} without a JSON reason: {ctype} {body[:120]!r}"
    tally.add(phase, kind, str(status), failure)


def slow_client(port: int, images: list[bytes], stop_at: threading.Event, tally: Tally, seed: int) -> None:
    """Half a request, then silence: the server must answer 408 (JSON) at its read deadline."""
    rng = random.Random(seed)
    while not stop_at.is_set():
        raw = jpeg(rng.choice(images))
        cut = rng.randint(1, len(raw) - 1)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(raw[:cut])
                answer = sock.makefile("rb").read()
        except OSError as exc:
            tally.add("slow", "half a request", "lost", f"{type(exc).__name__}: {exc}")
            continue
        ok = answer.startswith(b"HTTP/1.1 408") and b"application/json" in answer
        tally.add("slow", "half a request", answer[9:12].decode() or "closed",
                  None if ok else f"expected a JSON 408, got {answer[:120]!r}")


def hostile_phase(port: int, images: list[bytes], total: int, clients: int, tally: Tally, seed: int) -> None:
    kinds = list(KINDS)
    jobs = iter(range(total))
    lock = threading.Lock()

    def run(k: int) -> None:
        rng = random.Random(seed * 100 + k)
        while True:
            with lock:
                n = next(jobs, None)
            if n is None:
                return
            kind = kinds[n % len(kinds)]
            judge(tally, "hostile", kind, port, KINDS[kind].make(rng, images))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def valid_requests(rng: random.Random, images: list[bytes]) -> tuple[str, bytes]:
    pick = rng.choice(images)
    return rng.choice([
        ("jpeg", jpeg(pick)),
        ("jpeg + expected quantity", jpeg(pick, f"X-Amzn-SageMaker-Custom-Attributes: expected_quantity={rng.randint(1, 5)}")),
        ("json", as_json({"image": b64(pick), "expected_quantity": rng.randint(1, 5)})),
        ("json batch of 8", as_json({"instances": [{"image": b64(rng.choice(images))} for _ in range(8)]})),
        ("jsonlines of 4", as_json("".join(json.dumps({"image": b64(rng.choice(images))}) + "\n"
                                           for _ in range(4)).encode(), "application/jsonlines")),
    ])


def valid_phase(port: int, images: list[bytes], seconds: float, clients: int, tally: Tally, seed: int) -> None:
    end = time.monotonic() + seconds

    def run(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        while time.monotonic() < end:
            kind, raw = valid_requests(rng, images)
            judge(tally, "valid", kind, port, raw, want_200=True)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def workers_rss(master: int) -> dict[int, float]:
    """RSS in MB of each gunicorn worker (the master's children)."""
    return {c.pid: c.memory_info().rss / 1e6 for c in psutil.Process(master).children()}


def load_images(n: int, work: Path) -> tuple[list[bytes], str]:
    if SAMPLE_IMAGES.is_dir():
        paths = sorted(SAMPLE_IMAGES.glob("*.jpg"))[:n]
        return [p.read_bytes() for p in paths], f"{len(paths)} real ABID photos"
    from bincounter.synth import generate
    paths = sorted((generate(work / "bins", n=n, seed=0) / "images").glob("*.jpg"))
    return [p.read_bytes() for p in paths], f"{len(paths)} synthetic bins (no {SAMPLE_IMAGES})"


def warm_up(port: int, images: list[bytes], workers: int, clients: int) -> None:
    """Valid traffic, then each hostile kind 3 x workers times (the kernel picks the worker)."""
    valid_phase(port, images, 3, clients, Tally(), 0)
    rng, tally = random.Random(0), Tally()
    for kind, spec in KINDS.items():
        for _ in range(3 * workers):
            judge(tally, "warm-up", kind, port, spec.make(rng, images))


def report(tally: Tally, rss: dict[str, dict[int, float]], log_text: str) -> list[str]:
    """Prints the tables; returns every reason to fail."""
    by_phase: dict[str, Counter] = defaultdict(Counter)
    print(f"\n{'phase: kind':52} {'n':>6}  statuses")
    for key, counts in sorted(tally.statuses.items()):
        by_phase[key.split(":")[0]].update(counts)
        print(f"{key:52} {sum(counts.values()):6}  " + " ".join(f"{s}x{n}" for s, n in sorted(counts.items())))
    for phase, counts in by_phase.items():
        print(f"== {phase}: {sum(counts.values())} requests: " + ", ".join(f"{s}: {n}" for s, n in sorted(counts.items())))
    for when, sizes in rss.items():
        print(f"== worker RSS {when:15} (MB): " + ", ".join(f"pid {p}: {v:.0f}" for p, v in sizes.items())
              + f"; total {sum(sizes.values()):.0f}")
    first, warm, last = (rss[k] for k in ("at start", "after warm-up", "at the end"))
    growth = sum(last.values()) - sum(warm.values())
    print(f"== RSS growth from the warm-up to the end: {growth:+.1f} MB (limit {RSS_GROWTH_LIMIT_MB}); "
          f"from the start: {sum(last.values()) - sum(first.values()):+.1f} MB")
    reasons = list(tally.failures)
    if set(first) != set(last):
        reasons.append(f"workers restarted: {sorted(first)} -> {sorted(last)}")
    if growth >= RSS_GROWTH_LIMIT_MB:
        reasons.append(f"worker RSS grew {growth:.1f} MB")
    tracebacks = log_text.count("Traceback")
    if tracebacks:
        reasons.append(f"{tracebacks} tracebacks in the server log")
    return reasons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hostile", type=int, default=10_000, help="hostile requests (default 10,000)")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--slow", type=int, default=1, help="clients sending half requests meanwhile")
    ap.add_argument("--valid-seconds", type=float, default=60)
    ap.add_argument("--workers", default=str(os.cpu_count() or 1))
    ap.add_argument("--threads", default="1", help="MODEL_SERVER_THREADS (>1: gthread workers)")
    ap.add_argument("--model", type=Path, help="a model dir (default: random resnet18 at 64 px)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        model = a.model or random_model(work, "resnet18", 64)
        images, where = load_images(64, work)
        log_path = work / "serve.log"
        print(f"soak: {a.hostile} hostile requests of {len(KINDS)} kinds from {a.clients} clients + {a.slow} "
              f"slow; then {a.clients} clients x {a.valid_seconds:g} s valid; {where}; workers {a.workers} x "
              f"threads {a.threads}; load average {os.getloadavg()[0]:.2f}", flush=True)
        with open(log_path, "ab") as log:
            proc, url = start_serve(model, log, MODEL_SERVER_WORKERS=a.workers, MODEL_SERVER_THREADS=a.threads)
        port = int(url.rsplit(":", 1)[1])
        tally = Tally()
        rss = {}
        try:
            valid_phase(port, images, 3, a.clients, Tally(), a.seed)
            rss["at start"] = workers_rss(proc.pid)
            warm_up(port, images, int(a.workers), a.clients)
            rss["after warm-up"] = workers_rss(proc.pid)
            started, stop_slow = time.monotonic(), threading.Event()
            slow = [threading.Thread(target=slow_client, args=(port, images, stop_slow, tally, a.seed + k))
                    for k in range(a.slow)]
            for t in slow:
                t.start()
            hostile_phase(port, images, a.hostile, a.clients, tally, a.seed)
            stop_slow.set()
            hostile_s = time.monotonic() - started
            rss["after hostile"] = workers_rss(proc.pid)
            print(f"hostile phase: {hostile_s:.0f} s; load average {os.getloadavg()[0]:.2f}", flush=True)
            valid_phase(port, images, a.valid_seconds, a.clients, tally, a.seed)
            for t in slow:
                t.join()
            rss["at the end"] = workers_rss(proc.pid)
            print(f"valid phase: {a.valid_seconds:g} s; load average {os.getloadavg()[0]:.2f}")
        finally:
            code = stop(proc)
        reasons = report(tally, rss, log_path.read_text(errors="replace"))
        if code != 0:
            reasons.append(f"serve exited {code} on SIGTERM")
    for reason in itertools.islice(reasons, 40):
        print(f"!! {reason}")
    print("== FAIL" if reasons else "== PASS: no 5xx, no lost connection, every 4xx with a JSON reason")
    return 1 if reasons else 0


if __name__ == "__main__":
    sys.exit(main())
