"""bench-faults' monitor rows at a small size: unreadable capture files are named and counted;
the report is written from the rest when enough answers remain and refused (exit 3, no Drift
or Reports metric) when not; a killed monitor never leaves half a report."""

from __future__ import annotations

import pytest

from benchmarks.faults import monitor
from benchmarks.faults.stack import moto_stack

pytestmark = pytest.mark.slow  # moto


def test_unreadable_captures_are_named_and_a_thin_window_is_refused(tmp_path):
    """Fails if window.read let an S3 error through, or if schedule.publish put Reports for a
    window with no test (the silence alarm would read an unjudged window as fine)."""
    with moto_stack(tmp_path, bins=40) as stack:
        rows = monitor.unreadable_captures(stack) + [monitor.killed_while_writing(stack, kills=1)]
    for row in rows:
        assert row.passed, (row.fault, row.did)
