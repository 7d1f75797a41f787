"""bench-faults' review rows: Label Studio killed mid-export (before and after it took the
tasks) and mid-import, restarted, the command run again: every bin once, labels.jsonl whole."""

from __future__ import annotations

import os

import pytest

from benchmarks.faults import review
from devtools.label_studio import VENV

pytestmark = pytest.mark.slow  # a real Label Studio


def test_label_studio_going_away_loses_nothing_and_counts_nothing_twice(tmp_path):
    """Fails if `review export` stopped skipping bins already in the project (the "after" row
    would hold every bin twice) or if `review import` wrote labels.jsonl before reading everything."""
    if not (VENV / "bin" / "label-studio").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{VENV}: no Label Studio venv under CI (make test builds it)")
        pytest.skip(f"no Label Studio venv at {VENV}: run `make labelstudio`")
    for row in review.rows(tmp_path, n=6):
        assert row.passed, (row.fault, row.did)
