"""made_once (tests/made_once.py) on a small real suite run by two pytest-xdist workers:
the session fixture's maker runs once, every worker's tests read its value and folder,
and a maker that fails is tried again by the next worker rather than read half made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CONFTEST = '''
import os
from pathlib import Path

import pytest
from made_once import made_once

LOG = Path(os.environ["MADE_ONCE_LOG"])


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    def make(folder):
        with LOG.open("a") as log:
            log.write(os.environ.get("PYTEST_XDIST_WORKER", "none") + "\\n")
        if os.environ.get("MADE_ONCE_FAIL"):
            raise RuntimeError("the run failed")
        (folder / "weights").write_text("trained")
        return folder, {"accuracy": 0.5}
    return made_once(tmp_path_factory, "model", make)
'''
SUITE = "".join(f'''
def test_{i}(model):
    folder, card = model
    assert (folder / "weights").read_text() == "trained" and card == {{"accuracy": 0.5}}
''' for i in range(8))


def run(tmp_path: Path, workers: str, fail: bool = False) -> tuple[subprocess.CompletedProcess, list[str]]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_suite.py").write_text(SUITE)
    log = tmp_path / "makers.log"
    # not this run's own worker id (make test runs this test on a worker too)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
           "PYTHONPATH": str(TESTS), "MADE_ONCE_LOG": str(log),
           **({"MADE_ONCE_FAIL": "1"} if fail else {})}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers,
                           "--basetemp", str(tmp_path / "base"), str(suite)],
                          cwd=suite, env=env, capture_output=True, text=True, timeout=180)
    return proc, log.read_text().split() if log.exists() else []


def test_two_workers_share_one_making_of_a_session_fixture(tmp_path):
    proc, makers = run(tmp_path, "2")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "8 passed" in proc.stdout
    assert len(makers) == 1 and makers[0].startswith("gw"), makers


def test_without_workers_it_is_a_plain_session_fixture(tmp_path):
    proc, makers = run(tmp_path, "0")
    assert proc.returncode == 0 and "8 passed" in proc.stdout, proc.stdout[-2000:]
    assert makers == ["none"]


def test_a_maker_that_fails_is_tried_again_by_the_next_worker_not_read(tmp_path):
    proc, makers = run(tmp_path, "2", fail=True)
    assert proc.returncode == 1 and "8 errors" in proc.stdout, proc.stdout[-2000:]
    assert "RuntimeError: the run failed" in proc.stdout
    assert sorted(makers) == ["gw0", "gw1"], makers  # each worker's own attempt, none read a half-made one
