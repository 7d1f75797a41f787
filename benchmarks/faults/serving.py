"""Serving's rows: one of two gunicorn workers SIGKILLed under load, and closed-loop callers from
1 to 64 against two workers (the load held: the plateau, the tails, what happens past it)."""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import threading
import time
from pathlib import Path

from benchmarks.faults import Row
from devtools.local_serve import launch_serve, stop, wait_for_ping

# the server answers within SageMaker's limit or the caller is told ModelError (docs/serving.md)
INVOCATION_LIMIT_S = 60.0


def _child_states(pid: int) -> list[tuple[int, str]]:
    """(pid, state letter) of every child process of ``pid``, from /proc."""
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return sorted(out)


def children(pid: int) -> list[int]:
    """The live (not zombie) child processes of ``pid``: gunicorn's workers under its master."""
    return [p for p, state in _child_states(pid) if state != "Z"]


def zombies(pid: int) -> int:
    return sum(state == "Z" for _, state in _child_states(pid))


def post(url: str, body: bytes, timeout: float = INVOCATION_LIMIT_S) -> int:
    """One invocation; its HTTP status, or 0 when the connection broke without an answer."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", "/invocations", body, {"Content-Type": "image/jpeg"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def ping(url: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def closed_loop(url: str, image: bytes, callers: int, seconds: float) -> tuple[list[float], dict[int, int]]:
    """``callers`` threads each sending the next request as soon as its last answer arrives, for
    ``seconds``: (latencies of the 200s in s, {status: count})."""
    lock, latencies, statuses = threading.Lock(), [], {}
    end = time.monotonic() + seconds

    def caller() -> None:
        while time.monotonic() < end:
            t0 = time.monotonic()
            status = post(url, image)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.monotonic() - t0)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def worker_killed(model_dir: Path, image: bytes, log: Path, seconds: float = 12.0, callers: int = 4) -> Row:
    """Two workers under ``callers`` closed-loop callers; one worker SIGKILLed a third of the way in."""
    row = Row("serving", "one of two workers SIGKILLed under load", f"SIGKILL to a gunicorn worker, "
              f"{callers} callers", "only in-flight requests fail, /ping 200 throughout, worker back, no leak")
    proc, url = launch_serve(model_dir, log, MODEL_SERVER_WORKERS="2")
    try:
        wait_for_ping(url, proc)
        while len(children(proc.pid)) < 2:
            time.sleep(0.05)
        before = children(proc.pid)
        fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        pings: list[int] = []
        stop_pings = threading.Event()

        def pinger() -> None:
            while not stop_pings.is_set():
                pings.append(ping(url))
                time.sleep(0.1)

        result: dict = {}
        load = threading.Thread(target=lambda: result.update(zip(("lat", "st"), closed_loop(url, image, callers,
                                                                                            seconds))))
        watch = threading.Thread(target=pinger)
        load.start()
        watch.start()
        time.sleep(seconds / 3)
        victim = before[0]
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        back = None
        while time.monotonic() - killed_at < 60:
            now = children(proc.pid)
            fresh = [p for p in now if p not in before]
            if len(now) == 2 and fresh and f"[{fresh[0]}]" in _loaded_lines(log):
                back = time.monotonic() - killed_at
                break
            time.sleep(0.05)
        load.join()
        stop_pings.set()
        watch.join()
        after = children(proc.pid)
        failed = sum(n for s, n in result["st"].items() if s != 200)
        five = sum(n for s, n in result["st"].items() if 500 <= s < 600)
        leak = {"workers_after": len(after), "zombies": zombies(proc.pid),
                "master_fds": f"{fds} -> {len(os.listdir(f'/proc/{proc.pid}/fd'))}"}
        row.did = (f"{sum(result['st'].values())} requests: {result['st'].get(200, 0)} answered, {failed} failed "
                   f"({five} 5xx, {result['st'].get(0, 0)} broken connections); /ping {len(pings)} times, "
                   f"{sum(p != 200 for p in pings)} not 200; {leak['workers_after']} workers, {leak['zombies']} "
                   f"zombies, master fds {leak['master_fds']}")
        row.recover_s = back
        # a sync worker holds one request at a time: at most one in flight on the killed worker
        row.passed = (failed <= 1 and all(p == 200 for p in pings) and back is not None and len(after) == 2
                      and leak["zombies"] == 0)
        row.facts = {"statuses": result["st"], "pings": len(pings), **leak}
    finally:
        stop(proc)
    return row


def _loaded_lines(log: Path) -> str:
    """The log lines that say a worker loaded its model (each carries its pid as ``[pid]``)."""
    return "\n".join(line for line in log.read_text(errors="replace").splitlines() if " loaded " in line)


def load_held(model_dir: Path, image: bytes, log: Path, levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
              seconds: float = 8.0) -> Row:
    """Closed-loop callers at each level against two workers: throughput, p50/p99, errors."""
    row = Row("serving", "load held: closed-loop callers " + "/".join(map(str, levels)),
              "closed-loop HTTP callers, 2 workers", "no 5xx; requests queue; p99 under the 60 s limit")
    proc, url = launch_serve(model_dir, log, MODEL_SERVER_WORKERS="2")
    points = []
    try:
        wait_for_ping(url, proc)
        for n in levels:
            lat, st = closed_loop(url, image, n, seconds)
            q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [float("nan")] * 99
            points.append({"callers": n, "per_s": len(lat) / seconds, "p50_s": q[49], "p99_s": q[98],
                           "errors": sum(v for s, v in st.items() if s != 200), "statuses": st})
    finally:
        stop(proc)
    plateau = max(p["per_s"] for p in points)
    sat = next((p["callers"] for p in points if p["per_s"] >= 0.9 * plateau), None)
    errors = sum(p["errors"] for p in points)
    row.facts = {"points": points, "plateau_per_s": plateau, "saturation_callers": sat,
                 "callers_at_60s": int(INVOCATION_LIMIT_S * plateau)}
    row.did = (f"plateau {plateau:.1f}/s from {sat} callers; at {levels[-1]}: p50 {points[-1]['p50_s']:.2f} s, "
               f"p99 {points[-1]['p99_s']:.2f} s; {errors} errors; past the plateau requests queue (latency ~ "
               f"callers / {plateau:.1f} per s: 60 s at ~{row.facts['callers_at_60s']} callers)")
    row.passed = errors == 0 and all(p["p99_s"] < INVOCATION_LIMIT_S for p in points)
    return row


def levels_table(row: Row) -> str:
    lines = ["| callers | answers/s | p50 s | p99 s | errors |", "|---|---|---|---|---|"]
    lines += [f"| {p['callers']} | {p['per_s']:.1f} | {p['p50_s']:.3f} | {p['p99_s']:.3f} | {p['errors']} |"
              for p in row.facts["points"]]
    return "\n".join(lines)
