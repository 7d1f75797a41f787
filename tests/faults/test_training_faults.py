"""bench-faults' training rows: SIGKILL (no checkpoint of its own) mid-epoch and in the middle of
a checkpoint's write; the restart resumes from the last complete checkpoint, bit for bit."""

from __future__ import annotations

import pytest

from benchmarks.faults import training

pytestmark = pytest.mark.slow  # three training runs


def test_a_killed_run_resumes_from_its_last_complete_checkpoint_to_the_same_weights(tmp_path):
    """Fails if checkpoint.save_checkpoint wrote the final name directly (the kill mid-write would
    leave a corrupt newest checkpoint) or load_latest took a .tmp for a checkpoint."""
    for row in training.rows(tmp_path):
        assert row.passed, (row.fault, row.did)
