"""``serve`` as a local process on a free loopback port: the demo and the tests
start, wait for and stop it through these three functions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

SERVE = str(Path(sys.executable).with_name("serve"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(model_dir: Path, log: IO | int | None = None, timeout: float = 120.0,
                **env: str) -> tuple[subprocess.Popen, str]:
    """Start ``serve`` (one worker) in its own process group; return once /ping says 200.

    ``log`` takes stdout and stderr: a file, not an unread pipe, since serve
    logs one line per request and a full pipe would block it.
    """
    port = free_port()
    full_env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": str(port),
                "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_WORKERS": "1", **env}
    proc = subprocess.Popen([SERVE], env=full_env, stdout=log, stderr=log, start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode} before answering /ping")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as reply:
                if reply.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"serve did not pass /ping within {timeout:.0f} s")


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM to the process group, SIGKILL after ``timeout``; the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode
