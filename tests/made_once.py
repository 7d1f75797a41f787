"""Session fixtures made once per test run, also when pytest-xdist splits the run over
workers (``make test`` runs two): each worker is its own pytest session, so a plain
session fixture would train the session's model once per worker.

Under xdist the first worker that asks makes the thing in a folder all workers share
(the run's base temp folder, which the controller removes last, not a worker's own,
which a worker that ends early removes) and keeps its value beside it; a worker that
asks meanwhile waits on a file lock, then reads the same. Without xdist it is a plain
``mktemp``. A maker that fails leaves nothing behind, so the next worker tries again
and fails with its own reason.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from pathlib import Path
from typing import Callable, TypeVar

import pytest

T = TypeVar("T")


def made_once(factory: pytest.TempPathFactory, name: str, make: Callable[[Path], T]) -> T:
    """``make(folder)`` once per test run; every worker gets its (picklable) value."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(factory.mktemp(name))
    shared = factory.getbasetemp().parent / "made-once"
    shared.mkdir(exist_ok=True)
    folder, value = shared / name, shared / f"{name}.pickle"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not value.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            made = make(folder)
            value.write_bytes(pickle.dumps(made))
            return made
        return pickle.loads(value.read_bytes())
