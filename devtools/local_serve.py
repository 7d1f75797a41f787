"""``serve`` as a local process on a free loopback port, and the one ``/ping`` waiter:
the demo, the benchmarks and the tests start, wait for and stop servers through these."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

SERVE = str(Path(sys.executable).with_name("serve"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_serve(model_dir: Path, log: Path | IO | int | None = None, args: tuple[str, ...] = (),
                 port: int | None = None, **env: str) -> tuple[subprocess.Popen, str]:
    """Start ``serve`` (one worker unless ``MODEL_SERVER_WORKERS`` says otherwise) in its
    own process group, without waiting; its pid is gunicorn's master, since serve execs it.

    ``log`` (a path is appended to) takes stdout and stderr: a file, not an unread
    pipe, since serve logs one line per request and a full pipe would block it.
    """
    port = port or free_port()
    full_env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
                "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": "1", **env}
    out = open(log, "ab") if isinstance(log, Path) else log
    try:
        proc = subprocess.Popen([SERVE, *args], env=full_env, stdout=out, stderr=out, start_new_session=True)
    finally:
        if out is not log:
            out.close()
    return proc, f"http://127.0.0.1:{port}"


def wait_for_ping(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0,
                  interval: float = 0.05) -> list[int]:
    """Poll ``url``/ping until it answers 200; the status of every answer on the way.

    Raises RuntimeError when ``proc`` exits first or the time runs out."""
    answers: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before answering /ping")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as reply:
                answers.append(reply.status)
        except urllib.error.HTTPError as exc:  # 503 while the model loads
            answers.append(exc.code)
        except OSError:  # not listening yet
            pass
        if answers and answers[-1] == 200:
            return answers
        time.sleep(interval)
    raise RuntimeError(f"no 200 on {url}/ping within {timeout:.0f} s (answers: {answers[-5:]})")


def start_serve(model_dir: Path, log: IO | int | None = None, timeout: float = 120.0,
                **env: str) -> tuple[subprocess.Popen, str]:
    """``launch_serve``, returning once /ping says 200 (the server is stopped if it never does)."""
    proc, url = launch_serve(model_dir, log, **env)
    try:
        wait_for_ping(url, proc, timeout)
    except RuntimeError:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen, timeout: float = 30.0, group: bool = True) -> int:
    """SIGTERM (to the process group, or to ``proc`` alone), SIGKILL after ``timeout``; the exit code."""
    if proc.poll() is None:
        kill = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
        kill(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill(signal.SIGKILL)
            proc.wait()
    return proc.returncode
