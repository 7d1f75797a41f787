"""The tier hook (tests/tiers.py) on a small real suite: a test that reaches a training run
through a fixture, or starts a server itself, without ``slow`` fails the collection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CONFTEST = '''
import pytest
pytest_plugins = ["tiers"]

def run_toolkit_train(base):
    return base

@pytest.fixture
def trained_model(tmp_path):
    return run_toolkit_train(tmp_path)
'''
SUITE = '''
import pytest

def start_serve(model):
    return model

{mark}def test_uses_the_training_fixture(trained_model):
    assert trained_model

{mark}def test_starts_a_server_itself(tmp_path):
    assert start_serve(tmp_path)

def test_plain():
    assert True
'''


def collect(tmp_path: Path, mark: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_suite.py").write_text(SUITE.format(mark=mark))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: x\n    container: y\n")
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(TESTS)})


def test_a_test_using_a_training_run_or_a_server_without_its_marker_fails_collection(tmp_path):
    proc = collect(tmp_path, mark="")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest's usage error: nothing ran
    said = proc.stdout + proc.stderr
    assert "test_uses_the_training_fixture: uses a training run without @pytest.mark.slow" in said
    assert "test_starts_a_server_itself: uses a server process without @pytest.mark.slow" in said
    assert "test_plain" not in said.split("not fast")[1]


def test_the_same_tests_marked_slow_collect(tmp_path):
    proc = collect(tmp_path, mark="@pytest.mark.slow\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 tests collected" in proc.stdout
