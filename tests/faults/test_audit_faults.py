"""bench-faults' audit rows at a small size: S3 failing while the join reads (outputs in the
cloud path, metadata in --local) leaves every bin once and names the unreadable ones; joining
again completes it; a killed audit never leaves half an audit.csv."""

from __future__ import annotations

import pytest

from benchmarks.faults import audit
from benchmarks.faults.stack import moto_stack, transform

pytestmark = pytest.mark.slow  # moto, a real server


def test_s3_failing_mid_join_names_the_bins_and_a_second_join_completes_the_audit(tmp_path):
    """Fails if join.read_outputs let the ClientError through (before: exit 1, no audit at all),
    or if report.write_csv wrote audit.csv in place (a kill could leave half of it)."""
    with moto_stack(tmp_path, bins=20) as stack:
        transform(stack)
        rows = [audit.s3_errors_cloud(stack), audit.s3_errors_local(stack), audit.killed_mid_join(stack, kills=2)]
    for row in rows:
        assert row.passed, (row.fault, row.did)
    assert rows[0].facts["injected"]["InternalError"] >= 2 * 10  # two bins, botocore's 10 attempts each
