""".ci/run's strictness without a broken machine: a real pytest run whose tests skip (as
they do when no Docker engine answers or the shared sample is gone) fails CI's verdict
with the reasons, unless the skip is allow-listed, and passes outside CI, through the same
JUnit report and module .ci/run uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.ci_verdict import ALLOWED, Skip, read_skips, verdict

ROOT = Path(__file__).resolve().parents[1]
SUITE = '''
import pytest

@pytest.mark.container
def test_an_image(engine):
    pass

@pytest.fixture
def engine():
    pytest.skip("no Docker engine answers `docker info`: Cannot connect to the Docker daemon")

@pytest.mark.slow
def test_with_the_real_sample():
    pytest.skip("real ABID sample not found")

def test_plain():
    assert True
'''


def run_suite(tmp_path: Path, source: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "test_suite.py").write_text(source)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "devtools.ci_verdict", "-p", "no:cacheprovider",
                    "-W", "ignore::pytest.PytestUnknownMarkWarning", f"--junitxml={report}", str(tmp_path)],
                   cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, timeout=120)
    return report


def verdict_cli(*reports: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "devtools.ci_verdict", *map(str, reports)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return run_suite(tmp_path_factory.mktemp("suite"), SUITE)


def test_the_report_names_each_skipped_test_with_its_markers_and_reason(report):
    skips = {s.test.rsplit("::", 1)[1]: s for s in read_skips(str(report))}
    assert set(skips) == {"test_an_image", "test_with_the_real_sample"}
    assert skips["test_an_image"].markers == {"container"}
    assert "no Docker engine answers" in skips["test_an_image"].reason


def test_under_ci_a_skipped_container_test_fails_the_run_with_its_reason(report):
    proc = verdict_cli(report, ci="true")
    assert proc.returncode == 1
    assert "1 container tests skipped" in proc.stderr and "Cannot connect to the Docker daemon" in proc.stderr


def test_outside_ci_the_skip_is_reported_and_the_run_passes(report):
    proc = verdict_cli(report, ci=None)
    assert proc.returncode == 0 and "no Docker engine answers" in proc.stderr


def test_under_ci_any_skip_fails_and_names_the_test(tmp_path):
    report = run_suite(tmp_path, SUITE.replace("@pytest.mark.container\n", ""))
    proc = verdict_cli(report, ci="true")
    assert proc.returncode == 1 and "test_with_the_real_sample: real ABID sample not found" in proc.stderr


def test_under_ci_an_allow_listed_skip_and_a_clean_run_pass(tmp_path):
    allowed = next(iter(ALLOWED))
    suite = f"import pytest\n\ndef {allowed}():\n    pytest.skip('same file system')\n\ndef test_plain():\n    pass\n"
    proc = verdict_cli(run_suite(tmp_path, suite), ci="true")
    assert proc.returncode == 0 and f"allowed skip: test_suite::{allowed} ({ALLOWED[allowed]})" in proc.stderr


def test_under_ci_a_missing_report_fails(tmp_path):
    assert verdict_cli(tmp_path / "never-written.xml", ci="true").returncode == 1
    assert verdict_cli(tmp_path / "never-written.xml", ci=None).returncode == 0


def test_every_report_is_read_and_a_tier_that_wrote_none_fails_under_ci(tmp_path):
    # make test-all writes one report per tier; a skip in either fails, and so does a tier
    # that never ran (make stopped before it)
    clean = run_suite(tmp_path / "tests", "def test_plain():\n    pass\n")
    skipping = run_suite(tmp_path / "containers", SUITE.replace("@pytest.mark.container\n", ""))
    assert verdict_cli(clean, clean, ci="true").returncode == 0
    proc = verdict_cli(clean, skipping, ci="true")
    assert proc.returncode == 1 and "test_with_the_real_sample: real ABID sample not found" in proc.stderr
    assert verdict_cli(clean, tmp_path / "never-written.xml", ci="true").returncode == 1


def test_the_verdict_itself():
    skip = Skip("tests.containers.test_images::test_x", frozenset({"container", "slow"}), "no engine")
    assert verdict([skip], ci=True)[0] is False
    assert verdict([skip], ci=False)[0] is True
    assert verdict([Skip("t::u", frozenset({"slow"}), "no sample")], ci=True)[0] is False
    assert verdict([Skip("t::u", frozenset({"slow"}), "no sample")], ci=False)[0] is True
    assert verdict([], ci=True) == (True, [])
