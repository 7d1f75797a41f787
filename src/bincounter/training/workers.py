"""Several training processes on one host, supervised by the script the toolkit started.

The toolkit runs ``train.py`` once per host; with ``processes_per_host`` > 1
that process starts one worker per local rank (``spawn``: a fresh interpreter,
as CUDA and threads cannot survive a fork), waits for all of them and turns
their ends into one exit code and one failure reason for ``output/failure``.

Stop requests: the PID-1 launcher sends SIGTERM to the toolkit's whole process
group, which holds the workers too; the supervisor also forwards it, for when
it was signalled alone (``docker run IMAGE python train.py``, ``kill PID``).
Each worker turns SIGTERM into its ``StopFlag``, so the ranks stop together at
a step and rank 0 saves the checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from typing import Callable

from bincounter.training.spot import StopFlag

log = logging.getLogger(__name__)
# after the first worker fails, the others get this long to end on their own:
# gloo peers raise as soon as a peer's sockets close and rank 0 may be writing
# the stop checkpoint, but an nccl peer can hang in a collective until its
# timeout; SageMaker's SIGKILL comes 120 s after SIGTERM
GRACE_S = 60.0

# (local rank, StopFlag, *args) -> (exit code, failure reason or ""); a failing
# target returns before it closes its process group, so that its report is
# older than the errors its exit then causes in the peers
Target = Callable[..., tuple[int, str]]


@dataclass(frozen=True)
class Outcome:
    local_rank: int
    code: int
    reason: str
    at: float  # wall clock, to tell the first failure from the ones it caused


def supervise(target: Target, processes: int, args: tuple = (), grace_s: float = GRACE_S) -> tuple[int, str]:
    """Run ``target`` in ``processes`` workers; (0, "") when all succeed, else
    the exit code and reason of the first worker that failed."""
    ctx = multiprocessing.get_context("spawn")
    procs: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []

    def forward(signum, _frame) -> None:
        log.warning("received %s: forwarding it to %d workers", signal.Signals(signum).name, len(procs))
        for p, _ in procs:
            if p.exitcode is None:
                try:
                    os.kill(p.pid, signum)
                except ProcessLookupError:  # ended since
                    pass

    previous = signal.getsignal(signal.SIGTERM)
    # workers inherit the blocked mask through fork and exec and unblock it once
    # their StopFlag is installed: a SIGTERM during their start-up (imports,
    # rendezvous) waits for the handler instead of killing them unsaved. The
    # resource tracker's first start unblocks SIGTERM on its way out, so start it before.
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        for i in range(processes):
            receive, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(target, i, args, send), name=f"local-rank-{i}")
            p.start()
            send.close()
            procs.append((p, receive))
        signal.signal(signal.SIGTERM, forward)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        log.info("started %d training processes: pids %s", processes, [p.pid for p, _ in procs])
        return _verdict(_wait(procs, grace_s))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGTERM, previous)
        for p, _ in procs:  # only left running when the supervisor itself failed
            if p.exitcode is None:
                p.kill()
            p.join()


def _child(target: Target, local_rank: int, args: tuple, report: Connection) -> None:
    stop = StopFlag().install()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    code, reason = target(local_rank, stop, *args)
    report.send((code, reason, time.time()))
    report.close()
    sys.exit(code)


def _wait(procs: list, grace_s: float) -> list[Outcome]:
    running = {p.sentinel: (i, p, conn) for i, (p, conn) in enumerate(procs)}
    outcomes: list[Outcome] = []
    deadline = None
    while running:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = wait(list(running), timeout)
        if not ready:
            for i, p, _ in running.values():
                log.error("local rank %d still running %.0f s after a failure: killing it", i, grace_s)
                p.kill()
            deadline = None  # their sentinels fire next
            continue
        for sentinel in ready:
            i, p, conn = running.pop(sentinel)
            p.join()
            outcomes.append(_outcome(i, p.exitcode, conn))
            if outcomes[-1].code and deadline is None:
                deadline = time.monotonic() + grace_s
    return outcomes


def _outcome(local_rank: int, exitcode: int, conn: Connection) -> Outcome:
    try:
        if conn.poll():
            code, reason, at = conn.recv()
            return Outcome(local_rank, code, reason, at)
    except (EOFError, OSError):  # died while reporting
        pass
    finally:
        conn.close()
    if exitcode < 0:  # killed: no reason of its own (OOM killer, segfault, our SIGKILL)
        name = signal.Signals(-exitcode).name
        return Outcome(local_rank, 128 - exitcode, f"training process killed by {name}", time.time())
    return Outcome(local_rank, exitcode, f"training process exited with code {exitcode}"
                   if exitcode else "", time.time())


def _verdict(outcomes: list[Outcome]) -> tuple[int, str]:
    failed = sorted((o for o in outcomes if o.code), key=lambda o: o.at)
    for o in failed:
        log.error("local rank %d failed (exit %d): %s", o.local_rank, o.code, o.reason)
    if not failed:
        return 0, ""
    first = failed[0]
    return first.code, f"{first.reason} [local rank {first.local_rank}]"
