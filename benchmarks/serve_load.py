"""The serving benchmark's load: a closed loop of HTTP clients against one server, and
the record of each server (cold start, latencies, per-round tails)."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    name: str
    cold_start_s: float
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    errors: int = 0
    round_tails: list[float] = field(default_factory=list)  # p99/p50 within each round

    @property
    def round_tail(self) -> float:
        """Median over rounds of p99/p50: the tail without the outside load's swings between rounds."""
        return statistics.median(self.round_tails) if self.round_tails else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def to_dict(self) -> dict:
        return {"name": self.name, "img_per_s": self.throughput, "p50_ms": self.pct(50),
                "p99_ms": self.pct(99), "p99_over_p50_in_round": self.round_tail,
                "cold_start_s": self.cold_start_s, "errors": self.errors, "n": len(self.latencies_ms)}


def post(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def drive(port: int, images: list[bytes], clients: int, seconds: float, warmup: float,
          result: Result) -> None:
    """Closed loop: each client sends the next image as soon as its last answer arrives.
    Adds the answers that started and ended inside the measured window to ``result``."""
    lock = threading.Lock()
    first = len(result.latencies_ms)
    start = time.monotonic()
    t_begin, t_end = start + warmup, start + warmup + seconds

    def client(k: int) -> None:
        i = k
        while True:
            t0 = time.monotonic()
            if t0 >= t_end:
                return
            status = post(port, images[i % len(images)])
            t1 = time.monotonic()
            i += clients
            if t0 >= t_begin and t1 <= t_end:
                with lock:
                    if status == 200:
                        result.latencies_ms.append((t1 - t0) * 1000)
                    else:
                        result.errors += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds += seconds
    mine = result.latencies_ms[first:]
    if len(mine) >= 2:
        q = statistics.quantiles(mine, n=100, method="inclusive")
        result.round_tails.append(q[98] / q[49])
