"""Targets for ``workers.supervise`` tests: importable by name in a spawned child, light to import."""

from __future__ import annotations

import os
import signal
import time

from bincounter.training.spot import StopFlag


def succeed(local_rank: int, stop: StopFlag) -> tuple[int, str]:
    return 0, ""


def rank_1_fails_rank_0_hangs(local_rank: int, stop: StopFlag) -> tuple[int, str]:
    """Rank 0 stands for a peer stuck in a collective with the failed rank."""
    if local_rank == 1:
        return 1, "RuntimeError: boom"
    time.sleep(600)
    return 0, ""


def rank_0_dies_rank_1_fails_after(local_rank: int, stop: StopFlag) -> tuple[int, str]:
    """Rank 0 dies without a word (OOM killer); rank 1's error comes later, caused by it."""
    if local_rank == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(1)
    return 1, "RuntimeError: Connection closed by peer"


def stop_when_asked(local_rank: int, stop: StopFlag, ready_dir: str) -> tuple[int, str]:
    """Signal readiness with a file, then wait for SIGTERM through the StopFlag."""
    open(os.path.join(ready_dir, f"ready-{local_rank}"), "w").close()
    deadline = time.monotonic() + 60
    while not stop.requested and time.monotonic() < deadline:
        time.sleep(0.05)
    if stop.requested:
        return 143, f"Interrupted: stopped by {stop.signal_name}"
    return 1, "never stopped"
