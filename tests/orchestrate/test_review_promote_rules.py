"""promote's arithmetic on hand-made answers: a golden score, McNemar's exact test, and the
decision with its reason (first model against its targets; a candidate against the approved)."""

from __future__ import annotations

import pytest

from orchestrate.audit.join import Row
from orchestrate.review.promote import decide, table
from orchestrate.review.scoring import mcnemar, score

TARGETS = {"max_false_match": 0.01, "max_false_mismatch": 0.05}


def test_a_golden_score_counts_accuracy_rmse_auto_share_and_verdict_errors_with_n():
    truth = {"a": 3, "b": 2, "c": 4, "d": 1, "e": 5}
    rows = [Row("a", expected=3, counted=3, verdict="match"),        # right, holds: a true match
            Row("b", expected=3, counted=2, verdict="mismatch"),     # right, does not hold: a true mismatch
            Row("c", expected=4, counted=5, verdict="mismatch"),     # wrong count, holds: a false mismatch
            Row("d", expected=2, counted=2, verdict="match")]        # wrong, does not hold: a false match
    s = score(rows, truth)                                           # "e" was never answered
    assert (s.n, s.accuracy, s.failed) == (5, 0.4, 1)
    assert s.rmse == pytest.approx(((0 + 0 + 1 + 1) / 4) ** 0.5)
    assert s.auto_share == 1.0
    assert s.false_match == (1, 2) and s.false_mismatch == (1, 2)
    assert s.correct == {"a": True, "b": True, "c": False, "d": False, "e": False}


def _scores(right_a: set[int], right_b: set[int], n: int = 40):
    truth = {str(i): 1 for i in range(n)}
    rows = lambda right: [Row(str(i), expected=1, counted=1 if i in right else 2, verdict="review") for i in range(n)]
    return score(rows(right_a), truth), score(rows(right_b), truth)


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_bins():
    a, b = _scores(set(range(10)), set())
    assert mcnemar(a, b) == (10, 0, pytest.approx(2 / 2 ** 10))
    a, b = _scores({0, 1, 2}, {3})
    assert mcnemar(a, b) == (3, 1, pytest.approx(2 * (1 + 4) / 16))
    a, b = _scores({0}, {0})
    assert mcnemar(a, b) == (0, 0, 1.0)


def test_a_candidate_is_approved_only_when_it_wins_beyond_noise():
    better, old = _scores(set(range(12)), {0})
    d = decide(better, old, TARGETS, alpha=0.05)
    assert d.approve and d.why.startswith("wins: on the same 40 golden bins the candidate alone counts 11 right")
    slightly, old = _scores({0, 1, 2}, {3})
    d = decide(slightly, old, TARGETS, alpha=0.05)
    assert not d.approve and d.why.startswith("not better beyond noise") and "p = 0.625" in d.why
    worse, old = _scores({0}, set(range(12)))
    d = decide(worse, old, TARGETS, alpha=0.05)
    assert not d.approve and d.why.startswith("not better:")
    forced = decide(worse, old, TARGETS, alpha=0.05, force=True)
    assert forced.approve and forced.description.startswith("forced by promote --force; not better:")


def test_the_first_model_is_approved_when_its_verdicts_keep_their_targets_on_the_golden_set():
    truth = {str(i): 2 for i in range(20)}
    keeps = score([Row(str(i), expected=2, counted=2, verdict="review") for i in range(20)], truth)
    assert decide(keeps, None, TARGETS, 0.05).approve
    misses = score([Row(str(i), expected=3, counted=3, verdict="match") for i in range(20)], truth)
    d = decide(misses, None, TARGETS, 0.05)
    assert not d.approve and "false match 100.0% (20/20) above its target 1.0%" in d.why
    assert "| false match | 100.0% (20/20) |" in table({"candidate": misses})
