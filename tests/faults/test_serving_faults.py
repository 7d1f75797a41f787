"""bench-faults' serving rows at a small size: a worker SIGKILLed under load costs at most the
request it held, /ping stays 200 and the worker is back; callers past the plateau queue."""

from __future__ import annotations

import pytest

from benchmarks.faults import serving

pytestmark = pytest.mark.slow  # real servers


@pytest.fixture
def image(synthetic_bins) -> bytes:
    return next((synthetic_bins / "images").glob("*.jpg")).read_bytes()


def test_a_worker_killed_under_load_costs_at_most_its_request_and_comes_back(random_model_dir, image, tmp_path):
    """Fails if gunicorn_conf ran one worker (the kill would take /ping down with it) or if the
    master stopped replacing dead workers."""
    row = serving.worker_killed(random_model_dir, image, tmp_path / "serve.log", seconds=4)
    assert row.passed, row.did
    assert row.facts["statuses"].get(200, 0) > 50 and row.facts["workers_after"] == 2
    assert row.recover_s is not None and row.recover_s < 30


def test_callers_past_the_plateau_queue_without_errors(random_model_dir, image, tmp_path):
    row = serving.load_held(random_model_dir, image, tmp_path / "serve.log", levels=(1, 8), seconds=2)
    assert row.passed, row.did
    one, eight = row.facts["points"]
    assert eight["p50_s"] > one["p50_s"]  # eight callers on two workers wait their turn
    assert "| 8 |" in serving.levels_table(row)
