"""The plain-text progress lines a log or CI sees (no terminal)."""

from __future__ import annotations

import io

import pytest

from orchestrate.core.progress import Progress


def test_a_jump_over_step_boundaries_is_printed_and_the_end_once():
    out = io.StringIO()  # not a tty: plain lines, one per 10 % step crossed
    with Progress(1000, "transform", stream=out) as bar:
        for done in (137, 290, 290, 955, 1000, 1200):
            bar.advance_to(done)
    assert out.getvalue().splitlines() == ["transform: 137/1000", "transform: 290/1000",
                                           "transform: 955/1000", "transform: 1000/1000"]


def test_one_at_a_time_prints_each_tenth():
    out = io.StringIO()
    with Progress(20, "download", stream=out) as bar:
        for _ in range(20):
            bar.update()
    assert len(out.getvalue().splitlines()) == 10 and out.getvalue().endswith("download: 20/20\n")


def test_an_audit_counts_its_outputs_every_poll_until_that_would_cost_more_than_the_list_budget():
    from orchestrate.audit.run_cloud import LIST_REQUESTS_PER_HOUR, count_interval

    assert count_interval(1_000, poll=30) == 30  # one LIST a count: every poll
    whole_bucket = count_interval(535_234, poll=30)  # 536 LISTs a count
    assert whole_bucket == pytest.approx(536 * 3600 / LIST_REQUESTS_PER_HOUR)
    assert 536 * 3600 / whole_bucket <= LIST_REQUESTS_PER_HOUR
